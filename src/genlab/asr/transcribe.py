"""Long-form transcription: 30 s windows, timestamp seeking, temperature fallback, word timing.

The procedure of Radford et al. 2022, section 4.5: decode a window; if its text repeats itself (gzip
compression ratio above 2.4) or the model is unsure (average log-prob below -1) decode it again at a higher
temperature; if the model says there is no speech (no-speech probability above 0.6 with a low log-prob) skip
it; then move the window to the last complete timestamp and go on, conditioning on the accepted text.

Word times come from the cross-attention of the alignment heads, aligned to the audio frames by dynamic time
warping (as in openai-whisper's ``timing.py``). An optional voice-activity gate (:mod:`genlab.asr.vad`) keeps
the decoder away from stretches without speech, so that silence, noise and music give no words.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from ..data.audio import (
    FRAMES_PER_SECOND,
    HOP_LENGTH,
    N_FFT,
    N_FRAMES,
    N_SAMPLES,
    SAMPLE_RATE,
    TIME_PRECISION,
    _mel_tensor,
    pad_or_trim,
)
from .decoding import DecodingOptions, DecodingResult, decode
from .model import Whisper
from .tokenizer import WhisperTokenizer


@dataclass
class Word:
    word: str
    start: float
    end: float
    probability: float


@dataclass
class Segment:
    id: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: list[Word] = field(default_factory=list)


@dataclass
class TranscriptionResult:
    text: str
    segments: list[Segment]
    language: str
    duration: float
    language_probs: dict[str, float] | None = None


@dataclass(frozen=True)
class TranscribeOptions:
    temperature: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    compression_ratio_threshold: float | None = 2.4
    logprob_threshold: float | None = -1.0
    no_speech_threshold: float | None = 0.6
    condition_on_previous_text: bool = True
    initial_prompt: str | None = None
    word_timestamps: bool = False
    # With a voice-activity gate, up to this many windows of utterances are decoded together: a decoding step
    # reads every weight once for all of them, and reading the weights is what a step costs on CPU. The windows
    # then hold other neighbours than one at a time would, and a window decoded with others has no previous
    # text, so the words can differ (measured in benchmarks/results/asr_speed.json). 1 (the default, as in
    # faster-whisper, whose batched pipeline is opt-in too) decodes one window at a time.
    batch_size: int = 1
    # With a gate, the next planned windows are encoded on a second thread while the current ones decode (CPU,
    # two or more threads): see _EncodeAhead. False runs everything on the calling thread, one step after another.
    encode_ahead: bool = True
    prepend_punctuations: str = "\"'“¿([{-"
    append_punctuations: str = "\"'.。,，!！?？:：”)]}、"


# ---------------------------------------------------------------------------------------------------------------
# Mel for a whole file, computed in pieces: the STFT never holds a long file at once, and the log-mel itself is
# never held either (a 2-hour file's is 230 MB): a window's frames are computed when the loop reaches them.


class FileLogMel:
    """Whisper's log-mel of ``audio`` followed by 30 s of zeros (``log_mel_spectrogram(audio, padding=N_SAMPLES)``),
    ``(n_mels, n_frames)``, served a range of frames at a time by :meth:`frames`.

    Whisper clips every value to 8 below the file's maximum, so a first pass over the file (in chunks, keeping
    nothing) finds that maximum; each later request recomputes only its frames, with STFT context on both sides
    and the file's edges reflect-padded exactly as the one-shot STFT does.
    """

    def __init__(self, audio: np.ndarray, n_mels: int, chunk_seconds: int = 60):
        self.x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))  # no copy of a long file
        self.total = len(self.x) + N_SAMPLES  # the file and its zero tail, never materialised
        self.shape = (n_mels, self.total // HOP_LENGTH)
        self._window = torch.hann_window(N_FFT)
        self._filters = _mel_tensor(n_mels, "cpu")
        self._chunk = chunk_seconds * FRAMES_PER_SECOND
        self.max = max(float(raw.max()) for raw in self._raw_chunks(0, self.shape[1]))

    @property
    def silence(self) -> float:
        """The value of silent audio, as in the zero tail: raw log10 power -10 (the 1e-10 floor), clipped."""
        return (max(self.max - 8.0, -10.0) + 4.0) / 4.0

    def frames(self, f0: int, f1: int) -> torch.Tensor:
        """Log-mel frames ``f0 .. f1 - 1`` as ``(n_mels, f1 - f0)``."""
        f0, f1 = max(0, f0), min(self.shape[1], f1)
        if f1 <= f0:
            return torch.zeros(self.shape[0], 0)
        out = torch.cat(list(self._raw_chunks(f0, f1)), dim=1)
        return out.clamp_(min=self.max - 8.0).add_(4.0).div_(4.0)

    def _raw_chunks(self, f0: int, f1: int):
        """Raw log10 mel power of frames f0..f1-1, in pieces of at most ``chunk_seconds``."""
        for a in range(f0, f1, self._chunk):
            yield self._raw(a, min(f1, a + self._chunk))

    def _raw(self, f0: int, f1: int) -> torch.Tensor:
        """log10 mel power of frames f0..f1-1; frame f is centred on sample f * hop."""
        pad, x, total = N_FFT // 2, self.x, self.total
        a, b = f0 * HOP_LENGTH - pad, (f1 - 1) * HOP_LENGTH + pad + 1
        piece = x[max(a, 0) : min(b, len(x))]
        if min(b, total) > len(x):  # the part of the zero tail these frames see
            piece = torch.cat([piece, piece.new_zeros(min(b, total) - max(a, len(x)))])
        left, right = max(0, -a), max(0, b - total)
        if left or right:
            piece = F.pad(piece[None, None], (left, right), mode="reflect")[0, 0]
        stft = torch.stft(piece, N_FFT, HOP_LENGTH, window=self._window, center=False, return_complex=True)
        return torch.clamp(self._filters @ (stft.abs() ** 2), min=1e-10).log10()  # (n_mels, f1 - f0)


def long_log_mel(audio: np.ndarray, n_mels: int, chunk_seconds: int = 60) -> torch.Tensor:
    """The whole :class:`FileLogMel` as one tensor."""
    mel = FileLogMel(audio, n_mels, chunk_seconds)
    return mel.frames(0, mel.shape[1])


# ---------------------------------------------------------------------------------------------------------------


def decode_with_fallback(
    model: Whisper, features: torch.Tensor, tok: WhisperTokenizer, base: DecodingOptions, opts: TranscribeOptions,
    audio_kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None, on_step: Callable[[], None] | None = None,
) -> list[tuple[DecodingResult, bool]]:
    """Decode each window of ``features`` ``(B, S, d)`` at each temperature in turn until its result passes the
    checks. Returns (result, accepted) per window; when every temperature fails, the result with the best average
    log-prob among those that do not loop is kept. The first temperature decodes the windows together; a window
    that falls back is decoded alone, so that its samples do not depend on the other windows. ``audio_kv``: the
    windows' cross-attention keys/values, if computed (:meth:`Whisper.audio_kv`). ``on_step``: see :func:`decode`."""
    out = []
    for b, first in enumerate(_decode_at(model, features, tok, base, opts.temperature[0], audio_kv, on_step)):
        tried = [first]
        for t in opts.temperature[1:]:
            if _passes(tried[-1], opts):
                break
            # Alone, and free to end anywhere (no packed-window end rule, see transcribe): its text may be silence.
            alone = replace(base, end_not_before=None)
            tried.append(_decode_at(model, features[b : b + 1], tok, alone, t, _rows(audio_kv, b), on_step)[0])
        if _passes(tried[-1], opts):
            out.append((tried[-1], True))
            continue
        fine = [r for r in tried if opts.compression_ratio_threshold is None
                or r.compression_ratio <= opts.compression_ratio_threshold]
        out.append((max(fine or tried, key=lambda r: r.avg_logprob), False))
    return out


def _decode_at(model: Whisper, features: torch.Tensor, tok: WhisperTokenizer, base: DecodingOptions, t: float,
               audio_kv=None, on_step=None):
    o = replace(base, temperature=t, beam_size=base.beam_size if t == 0 else None,
                best_of=base.best_of if t > 0 else None)
    return decode(model, None, tok, o, audio_features=features, audio_kv=audio_kv, on_step=on_step)


def _rows(audio_kv: list[tuple[torch.Tensor, torch.Tensor]] | None, b: int):
    """Window ``b``'s cross-attention keys/values."""
    return None if audio_kv is None else [(k[b : b + 1], v[b : b + 1]) for k, v in audio_kv]


def _passes(r: DecodingResult, opts: TranscribeOptions) -> bool:
    """Whether a window's text is accepted: it does not loop and the model is sure of it, or it is silence."""
    too_repetitive = opts.compression_ratio_threshold is not None and (
        r.compression_ratio > opts.compression_ratio_threshold
    )
    too_unsure = opts.logprob_threshold is not None and r.avg_logprob < opts.logprob_threshold
    silent = opts.no_speech_threshold is not None and r.no_speech_prob > opts.no_speech_threshold and (
        opts.logprob_threshold is not None and r.avg_logprob < opts.logprob_threshold
    )
    return silent or not (too_repetitive or too_unsure)


def transcribe(
    model: Whisper,
    tok: WhisperTokenizer,
    audio: np.ndarray,
    decode_options: DecodingOptions | None = None,
    options: TranscribeOptions | None = None,
    speech: list[tuple[float, float]] | None = None,
    on_segment: Callable[[Segment], None] | None = None,
    progress: bool = False,
    encode: Callable[[torch.Tensor], torch.Tensor] | None = None,
    pad_with_silence: bool = False,
) -> TranscriptionResult:
    """Transcribe 16 kHz mono ``audio`` of any length.

    ``speech``: optional (start, end) seconds where a voice-activity detector heard speech; windows with none are
    skipped and segments outside them are dropped. ``on_segment`` is called as each segment is final.
    ``encode`` maps a ``(1, n_mels, 3000)`` window to audio features (default ``model.embed_audio``).
    ``pad_with_silence``: fill windows shorter than 30 s with the log-mel of silence instead of zeros (for models
    trained that way, such as genlab's own ``speech-asr``).
    """
    decode_options = decode_options or DecodingOptions()
    options = options or TranscribeOptions()
    encode = encode or model.embed_audio
    duration = len(audio) / SAMPLE_RATE
    mel = FileLogMel(audio, model.config.n_mels)  # (n_mels, frames + 3000), computed a window at a time
    content_frames = mel.shape[-1] - N_FRAMES
    fill = mel.silence if pad_with_silence else 0.0

    def fit(x: torch.Tensor) -> torch.Tensor:
        """A window of exactly 30 s, filled after ``x`` (zeros, as openai-whisper does, or silence)."""
        out = pad_or_trim(x, N_FRAMES)
        if pad_with_silence and x.shape[-1] < N_FRAMES:
            out[:, x.shape[-1] :] = fill
        return out
    dtype = next(model.parameters()).dtype
    device = next(model.parameters()).device

    language = decode_options.language
    language_probs = None
    if not model.is_multilingual:
        language = "en"
    if language is None:
        start = 0
        if speech:  # detect the language where someone speaks
            start = int(speech[0][0] * FRAMES_PER_SECOND)
        window = fit(mel.frames(start, start + N_FRAMES))[None].to(device, dtype)
        from .decoding import detect_language

        langs, probs = detect_language(model, encode(window), tok)
        language, language_probs = langs[0], probs[0]
    task = decode_options.task if model.is_multilingual else "transcribe"
    tok = tok.with_options(language=language if model.is_multilingual else None, task=task)
    base = replace(decode_options, language=language, task=task)

    all_tokens: list[int] = []
    if options.initial_prompt:
        all_tokens.extend(tok.encode(" " + options.initial_prompt.strip()))
    prompt_reset_since = 0
    segments: list[Segment] = []
    waiting: list[Segment] = []  # decoded, but speech before them is not yet: emitted in time order

    def emit(s: Segment) -> None:
        s.id = len(segments)
        segments.append(s)
        if on_segment is not None:
            on_segment(s)

    bar = _Progress(content_frames, enabled=progress)
    # Without a gate, one 30 s window after another from ``seek``. With one, the utterances still to decode.
    todo = _Todo(_speech_groups(speech), content_frames) if speech is not None else None
    seek = 0

    def encode_windows(wins: list[_Window]) -> torch.Tensor:
        return torch.cat([encode(fit(w.gather(mel))[None].to(device, dtype)) for w in wins])

    threads = torch.get_num_threads()
    ahead = None
    if todo is not None and options.encode_ahead and threads > 1 and _encodes_ahead(model, options):
        # Greedy decoding runs on one thread about as fast as on two, so the encoder is kept busy two windows ahead
        # (a window that decodes slower than the next one encodes no longer holds up the one after); a beam step
        # runs faster on two, so beam search takes the thread back as soon as the next window is encoded.
        depth = 2 if (base.beam_size or 1) == 1 else 1
        ahead = _EncodeAhead(encode_windows, threads, depth)

    with ahead or contextlib.nullcontext():
        while True:
            if todo is None:
                if seek >= content_frames:
                    break
                wins = [_Window([(seek, seek + min(N_FRAMES, content_frames - seek))])]
            else:
                wins = todo.plan(options.batch_size)
                if not wins:  # no speech left
                    break
            features = ahead.take(wins) if ahead is not None else None
            if features is None:
                features = encode_windows(wins)
            audio_kv = model.audio_kv(features)  # shared by the decoding, its fallbacks and the alignment
            if ahead is not None and all(w.cut_from is None for w in wins):
                # Where a window ends inside an utterance the next one starts where its text stops: nothing to guess.
                ahead.start([[w] for w in todo.peek(ahead.depth)])  # one window at a time
            # A window decoded alone is conditioned on the text before it, unless it packs several utterances: then
            # the decoder tends to copy the prompt instead of hearing the first one (seen on the 5-minute LibriVox
            # benchmark file). Windows decoded together are not: the text before them is not decoded yet.
            prompt = all_tokens[prompt_reset_since:] if len(wins) == 1 and len(wins[0].pieces) == 1 else None
            # The decoder tends to stop after the second-to-last of the utterances packed in a window (on the 5-minute
            # benchmark file, every one of 10 such windows did; each skipped utterance went to the next window: 11
            # windows for 32 utterances), and before the last phrase of a lone one. Where a window ends with the end of
            # speech the gate heard, it may not end before its timestamps reach the last second of that speech (8
            # windows, greedy and beam 5). A window cut at 30 s out of a longer utterance seeks as usual.
            end_not_before = tuple(
                (w.bounds()[-1][1] - LEAD_FRAMES) / FRAMES_PER_SECOND if todo is not None and w.cut_from is None
                else None
                for w in wins
            )
            first = replace(base, prompt=prompt or None, end_not_before=end_not_before)
            poll = ahead.poll if ahead is not None else None
            decoded = decode_with_fallback(model, features, tok, first, options, audio_kv, poll)
            if poll is not None:
                poll()
            for i, (win, (result, accepted)) in enumerate(zip(wins, decoded)):
                new, seek, alone = _window_segments(
                    model, tok, result, features[i : i + 1], win, options, speech, _rows(audio_kv, i)
                )
                if todo is not None:
                    todo.put_back(win, seek, alone)
                for s in new:
                    s.end = round(min(s.end, duration), 3)
                    s.start = round(min(s.start, s.end), 3)
                    all_tokens.extend(s.tokens)
                waiting.extend(new)
                # Do not condition the next window on text that was sampled hot or that failed the checks.
                if not options.condition_on_previous_text or result.temperature > 0.5 or not accepted:
                    prompt_reset_since = len(all_tokens)
            frontier = min(seek, content_frames) if todo is None else todo.frontier()
            if todo is not None:
                waiting.sort(key=lambda s: s.start)  # windows decoded together may end before earlier speech is done
            while waiting and (todo is None or waiting[0].start < frontier / FRAMES_PER_SECOND):
                emit(waiting.pop(0))
            bar.update(frontier)
    for s in waiting:
        emit(s)
    bar.update(content_frames)  # the rest had no speech (or was skipped): the file is done
    bar.close()
    text = "".join(tok.decode(s.tokens) for s in segments).strip()
    return TranscriptionResult(text, segments, language, duration, language_probs)



# ---------------------------------------------------------------------------------------------------------------
# Windows over the voice-activity regions: utterances packed into one 30 s window


LEAD_FRAMES = FRAMES_PER_SECOND  # audio kept before each utterance (the pause the decoder sees between them)
# A packed utterance whose aligned text ends this long before its speech does lost its end. On the 5-minute
# benchmark file (benchmarks/asr_speed.py) the last word ends 0.0-0.8 s before the speech in complete utterances,
# and 2.1-2.4 s before it where int8 beam 5 jumped from "made still" to the next utterance.
EARLY_END_SECONDS = 1.5


def _speech_groups(speech: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """VAD regions joined across pauses shorter than 1 s: the utterances (seconds)."""
    out: list[tuple[float, float]] = []
    for s, e in speech:
        if out and s - out[-1][1] < 1.0:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


@dataclass
class _Window:
    """Pieces ``(start, end)`` of the file's mel frames, laid end to end in one encoder window."""

    pieces: list[tuple[int, int]]
    cut_from: int | None = None  # the end of the utterance whose first 30 s is this window's only piece

    @property
    def frames(self) -> int:
        return sum(b - a for a, b in self.pieces)

    def gather(self, mel: FileLogMel) -> torch.Tensor:
        return torch.cat([mel.frames(a, b) for a, b in self.pieces], dim=1)  # (n_mels, frames)

    def to_file_frame(self, w: float, end: bool = False) -> float:
        """Window frame -> file frame; a frame on the seam of two pieces belongs to the later one (to the
        earlier one with ``end``, for the end of a segment or word)."""
        offset = 0
        for a, b in self.pieces:
            n = b - a
            if w < offset + n or (end and w <= offset + n):
                return a + max(0.0, w - offset)
            offset += n
        return self.pieces[-1][1]

    def to_file_time(self, t: float, end: bool = False) -> float:
        return self.to_file_frame(t * FRAMES_PER_SECOND, end) / FRAMES_PER_SECOND

    def bounds(self) -> list[tuple[int, int]]:
        """Each piece's (start, end) in window frames."""
        out, offset = [], 0
        for a, b in self.pieces:
            out.append((offset, offset + b - a))
            offset += b - a
        return out

    def piece_at(self, w: float) -> int:
        return next((i for i, (_, b) in enumerate(self.bounds()) if w < b), len(self.pieces) - 1)


def _split_at_pieces(
    model: Whisper, tok: WhisperTokenizer, result: DecodingResult, segments: list[Segment], features: torch.Tensor,
    win: _Window, next_frame: int, audio_kv=None,
) -> tuple[list[Segment], int, bool]:
    """Re-cut a packed window's segments so that each lies in one piece (one utterance), by the time the
    alignment heads give each token (as for word timing). A segment's bounds become its piece's bounds where it
    starts or ends the piece (the voice-activity clip then pulls them in to the speech) and the aligned token
    times inside. Text cut off at the window's end is decoded again from the start of its piece.
    Returns (segments, next seek in window frames, whether the next window must hold one piece only)."""
    text = [t for t in result.tokens if t < tok.eot]
    if not text:
        return segments, next_frame, False
    times = _token_times(model, tok, text, features, win.frames, audio_kv=audio_kv)  # (n + 1,) seconds
    mids = (times[:-1] + times[1:]) / 2 * FRAMES_PER_SECOND
    piece = np.maximum.accumulate([win.piece_at(m) for m in mids])  # monotonic: utterances come in order
    # A word goes with the piece of its first token.
    for i in range(1, len(text)):
        if not tok.decode([text[i]]).startswith(" ") and piece[i] != piece[i - 1]:
            piece[i] = piece[i - 1]
    bounds = win.bounds()
    done = sum(len(seg.tokens) for seg in segments)
    if done < len(text) and piece[done] == len(bounds) - 1:
        # Text after the last timestamp pair is usually cut off by the window's end; here the last piece is
        # a whole utterance (only a lone first piece is ever cut), so that text is complete: keep it.
        tail = text[done:]
        segments = segments + [Segment(0, 0.0, 0.0, tok.decode(tail), tail, result.temperature,
                                       result.avg_logprob, result.compression_ratio, result.no_speech_prob)]
    out, pos = [], 0
    for seg in segments:
        n = len(seg.tokens)
        idx = list(range(pos, pos + n))
        pos += n
        while idx:
            k = piece[idx[0]]
            part = [i for i in idx if piece[i] == k]
            idx = idx[len(part):]
            start = times[part[0]] if part[0] > 0 and piece[part[0] - 1] == k else bounds[k][0] / FRAMES_PER_SECOND
            last = part[-1] + 1 >= len(text) or piece[part[-1] + 1] != k
            end = bounds[k][1] / FRAMES_PER_SECOND if last else times[part[-1] + 1]
            toks = [text[i] for i in part]
            out.append((k, Segment(0, float(start), float(end), tok.decode(toks), toks, seg.temperature,
                                   seg.avg_logprob, seg.compression_ratio, seg.no_speech_prob)))
    # The decoder may skip an utterance, or the end of one (jump from mid-sentence to the next utterance), or
    # stop early: the first piece without text, or whose text ends well before its speech does, and everything
    # after it, is decoded again (as is the piece of text cut off after the last complete segment).
    heard = set(int(p) for p in piece)
    last_token = {int(p): i for i, p in enumerate(piece)}
    k = next((i for i in range(len(bounds)) if i not in heard
              or bounds[i][1] / FRAMES_PER_SECOND - times[last_token[i] + 1] > EARLY_END_SECONDS), None)
    if pos < len(text):
        k = min(int(piece[pos]), k if k is not None else len(bounds))
    if k is not None:
        kept = [s for p, s in out if p < k]
        return kept, bounds[k][0], k == 0
    # Every piece was heard, each to within EARLY_END_SECONDS of its end, and only a lone first piece is ever cut:
    # the window is done, even where the decoder's last timestamp (an opening one before <|endoftext|>) falls
    # short of its end. Decoding the sliver after that timestamp again had Whisper repeat the whole utterance
    # into it (int8 greedy on an AMD EPYC: jfk's sentence twice, the second time in 0.23 s).
    return [s for _, s in out], win.frames, False


def _window_segments(
    model: Whisper, tok: WhisperTokenizer, result: DecodingResult, features: torch.Tensor, win: _Window,
    options: TranscribeOptions, speech: list[tuple[float, float]] | None, audio_kv=None,
) -> tuple[list[Segment], int, bool]:
    """A decoded window's segments on the file's clock, and where decoding goes on: (segments, next seek in file
    frames, whether the next window must hold one utterance only)."""
    if options.no_speech_threshold is not None and result.no_speech_prob > options.no_speech_threshold and not (
        options.logprob_threshold is not None and result.avg_logprob > options.logprob_threshold
    ):
        return [], win.pieces[-1][1], False  # the model hears nobody: skip the window
    alone = False
    # Segments, words and the next seek in window time, then mapped back to the file's clock.
    new, next_frame = _split_segments(result, tok, 0, win.frames, 0.0)
    if len(win.pieces) > 1:
        # Whisper's own timestamps are too loose to tell which packed utterance a segment belongs to:
        # align the tokens to the audio and cut the segments where the utterance changes.
        new, next_frame, alone = _split_at_pieces(model, tok, result, new, features, win, next_frame, audio_kv)
    if options.word_timestamps and new:
        add_word_timestamps(model, tok, new, features, options, win.frames, 0.0, audio_kv=audio_kv)
        # Seek to the end of the last word rather than of a segment that may have been cut off.
        if len(win.pieces) == 1 and not (len(result.tokens) >= 2 and result.tokens[-1] >= tok.timestamp_begin
                                         and result.tokens[-2] < tok.timestamp_begin):
            last = [w.end for s in new for w in s.words]
            if last and last[-1] > 0:
                next_frame = round(last[-1] * FRAMES_PER_SECOND)
    seek = max(round(win.to_file_frame(next_frame)), win.pieces[0][0] + 1)
    for s in new:
        s.start, s.end = win.to_file_time(s.start), win.to_file_time(s.end, end=True)
        for w in s.words:
            w.start, w.end = round(win.to_file_time(w.start), 3), round(win.to_file_time(w.end, end=True), 3)
    new = [s for s in new if s.end > s.start and s.text.strip()]
    if speech is not None:
        new = [s for s in new if _overlaps(s.start, s.end, speech)]
        for s in new:
            # Whisper's timestamps often stretch over a pause; pull the bounds in to where speech was heard.
            inside = [(a, b) for a, b in speech if min(s.end, b) - max(s.start, a) > 0]
            s.start, s.end = max(s.start, inside[0][0]), min(s.end, inside[-1][1])
            s.words = [w for w in s.words if _overlaps(w.start, w.end, speech)]
    return new, seek, alone


class _Todo:
    """The stretches of the file's frames still to decode, in order: at first each utterance (from up to 1 s
    before it, the pause the decoder sees between utterances); after a window, whatever it left undecoded.

    :meth:`plan` packs them into windows: the next stretch and the ones after it that fit whole in the remaining
    30 s (the encoder costs the same for 3 s as for 30 s, and one window per utterance would spend most of it on
    padding, as faster-whisper's VAD collector avoids too). A stretch longer than 30 s gets a window of its own
    and is taken 30 s at a time by the usual seeking. :meth:`put_back` returns what a window did not decode."""

    def __init__(self, groups: list[tuple[float, float]], content_frames: int):
        self.stretches: list[tuple[int, int, bool]] = []  # (first frame, end frame, to be decoded alone)
        pos = 0
        for gs, ge in groups:
            a = max(pos, int(gs * FRAMES_PER_SECOND) - LEAD_FRAMES)
            b = min(content_frames, int(math.ceil(ge * FRAMES_PER_SECOND)))
            if b > a:
                self.stretches.append((a, b, False))
                pos = b
        self.content_frames = content_frames

    def plan(self, n_windows: int) -> list[_Window]:
        """Up to ``n_windows`` windows from the front, taken out of the list. A window that cuts a stretch ends
        the plan: the rest of the stretch follows from where that window's text stops."""
        wins: list[_Window] = []
        while self.stretches and len(wins) < n_windows:
            a, b, alone = self.stretches.pop(0)
            cut = b - a > N_FRAMES
            pieces, used = [(a, min(b, a + N_FRAMES))], min(b - a, N_FRAMES)
            while not (alone or cut) and self.stretches and not self.stretches[0][2] and (
                used + self.stretches[0][1] - self.stretches[0][0] <= N_FRAMES
            ):
                a2, b2, _ = self.stretches.pop(0)
                pieces.append((a2, b2))
                used += b2 - a2
            wins.append(_Window(pieces, cut_from=b if cut else None))
            if cut:
                break
        return wins

    def put_back(self, win: _Window, seek: int, alone: bool) -> None:
        """What ``win`` left undecoded, from file frame ``seek``; ``alone``: its first stretch gets a window of its
        own."""
        rest = []
        for a, b in win.pieces:
            b = win.cut_from or b
            if b > seek:
                rest.append((max(a, seek), b, alone and not rest))
        self.stretches = sorted(self.stretches + rest)

    def frontier(self) -> int:
        """The first frame not yet decoded."""
        return self.stretches[0][0] if self.stretches else self.content_frames

    def peek(self, n_windows: int) -> list[_Window]:
        """The windows :meth:`plan` will give next if the ones taken now leave nothing undecoded."""
        kept = list(self.stretches)
        try:
            return self.plan(n_windows)
        finally:
            self.stretches = kept


def _encodes_ahead(model: Whisper, opts: TranscribeOptions) -> bool:
    """Whether :class:`_EncodeAhead` applies: fp32 or int8 on CPU (the token embedding stays fp32 in both), one
    window at a time. Greedy and beam search both gain: a greedy step barely slows on one thread, and a five-row step
    slows less than the encoder does (Whisper base on 2 cores of an AMD EPYC: 31.6 ms on two threads, 52 ms on one,
    unchanged with the encoder on the other thread). The beam-5 window then decodes on one thread while the next one
    encodes and on both after (5-minute benchmark file, 3 interleaved pairs on a loaded host: 36.1, 38.9, 48.6 s
    against 41.2, 53.1, 47.0 s; identical segments; side by side, 1.07x faster-whisper fp32 at beam 5 against 0.96x
    before, ``benchmarks/results/asr_speed_epyc.json``). int8 gained little until the encoder ahead took the waiting
    decoder's thread (:class:`_ThreadsOnDemand`): its encoder on one thread had kept the decoder waiting 5.6 s of a
    25.7 s run; now 3 interleaved pairs in one process, greedy 21.97, 22.82, 22.42 s against 26.33, 27.13, 25.65 s
    with both threads for each part, beam 5 29.88, 30.2, 30.06 s against 33.22, 33.47, 33.2 s, identical segments.
    bf16 (no such instructions on that EPYC) is not measured and keeps both threads for each part."""
    embedding = model.decoder.token_embedding.weight
    return embedding.device.type == "cpu" and embedding.dtype == torch.float32 and opts.batch_size == 1


class _EncodeAhead:
    """Encodes the windows planned next on a second thread while the current ones decode.

    A decoding step reads every decoder weight for a token or five (beam 5): it is bound by memory, and a second
    thread speeds it up less than it speeds up the encoder (Whisper base on 2 cores of an AMD EPYC, a greedy window
    of 87 tokens: 2.32 s on one thread, 2.10 s on two; a beam-5 step 52 ms and 31.6 ms; an encoder pass 3.1 s and
    1.6 s). The encoder is a few large products, bound by arithmetic, that share nothing with the decoding. So
    while a window decodes on one thread, the other threads encode the next window (a decoding of 2.3 s and 3
    encoder passes of 9.1 s, one thread each, took as long side by side as each alone), and the decoding takes the
    threads back when the encoding is done (:meth:`poll`). Up to ``depth`` windows are queued ahead, encoded in
    plan order by the one second thread. The plan is a guess made before the current windows are decoded: if one of
    them leaves speech undecoded the plan changes and the guesses from there on are thrown away. While the decoding
    thread waits in :meth:`take` it lends the encoding its thread too (:class:`_ThreadsOnDemand`). Used as a context
    manager: it leaves the caller's thread count as it found it."""

    def __init__(self, encode_windows: Callable, threads: int, depth: int = 1):
        self.encode_windows = encode_windows
        self.threads = threads  # the caller's; the second thread gets all but one
        self.depth = depth  # how many windows ahead (see transcribe: 2 for greedy decoding, 1 for beam search)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genlab-encode")
        self.jobs: list[tuple[list[_Window], Future]] = []  # (planned windows, their encoding), in plan order
        self.waiting = False  # the decoding thread is blocked on an encoding: the encoder may use every thread

    def __enter__(self) -> _EncodeAhead:
        return self

    def __exit__(self, *exc) -> None:
        # A guess in flight finishes, the ones not begun are cancelled: nothing is left running after the call.
        self.pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(self.threads)

    def start(self, plan: list[list[_Window]]) -> None:
        """Encode ahead the first ``depth`` batches of windows of ``plan`` (the ones planned next, in order):
        those already queued for the same plan are kept, the others queued behind them."""
        plan = plan[: self.depth]
        same = 0
        while same < min(len(plan), len(self.jobs)) and self.jobs[same][0] == plan[same]:
            same += 1
        self._drop(same)  # where the plan changed, the guesses from there on are thrown away
        for wins in plan[len(self.jobs) :]:
            self.jobs.append((wins, self.pool.submit(self._encode, wins, torch.is_grad_enabled())))
        if self.jobs:
            torch.set_num_threads(1)  # while the second thread encodes, one thread decodes

    def _encode(self, wins: list[_Window], grad: bool):
        torch.get_num_threads()  # a new thread takes torch's global count on first use: take it before setting
        torch.set_num_threads(self.encoder_threads())
        with torch.set_grad_enabled(grad), _ThreadsOnDemand(self):  # grad mode is per thread
            return self.encode_windows(wins)

    def encoder_threads(self) -> int:
        """The second thread's count: every thread while the caller waits for it in :meth:`take`, else all but one."""
        return self.threads if self.waiting else max(1, self.threads - 1)

    def _drop(self, keep: int = 0) -> None:
        """Throw the guesses after the first ``keep`` away: those not begun are cancelled, the one in flight is
        waited for (the file's mel is computed on demand, by one thread at a time), and any error they raised goes
        with them."""
        for _, job in self.jobs[keep:]:
            if not job.cancel():
                job.exception()
        self.jobs = self.jobs[:keep]
        if not self.jobs:
            torch.set_num_threads(self.threads)

    def poll(self) -> None:
        """Take the lent threads back once the encoding ahead is done (called between decoding steps: beam search
        and a window that falls back to sampling decode five rows a step, faster on two threads than on one)."""
        if self.jobs and all(job.done() for _, job in self.jobs) and torch.get_num_threads() < self.threads:
            torch.set_num_threads(self.threads)

    def take(self, wins: list[_Window]):
        """The features of ``wins`` if they are the next windows encoded ahead, else None (and every guess is
        thrown away). An error encoding a guess is raised here if the guess is used; a guess thrown away takes its
        error with it (its windows, if still to come, are encoded again and raise then). The caller gets its
        threads back once nothing is left in flight."""
        if not self.jobs:
            return None
        if self.jobs[0][0] != wins:
            self._drop()
            return None
        _, job = self.jobs.pop(0)
        self.waiting = True
        try:
            return job.result()
        finally:
            self.waiting = False
            if not self.jobs:
                torch.set_num_threads(self.threads)


class _ThreadsOnDemand(TorchFunctionMode):
    """In the encoding thread: before each torch call, take every thread while the decoding thread waits for this
    encoding, and all but one otherwise. (A thread count is per thread: the decoding thread's stays as it is.) Once
    a greedy window decodes faster than the next one encodes on one thread, the decoder's idle thread speeds up the
    encoder instead of waiting: Whisper base fp32, 5-minute benchmark file, 2 cores of an AMD EPYC, 3 interleaved
    pairs in one process, 24.67, 24.95, 25.48 s against 25.39, 25.73, 25.81 s, identical segments."""

    def __init__(self, ahead: _EncodeAhead):
        super().__init__()
        self.ahead = ahead
        self.current = torch.get_num_threads()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        want = self.ahead.encoder_threads()
        if want != self.current:
            torch.set_num_threads(want)
            self.current = want
        return func(*args, **(kwargs or {}))


def _overlaps(start: float, end: float, speech: list[tuple[float, float]]) -> bool:
    return any(min(end, e) - max(start, s) > 0 for s, e in speech)


def _split_segments(
    result: DecodingResult, tok: WhisperTokenizer, seek: int, segment_size: int, time_offset: float
) -> tuple[list[Segment], int]:
    """Cut a window's tokens at consecutive timestamp pairs into segments; return them and the next seek."""
    tokens = result.tokens
    tb = tok.timestamp_begin
    is_ts = [t >= tb for t in tokens]
    single_ending = len(tokens) >= 2 and is_ts[-2:] == [False, True]
    consecutive = [i + 1 for i in range(len(tokens) - 1) if is_ts[i] and is_ts[i + 1]]

    def seg(toks: list[int], start: float, end: float) -> Segment:
        return Segment(0, round(start, 3), round(end, 3), tok.decode(toks), [t for t in toks if t < tok.eot],
                       result.temperature, result.avg_logprob, result.compression_ratio, result.no_speech_prob)

    out = []
    if consecutive:
        slices = consecutive + ([len(tokens)] if single_ending else [])
        last = 0
        for cut in slices:
            piece = tokens[last:cut]
            start = time_offset + (piece[0] - tb) * TIME_PRECISION
            end = time_offset + (piece[-1] - tb) * TIME_PRECISION
            out.append(seg(piece, start, end))
            last = cut
        if single_ending:
            seek += segment_size
        else:
            seek += (tokens[last - 1] - tb) * 2  # one timestamp step is two mel frames
    else:
        duration = segment_size * HOP_LENGTH / SAMPLE_RATE
        stamps = [t for t in tokens if t >= tb]
        if stamps and stamps[-1] != tb:
            duration = (stamps[-1] - tb) * TIME_PRECISION
        out.append(seg(tokens, time_offset, time_offset + duration))
        seek += segment_size
    return out, seek


# ---------------------------------------------------------------------------------------------------------------
# Word timestamps: cross-attention of the alignment heads + dynamic time warping


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Monotonic alignment of text tokens (rows) to audio frames (columns) minimising the summed ``cost``
    (Sakoe & Chiba 1978); returns the (text_index, time_index) path, ties going to the diagonal step, then to the
    step down. (openai-whisper's loop accumulates in float32 and sends ties to the left; real attention costs have
    no ties, and the word times equal its own.) The accumulated cost is filled a row (a token) at a time: a cell
    is its cost plus the least of the cell to its left and of ``m``, the better of the two cells above it, so
    unrolling the left steps, ``acc[i, j] = S[j] + min over k <= j of (m[k] - S[k - 1])`` with ``S`` the row's
    running sum of costs: a cumulative sum and a cumulative minimum, a few numpy calls per token rather than per
    anti-diagonal (98 tokens x 1486 frames on an AMD EPYC: 5 ms against 24 ms). In float64 the regrouped sums
    differ from the cell loop's only in the last bits. The path is traced back from the accumulated costs
    themselves, so no table of moves is kept. ``cost`` holds no NaN."""
    N, M = cost.shape
    acc = np.full((N + 1, M + 1), np.inf)
    acc[0, 0] = 0
    for i in range(1, N + 1):
        above = np.minimum(acc[i - 1, :-1], acc[i - 1, 1:])  # (M,) the diagonal or the down step into column j
        running = np.cumsum(cost[i - 1])  # S[1..M]
        start = above - np.concatenate(([0.0], running[:-1]))  # m[k] - S[k - 1]
        acc[i, 1:] = running + np.minimum.accumulate(start)
    cell = acc.item  # the trace back reads a few cells each step: as Python floats, not the whole table converted
    i, j, path = N, M, []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        if i == 0 or j == 0:
            i, j = (i - 1, j) if j == 0 else (i, j - 1)
            continue
        diagonal, down, left = cell(i - 1, j - 1), cell(i - 1, j), cell(i, j - 1)
        if diagonal <= down and diagonal <= left:
            i, j = i - 1, j - 1
        elif down <= left:
            i -= 1
        else:
            j -= 1
    path = np.array(path[::-1])
    return path[:, 0], path[:, 1]


def _median_network(width: int) -> list[tuple[int, int, bool, bool]]:
    """The compare-exchanges of an odd-even transposition sort of ``width`` values that the middle one depends on,
    as (i, j, keep the min on wire i, keep the max on wire j): traced back from the middle wire, a comparator none
    of whose outputs is read later is dropped, and so is an output nobody reads (width 7: 30 of 42 min/max)."""
    pairs = [(i, i + 1) for p in range(width) for i in range(p % 2, width - 1, 2)]
    needed, kept = {width // 2}, []
    for i, j in reversed(pairs):
        if i in needed or j in needed:
            kept.append((i, j, i in needed, j in needed))
            needed |= {i, j}
    return kept[::-1]


def _median_filter(x: torch.Tensor, width: int, rows: int = 32) -> torch.Tensor:
    """Median over a sliding window of odd ``width`` along the last axis (reflected at the ends): the compare-exchanges
    of a sorting network that the middle value depends on, over ``width`` shifted copies, ``rows`` rows at a time so
    that the copies stay in cache. The same values as ``unfold().median()`` (8 heads x 98 tokens x 1486 frames, width
    7, one thread of an AMD EPYC: about 25 ms against 75 ms for the whole network over all rows at once)."""
    pad = width // 2
    if x.shape[-1] <= pad:
        return x
    n = x.shape[-1]
    flat = x.reshape(-1, n)
    out = torch.empty_like(flat)
    network = _median_network(width)
    for r in range(0, flat.shape[0], rows):
        y = F.pad(flat[r : r + rows], (pad, pad), mode="reflect")
        v = [y[:, i : i + n] for i in range(width)]
        for i, j, low, high in network:
            a, b = v[i], v[j]
            if low:
                v[i] = torch.minimum(a, b)
            if high:
                v[j] = torch.maximum(a, b)
        out[r : r + rows] = v[pad]
    return out.view_as(x)


@torch.no_grad()
def _token_times(
    model: Whisper, tok: WhisperTokenizer, text_tokens: list[int], features: torch.Tensor, num_frames: int,
    medfilt_width: int = 7, probs_out: list[float] | None = None, audio_kv=None,
) -> np.ndarray:
    """When each text token (and the final <|endoftext|>) starts, in seconds from the window start: the
    alignment heads' cross-attention, normalised and median-filtered, aligned to the frames by DTW."""
    sequence = [*tok.sot_sequence, tok.no_timestamps, *text_tokens, tok.eot]
    tokens = torch.tensor([sequence], device=features.device)
    # The logits only where word probabilities are asked for: the text positions (the token before each).
    first = len(tok.sot_sequence)
    positions = list(range(first, first + len(text_tokens))) if probs_out is not None else None
    logits, weights = model.cross_attention_weights(tokens, features, positions, audio_kv)  # n_layer x (1, H, T, S)
    if probs_out is not None:
        probs = logits[0, :, : tok.eot].float().softmax(dim=-1)  # (n_text, eot)
        probs_out.extend(probs[torch.arange(len(text_tokens)), torch.tensor(text_tokens)].tolist())
    heads = model.alignment_heads.nonzero().tolist()
    w = torch.stack([weights[layer][0, head] for layer, head in heads])  # (n_heads, T, 1500)
    # As openai-whisper's find_alignment: the softmax over the window's frames only (renormalising the slice of
    # one over all 1500 is the same), then each frame standardised over the tokens.
    w = w[:, :, : num_frames // 2].float()
    w = w / w.sum(dim=-1, keepdim=True)
    std, mean = torch.std_mean(w, dim=-2, keepdim=True, unbiased=False)
    w = (w - mean) / std.clamp_min(1e-9)
    w = _median_filter(w, medfilt_width)
    matrix = w.mean(dim=0)[len(tok.sot_sequence) : -1]  # (n_text + 1, frames): text tokens and the eot
    text_idx, time_idx = dtw(-matrix.double().cpu().numpy())
    jumps = np.pad(np.diff(text_idx), (1, 0), constant_values=1).astype(bool)
    return time_idx[jumps] * TIME_PRECISION


@torch.no_grad()
def add_word_timestamps(
    model: Whisper, tok: WhisperTokenizer, segments: list[Segment], features: torch.Tensor,
    opts: TranscribeOptions, num_frames: int, time_offset: float, medfilt_width: int = 7, audio_kv=None,
) -> None:
    """Give each segment's words start/end times (seconds on the file's clock) and probabilities."""
    text_tokens = [t for s in segments for t in s.tokens if t < tok.eot]
    if not text_tokens:
        return
    token_probs: list[float] = []
    jump_times = _token_times(model, tok, text_tokens, features, num_frames, medfilt_width, token_probs, audio_kv)

    words, word_tokens = tok.split_to_word_tokens(text_tokens + [tok.eot])
    if len(word_tokens) <= 1:
        return
    boundaries = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    starts, ends = jump_times[boundaries[:-1]], jump_times[boundaries[1:]]
    items = [
        [Word(w, round(time_offset + float(s), 3), round(time_offset + float(e), 3),
              float(np.mean(token_probs[i:j]))), int(j - i)]
        for w, s, e, i, j in zip(words[:-1], starts, ends, boundaries[:-1], boundaries[1:])
    ]
    _merge_punctuations(items, opts.prepend_punctuations, opts.append_punctuations)

    # Hand the words to their segments in token order.
    i = 0
    for seg in segments:
        n_text, count, here = len([t for t in seg.tokens if t < tok.eot]), 0, []
        while i < len(items) and count < n_text:
            here.append(items[i][0])
            count += items[i][1]
            i += 1
        seg.words = [w for w in here if w.word.strip()]
        if seg.words:  # segment bounds follow their words when the two roughly agree
            if abs(seg.words[0].start - seg.start) < 0.5:
                seg.start = min(seg.start, seg.words[0].start)
            if abs(seg.words[-1].end - seg.end) < 0.5:
                seg.end = max(seg.end, seg.words[-1].end)


def _merge_punctuations(items: list[list], prepended: str, appended: str) -> None:
    """Attach leading quotes/brackets to the next word and trailing punctuation to the previous one; items are
    [Word, n_tokens] pairs and the token counts move with the text."""
    for i in range(len(items) - 2, -1, -1):
        w, nxt = items[i][0], items[i + 1][0]
        if w.word.startswith(" ") and w.word.strip() and w.word.strip() in prepended:
            nxt.word, nxt.start = w.word + nxt.word, w.start
            items[i + 1][1] += items[i][1]
            w.word, items[i][1] = "", 0
    for i in range(1, len(items)):
        prev, w = items[i - 1][0], items[i][0]
        if prev.word and not prev.word.endswith(" ") and w.word and w.word in appended:
            prev.word += w.word
            items[i - 1][1] += items[i][1]
            w.word, items[i][1] = "", 0


class _Progress:
    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total / FRAMES_PER_SECOND, unit="s", unit_scale=False, file=sys.stderr,
                            bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]")

    def update(self, frame: int) -> None:
        if self.bar is not None:
            self.bar.n = frame / FRAMES_PER_SECOND
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
