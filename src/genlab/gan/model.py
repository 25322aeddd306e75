"""GAN networks: StyleGAN2's generator and residual discriminator, and the DCGAN baseline.

- StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN"), the configuration its
  ADA successor trains (Karras et al. 2020a): a *mapping network* turns a normalised latent ``z`` (and a class
  label) into an intermediate latent ``w``; the *synthesis network* starts from a learned constant 4x4 input and
  doubles the resolution block by block, each convolution *modulated* by an affine map of ``w`` and *demodulated*
  (sec. 2.2), with per-pixel *noise* of learned strength added after it; every block adds its ``toRGB`` output to
  the upsampled image of the block before (the "skip" generator, sec. 4.1). Every layer uses the *equalised
  learning rate* of Karras et al. 2018 (sec. 4.1): weights drawn from N(0, 1) and scaled by He's constant at run
  time, the mapping network's by a further ``lr_mult`` = 0.01.
- The residual discriminator (StyleGAN2 sec. 4.1) with a *minibatch standard deviation* channel before its last
  convolution (Karras et al. 2018, sec. 3) and, when conditional, a *projection* head (Miyato & Koyama 2018): the
  output is the inner product of the features with an embedding of the label.
- DCGAN (Radford et al. 2016): transposed convolutions with batch norm and ReLU up, strided convolutions with
  batch norm and leaky ReLU down, the baseline the chapter's first GAN pictures look like.

Parameter and buffer names follow NVlabs' ``training/networks.py`` (``mapping.fc0``, ``synthesis.b8.conv0.affine``,
``b4.mbstd`` ...), so a state dict moves between the two unchanged; ``tests/gan/test_stylegan2_parity.py``
compares outputs with NVlabs' code when a checkout of it is available.

Reading order: config, equalised layers, mapping, synthesis, generator, discriminator, DCGAN, the pair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .augment import AugmentPipe
from .ops import (
    conv2d_resample,
    leaky_relu_gain,
    modulated_conv2d,
    normalize_2nd_moment,
    setup_filter,
    upsample2d,
)


@dataclass
class GANConfig:
    """Both networks of one GAN; stored in every checkpoint. Channels are listed per resolution 4, 8, ..., size."""

    arch: Literal["stylegan2", "dcgan"] = "stylegan2"
    image_size: int = 32
    image_channels: int = 3
    num_classes: int = 0  # > 0: class-conditional (label into the mapping network, projection discriminator)
    z_dim: int = 128
    w_dim: int = 128  # StyleGAN2 only; DCGAN's "w" is z itself
    mapping_layers: int = 2  # StyleGAN2-ADA uses 2 for small data sets (its "auto" and "cifar" configs), 8 for FFHQ
    mapping_lr_mult: float = 0.01
    w_avg_beta: float = 0.995  # decay of the running mean of w, the centre of the truncation trick
    g_channels: tuple[int, ...] = (256, 256, 128, 64)  # generator channels at 4, 8, 16, 32 px
    d_channels: tuple[int, ...] = (256, 256, 128, 64)  # discriminator channels at 4, 8, 16, 32 px
    use_noise: bool = True
    mbstd_group: int = 4  # minibatch-stddev group size; 0 disables the layer
    mbstd_channels: int = 1
    cmap_dim: int = 0  # projection embedding size of a conditional discriminator; 0 = d_channels[0]

    @property
    def resolutions(self) -> list[int]:
        return [2**i for i in range(2, int(math.log2(self.image_size)) + 1)]

    def validate(self) -> None:
        size = self.image_size
        if size < 8 or size & (size - 1):
            raise ValueError(f"image_size must be a power of two >= 8, got {size}")
        for name in ("g_channels", "d_channels"):
            if len(getattr(self, name)) != len(self.resolutions):
                raise ValueError(f"{name} needs one entry per resolution {self.resolutions}, got {getattr(self, name)}")
        if self.arch == "dcgan" and self.num_classes:
            raise ValueError("the DCGAN baseline is unconditional; use arch=stylegan2 for a class-conditional GAN")


# ---------------------------------------------------------------------------------------------------------------
# Equalised learning rate (Karras et al. 2018, sec. 4.1): the weight is N(0, 1) and scaled at run time.


class FullyConnectedLayer(nn.Module):
    """``y = act(x W^T * lr_mult / sqrt(in) + b * lr_mult)``; with ``lr_mult`` < 1 the layer learns slower."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_mult: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mult)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init))) if bias else None
        self.weight_gain = lr_mult / math.sqrt(in_features)
        self.bias_gain = lr_mult

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.bias * self.bias_gain if self.bias is not None else None
        x = F.linear(x, self.weight * self.weight_gain, b)
        return leaky_relu_gain(x) if self.activation == "lrelu" else x


class Conv2dLayer(nn.Module):
    """An equalised convolution with optional 2x up/downsampling through the [1, 3, 3, 1] filter."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1):
        super().__init__()
        self.activation, self.up, self.down = activation, up, down
        self.register_buffer("resample_filter", setup_filter())
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        x = conv2d_resample(x, self.weight * self.weight_gain, self.resample_filter, up=self.up, down=self.down,
                            padding=self.padding)
        if self.bias is not None:
            x = x + self.bias[None, :, None, None]
        if self.activation == "lrelu":
            x = leaky_relu_gain(x)
        return x * gain if gain != 1 else x


# ---------------------------------------------------------------------------------------------------------------
# The mapping network z -> w


class MappingNetwork(nn.Module):
    """``z`` (and a label) -> ``w``, broadcast to ``num_ws`` copies ``(B, num_ws, w_dim)``; tracks ``w_avg``.

    The latent is normalised to unit RMS first (StyleGAN sec. 2); a label is embedded by a linear layer, normalised
    the same way and concatenated. ``w_avg`` follows the mean ``w`` of training batches (:meth:`track_w_avg`); the
    truncation trick (StyleGAN sec. 3.3 / Brock et al. 2019) pulls ``w`` towards it: ``w_avg + psi (w - w_avg)``.
    With ``z_dim`` 0 it maps a label alone (the conditional discriminator's label embedding). Labels ``c`` are class
    indices ``(B,)`` or one-hot rows ``(B, c_dim)`` (NVlabs' form).
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, num_layers: int,
                 lr_mult: float = 0.01, w_avg_beta: float | None = 0.995):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        embed_features = w_dim if c_dim else 0
        if c_dim:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        features = [z_dim + embed_features] + [w_dim] * num_layers
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnectedLayer(features[i], features[i + 1], activation="lrelu",
                                                        lr_mult=lr_mult))
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor | None, c: torch.Tensor | None, psi: float = 1.0) -> torch.Tensor:
        parts = []
        if self.z_dim:
            parts.append(normalize_2nd_moment(z))  # (B, z_dim)
        if self.c_dim:
            onehot = F.one_hot(c, self.c_dim).float() if not c.is_floating_point() else c  # (B, c_dim)
            parts.append(normalize_2nd_moment(self.embed(onehot)))  # (B, w_dim)
        x = torch.cat(parts, dim=1)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)  # (B, w_dim)
        if self.num_ws is None:
            return x
        x = x[:, None, :].repeat(1, self.num_ws, 1)  # (B, num_ws, w_dim)
        return self.w_avg.to(x.dtype).lerp(x, psi) if psi != 1 else x

    @torch.no_grad()
    def track_w_avg(self, batch_mean_w: torch.Tensor) -> None:
        """``w_avg <- lerp(batch mean of w, w_avg, w_avg_beta)`` (called by the training task each G step)."""
        self.w_avg.copy_(batch_mean_w.float().lerp(self.w_avg, self.w_avg_beta))  # w is bf16 under autocast


# ---------------------------------------------------------------------------------------------------------------
# The synthesis network w -> image


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally upsampling 2x), noise of learned strength, bias, leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: int = 1,
                 use_noise: bool = True):
        super().__init__()
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.register_buffer("resample_filter", setup_filter())
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)  # styles start at 1: plain convolution
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        """``x`` (B, I, R/up, R/up), ``w`` (B, w_dim), ``noise`` (B, 1, R, R) or None -> (B, O, R, R)."""
        x = modulated_conv2d(x, self.weight, self.affine(w), up=self.up, padding=1, f=self.resample_filter)
        if self.use_noise and noise is not None:
            x = x + noise * self.noise_strength
        return leaky_relu_gain(x + self.bias[None, :, None, None])


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution to image channels, without demodulation (StyleGAN2 fig. 2d)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int):
        super().__init__()
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w) * self.weight_gain, demodulate=False)
        return x + self.bias[None, :, None, None]


class SynthesisBlock(nn.Module):
    """One resolution: (constant input | upsampling conv0), conv1, toRGB added to the upsampled image."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, image_channels: int,
                 use_noise: bool):
        super().__init__()
        self.in_channels, self.resolution = in_channels, resolution
        self.register_buffer("resample_filter", setup_filter())
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2, use_noise=use_noise)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, use_noise=use_noise)
        self.torgb = ToRGBLayer(out_channels, image_channels, w_dim)
        self.num_conv = 1 if in_channels == 0 else 2

    def layers(self) -> list[SynthesisLayer]:
        return [self.conv1] if self.in_channels == 0 else [self.conv0, self.conv1]

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                noise: list[torch.Tensor | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """``ws`` ``(B, num_conv + 1, w_dim)``: one ``w`` per convolution, the last for toRGB."""
        if self.in_channels == 0:
            x = self.const[None].repeat(ws.shape[0], 1, 1, 1)  # (B, C, 4, 4)
        for i, layer in enumerate(self.layers()):
            x = layer(x, ws[:, i], noise[i])
        y = self.torgb(x, ws[:, self.num_conv])  # (B, image_channels, R, R)
        img = y if img is None else upsample2d(img, self.resample_filter) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """``ws`` ``(B, num_ws, w_dim)`` -> image ``(B, C, S, S)`` (about [-1, 1]); block ``b{R}`` per resolution."""

    def __init__(self, cfg: GANConfig):
        super().__init__()
        self.resolutions = cfg.resolutions
        self.num_ws = 0
        for i, res in enumerate(self.resolutions):
            block = SynthesisBlock(cfg.g_channels[i - 1] if i else 0, cfg.g_channels[i], cfg.w_dim, res,
                                   cfg.image_channels, cfg.use_noise)
            setattr(self, f"b{res}", block)
            self.num_ws += block.num_conv
        self.num_ws += 1  # the last toRGB; every other toRGB shares its w with the next block's first conv

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.resolutions]

    def noise_layers(self) -> list[SynthesisLayer]:
        """The layers that take noise, in the order :meth:`forward` takes their noise maps."""
        return [layer for block in self.blocks() for layer in block.layers()]

    def forward(self, ws: torch.Tensor, noise: str | list[torch.Tensor] = "random",
                generator: torch.Generator | None = None) -> torch.Tensor:
        """``noise``: ``"random"`` (fresh N(0, 1) maps from ``generator``), ``"const"`` (the fixed maps stored in
        the layers), ``"none"``, or a list of ``(B, 1, R, R)`` maps, one per :meth:`noise_layers` entry."""
        maps = self._noise_maps(noise, ws.shape[0], generator)
        x = img = None
        w_idx = m_idx = 0
        for block in self.blocks():
            x, img = block(x, img, ws[:, w_idx : w_idx + block.num_conv + 1], maps[m_idx : m_idx + block.num_conv])
            w_idx += block.num_conv
            m_idx += block.num_conv
        return img

    def _noise_maps(self, noise, batch: int, generator) -> list[torch.Tensor | None]:
        layers = self.noise_layers()
        if isinstance(noise, (list, tuple)):
            if len(noise) != len(layers):
                raise ValueError(f"expected {len(layers)} noise maps, got {len(noise)}")
            return list(noise)
        if noise == "none":
            return [None] * len(layers)
        if noise == "const":
            return [layer.noise_const[None, None] if layer.use_noise else None for layer in layers]  # (1, 1, R, R)
        if noise == "random":
            device = self.b4.const.device
            return [torch.randn(batch, 1, layer.resolution, layer.resolution, generator=generator).to(device)
                    for layer in layers]
        raise ValueError(f"unknown noise mode {noise!r}")


class StyleGenerator(nn.Module):
    """StyleGAN2's generator: ``G(z, c) = synthesis(mapping(z, c))``."""

    def __init__(self, cfg: GANConfig):
        super().__init__()
        self.z_dim, self.w_dim, self.num_classes = cfg.z_dim, cfg.w_dim, cfg.num_classes
        self.synthesis = SynthesisNetwork(cfg)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(cfg.z_dim, cfg.num_classes, cfg.w_dim, self.num_ws, cfg.mapping_layers,
                                      cfg.mapping_lr_mult, cfg.w_avg_beta)

    def noise_shapes(self) -> list[tuple[int, int, int]]:
        return [(1, layer.resolution, layer.resolution) for layer in self.synthesis.noise_layers()]

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, psi: float = 1.0,
                noise: str | list[torch.Tensor] = "random", generator: torch.Generator | None = None) -> torch.Tensor:
        return self.synthesis(self.mapping(z, c, psi), noise, generator)


# ---------------------------------------------------------------------------------------------------------------
# The residual discriminator


class DiscriminatorBlock(nn.Module):
    """(fromRGB at the top resolution,) conv 3x3, conv 3x3 with 2x downsampling, a 1x1 residual path; both paths
    scaled by sqrt(1/2) so the sum keeps unit variance (StyleGAN2 fig. 7c)."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, image_channels: int):
        super().__init__()
        self.in_channels = in_channels
        self.register_buffer("resample_filter", setup_filter())
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(image_channels, tmp_channels, 1, activation="lrelu")
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu")
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=2)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor) -> torch.Tensor:
        if self.in_channels == 0:
            x = self.fromrgb(img)  # (B, tmp, R, R)
        y = self.skip(x, gain=math.sqrt(0.5))  # (B, out, R/2, R/2)
        x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))  # (B, out, R/2, R/2)
        return y + x


class MinibatchStdLayer(nn.Module):
    """Appends the standard deviation of features across a group of samples as extra channels (Karras et al. 2018,
    sec. 3): a batch of near-identical samples — a collapsed generator — is then visible to the discriminator.

    Sample ``i`` of a batch of ``N`` is grouped with samples ``i + k N / G`` (NVlabs' grouping)."""

    def __init__(self, group_size: int, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        if n % g:
            raise ValueError(f"minibatch-stddev: batch {n} is not a multiple of the group size {g}")
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)  # (G, N/G, F, C/F, H, W)
        y = (y - y.mean(dim=0)).square().mean(dim=0)  # (N/G, F, C/F, H, W): variance over each group
        y = (y + 1e-8).sqrt().mean(dim=(2, 3, 4))  # (N/G, F): mean stddev over channels and pixels
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # (N, F, H, W)
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """At 4x4: minibatch stddev, conv, fully connected, output (a logit, or a projection on the label map)."""

    def __init__(self, in_channels: int, cmap_dim: int, mbstd_group: int, mbstd_channels: int):
        super().__init__()
        self.cmap_dim = cmap_dim
        extra = mbstd_channels if mbstd_group else 0
        self.mbstd = MinibatchStdLayer(mbstd_group, mbstd_channels) if mbstd_group else None
        self.conv = Conv2dLayer(in_channels + extra, in_channels, 3, activation="lrelu")
        self.fc = FullyConnectedLayer(in_channels * 16, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, cmap_dim or 1)

    def forward(self, x: torch.Tensor, cmap: torch.Tensor | None) -> torch.Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)  # (B, C + F, 4, 4)
        x = self.out(self.fc(self.conv(x).flatten(1)))  # (B, cmap_dim or 1)
        if cmap is not None:  # projection discriminator (Miyato & Koyama 2018)
            x = (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)
        return x


class Discriminator(nn.Module):
    """Image ``(B, C, S, S)`` (and labels ``(B,)``) -> logits ``(B,)``: real when positive."""

    def __init__(self, cfg: GANConfig):
        super().__init__()
        self.num_classes = cfg.num_classes
        ch = dict(zip(cfg.resolutions, cfg.d_channels))
        self.resolutions = cfg.resolutions[:0:-1]  # S, S/2, ..., 8
        for res in self.resolutions:
            block = DiscriminatorBlock(ch[res] if res < cfg.image_size else 0, ch[res], ch[res // 2],
                                       cfg.image_channels)
            setattr(self, f"b{res}", block)
        cmap_dim = (cfg.cmap_dim or ch[4]) if cfg.num_classes else 0
        if cfg.num_classes:
            self.mapping = MappingNetwork(0, cfg.num_classes, cmap_dim, None, cfg.mapping_layers, cfg.mapping_lr_mult,
                                          None)
        self.b4 = DiscriminatorEpilogue(ch[4], cmap_dim, cfg.mbstd_group, cfg.mbstd_channels)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        x = None
        for res in self.resolutions:
            x = getattr(self, f"b{res}")(x, img)
        cmap = self.mapping(None, c) if self.num_classes else None  # (B, cmap_dim)
        return self.b4(x, cmap).squeeze(1)


# ---------------------------------------------------------------------------------------------------------------
# DCGAN (Radford et al. 2016): the baseline


class ZIdentity(nn.Module):
    """DCGAN's "mapping": ``w`` is ``z`` itself, as ``(B, 1, z_dim)``; its mean is 0, so truncation scales z."""

    def __init__(self, z_dim: int):
        super().__init__()
        self.register_buffer("w_avg", torch.zeros(z_dim))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, psi: float = 1.0) -> torch.Tensor:
        x = z[:, None, :]  # (B, 1, z_dim)
        return self.w_avg.to(x.dtype).lerp(x, psi) if psi != 1 else x

    def track_w_avg(self, batch_mean_w: torch.Tensor) -> None:
        """Nothing to track: the mean of z ~ N(0, I) is 0."""


class DCGANSynthesis(nn.Module):
    """z ``(B, 1, z_dim)`` -> 4x4 by a transposed convolution, then (ConvT 4x4 stride 2, BN, ReLU) per octave, the
    last to image channels with tanh (Radford et al. 2016, fig. 1 and sec. 3). ``g_channels[i]`` is the width at
    ``4 * 2^i`` px; the last entry is unused (the full-size layer is the image)."""

    def __init__(self, cfg: GANConfig):
        super().__init__()
        ch = cfg.g_channels
        layers: list[nn.Module] = [nn.ConvTranspose2d(cfg.z_dim, ch[0], 4, 1, 0, bias=False), nn.BatchNorm2d(ch[0]),
                                   nn.ReLU()]
        for c_in, c_out in zip(ch[:-2], ch[1:-1]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        layers += [nn.ConvTranspose2d(ch[-2], cfg.image_channels, 4, 2, 1), nn.Tanh()]  # to full size, no BN
        self.net = nn.Sequential(*layers)
        self.num_ws = 1

    def forward(self, ws: torch.Tensor, noise=None, generator=None) -> torch.Tensor:
        return self.net(ws[:, 0, :, None, None])  # (B, z_dim, 1, 1) -> (B, C, S, S)


class DCGANGenerator(nn.Module):
    def __init__(self, cfg: GANConfig):
        super().__init__()
        self.z_dim = self.w_dim = cfg.z_dim
        self.num_classes, self.num_ws = 0, 1
        self.mapping = ZIdentity(cfg.z_dim)
        self.synthesis = DCGANSynthesis(cfg)
        _dcgan_init(self)

    def noise_shapes(self) -> list[tuple[int, int, int]]:
        return []

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, psi: float = 1.0, noise="random",
                generator=None) -> torch.Tensor:
        return self.synthesis(self.mapping(z, c, psi))


class DCGANDiscriminator(nn.Module):
    """Strided 4x4 convolutions down to 4x4 (batch norm on all but the first), leaky ReLU 0.2, a 4x4 conv to one
    logit. Real and generated images go through it in separate batches, as in DCGAN, so batch norm never mixes
    them."""

    def __init__(self, cfg: GANConfig):
        super().__init__()
        ch = cfg.d_channels[::-1]  # widths at S, S/2, ..., 4; the image itself is at S, so ch[0] is unused
        layers: list[nn.Module] = [nn.Conv2d(cfg.image_channels, ch[1], 4, 2, 1), nn.LeakyReLU(0.2)]
        for c_in, c_out in zip(ch[1:-1], ch[2:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]
        layers += [nn.Conv2d(ch[-1], 1, 4, 1, 0)]  # (B, 1, 1, 1)
        self.net = nn.Sequential(*layers)
        self.num_classes = 0
        _dcgan_init(self)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(img).flatten()  # (B,)


def _dcgan_init(module: nn.Module) -> None:
    """Radford et al. 2016, sec. 4: weights from N(0, 0.02); batch-norm scales from N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------------------------------------------------


class GAN(nn.Module):
    """What the trainer trains and checkpoints: ``G``, ``D``, the augmentation pipe (its probability ``p`` is
    training state) and the step count that schedules lazy R1, ADA updates and the per-example random draws."""

    def __init__(self, cfg: GANConfig, augment_ops: tuple[str, ...] = ()):
        super().__init__()
        cfg.validate()
        if cfg.arch == "stylegan2":
            self.G, self.D = StyleGenerator(cfg), Discriminator(cfg)
        else:
            self.G, self.D = DCGANGenerator(cfg), DCGANDiscriminator(cfg)
        self.augment = AugmentPipe(augment_ops)
        self.register_buffer("step", torch.zeros(1, dtype=torch.long))
