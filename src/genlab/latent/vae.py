"""The KL-regularised autoencoder of latent diffusion (Rombach et al. 2022, "High-Resolution Image Synthesis with
Latent Diffusion Models", sec. 3.1 and appendix G; a variational autoencoder, Kingma & Welling 2014).

The encoder maps an image ``(B, 3, H, W)`` in [-1, 1] to the mean and log-variance of a diagonal Gaussian over a
latent grid ``(B, c, H/f, W/f)`` with ``f = 2^(stages - 1)``; the decoder maps a latent back to an image. A small KL
term towards N(0, I) keeps the latent space smooth without forcing it to be a prior (the "KL-reg" of sec. 3.1,
weighted ~1e-6). Latent diffusion then runs on ``scaling_factor * (z - shift_factor)``, scaled to about unit
variance (Stable Diffusion's 0.18215).

Module names follow diffusers' ``AutoencoderKL`` (``encoder.down_blocks.0.resnets.1.conv1``, ``quant_conv``, ...)
but for the mid-block attention, genlab's shared one (``attentions.0.attn.query`` for diffusers' ``to_q``); the
residual blocks, attention and resampling layers are the diffusion UNet's. ``latent/convert.py`` loads diffusers'
weights. The patch discriminator (Isola et al. 2017) for the optional adversarial phase is at the end.

Reading order: config, the encoder and decoder stages, the encoder, the decoder, the autoencoder, the discriminator.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..diffusion.model import Downsample, ResnetBlock, SpatialSelfAttention, Upsample

EPS = 1e-6  # GroupNorm epsilon everywhere in the autoencoder (as in diffusers' and the LDM code)


@dataclass
class VAEConfig:
    image_size: int = 64  # the training size; any size divisible by the downsampling factor encodes
    in_channels: int = 3
    out_channels: int = 3
    channels: tuple[int, ...] = (64, 128, 128)  # one stage per entry; all but the last halve H and W
    layers_per_block: int = 1  # residual blocks per encoder stage (decoder stages have one more)
    latent_channels: int = 4
    norm_groups: int = 32
    mid_attention: bool = True
    quant_conv: bool = True  # the 1x1 convs around the latent (diffusers' use_quant_conv / use_post_quant_conv)
    post_quant_conv: bool = True
    scaling_factor: float = 0.18215  # diffusion sees scaling_factor * (z - shift_factor): about unit variance
    shift_factor: float = 0.0

    @property
    def factor(self) -> int:
        """The downsampling factor f: a latent cell covers f x f pixels."""
        return 2 ** (len(self.channels) - 1)


class EncoderStage(nn.Module):
    """diffusers' ``DownEncoderBlock2D``: residual blocks, then a strided conv (padded right/bottom) unless last."""

    def __init__(self, in_ch: int, out_ch: int, layers: int, groups: int, downsample: bool):
        super().__init__()
        self.resnets = nn.ModuleList(ResnetBlock(in_ch if i == 0 else out_ch, out_ch, None, groups, EPS, 0.0)
                                     for i in range(layers))
        self.downsamplers = nn.ModuleList([Downsample(out_ch, padding=0)] if downsample else [])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in (*self.resnets, *self.downsamplers):
            x = layer(x)
        return x


class DecoderStage(nn.Module):
    """diffusers' ``UpDecoderBlock2D``: residual blocks, then a nearest-neighbour upsample and conv unless last."""

    def __init__(self, in_ch: int, out_ch: int, layers: int, groups: int, upsample: bool):
        super().__init__()
        self.resnets = nn.ModuleList(ResnetBlock(in_ch if i == 0 else out_ch, out_ch, None, groups, EPS, 0.0)
                                     for i in range(layers))
        self.upsamplers = nn.ModuleList([Upsample(out_ch)] if upsample else [])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in (*self.resnets, *self.upsamplers):
            x = layer(x)
        return x


class MidBlock(nn.Module):
    """Residual block, single-head self-attention over all positions (optional), residual block."""

    def __init__(self, ch: int, groups: int, attention: bool):
        super().__init__()
        self.resnets = nn.ModuleList(ResnetBlock(ch, ch, None, groups, EPS, 0.0) for _ in range(2))
        self.attentions = nn.ModuleList([SpatialSelfAttention(ch, ch, groups, EPS)] if attention else [])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resnets[0](x)
        for attn in self.attentions:
            x = attn(x)
        return self.resnets[1](x)


class Encoder(nn.Module):
    """Image ``(B, C_in, H, W)`` -> Gaussian parameters ``(B, 2c, H/f, W/f)`` (means, then log-variances)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chs, g, n = cfg.channels, cfg.norm_groups, len(cfg.channels)
        self.conv_in = nn.Conv2d(cfg.in_channels, chs[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(
            EncoderStage(chs[max(i - 1, 0)], ch, cfg.layers_per_block, g, downsample=i < n - 1)
            for i, ch in enumerate(chs))
        self.mid_block = MidBlock(chs[-1], g, cfg.mid_attention)
        self.conv_norm_out = nn.GroupNorm(g, chs[-1], eps=EPS)
        self.conv_out = nn.Conv2d(chs[-1], 2 * cfg.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for stage in self.down_blocks:
            h = stage(h)
        h = self.mid_block(h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class Decoder(nn.Module):
    """Latent ``(B, c, h, w)`` -> image ``(B, C_out, f h, f w)``."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chs, g, n = tuple(reversed(cfg.channels)), cfg.norm_groups, len(cfg.channels)
        self.conv_in = nn.Conv2d(cfg.latent_channels, chs[0], 3, padding=1)
        self.mid_block = MidBlock(chs[0], g, cfg.mid_attention)
        self.up_blocks = nn.ModuleList(
            DecoderStage(chs[max(i - 1, 0)], ch, cfg.layers_per_block + 1, g, upsample=i < n - 1)
            for i, ch in enumerate(chs))
        self.conv_norm_out = nn.GroupNorm(g, chs[-1], eps=EPS)
        self.conv_out = nn.Conv2d(chs[-1], cfg.out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid_block(self.conv_in(z))
        for stage in self.up_blocks:
            h = stage(h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class AutoencoderKL(nn.Module):
    """``encode(x) -> (mean, logvar)``, each ``(B, c, H/f, W/f)``; ``decode(z) -> x``; ``forward`` does both."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.latent_channels
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quant_conv = nn.Conv2d(2 * c, 2 * c, 1) if cfg.quant_conv else None
        self.post_quant_conv = nn.Conv2d(c, c, 1) if cfg.post_quant_conv else None

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior q(z | x) = N(mean, exp(logvar)); logvar clamped to [-30, 20] as in the LDM code."""
        moments = self.encoder(x)
        if self.quant_conv is not None:
            moments = self.quant_conv(moments)
        mean, logvar = moments.chunk(2, dim=1)  # (B, c, h, w) each
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        return self.decoder(z)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction, mean, logvar). ``noise`` ``(B, c, h, w)`` draws z = mean + std * noise (the
        reparameterisation of Kingma & Welling 2014, sec. 2.4); None decodes the mean."""
        mean, logvar = self.encode(x)
        z = mean if noise is None else mean + torch.exp(0.5 * logvar) * noise
        return self.decode(z), mean, logvar


class PatchDiscriminator(nn.Module):
    """A PatchGAN (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks"; the LDM
    autoencoder's ``NLayerDiscriminator``): strided 4x4 convs, one real/fake logit per overlapping patch,
    ``(B, 3, H, W) -> (B, 1, H', W')``. GroupNorm instead of BatchNorm, so a patch's score never depends on the rest
    of its batch (or on the rank's share of it under DDP)."""

    def __init__(self, in_channels: int = 3, width: int = 64, layers: int = 3, groups: int = 8):
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        ch = width
        for i in range(1, layers + 1):
            out = width * min(2**i, 8)
            stride = 2 if i < layers else 1
            blocks += [nn.Conv2d(ch, out, 4, stride=stride, padding=1, bias=False), nn.GroupNorm(groups, out),
                       nn.LeakyReLU(0.2)]
            ch = out
        blocks.append(nn.Conv2d(ch, 1, 4, stride=1, padding=1))
        self.layers = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
