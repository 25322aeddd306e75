"""Long-form transcription: 30 s windows, timestamp seeking, temperature fallback, word timing.

The procedure of Radford et al. 2022, section 4.5: decode a window; if its text repeats itself (gzip
compression ratio above 2.4) or the model is unsure (average log-prob below -1) decode it again at a higher
temperature; if the model says there is no speech (no-speech probability above 0.6 with a low log-prob) skip
it; then move the window to the last complete timestamp and go on, conditioning on the accepted text.

An optional voice-activity gate (:mod:`genlab.asr.vad`) keeps the decoder away from stretches without speech, so
that silence, noise and music give no words: the utterances it hears are packed into windows
(:mod:`genlab.asr.windows`) and each window's text is cut back into utterances (:mod:`genlab.asr.segments`).
Word times: :mod:`genlab.asr.timing`. On CPU the next windows are encoded ahead on a second thread
(:mod:`genlab.asr.fast.ahead`).
"""

from __future__ import annotations

import bisect
import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..data.audio import FRAMES_PER_SECOND, N_FRAMES, SAMPLE_RATE, pad_or_trim
from .decoding import DecodingOptions, DecodingResult, decode, detect_language
from .model import AudioKV, Whisper
from .results import Segment, TranscriptionResult, Word  # noqa: F401  (the results of transcribe)
from .segments import window_segments
from .tokenizer import WhisperTokenizer
from .windows import LEAD_FRAMES, FileLogMel, Todo, Window, long_log_mel, speech_groups  # noqa: F401


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
    # two or more threads): see genlab.asr.fast.ahead. False runs everything on the calling thread, one step after
    # another.
    encode_ahead: bool = True
    prepend_punctuations: str = "\"'“¿([{-"
    append_punctuations: str = "\"'.。,，!！?？:：”)]}、"


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
    run = LongForm(model, tok, audio, decode_options or DecodingOptions(), options or TranscribeOptions(), speech,
                   encode or model.embed_audio, pad_with_silence)
    return run.transcribe(on_segment, progress)


class LongForm:
    """One file's transcription: the windows still to decode, the text decoded so far (the next window's prompt),
    and the segments waiting to be emitted in time order. :meth:`transcribe` is the loop."""

    def __init__(self, model, tok, audio, decode_options: DecodingOptions, options: TranscribeOptions, speech,
                 encode, pad_with_silence: bool):
        self.model, self.options, self.speech, self.encode = model, options, speech, encode
        self.duration = len(audio) / SAMPLE_RATE
        self.mel = FileLogMel(audio, model.config.n_mels)  # (n_mels, frames + 3000), computed a window at a time
        self.content_frames = self.mel.shape[-1] - N_FRAMES
        self.fill = self.mel.silence if pad_with_silence else None
        param = next(model.parameters())
        self.dtype, self.device = param.dtype, param.device
        self.language, self.language_probs = self._language(decode_options.language, tok)
        task = decode_options.task if model.is_multilingual else "transcribe"
        self.tok = tok.with_options(language=self.language if model.is_multilingual else None, task=task)
        self.base = replace(decode_options, language=self.language, task=task)
        self.all_tokens: list[int] = []
        if options.initial_prompt:
            self.all_tokens.extend(self.tok.encode(" " + options.initial_prompt.strip()))
        self.prompt_reset_since = 0
        self.word_ends: list[float] = []  # every word's end (file seconds, sorted): where speech before a window ended
        self.segments: list[Segment] = []
        self.waiting: list[Segment] = []  # decoded, but speech before them is not yet: emitted in time order
        # Without a gate, one 30 s window after another from ``seek``. With one, the utterances still to decode.
        self.todo = Todo(speech_groups(speech), self.content_frames) if speech is not None else None
        self.seek = 0

    def fit(self, x: torch.Tensor) -> torch.Tensor:
        """A window of exactly 30 s, filled after ``x`` (zeros, as openai-whisper does, or silence)."""
        out = pad_or_trim(x, N_FRAMES)
        if self.fill is not None and x.shape[-1] < N_FRAMES:
            out[:, x.shape[-1] :] = self.fill
        return out

    def encode_windows(self, wins: list[Window]) -> tuple[torch.Tensor, AudioKV]:
        """The windows' audio features and their cross-attention keys/values (shared by the decoding, its
        fallbacks and the alignment). Encoded ahead, both are made on the second thread: the keys/values are a
        window's largest products after the encoder's, and the decoding thread is the busier one."""
        features = torch.cat([self.encode(self.fit(w.gather(self.mel))[None].to(self.device, self.dtype))
                              for w in wins])
        return features, self.model.audio_kv(features)

    def _language(self, language: str | None, tok: WhisperTokenizer):
        """The language asked for, or the one detected where someone first speaks, and its probabilities."""
        if not self.model.is_multilingual:
            return "en", None
        if language is not None:
            return language, None
        start = int(self.speech[0][0] * FRAMES_PER_SECOND) if self.speech else 0
        window = self.fit(self.mel.frames(start, start + N_FRAMES))[None].to(self.device, self.dtype)
        langs, probs = detect_language(self.model, self.encode(window), tok)
        return langs[0], probs[0]

    def _encoder_ahead(self):
        """The encoding ahead on a second thread (genlab.asr.fast.ahead), where it applies; else None."""
        from .fast.ahead import EncodeAhead, encodes_ahead

        threads = torch.get_num_threads()
        if self.todo is None or not self.options.encode_ahead or threads < 2 or not encodes_ahead(self.model,
                                                                                               self.options):
            return None
        # Greedy decoding runs on one thread about as fast as on two, so the encoder is kept busy two windows ahead;
        # a beam step runs faster on two, so beam search takes the thread back as soon as the next window is encoded.
        return EncodeAhead(self.encode_windows, threads, depth=2 if (self.base.beam_size or 1) == 1 else 1)

    def _next_windows(self) -> list[Window]:
        """The windows to decode now; none when the file is done."""
        if self.todo is None:
            if self.seek >= self.content_frames:
                return []
            return [Window([(self.seek, self.seek + min(N_FRAMES, self.content_frames - self.seek))])]
        return self.todo.plan(self.options.batch_size)

    def _ahead_of_retry(self, wins: list[Window], ahead) -> tuple | None:
        """Where ``wins`` is a retry (an utterance a packed window skipped) and the packed window planned after it
        was encoded ahead, that window is decoded first, while the retry is encoded on the second thread; its text
        is accepted after the retry's, as if decoded after it. A packed window has no previous text, so it decodes
        the same either way, and the retry's encoder pass no longer holds up the decoding. Returns (window's list,
        its decoding, features, audio keys/values), or None. Greedy decoding only: it runs on one thread about as
        fast as on two, a beam step does not (on dev-fr-june, beam 5, the file took longer this way)."""
        if ahead is None or (self.base.beam_size or 1) > 1 or not (len(wins) == 1 and wins[0].retry):
            return None
        after = self.todo.peek(1)
        if not after or len(after[0].pieces) < 2 or after[0].cut_from is not None or not ahead.queued(after):
            return None
        features, audio_kv = ahead.take(after)
        ahead.first(wins)
        decoded = decode_with_fallback(self.model, features, self.tok, self._first_options(after), self.options,
                                       audio_kv, ahead.poll)
        return after, decoded, features, audio_kv

    def _first_options(self, wins: list[Window]) -> DecodingOptions:
        """The decoding options of these windows' first try: their prompt and their end rule.

        A window decoded alone is conditioned on the text before it, unless it packs several utterances (then the
        decoder tends to copy the prompt instead of hearing the first one) or it is a retry: a stretch that a
        packed window gave no text, decoded again on its own. Such a stretch is often a sound that the gate took
        for speech (music, a hum), and over it the decoder copied the prompt (a whole earlier utterance).
        Windows decoded together are not conditioned: the text before them is not decoded yet.

        The decoder tends to stop after the second-to-last of the utterances packed in a window: a packed window
        may not end before its timestamps reach the last second of the speech the gate heard (a window cut at 30 s
        out of a longer utterance seeks as usual). A lone window may end anywhere, as in openai-whisper and
        faster-whisper: a retry kept from ending there wrote words over the sound it held. (Where the last
        utterance of a packed window ends with a sound that the gate joined to it, the rule may still push words
        onto the sound; window_segments drops words timed outside the speech the gate heard.)"""
        alone = len(wins) == 1 and len(wins[0].pieces) == 1 and not wins[0].retry
        prompt = self.all_tokens[self.prompt_reset_since :] if alone else None
        end_not_before = tuple(self._reach(w) for w in wins)
        return replace(self.base, prompt=prompt or None, end_not_before=end_not_before)

    def _checks(self, wins: list[Window]) -> TranscribeOptions:
        """The options whose temperatures decode these windows. A tail (what the gate heard after the last word of
        an utterance a lone window decoded) is decoded at the first temperature only: where the model is unsure of
        it there is no speech left to rescue, and sampling hotter until a text passes the checks can only invent
        one. On dev-ru-festvox the tail after the last utterance (2.1 s of a voice-like bass note) failed the checks at
        every temperature, and the text of the six decodings was dropped all the same."""
        if wins and all(w.tail for w in wins):
            return replace(self.options, temperature=self.options.temperature[:1])
        return self.options

    def _reach(self, w: Window) -> float | None:
        """Where a packed window's timestamps must reach before it may end (window seconds), or None."""
        if self.todo is None or w.cut_from is not None or len(w.pieces) == 1:
            return None
        return (w.bounds()[-1][1] - LEAD_FRAMES) / FRAMES_PER_SECOND

    def _accept(self, wins: list[Window], decoded, features: torch.Tensor, audio_kv) -> None:
        """Each window's segments join the waiting ones; the undecoded rest goes back to the plan."""
        for i, (win, (result, accepted)) in enumerate(zip(wins, decoded)):
            # The speech before this window: a retry lies before utterances already decoded (Todo.put_back).
            before = bisect.bisect_left(self.word_ends, win.pieces[-1][1] / FRAMES_PER_SECOND)
            new, self.seek, alone, until = window_segments(
                self.model, self.tok, result, features[i : i + 1], win, self.options, self.speech, _rows(audio_kv, i),
                self.word_ends[before - 1] if before else 0.0,
            )
            for w in (w for s in new for w in s.words):
                bisect.insort(self.word_ends, w.end)
            if self.todo is not None:
                self.todo.put_back(win, self.seek, alone, until)
            for s in new:
                s.end = round(min(s.end, self.duration), 3)
                s.start = round(min(s.start, s.end), 3)
                self.all_tokens.extend(s.tokens)
            self.waiting.extend(new)
            # Do not condition the next window on text that was sampled hot or that failed the checks.
            if not self.options.condition_on_previous_text or result.temperature > 0.5 or not accepted:
                self.prompt_reset_since = len(self.all_tokens)

    def _ready(self) -> list[Segment]:
        """The waiting segments that no speech still to decode comes before, in time order."""
        frontier = min(self.seek, self.content_frames) if self.todo is None else self.todo.frontier()
        if self.todo is not None:
            self.waiting.sort(key=lambda s: s.start)  # windows decoded together may end before earlier speech is done
        ready = []
        while self.waiting and (self.todo is None or self.waiting[0].start < frontier / FRAMES_PER_SECOND):
            ready.append(self.waiting.pop(0))
        self.frontier = frontier
        return ready

    def transcribe(self, on_segment, progress: bool) -> TranscriptionResult:
        def emit(s: Segment) -> None:
            s.id = len(self.segments)
            if not self.options.word_timestamps:
                s.words = []  # timed for the gate's rules (segments.window_segments), not asked for
            self.segments.append(s)
            if on_segment is not None:
                on_segment(s)

        bar = _Progress(self.content_frames, enabled=progress)
        ahead = self._encoder_ahead()
        with ahead or contextlib.nullcontext():
            while wins := self._next_windows():
                held = self._ahead_of_retry(wins, ahead)
                encoded = ahead.take(wins) if ahead is not None else None
                features, audio_kv = encoded if encoded is not None else self.encode_windows(wins)
                if ahead is not None and all(w.cut_from is None for w in wins):
                    # Where a window ends inside an utterance the next starts where its text stops: nothing to guess.
                    skip = 1 if held is not None else 0  # decoded already
                    ahead.start([[w] for w in self.todo.peek(skip + ahead.depth)[skip:]])  # one window at a time
                poll = ahead.poll if ahead is not None else None
                decoded = decode_with_fallback(self.model, features, self.tok, self._first_options(wins),
                                               self._checks(wins), audio_kv, poll)
                if poll is not None:
                    poll()
                self._accept(wins, decoded, features, audio_kv)
                if held is not None and self.todo.peek(1) == held[0]:  # else it is planned, and decoded, again
                    self._accept(self.todo.plan(1), *held[1:])
                for s in self._ready():
                    emit(s)
                bar.update(self.frontier)
        for s in self.waiting:
            emit(s)
        bar.update(self.content_frames)  # the rest had no speech (or was skipped): the file is done
        bar.close()
        text = "".join(self.tok.decode(s.tokens) for s in self.segments).strip()
        return TranscriptionResult(text, self.segments, self.language, self.duration, self.language_probs)


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
