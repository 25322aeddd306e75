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
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / (half - freq_shift)
    angles = t.float()[:, None] * torch.exp(exponent)[None, :]  # (B, half)
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if dim % 2:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb
