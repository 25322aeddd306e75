"""The DDPM UNet (Ho et al. 2020, "Denoising Diffusion Probabilistic Models", Appendix B).

A UNet over images with a sinusoidal timestep embedding added inside every residual block and self-attention at
the low resolutions. Module names follow diffusers' ``UNet2DModel`` (``down_blocks.0.resnets.1.conv1`` ...) but for
the attention, genlab's shared one (``attentions.0.attn.query`` for diffusers' ``attentions.0.to_q``):
``interop/diffusers.py`` renames those keys and checks that a published config is one this file can express.

With ``cross_attention_dim > 0`` the UNet is text-conditioned as in latent diffusion (Rombach et al. 2022, "High-
Resolution Image Synthesis with Latent Diffusion Models", sec. 3.3): every attention layer becomes transformer blocks
(:class:`SpatialTransformer`, diffusers' ``Transformer2DModel``) that also cross-attend to a text's token states,
``forward(x, t, context)``. ``genlab.latent.convert`` loads diffusers' ``UNet2DConditionModel`` weights into it.

Reading order: config, residual block, attention, down/up-sampling, the three kinds of stage and how they are
assembled (shared with the video UNet), the UNet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.attention import Attention, BlockConfig, TransformerBlock
from ..nn.embeddings import sinusoidal_embedding


@dataclass
class UNetConfig:
    image_size: int = 32
    in_channels: int = 3
    out_channels: int = 3
    channels: tuple[int, ...] = (64, 128, 128)  # one stage per entry; each stage but the last halves H and W
    attention: tuple[bool, ...] = (False, True, True)  # self-attention in each stage (mirrored on the way up)
    layers_per_block: int = 2
    head_dim: int = 8  # channels per attention head (diffusers' attention_head_dim); 0 = one head per layer
    norm_groups: int = 32
    norm_eps: float = 1e-5
    dropout: float = 0.0
    mid_attention: bool = True
    flip_sin_to_cos: bool = True
    freq_shift: float = 0.0
    downsample_padding: int = 1  # 0 = pad right/bottom then a 'valid' strided conv (some published checkpoints)
    # Text conditioning: > 0 makes every attention layer a SpatialTransformer that cross-attends to token states of
    # this width (diffusers' UNet2DConditionModel); 0 = self-attention only, unconditional (UNet2DModel).
    cross_attention_dim: int = 0
    transformer_layers: int = 1  # transformer blocks per attention layer (cross-attention UNets)
    num_heads: int = 0  # > 0: this many heads in every attention layer, whatever its width; 0: from head_dim


def attention_heads(channels: int, cfg: UNetConfig) -> int:
    """Heads of an attention layer ``channels`` wide: ``num_heads`` if set, else ``channels / head_dim``."""
    return cfg.num_heads or (channels // cfg.head_dim if cfg.head_dim else 1)


class ResnetBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, the timestep embedding added in between, and a residual path. ``temb_ch=None``
    leaves the embedding out (an autoencoder's blocks, ``genlab.latent.vae``)."""

    def __init__(self, in_ch: int, out_ch: int, temb_ch: int | None, groups: int, eps: float, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_ch, eps=eps)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb_ch, out_ch) if temb_ch is not None else None
        self.norm2 = nn.GroupNorm(groups, out_ch, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time_emb_proj is not None:
            h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]  # (B, C, 1, 1) broadcast over H, W
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (x if self.conv_shortcut is None else self.conv_shortcut(x)) + h


class SpatialSelfAttention(nn.Module):
    """Multi-head self-attention (:class:`genlab.nn.attention.Attention`) over the H*W positions of a feature
    map, after a GroupNorm, with a residual connection."""

    def __init__(self, channels: int, head_dim: int, groups: int, eps: float):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, channels, eps=eps)
        self.attn = Attention(channels, channels // head_dim if head_dim else 1)

    def forward(self, x: torch.Tensor, context: None = None) -> torch.Tensor:
        """``context`` is always None here (the UNet checks it): every attention layer is called alike."""
        B, C, H, W = x.shape
        h = self.group_norm(x).view(B, C, H * W).transpose(1, 2)  # (B, HW, C)
        h = self.attn(h)  # (B, HW, C)
        return x + h.transpose(1, 2).reshape(B, C, H, W)


class SpatialTransformer(nn.Module):
    """Transformer blocks over the H*W positions of a feature map that read a text by cross-attention (Rombach et
    al. 2022, sec. 3.3; diffusers' ``Transformer2DModel``): GroupNorm, a linear projection in, pre-norm blocks of
    :mod:`genlab.nn.attention` (self-attention, cross-attention to ``context``, GEGLU MLP), a projection out, and a
    residual connection."""

    def __init__(self, channels: int, n_heads: int, context_dim: int, layers: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels)
        block = BlockConfig(dim=channels, n_head=n_heads, activation="geglu", qkv_bias=False, cross_dim=context_dim)
        self.transformer_blocks = nn.ModuleList(TransformerBlock(block, cross=True) for _ in range(layers))
        self.proj_out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        h = self.proj_in(self.norm(x).view(B, C, H * W).transpose(1, 2))  # (B, HW, C)
        for block in self.transformer_blocks:
            h = block(h, context)  # context: (B, L, context_dim)
        return x + self.proj_out(h).transpose(1, 2).reshape(B, C, H, W)


def attention_layer(channels: int, cfg: UNetConfig) -> nn.Module:
    """The attention layer of a stage: self-attention, or with ``cfg.cross_attention_dim`` a SpatialTransformer."""
    heads = attention_heads(channels, cfg)
    if cfg.cross_attention_dim:
        return SpatialTransformer(channels, heads, cfg.cross_attention_dim, cfg.transformer_layers, cfg.norm_groups)
    return SpatialSelfAttention(channels, channels // heads, cfg.norm_groups, cfg.norm_eps)


class Downsample(nn.Module):
    def __init__(self, channels: int, padding: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv.padding == (0, 0):
            x = F.pad(x, (0, 1, 0, 1))
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


AttentionFactory = Callable[[int], nn.Module]  # channels -> an attention layer ``layer(x, cond) -> x``


class DownStage(nn.Module):
    """``layers`` residual blocks (each followed by an attention layer when ``attention`` makes one), then a strided
    conv unless last. Every block's output is kept for the skip connections of the matching up stage. ``cond`` is
    what the attention layers read besides ``x``: a text's token states (or None) here, a clip's frame count in
    :mod:`genlab.video.model`."""

    def __init__(self, in_ch, out_ch, temb_ch, layers, attention: AttentionFactory | None, downsample, cfg):
        super().__init__()
        g, eps = cfg.norm_groups, cfg.norm_eps
        self.resnets = nn.ModuleList(
            [ResnetBlock(in_ch if i == 0 else out_ch, out_ch, temb_ch, g, eps, cfg.dropout) for i in range(layers)]
        )
        self.attentions = nn.ModuleList([attention(out_ch) for _ in range(layers)] if attention else [])
        self.downsamplers = nn.ModuleList([Downsample(out_ch, cfg.downsample_padding)] if downsample else [])

    def forward(self, x: torch.Tensor, temb: torch.Tensor, cond=None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        for i, resnet in enumerate(self.resnets):
            x = resnet(x, temb)
            if self.attentions:
                x = self.attentions[i](x, cond)
            skips.append(x)
        for down in self.downsamplers:
            x = down(x)
            skips.append(x)
        return x, skips


class MidStage(nn.Module):
    def __init__(self, ch: int, temb_ch: int, attention: AttentionFactory | None, cfg):
        super().__init__()
        g, eps = cfg.norm_groups, cfg.norm_eps
        self.resnets = nn.ModuleList([ResnetBlock(ch, ch, temb_ch, g, eps, cfg.dropout) for _ in range(2)])
        self.attentions = nn.ModuleList([attention(ch)] if attention else [])

    def forward(self, x: torch.Tensor, temb: torch.Tensor, cond=None) -> torch.Tensor:
        x = self.resnets[0](x, temb)
        for attn in self.attentions:
            x = attn(x, cond)
        return self.resnets[1](x, temb)


class UpStage(nn.Module):
    """``layers + 1`` residual blocks, each eating one skip connection (concatenated on channels), then a
    nearest-neighbour upsample and conv unless last."""

    def __init__(self, prev_ch, out_ch, skip_chs: list[int], temb_ch, attention: AttentionFactory | None, upsample,
                 cfg):
        super().__init__()
        g, eps = cfg.norm_groups, cfg.norm_eps
        self.resnets = nn.ModuleList(
            [ResnetBlock((prev_ch if i == 0 else out_ch) + skip, out_ch, temb_ch, g, eps, cfg.dropout)
             for i, skip in enumerate(skip_chs)]
        )
        self.attentions = nn.ModuleList([attention(out_ch) for _ in skip_chs] if attention else [])
        self.upsamplers = nn.ModuleList([Upsample(out_ch)] if upsample else [])

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor], temb: torch.Tensor, cond=None) -> torch.Tensor:
        for i, resnet in enumerate(self.resnets):
            x = resnet(torch.cat([x, skips.pop()], dim=1), temb)  # (B, C + C_skip, H, W) -> (B, C_out, H, W)
            if self.attentions:
                x = self.attentions[i](x, cond)
        for up in self.upsamplers:
            x = up(x)
        return x


def build_stages(cfg, attention: Callable[[int | None], AttentionFactory | None]):
    """The down stages, the middle and the up stages of a UNet with ``cfg.channels``, ``cfg.layers_per_block``;
    ``attention(stage)`` gives the attention of stage ``stage`` (None: the middle), mirrored on the way up.
    Returns ``(down_blocks, mid_block, up_blocks)``."""
    ch0, temb_ch, n = cfg.channels[0], cfg.channels[0] * 4, len(cfg.channels)
    down_blocks = nn.ModuleList()
    skip_chs = [ch0]  # channels of every tensor pushed on the skip stack, in order
    prev = ch0
    for i, ch in enumerate(cfg.channels):
        last = i == n - 1
        down_blocks.append(DownStage(prev, ch, temb_ch, cfg.layers_per_block, attention(i), not last, cfg))
        skip_chs += [ch] * cfg.layers_per_block + ([] if last else [ch])
        prev = ch
    mid_block = MidStage(prev, temb_ch, attention(None), cfg)
    up_blocks = nn.ModuleList()
    for i, ch in enumerate(reversed(cfg.channels)):
        stage_skips = [skip_chs.pop() for _ in range(cfg.layers_per_block + 1)]
        up_blocks.append(UpStage(prev, ch, stage_skips, temb_ch, attention(n - 1 - i), i < n - 1, cfg))
        prev = ch
    return down_blocks, mid_block, up_blocks


class TimestepMLP(nn.Module):
    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(in_dim, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(x)))


class UNet(nn.Module):
    """``forward(x (B, C, H, W), t (B,) or scalar, context (B, L, D) or None) -> (B, C_out, H, W)``: the predicted
    noise (or v). ``context``, the text's token states, is required exactly when ``cfg.cross_attention_dim`` > 0."""

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        if len(cfg.attention) != len(cfg.channels):
            raise ValueError("UNetConfig.attention needs one entry per stage in channels")
        self.cfg = cfg
        ch0, temb_ch = cfg.channels[0], cfg.channels[0] * 4
        self.conv_in = nn.Conv2d(cfg.in_channels, ch0, 3, padding=1)
        self.time_embedding = TimestepMLP(ch0, temb_ch)

        def attention(stage: int | None) -> AttentionFactory | None:
            wanted = cfg.mid_attention if stage is None else cfg.attention[stage]
            return partial(attention_layer, cfg=cfg) if wanted else None

        self.down_blocks, self.mid_block, self.up_blocks = build_stages(cfg, attention)
        self.conv_norm_out = nn.GroupNorm(cfg.norm_groups, ch0, eps=cfg.norm_eps)
        self.conv_out = nn.Conv2d(ch0, cfg.out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float, context: torch.Tensor | None = None) -> torch.Tensor:
        if (context is None) != (self.cfg.cross_attention_dim == 0):
            raise ValueError(f"this UNet {'needs' if self.cfg.cross_attention_dim else 'takes no'} context "
                             f"(cross_attention_dim={self.cfg.cross_attention_dim})")
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(x.shape[0])  # (B,)
        temb = sinusoidal_embedding(t, self.cfg.channels[0], self.cfg.flip_sin_to_cos, self.cfg.freq_shift)
        temb = self.time_embedding(temb.to(x.dtype))  # (B, 4 * C0)

        h = self.conv_in(x)
        skips = [h]
        for stage in self.down_blocks:
            h, stage_skips = stage(h, temb, context)
            skips += stage_skips
        h = self.mid_block(h, temb, context)
        for stage in self.up_blocks:
            h = stage(h, skips, temb, context)
        return self.conv_out(F.silu(self.conv_norm_out(h)))
