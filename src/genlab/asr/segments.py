"""A decoded window's tokens cut into segments on the file's clock: at timestamp pairs, at the seams between
the utterances packed into one window (by the aligned time of each token), clipped to the speech the gate heard."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from ..data.audio import FRAMES_PER_SECOND, HOP_LENGTH, SAMPLE_RATE, TIME_PRECISION
from .decoding import DecodingResult
from .results import Segment, Word
from .timing import add_word_timestamps, token_times
from .tokenizer import WhisperTokenizer
from .windows import Window

if TYPE_CHECKING:
    from .model import Whisper
    from .transcribe import TranscribeOptions

# A packed utterance whose aligned text ends this long before its speech does lost its end. On the 5-minute
# benchmark file (benchmarks/asr_speed.py) the last word ends 0.0-0.8 s before the speech in complete utterances,
# and 2.1-2.4 s before it where int8 beam 5 jumped from "made still" to the next utterance.
EARLY_END_SECONDS = 1.5
WORD_SLACK_SECONDS = 0.3  # how far outside its words a segment's own timestamps may reach (hold_to_words)


def word_anomaly(w: Word) -> float:
    """How unlike heard speech a word is, as openai-whisper scores it for ``hallucination_silence_threshold``
    (transcribe.py): 1 for a probability below 0.15, plus a penalty for a span shorter than 0.133 s (15 per second
    short) or longer than 2 s (1 per second long)."""
    duration = w.end - w.start
    return float(w.probability < 0.15) + max(0.0, 0.133 - duration) * 15 + max(0.0, duration - 2.0)


def anomalous(s: Segment, punctuation: str) -> bool:
    """Whether the model doubts a whole segment: its first 8 words (punctuation marks aside) score about 1 each on
    openai-whisper's anomaly score. Without word times a segment is never anomalous.

    openai-whisper also calls a segment anomalous when those words score 3 together, whatever their number. Gated,
    that half flagged fast real speech: on dev-nl-fillets two segments of 10 and 6 words (short spans, a few
    doubted words, scores 4.6 and 3.4) were dropped whole, while every word invented over a sound on the dev files
    came in a segment of one or two words scoring about 1 each."""
    words = [w for w in s.words if w.word.strip() not in punctuation][:8]
    score = sum(word_anomaly(w) for w in words)
    return bool(words) and score + 0.01 >= len(words)


def says_nothing(s: Segment, punctuation: str) -> bool:
    """A segment left out of a gated transcript: no letter or digit in it ("." over a hum), or anomalous."""
    return not any(c.isalnum() for c in s.text) or anomalous(s, punctuation)


def overlaps(start: float, end: float, speech: list[tuple[float, float]]) -> bool:
    """Whether a span meets the speech: overlaps a region, or, for a span of no length (a word the alignment gave
    no frame of its own, such as French "'y" in "n'y a"), lies inside one."""
    if end <= start:
        return any(s <= start <= e for s, e in speech)
    return any(min(end, e) - max(start, s) > 0 for s, e in speech)


def keep_heard_words(s: Segment, speech: list[tuple[float, float]], tok: WhisperTokenizer) -> None:
    """Words timed where the gate heard no speech are not heard, and leave the segment's text too: the decoder goes
    on writing over a sound joined to the end of an utterance (music, a synth note)."""
    kept = [w for w in s.words if overlaps(w.start, w.end, speech)]
    if len(kept) < len(s.words):
        s.words, s.text = kept, "".join(w.word for w in kept)
        s.tokens = tok.encode(s.text) if kept else []


def split_segments(
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


def token_pieces(times: np.ndarray, win: Window) -> list[int]:
    """The piece of each token of a packed window, from its aligned start and end ``times`` ``(n + 1,)`` (seconds
    in the window): the piece in which its last frame lies.

    DTW gives the frames between two utterances (the pause, and whatever sound the gate let through there) to
    the first token of the next utterance, so that token's span starts in the piece before and ends in its own;
    by the middle of its span it was taken for text of that earlier piece, a piece that may hold only music
    or a beep."""
    last = np.maximum(times[:-1], times[1:] - 1 / FRAMES_PER_SECOND) * FRAMES_PER_SECOND  # (n,) window frames
    return [win.piece_at(f) for f in last]


def hold_to_words(segments: list[Segment], stamps: list[tuple[float, float]]) -> None:
    """Bounds for segments whose words were timed only for the gate's rules: Whisper's own timestamps ``stamps``,
    held to within WORD_SLACK_SECONDS outside their first and last word. Word timing sets a segment's bounds to
    its words (openai-whisper's rule, kept when words are asked for), and the alignment ends a segment's last word
    early: on three LibriVox utterances and jfk.flac (tests/asr/test_speed_paths.py) jfk's segment ended 0.63 s
    before its speech. Whisper's timestamps can stretch far over what follows instead: 2 s into a bass note the
    gate joined to an utterance (dev-ru-festvox, tests/asr/test_asr_longform.py)."""
    for s, (start, end) in zip(segments, stamps):
        if s.words:
            first, last = s.words[0].start, s.words[-1].end
            s.start = min(max(start, first - WORD_SLACK_SECONDS), first)
            s.end = max(min(end, last + WORD_SLACK_SECONDS), last)


def keep_in_pieces(segments: list[Segment], pieces: list[int], win: Window) -> None:
    """Clamp each segment of a packed window, and its words, to its piece ``pieces[i]`` (window seconds): a word
    aligned across a seam would otherwise reach back over the pause into the utterance before."""
    bounds = win.bounds()
    for s, k in zip(segments, pieces):
        a, b = bounds[k][0] / FRAMES_PER_SECOND, bounds[k][1] / FRAMES_PER_SECOND
        s.start, s.end = min(max(s.start, a), b), min(max(s.end, a), b)
        for w in s.words:
            w.start, w.end = min(max(w.start, a), b), min(max(w.end, a), b)


def split_at_pieces(
    model: Whisper, tok: WhisperTokenizer, result: DecodingResult, segments: list[Segment], features: torch.Tensor,
    win: Window, next_frame: int, audio_kv=None, memo: dict | None = None,
) -> tuple[list[Segment], int, bool, int]:
    """Re-cut a packed window's segments so that each lies in one piece (one utterance), by the time the
    alignment heads give each token (as for word timing). A segment's bounds become its piece's bounds where it
    starts or ends the piece (the voice-activity clip then pulls them in to the speech) and the aligned token
    times inside. Text cut off at the window's end is decoded again from the start of its piece.
    Returns (segments, next seek in window frames, whether the next window must hold one piece only, where what
    is to be decoded again ends in window frames: ``win.frames`` for everything after the seek)."""
    text = [t for t in result.tokens if t < tok.eot]
    if not text:
        return segments, next_frame, False, win.frames
    times = token_times(model, tok, text, features, win.frames, audio_kv=audio_kv, memo=memo)  # (n + 1,) seconds
    piece = np.maximum.accumulate(token_pieces(times, win))  # monotonic: utterances come in order
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

    def failing(first: int) -> int | None:
        return next((i for i in range(first, len(bounds)) if i not in heard
                     or bounds[i][1] / FRAMES_PER_SECOND - times[last_token[i] + 1] > EARLY_END_SECONDS), None)

    k = failing(0)
    cut_off = int(piece[pos]) if pos < len(text) else None
    if cut_off is not None:
        k = min(cut_off, k if k is not None else len(bounds))
    if k is not None and k not in heard and cut_off is None and failing(k + 1) is None:
        # The decoder skipped one utterance and heard every one after it to its end: only the skipped one is
        # decoded again, alone. Decoding the ones after it again as well cost a window on dev-en-allison-b.
        return [s for p, s in out if p != k], bounds[k][0], True, bounds[k][1]
    if k is not None:
        # A piece the packed window gave no text is decoded again on its own at once (see Todo.put_back), wherever
        # it lay in the window: packed again first, it stayed without text and the utterances after it were decoded
        # a third time (dev-fr-june: a window of 91 tokens gave nothing but the seek 0.01 s on).
        kept = [s for p, s in out if p < k]
        return kept, bounds[k][0], k == 0 or k not in heard, win.frames
    # Every piece was heard, each to within EARLY_END_SECONDS of its end, and only a lone first piece is ever cut:
    # the window is done, even where the decoder's last timestamp (an opening one before <|endoftext|>) falls
    # short of its end. Decoding the sliver after that timestamp again had Whisper repeat the whole utterance
    # into it.
    return [s for _, s in out], win.frames, False, win.frames


def window_segments(
    model: Whisper, tok: WhisperTokenizer, result: DecodingResult, features: torch.Tensor, win: Window,
    options: TranscribeOptions, speech: list[tuple[float, float]] | None, audio_kv=None, last_speech: float = 0.0,
) -> tuple[list[Segment], int, bool, int | None]:
    """A decoded window's segments on the file's clock, and what of the window is to be decoded again: (segments,
    next seek in file frames, whether the next window must hold one utterance only, the file frame where the part
    to decode again ends, or None for the rest of the window). ``last_speech``: the end of the last word decoded
    before this window (file seconds), for the word timing."""
    if options.no_speech_threshold is not None and result.no_speech_prob > options.no_speech_threshold and not (
        options.logprob_threshold is not None and result.avg_logprob > options.logprob_threshold
    ):
        return [], win.pieces[-1][1], False, None  # the model hears nobody: skip the window
    alone, until = False, win.frames
    memo: dict = {}  # this window's alignments: the word timing reuses split_at_pieces' where the text is the same
    # Segments, words and the next seek in window time, then mapped back to the file's clock.
    new, next_frame = split_segments(result, tok, 0, win.frames, 0.0)
    if len(win.pieces) > 1:
        # Whisper's own timestamps are too loose to tell which packed utterance a segment belongs to:
        # align the tokens to the audio and cut the segments where the utterance changes.
        new, next_frame, alone, until = split_at_pieces(model, tok, result, new, features, win, next_frame,
                                                        audio_kv, memo)
    # With a gate the words are timed whether or not they were asked for: the rules below drop words the gate did
    # not hear and segments the model doubts, and pull segment bounds in to their words, so the transcript does
    # not depend on --word-timestamps (the words leave the segments as they are emitted, if not asked for).
    if (options.word_timestamps or speech is not None) and new:
        pieces = [win.piece_at((s.start + s.end) / 2 * FRAMES_PER_SECOND) for s in new]
        stamps = [(s.start, s.end) for s in new]
        add_word_timestamps(model, tok, new, features, options, win.frames, 0.0, audio_kv=audio_kv,
                            last_speech=last_speech - win.pieces[0][0] / FRAMES_PER_SECOND, memo=memo)
        if not options.word_timestamps:
            hold_to_words(new, stamps)
        if len(win.pieces) > 1:
            keep_in_pieces(new, pieces, win)
        # Seek to the end of the last word rather than of a segment that may have been cut off. With a gate, only
        # where more than EARLY_END_SECONDS of the speech it heard is left (as for packed windows): the sliver after
        # an utterance's last word, decoded again, gave no text on every dev file where it happened (dev-fr-june:
        # 0.64 s, then 0.40 s and 0.02 s of it, at temperatures 0.2 and 0.4; dev-it and dev-ru: 0.36 s, 0.55 s).
        if len(win.pieces) == 1 and not (len(result.tokens) >= 2 and result.tokens[-1] >= tok.timestamp_begin
                                         and result.tokens[-2] < tok.timestamp_begin):
            last = [w.end for s in new for w in s.words]
            rest = win.bounds()[-1][1] / FRAMES_PER_SECOND - last[-1] if last else 0.0
            if last and last[-1] > 0 and (speech is None or win.cut_from is not None or rest > EARLY_END_SECONDS):
                next_frame = round(last[-1] * FRAMES_PER_SECOND)
    seek = max(round(win.to_file_frame(next_frame)), win.pieces[0][0] + 1)
    for s in new:
        s.start, s.end = win.to_file_time(s.start), win.to_file_time(s.end, end=True)
        for w in s.words:
            w.start, w.end = round(win.to_file_time(w.start), 3), round(win.to_file_time(w.end, end=True), 3)
    new = [s for s in new if s.end > s.start and s.text.strip()]
    if speech is not None:
        new = [s for s in new if overlaps(s.start, s.end, speech)]
        for s in new:
            # Whisper's timestamps often stretch over a pause; pull the bounds in to where speech was heard.
            inside = [(a, b) for a, b in speech if min(s.end, b) - max(s.start, a) > 0]
            s.start, s.end = max(s.start, inside[0][0]), min(s.end, inside[-1][1])
            keep_heard_words(s, speech, tok)
        # Over a sound the gate took for speech (a guitar chord, a sung synth note) the decoder writes a word or two
        # that the model itself doubts: on the dev files every such segment, and no segment of real speech, was
        # anomalous. A segment without a letter or digit ("." over a hum) says nothing either.
        punctuation = options.prepend_punctuations + options.append_punctuations
        new = [s for s in new if not says_nothing(s, punctuation)]
    return new, seek, alone, round(win.to_file_frame(until, end=True)) if until < win.frames else None
