"""The space-time factorised UNet of Ho et al. 2022, "Video Diffusion Models" (sec. 3 and Fig. 1).

A clip ``(B, C, F, H, W)`` is denoised as one sample. The UNet is the image UNet of pixel diffusion applied to every
frame — 2-D convolutions (Ho et al.'s space-only ``1x3x3`` 3-D convolutions), GroupNorm per frame — with two kinds
of attention in each attention stage:

- spatial self-attention among the ``H * W`` positions of one frame, as in the image UNet;
- temporal self-attention among the ``F`` frames at one spatial position, with relative frame positions (Ho et
  al. use relative position embeddings; here rotary positions, Su et al. 2021, which are relative too).

Everything but temporal attention sees one frame at a time, so ``temporal=False`` is the frame-by-frame baseline:
the same UNet with nothing that mixes frames (every frame denoised as an independent image). Temporal attention
starts as the identity (its output projection is zero-initialised), so a temporal model starts where the
frame-by-frame one does.

Frames are folded into the batch, ``(B, C, F, H, W) -> (B * F, C, H, W)``, and the image UNet's stages (residual
blocks, down- and upsamplers, assembled by :func:`genlab.diffusion.model.build_stages`) and its spatial attention
are reused from :mod:`genlab.diffusion.model`; the attention is genlab's one :class:`~genlab.nn.attention.Attention`.

Reading order: config, temporal attention, the space-time attention block, the UNet.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..diffusion.model import SpatialSelfAttention, TimestepMLP, build_stages
from ..nn.attention import Attention, RotaryEmbedding
from ..nn.embeddings import sinusoidal_embedding


@dataclass
class VideoUNetConfig:
    frames: int = 16  # clip length it is trained on; shorter clips sample too (their frame offsets were all seen)
    fps: float = 8.0  # playback rate of the clips it makes
    image_size: int = 32
    in_channels: int = 3
    out_channels: int = 3
    channels: tuple[int, ...] = (32, 64, 64)  # one stage per entry; each stage but the last halves H and W
    attention: tuple[bool, ...] = (False, True, True)  # spatial self-attention in each stage (mirrored going up)
    temporal_attention: tuple[bool, ...] = (True, True, True)  # temporal self-attention in each stage
    temporal: bool = True  # False: the frame-by-frame baseline (no temporal attention anywhere)
    layers_per_block: int = 1
    head_dim: int = 32  # channels per attention head
    norm_groups: int = 8
    norm_eps: float = 1e-5
    dropout: float = 0.0
    downsample_padding: int = 1  # as UNetConfig's (the image UNet's stages read it)


class TemporalAttention(nn.Module):
    """Self-attention over the ``F`` frames at each spatial position, with rotary (relative) frame positions;
    pre-GroupNorm (statistics per frame, so nothing but this attention mixes frames), residual, and a zero-initialised
    output projection so that it starts as the identity."""

    def __init__(self, channels: int, head_dim: int, groups: int, eps: float):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=eps)
        self.attn = Attention(channels, max(1, channels // head_dim))
        self.rope = RotaryEmbedding(self.attn.head_dim)
        nn.init.zeros_(self.attn.out.weight)
        nn.init.zeros_(self.attn.out.bias)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        BF, C, H, W = x.shape
        B = BF // frames
        h = self.norm(x).view(B, frames, C, H * W).permute(0, 3, 1, 2)  # (B, HW, F, C)
        h = self.attn(h.reshape(B * H * W, frames, C), rope=self.rope)  # (B*HW, F, C)
        h = h.view(B, H * W, frames, C).permute(0, 2, 3, 1)  # (B, F, C, HW)
        return x + h.reshape(BF, C, H, W)


class SpaceTimeAttention(nn.Module):
    """Spatial then (if any) temporal attention: Ho et al.'s factorised space-time attention block. The spatial one
    is the image UNet's :class:`~genlab.diffusion.model.SpatialSelfAttention`, each frame an image of the batch."""

    def __init__(self, channels: int, spatial: bool, temporal: bool, cfg: VideoUNetConfig):
        super().__init__()
        args = (channels, cfg.head_dim, cfg.norm_groups, cfg.norm_eps)
        self.spatial = SpatialSelfAttention(*args) if spatial else None
        self.temporal = TemporalAttention(*args) if temporal else None

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        if self.spatial is not None:
            x = self.spatial(x)
        if self.temporal is not None:
            x = self.temporal(x, frames)
        return x


def _attention(stage: int | None, cfg: VideoUNetConfig):
    """The attention of a stage (``None``: the middle) for :func:`~genlab.diffusion.model.build_stages`, or None
    when the stage has neither kind."""
    spatial = True if stage is None else cfg.attention[stage]
    temporal = cfg.temporal and (True if stage is None else cfg.temporal_attention[stage])
    return partial(SpaceTimeAttention, spatial=spatial, temporal=temporal, cfg=cfg) if (spatial or temporal) else None


class VideoUNet(nn.Module):
    """``forward(x (B, C, F, H, W), t (B,) or scalar) -> (B, C_out, F, H, W)``: the predicted noise (or v) of
    the whole clip at one noise level (every frame of a clip shares ``t``)."""

    def __init__(self, cfg: VideoUNetConfig):
        super().__init__()
        n = len(cfg.channels)
        if len(cfg.attention) != n or len(cfg.temporal_attention) != n:
            raise ValueError("VideoUNetConfig.attention and temporal_attention need one entry per stage in channels")
        self.cfg = cfg
        ch0, temb_ch = cfg.channels[0], cfg.channels[0] * 4
        self.conv_in = nn.Conv2d(cfg.in_channels, ch0, 3, padding=1)
        self.time_embedding = TimestepMLP(ch0, temb_ch)

        self.down_blocks, self.mid_block, self.up_blocks = build_stages(cfg, partial(_attention, cfg=cfg))
        self.conv_norm_out = nn.GroupNorm(cfg.norm_groups, ch0, eps=cfg.norm_eps)
        self.conv_out = nn.Conv2d(ch0, cfg.out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        B, C, frames, H, W = x.shape
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(B)  # (B,)
        temb = self.time_embedding(sinusoidal_embedding(t, self.cfg.channels[0]).to(x.dtype))  # (B, 4 C0)
        temb = temb.repeat_interleave(frames, dim=0)  # (B*F, 4 C0): every frame of a clip at the clip's t

        h = self.conv_in(x.transpose(1, 2).reshape(B * frames, C, H, W))  # (B*F, C0, H, W)
        skips = [h]
        for stage in self.down_blocks:
            h, stage_skips = stage(h, temb, frames)
            skips += stage_skips
        h = self.mid_block(h, temb, frames)
        for stage in self.up_blocks:
            h = stage(h, skips, temb, frames)
        h = self.conv_out(F.silu(self.conv_norm_out(h)))  # (B*F, C_out, H, W)
        return h.view(B, frames, -1, H, W).transpose(1, 2)  # (B, C_out, F, H, W)
