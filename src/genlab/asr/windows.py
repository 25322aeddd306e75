"""The file as the encoder sees it: its log-mel computed a window at a time (:class:`FileLogMel`), and, with a
voice-activity gate, the utterances packed into 30 s windows (:class:`Todo` plans them, :class:`Window` maps a
window's frames back to the file's)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..data.audio import FRAMES_PER_SECOND, HOP_LENGTH, N_FFT, N_FRAMES, N_SAMPLES, _mel_tensor


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


LEAD_FRAMES = FRAMES_PER_SECOND  # audio kept before each utterance (the pause the decoder sees between them)


def speech_groups(speech: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """VAD regions joined across pauses shorter than 1 s: the utterances (seconds)."""
    out: list[tuple[float, float]] = []
    for s, e in speech:
        if out and s - out[-1][1] < 1.0:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


@dataclass
class Window:
    """Pieces ``(start, end)`` of the file's mel frames, laid end to end in one encoder window."""

    pieces: list[tuple[int, int]]
    cut_from: int | None = None  # the end of the utterance whose first 30 s is this window's only piece
    retry: bool = False  # a stretch that a packed window gave no text, decoded again on its own
    tail: bool = False  # only what a lone window left of its utterance after the last word it decoded

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


class Todo:
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
        self.tails: set[int] = set()  # first frames of the stretches put back after an utterance's last word

    def plan(self, n_windows: int) -> list[Window]:
        """Up to ``n_windows`` windows from the front, taken out of the list. A window that cuts a stretch ends
        the plan: the rest of the stretch follows from where that window's text stops."""
        wins: list[Window] = []
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
            tail = len(pieces) == 1 and not cut and a in self.tails
            wins.append(Window(pieces, cut_from=b if cut else None, retry=alone, tail=tail))
            if cut:
                break
        return wins

    def put_back(self, win: Window, seek: int, alone: bool, until: int | None = None) -> None:
        """What ``win`` left undecoded, from file frame ``seek`` (up to file frame ``until``, if given: the rest was
        decoded); ``alone``: its first stretch gets a window of its own."""
        rest = []
        for a, b in win.pieces:
            b = win.cut_from or b
            b = b if until is None else min(b, until)
            if b > max(a, seek):
                rest.append((max(a, seek), b, alone and not rest))
        if len(win.pieces) == 1 and win.cut_from is None and until is None and rest and rest[0][0] > win.pieces[0][0]:
            self.tails.add(rest[0][0])  # the utterance's words are decoded; what the gate heard after them is left
        self.stretches = sorted(self.stretches + rest)

    def frontier(self) -> int:
        """The first frame not yet decoded."""
        return self.stretches[0][0] if self.stretches else self.content_frames

    def peek(self, n_windows: int) -> list[Window]:
        """The windows :meth:`plan` will give next if the ones taken now leave nothing undecoded."""
        kept = list(self.stretches)
        try:
            return self.plan(n_windows)
        finally:
            self.stretches = kept
