"""Word timestamps: the cross-attention of the alignment heads, aligned to the audio frames by dynamic time
warping (as openai-whisper's ``timing.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ..data.audio import TIME_PRECISION
from .results import Segment, Word
from .tokenizer import WhisperTokenizer

if TYPE_CHECKING:
    from .model import Whisper
    from .transcribe import TranscribeOptions


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Monotonic alignment of text tokens (rows) to audio frames (columns) minimising the summed ``cost``
    (Sakoe & Chiba 1978); returns the (text_index, time_index) path, ties going to the diagonal step, then to the
    step down. (openai-whisper's loop accumulates in float32 and sends ties to the left; real attention costs have
    no ties, and the word times equal its own.) The accumulated cost is filled a row (a token) at a time: a cell
    is its cost plus the least of the cell to its left and of ``m``, the better of the two cells above it, so
    unrolling the left steps, ``acc[i, j] = S[j] + min over k <= j of (m[k] - S[k - 1])`` with ``S`` the row's
    running sum of costs: a cumulative sum and a cumulative minimum, a few numpy calls per token rather than per
    anti-diagonal. In float64 the regrouped sums
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


def median_filter(x: torch.Tensor, width: int, rows: int = 32) -> torch.Tensor:
    """Median over a sliding window of odd ``width`` along the last axis (reflected at the ends): the compare-exchanges
    of a sorting network that the middle value depends on, over ``width`` shifted copies, ``rows`` rows at a time so
    that the copies stay in cache. The same values as ``unfold().median()``."""
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
def token_times(
    model: Whisper, tok: WhisperTokenizer, text_tokens: list[int], features: torch.Tensor, num_frames: int,
    medfilt_width: int = 7, probs_out: list[float] | None = None, audio_kv=None, memo: dict | None = None,
) -> np.ndarray:
    """When each text token (and the final <|endoftext|>) starts, in seconds from the window start: the
    alignment heads' cross-attention, normalised and median-filtered, aligned to the frames by DTW.

    ``memo``: one window's alignments by text (times and the tokens' probabilities), for callers that may align
    the same text of the same window again (a packed window is aligned to cut it at its pieces, then to time its
    words: the same text unless a piece is to be decoded again). The result is the same with or without it."""
    if memo is not None:
        key = (tuple(text_tokens), num_frames, medfilt_width)
        if key not in memo:
            probs: list[float] = []
            memo[key] = (token_times(model, tok, text_tokens, features, num_frames, medfilt_width, probs, audio_kv),
                         probs)
        times, probs = memo[key]
        if probs_out is not None:
            probs_out.extend(probs)
        return times
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
    w = median_filter(w, medfilt_width)
    matrix = w.mean(dim=0)[len(tok.sot_sequence) : -1]  # (n_text + 1, frames): text tokens and the eot
    text_idx, time_idx = dtw(-matrix.double().cpu().numpy())
    jumps = np.pad(np.diff(text_idx), (1, 0), constant_values=1).astype(bool)
    return time_idx[jumps] * TIME_PRECISION


SENTENCE_END = ".。!！?？"


@torch.no_grad()
def add_word_timestamps(
    model: Whisper, tok: WhisperTokenizer, segments: list[Segment], features: torch.Tensor,
    opts: TranscribeOptions, num_frames: int, time_offset: float, medfilt_width: int = 7, audio_kv=None,
    last_speech: float = 0.0, memo: dict | None = None,
) -> float:
    """Give each segment's words start/end times (seconds on the file's clock) and probabilities, and set each
    segment's bounds from its words. ``last_speech``: where the speech before these segments ended (same clock);
    returns where theirs ends.

    DTW hands the frames of a pause to a word beside it, so that the first word after a pause (or a sentence's
    closing mark) can last seconds; as openai-whisper's ``add_word_timestamps``, such a word is cut to twice the
    median word duration (:func:`_shorten_long_words`), and the segment starts at its first word and ends at its
    last, unless that word is still far longer than the segment's own timestamps say."""
    text_tokens = [t for s in segments for t in s.tokens if t < tok.eot]
    if not text_tokens:
        return last_speech
    token_probs: list[float] = []
    jump_times = token_times(model, tok, text_tokens, features, num_frames, medfilt_width, token_probs, audio_kv,
                             memo=memo)
    words, word_tokens = tok.split_to_word_tokens(text_tokens + [tok.eot])
    if len(word_tokens) <= 1:
        return last_speech
    boundaries = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    starts, ends = jump_times[boundaries[:-1]], jump_times[boundaries[1:]]
    durations = (ends - starts)[ends > starts]
    median = min(0.7, float(np.median(durations))) if len(durations) else 0.0
    for i in range(1, len(starts)) if len(durations) else ():  # no word runs on over a sentence's end
        if ends[i] - starts[i] > 2 * median:
            if words[i] in SENTENCE_END:
                ends[i] = starts[i] + 2 * median
            elif words[i - 1] in SENTENCE_END:
                starts[i] = ends[i] - 2 * median
    items = [
        [Word(w, round(time_offset + float(s), 2), round(time_offset + float(e), 2),
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
        if seg.words:
            _shorten_long_words(seg, median, last_speech)
            last_speech = seg.end
    return last_speech


def _shorten_long_words(seg: Segment, median: float, last_speech: float) -> None:
    """openai-whisper's rules for the first word after a pause (at most twice the median word duration, taking
    time from a long second word too) and for a segment's bounds against its first and last word."""
    w, longest = seg.words, 2 * median
    if w[0].end - last_speech > 4 * median and (
        w[0].end - w[0].start > longest or (len(w) > 1 and w[1].end - w[0].start > 2 * longest)
    ):
        if len(w) > 1 and w[1].end - w[1].start > longest:
            w[0].end = w[1].start = max(w[1].end / 2, w[1].end - longest)
        w[0].start = max(0, w[0].end - longest)
    if seg.start < w[0].end and seg.start - 0.5 > w[0].start:  # the first word is still too long
        w[0].start = max(0, min(w[0].end - median, seg.start))
    else:
        seg.start = w[0].start
    if seg.end > w[-1].start and seg.end + 0.5 < w[-1].end:  # the last word is too long
        w[-1].end = max(w[-1].start + median, seg.end)
    else:
        seg.end = w[-1].end


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
