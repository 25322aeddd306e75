"""Frame-rate waveform generation (Vocos, Siuzdak 2023): ConvNeXt blocks over frames, then each frame's magnitude
and phase, and an inverse STFT.

Shared by the codec's decoder (frames of codes -> speech, :class:`genlab.codec.model.ISTFTDecoder`) and the TTS
vocoder (log-mel frames -> speech, :class:`genlab.tts.model.VocosVocoder`): the work is done at the frame rate, not
the sample rate, so it costs a fraction of a transposed-convolution generator's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConvNeXtBlock(nn.Module):
    """Depthwise conv (kernel 7) -> LayerNorm -> Linear (x3 wide) -> GELU -> Linear, scaled and added (Liu et al. 2022;
    Vocos's backbone block, its layer scale starting at ``scale``)."""

    def __init__(self, dim: int, scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, 3 * dim)
        self.fc2 = nn.Linear(3 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), scale))

    def forward(self, x: Tensor) -> Tensor:  # (B, C, F)
        h = self.norm(self.dwconv(x).transpose(1, 2))
        h = self.fc2(F.gelu(self.fc1(h))) * self.gamma
        return x + h.transpose(1, 2)


class ConvNeXtTrunk(nn.Module):
    """``(B, cin, F)`` -> ``(B, F, width)``: a convolution (kernel 7, or 1 for a wide input), LayerNorm, ConvNeXt
    blocks, LayerNorm (Vocos's backbone, its layer scale starting at ``1 / layers``)."""

    def __init__(self, cin: int, width: int, layers: int, stem_kernel: int = 7):
        super().__init__()
        self.stem = nn.Conv1d(cin, width, stem_kernel, padding=stem_kernel // 2)
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.blocks = nn.ModuleList([ConvNeXtBlock(width, 1 / layers) for _ in range(layers)])
        self.final_norm = nn.LayerNorm(width, eps=1e-6)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(self.stem(x).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return self.final_norm(x.transpose(1, 2))


class ISTFTGenerator(nn.Module):
    """Frames ``(B, cin, F)`` -> waveform ``(B, F * hop)``.

    A :class:`ConvNeXtTrunk` of ``width`` channels, then per frame a linear map to the log-magnitude and phase of an
    ``n_fft = 4 * hop`` spectrum; the inverse STFT with "same" padding (each frame's windowed inverse FFT overlap-added,
    divided by the summed squared window, trimmed by ``(n_fft - hop) / 2`` a side) gives exactly ``hop`` samples a
    frame, frame ``f`` centred on samples ``[f * hop, (f + 1) * hop)``.
    """

    def __init__(self, cin: int, width: int, layers: int, hop: int):
        super().__init__()
        self.hop = hop
        self.n_fft = 4 * hop
        self.trunk = ConvNeXtTrunk(cin, width, layers)
        self.head = nn.Linear(width, self.n_fft + 2)  # log-magnitudes and phases of n_fft / 2 + 1 bins
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    def forward(self, z: Tensor) -> Tensor:
        log_mag, phase = self.head(self.trunk(z)).float().chunk(2, dim=-1)  # (B, F, bins) each
        return self.istft(torch.polar(log_mag.exp().clamp(max=100.0), phase))

    def istft(self, spec: Tensor) -> Tensor:
        """``(B, F, n_fft / 2 + 1)`` complex -> ``(B, F * hop)``."""
        frames = torch.fft.irfft(spec, n=self.n_fft, dim=-1) * self.window  # (B, F, n_fft)
        n, pad = spec.shape[1], (self.n_fft - self.hop) // 2
        length = (n - 1) * self.hop + self.n_fft
        fold = dict(output_size=(1, length), kernel_size=(1, self.n_fft), stride=(1, self.hop))
        y = F.fold(frames.transpose(1, 2), **fold)[:, 0, 0]  # (B, length)
        envelope = F.fold(self.window.square().expand(1, n, -1).transpose(1, 2), **fold)[0, 0, 0]
        return (y / envelope.clamp_min(1e-11))[:, pad : length - pad]
