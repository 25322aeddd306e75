"""Position and time embeddings shared across families."""

from __future__ import annotations

import math

import torch


def sinusoidal_embedding(
    t: torch.Tensor, dim: int, flip_sin_to_cos: bool = True, freq_shift: float = 0.0, max_period: float = 10000.0
) -> torch.Tensor:
    """Transformer sinusoids of a (possibly fractional) timestep, (B,) -> (B, dim) (Vaswani et al. 2017;
    as used for the diffusion step in Ho et al. 2020). ``flip_sin_to_cos`` puts cos first, ``freq_shift`` moves the
    frequency ladder — both exist because published checkpoints differ on them."""
    half = dim // 2
    # The step between log-frequencies first, then times the index: tensor2tensor's (and openai-whisper's) order.
    log_step = math.log(max_period) / (half - freq_shift)
    inv_freq = torch.exp(-log_step * torch.arange(half, dtype=torch.float32, device=t.device))  # (half,)
    angles = t.float()[:, None] * inv_freq[None, :]  # (B, half)
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if dim % 2:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb


def sinusoids(length: int, channels: int, max_period: float = 10000.0) -> torch.Tensor:
    """Fixed sinusoidal positions ``(length, channels)``, sin in the first half of the channels and cos in the
    second, frequencies from 1 down to ``1 / max_period`` (Whisper's audio positions)."""
    return sinusoidal_embedding(torch.arange(length), channels, flip_sin_to_cos=False, freq_shift=1.0,
                                max_period=max_period)
