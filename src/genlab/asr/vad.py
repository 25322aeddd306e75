"""A voice-activity gate: Silero VAD v5 (Silero Team 2024, MIT) as a genlab module, loaded from the
``silero_vad_16k.safetensors`` that the ``silero-vad`` pip package ships.

Per 32 ms chunk (512 samples at 16 kHz, plus the 64 samples before it as context): a learned STFT (a conv with
a 256-sample kernel, hop 128) gives 129 magnitudes per frame, four 1-D convs shrink 4 frames to one 128-d
vector, an LSTM carries state across chunks, and a 1x1 conv + sigmoid gives P(speech).
:func:`speech_regions` turns those probabilities into (start, end) seconds with hysteresis and padding, as
silero's ``get_speech_timestamps`` does.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GenlabError

CHUNK = 512  # samples per decision at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous chunk prepended to each


class SileroVAD(nn.Module):
    def __init__(self):
        super().__init__()
        self.stft_conv = nn.Conv1d(1, 258, 256, stride=128, bias=False)  # 129 real + 129 imaginary filters
        self.conv1 = nn.Conv1d(129, 128, 3, padding=1)
        self.conv2 = nn.Conv1d(128, 64, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(64, 64, 3, stride=2, padding=1)
        self.conv4 = nn.Conv1d(64, 128, 3, padding=1)
        self.lstm_cell = nn.LSTMCell(128, 128)
        self.final_conv = nn.Conv1d(128, 1, 1)

    def features(self, chunks: torch.Tensor) -> torch.Tensor:
        """``(N, 576)`` context+chunk samples -> ``(N, 128)``; chunks are independent here (batched)."""
        x = F.pad(chunks[:, None], (0, CONTEXT), mode="reflect")  # (N, 1, 640)
        spec = self.stft_conv(x)  # (N, 258, 4)
        mag = torch.sqrt(spec[:, :129] ** 2 + spec[:, 129:] ** 2)  # (N, 129, 4)
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            mag = F.relu(conv(mag))
        return mag[:, :, 0]  # (N, 128) after the two stride-2 convs leave one frame

    @torch.no_grad()
    def forward(self, audio: torch.Tensor, state: VADState | None = None) -> tuple[torch.Tensor, VADState]:
        """``(n_samples,)`` 16 kHz audio -> ``(n_samples // 512,)`` speech probabilities, one per 32 ms, and the
        state to continue from: pass it back with the next block of a long file (blocks whole chunks long) and
        the probabilities are the same as for the whole file in one call."""
        state = state or VADState.initial()
        n = len(audio) // CHUNK
        if n == 0:
            return torch.zeros(0), state
        x = torch.cat([state.context, audio[: n * CHUNK].float()])  # each chunk sees the 64 samples before it
        idx = torch.arange(n)[:, None] * CHUNK + torch.arange(CHUNK + CONTEXT)[None]  # (n, 576)
        feats = self.features(x[idx])  # (n, 128): the convs see each chunk alone, so batch them
        # Only the LSTM is sequential: run it over all chunks in one call (the op nn.LSTM runs, on the cell's
        # weights) instead of one Python-level cell step per 32 ms.
        cell = self.lstm_cell
        weights = [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
        h, h_n, c_n = torch.lstm(feats[:, None], (state.h, state.c), weights, True, 1, 0.0, False, False, False)
        probs = torch.sigmoid(self.final_conv(F.relu(h[:, 0])[:, :, None]))[:, 0, 0]  # (n,)
        return probs, VADState(h_n, c_n, x[-CONTEXT:].clone())


@dataclass
class VADState:
    """What carries from one block of audio to the next: the LSTM's (h, c) and the last 64 samples."""

    h: torch.Tensor  # (1, 1, 128)
    c: torch.Tensor  # (1, 1, 128)
    context: torch.Tensor  # (64,)

    @staticmethod
    def initial() -> VADState:
        return VADState(torch.zeros(1, 1, 128), torch.zeros(1, 1, 128), torch.zeros(CONTEXT))  # silence before


_MODEL: SileroVAD | None = None


def weights_path() -> Path:
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise GenlabError("the voice-activity gate needs the silero-vad package (pip install silero-vad), or --no-vad")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "silero_vad_16k.safetensors"


def load_vad() -> SileroVAD:
    global _MODEL
    if _MODEL is None:
        from ..checkpoint import load_tensors, load_weights_strict

        path = weights_path()
        model = SileroVAD()
        load_weights_strict(model, load_tensors(path), path)
        _MODEL = model.eval()
    return _MODEL


def speech_regions(
    audio: np.ndarray,
    threshold: float = 0.5,
    min_speech: float = 0.25,
    min_silence: float = 0.5,
    pad: float = 0.2,
    block_seconds: float = 30.0,
) -> list[tuple[float, float]]:
    """Where someone speaks, as (start, end) seconds. Speech starts above ``threshold`` and ends when the
    probability stays below ``threshold - 0.15`` for ``min_silence``; regions are padded by ``pad``."""
    model = load_vad()
    sr = 16000
    probs, state = [], None
    # Long files in blocks (whole chunks; the LSTM state carries over), so the batched conv features of a block
    # stay a few MB: a 2-hour file in one call would need about 1 GB of temporaries.
    step = int(block_seconds * sr) // CHUNK * CHUNK
    # On every thread: the convs are batched over a block's chunks and the LSTM is one call (306 s of speech, 2 cores
    # of an AMD EPYC: 0.50 s against 0.77 s on one thread, which suited an LSTM stepped cell by cell from Python).
    for i in range(0, len(audio), step):
        p, state = model(torch.from_numpy(np.ascontiguousarray(audio[i : i + step])), state)
        probs.append(p)
    p = torch.cat(probs).numpy() if probs else np.zeros(0)
    dt = CHUNK / sr
    regions, start, below = [], None, 0
    for i, v in enumerate(p):
        if start is None:
            if v >= threshold:
                start, below = i, 0
        elif v < threshold - 0.15:
            below += 1
            if below * dt >= min_silence:
                regions.append((start, i - below + 1))
                start = None
        else:
            below = 0
    if start is not None:
        regions.append((start, len(p)))
    out: list[tuple[float, float]] = []
    duration = len(audio) / sr
    for s, e in regions:
        if (e - s) * dt < min_speech:
            continue
        a, b = max(0.0, s * dt - pad), min(duration, e * dt + pad)
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out
