"""A neural audio codec: SEANet encoder, residual vector quantiser, SEANet decoder; and its STFT discriminator.

EnCodec (Défossez et al. 2022), section 3: a convolutional encoder strides the waveform down by
``prod(ratios)`` (320: 50 frames a second at 16 kHz, 75 at 24 kHz) into ``dimension``-wide frames, a residual
vector quantiser (:class:`genlab.nn.quantize.ResidualVQ`, SoundStream's) turns each frame into ``n_q`` codes of
``log2(codebook_size)`` bits, and a mirrored decoder with transposed convolutions makes the waveform again.
Every convolution is weight-normalised (or followed by a one-group norm, EnCodec's non-streamable variant), pads
its input itself (all on the left when causal, so the model can stream), and each stride stage has residual units
with dilated convolutions (SEANet, Tagliasacchi et al. 2020) and ELU activations; a two-layer LSTM at the
bottleneck adds long context.

The decoder can instead be Vocos's (Siuzdak 2023, :class:`ISTFTDecoder`): ConvNeXt blocks at the frame rate predict
each frame's magnitude and phase, and an inverse STFT makes the waveform. Its work is done at 50 frames a second,
not at the sample rate, so it costs a fraction of the SEANet decoder's, and it is not causal (it sees three frames
ahead). The encoder can likewise read the spectrum (:class:`STFTEncoder`: each frame's STFT log-magnitudes through
ConvNeXt blocks, the frequency-domain encoders of FunCodec, Du et al. 2023); with both, the codec works at the frame
rate throughout and ignores ``causal``.

The layer order, paddings and normalisations are EnCodec's exactly, so its published weights load
(:mod:`genlab.codec.convert`, checked against Hugging Face's ``EncodecModel``).

The discriminator is EnCodec's multi-scale STFT discriminator (section 3.4): for each of several window sizes,
a 2-D convolutional network over the real and imaginary parts of the complex STFT.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from ..nn.quantize import Quantized, ResidualVQ
from ..nn.vocos import ConvNeXtTrunk, ISTFTGenerator


@dataclass
class CodecConfig:
    """The codec's shape; stored in every checkpoint. Defaults are EnCodec 24 kHz's (Défossez et al. 2022)."""

    sample_rate: int = 24000
    channels: int = 1
    n_filters: int = 32  # channels after the first convolution; doubled at each stride
    ratios: tuple[int, ...] = (8, 5, 4, 2)  # the decoder's upsampling ratios; the encoder strides in reverse order
    dimension: int = 128  # width of a frame, and of each codebook vector
    n_residual_layers: int = 1  # residual units per stride stage
    kernel_size: int = 7
    last_kernel_size: int = 7
    residual_kernel_size: int = 3
    dilation_base: int = 2  # residual unit j dilates by dilation_base ** j
    compress: int = 2  # residual branches are dim // compress wide
    lstm_layers: int = 2  # 0: no LSTM at the bottleneck
    causal: bool = True
    pad_mode: Literal["reflect", "constant", "replicate"] = "reflect"
    trim_right_ratio: float = 1.0  # causal transposed convs trim this share of their overhang on the right
    norm: Literal["weight_norm", "time_group_norm"] = "weight_norm"
    true_skip: bool = False  # residual units add their input as is (else through a 1x1 convolution)
    codebook_size: int = 1024
    n_q: int = 32  # codebooks in the quantiser: the highest bitrate is n_q * log2(codebook_size) * frame_rate
    # How the codebooks learn (genlab.nn.quantize.VectorQuantizer):
    ema_decay: float = 0.99
    commitment: float = 1.0
    kmeans_iters: int = 10
    dead_threshold: float = 2.0
    quantizer_dropout: bool = True
    # The decoder: EnCodec's mirrored SEANet ("seanet"), or ConvNeXt blocks at the frame rate that predict each
    # frame's complex spectrum, turned into the waveform by an inverse STFT ("istft": Vocos, Siuzdak 2023).
    decoder: Literal["seanet", "istft"] = "seanet"
    istft_width: int = 256  # the ConvNeXt blocks' channels
    istft_layers: int = 8
    # The encoder: EnCodec's SEANet ("seanet"), or ConvNeXt blocks at the frame rate over each frame's STFT
    # log-magnitudes ("stft": the frequency-domain encoders of FunCodec, Du et al. 2023).
    encoder: Literal["seanet", "stft"] = "seanet"
    stft_width: int = 256
    stft_layers: int = 4

    @property
    def hop_length(self) -> int:
        return math.prod(self.ratios)

    @property
    def frame_rate(self) -> int:
        """Frames (code vectors) per second; EnCodec rounds up."""
        return math.ceil(self.sample_rate / self.hop_length)

    @property
    def bits_per_codebook(self) -> float:
        return math.log2(self.codebook_size)

    def n_q_for_kbps(self, kbps: float) -> int:
        """How many codebooks fit in ``kbps`` kilobits a second (EnCodec's rule; at least one)."""
        return int(max(1, math.floor(kbps * 1000 / (self.bits_per_codebook * self.frame_rate))))

    def kbps(self, n_q: int) -> float:
        return n_q * self.bits_per_codebook * self.frame_rate / 1000


# -----------------------------------------------------------------------------------------------------------------
# Convolutions that pad themselves (EnCodec's SConv1d / SConvTranspose1d).


def _pad1d(x: Tensor, left: int, right: int, mode: str) -> Tensor:
    """``F.pad`` that also reflects an input shorter than the padding (zero-extended first, as EnCodec does)."""
    if mode != "reflect":
        return F.pad(x, (left, right), mode=mode)
    length, extra = x.shape[-1], 0
    if length <= max(left, right):
        extra = max(left, right) - length + 1
        x = F.pad(x, (0, extra))
    padded = F.pad(x, (left, right), mode="reflect")
    return padded[..., : padded.shape[-1] - extra]


@torch.no_grad()
def _fan_in_init(conv: nn.Module, fan_in: float) -> None:
    """A kernel of variance ``1 / fan_in`` and a zero bias, so each convolution keeps the signal's scale.

    PyTorch's default (kernels of variance ``1 / (3 fan_in)``, biases up to ``1 / sqrt(fan_in)``) shrinks the signal at
    every layer and lets the biases drown it: in the untrained speech codec the part of the output that depends on
    the input had a standard deviation of 3e-7 against 0.03 for the whole, the encoder's gradients were 1e-4 of the
    decoder's, and reconstruction only began after a couple of hundred steps. Weight normalisation, applied after,
    takes its gain and direction from this kernel.
    """
    nn.init.normal_(conv.weight, 0.0, fan_in**-0.5)
    nn.init.zeros_(conv.bias)


class Conv1d(nn.Module):
    """A 1-D convolution that pads its input so the output has ``ceil(T / stride)`` frames.

    The total padding is ``(kernel - 1) * dilation + 1 - stride``: all on the left when causal (the output never sees
    the future), otherwise split with the extra sample on the left; then just enough on the right for the last
    window to be complete. ``norm`` is weight normalisation (Salimans & Kingma 2016) of the kernel, or a
    one-group GroupNorm of the output.
    """

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int = 1, dilation: int = 1, *,
                 causal: bool, pad_mode: str, norm: str):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel_size, stride, dilation=dilation)
        _fan_in_init(self.conv, cin * kernel_size)
        if norm == "weight_norm":
            self.conv = weight_norm(self.conv)
        self.norm = nn.GroupNorm(1, cout) if norm == "time_group_norm" else nn.Identity()
        self.stride, self.causal, self.pad_mode = stride, causal, pad_mode
        self.padding_total = (kernel_size - 1) * dilation + 1 - stride

    def forward(self, x: Tensor) -> Tensor:  # (B, C, T) -> (B, C', ceil(T / stride))
        extra = -x.shape[-1] % self.stride  # completes the last window
        if self.causal:
            left, right = self.padding_total, 0
        else:
            right = self.padding_total // 2
            left = self.padding_total - right
        x = _pad1d(x, left, right + extra, self.pad_mode)
        return self.norm(self.conv(x))


class ConvTranspose1d(nn.Module):
    """A transposed convolution that trims its overhang so ``T`` frames become ``T * stride`` samples."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int, *, causal: bool, norm: str,
                 trim_right_ratio: float = 1.0):
        super().__init__()
        self.conv = nn.ConvTranspose1d(cin, cout, kernel_size, stride)
        _fan_in_init(self.conv, cin * kernel_size / stride)  # each output sample meets kernel / stride taps a channel
        if norm == "weight_norm":
            self.conv = weight_norm(self.conv)
        self.norm = nn.GroupNorm(1, cout) if norm == "time_group_norm" else nn.Identity()
        total = kernel_size - stride
        self.right = math.ceil(total * trim_right_ratio) if causal else total // 2
        self.left = total - self.right

    def forward(self, x: Tensor) -> Tensor:  # (B, C, T) -> (B, C', T * stride)
        y = self.norm(self.conv(x))
        return y[..., self.left : y.shape[-1] - self.right]


def _conv(cfg: CodecConfig, cin: int, cout: int, kernel_size: int, stride: int = 1, dilation: int = 1) -> Conv1d:
    return Conv1d(cin, cout, kernel_size, stride, dilation, causal=cfg.causal, pad_mode=cfg.pad_mode, norm=cfg.norm)


# -----------------------------------------------------------------------------------------------------------------
# SEANet blocks.


class ResidualUnit(nn.Module):
    """ELU -> dilated conv (dim -> dim / compress) -> ELU -> 1x1 conv (back to dim), plus a (1x1 conv) shortcut."""

    def __init__(self, cfg: CodecConfig, dim: int, dilation: int):
        super().__init__()
        hidden = dim // cfg.compress
        self.conv1 = _conv(cfg, dim, hidden, cfg.residual_kernel_size, dilation=dilation)
        self.conv2 = _conv(cfg, hidden, dim, 1)
        self.shortcut = nn.Identity() if cfg.true_skip else _conv(cfg, dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, T)
        return self.shortcut(x) + self.conv2(F.elu(self.conv1(F.elu(x))))


class LSTM(nn.Module):
    """A stacked LSTM over the frames with a skip connection, in convolutional layout."""

    def __init__(self, dim: int, layers: int):
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, layers)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, T)
        seq = x.permute(2, 0, 1)  # (T, B, C)
        return (self.lstm(seq)[0] + seq).permute(1, 2, 0)  # (B, C, T)


class EncoderBlock(nn.Module):
    """Residual units at ``dim`` channels, then ELU and a strided conv to ``2 * dim`` channels (T -> T / ratio)."""

    def __init__(self, cfg: CodecConfig, dim: int, ratio: int):
        super().__init__()
        self.residuals = nn.ModuleList(
            [ResidualUnit(cfg, dim, cfg.dilation_base**j) for j in range(cfg.n_residual_layers)]
        )
        self.down = _conv(cfg, dim, 2 * dim, 2 * ratio, stride=ratio)

    def forward(self, x: Tensor) -> Tensor:
        for unit in self.residuals:
            x = unit(x)
        return self.down(F.elu(x))


class DecoderBlock(nn.Module):
    """ELU and a transposed conv from ``dim`` to ``dim / 2`` channels (T -> T * ratio), then residual units."""

    def __init__(self, cfg: CodecConfig, dim: int, ratio: int):
        super().__init__()
        self.up = ConvTranspose1d(dim, dim // 2, 2 * ratio, ratio, causal=cfg.causal, norm=cfg.norm,
                                  trim_right_ratio=cfg.trim_right_ratio)
        self.residuals = nn.ModuleList(
            [ResidualUnit(cfg, dim // 2, cfg.dilation_base**j) for j in range(cfg.n_residual_layers)]
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.up(F.elu(x))
        for unit in self.residuals:
            x = unit(x)
        return x


class Encoder(nn.Module):
    """Waveform ``(B, channels, T)`` -> frames ``(B, dimension, ceil(T / hop_length))``."""

    def __init__(self, cfg: CodecConfig):
        super().__init__()
        self.stem = _conv(cfg, cfg.channels, cfg.n_filters, cfg.kernel_size)
        widths = [cfg.n_filters * 2**i for i in range(len(cfg.ratios))]
        self.blocks = nn.ModuleList([EncoderBlock(cfg, w, r) for w, r in zip(widths, reversed(cfg.ratios))])
        top = cfg.n_filters * 2 ** len(cfg.ratios)
        self.lstm = LSTM(top, cfg.lstm_layers) if cfg.lstm_layers else nn.Identity()
        self.head = _conv(cfg, top, cfg.dimension, cfg.last_kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(F.elu(self.lstm(x)))


class Decoder(nn.Module):
    """Frames ``(B, dimension, F)`` -> waveform ``(B, channels, F * hop_length)``."""

    def __init__(self, cfg: CodecConfig):
        super().__init__()
        top = cfg.n_filters * 2 ** len(cfg.ratios)
        self.stem = _conv(cfg, cfg.dimension, top, cfg.kernel_size)
        self.lstm = LSTM(top, cfg.lstm_layers) if cfg.lstm_layers else nn.Identity()
        widths = [top // 2**i for i in range(len(cfg.ratios))]
        self.blocks = nn.ModuleList([DecoderBlock(cfg, w, r) for w, r in zip(widths, cfg.ratios)])
        self.head = _conv(cfg, cfg.n_filters, cfg.channels, cfg.last_kernel_size)

    def forward(self, z: Tensor) -> Tensor:
        x = self.lstm(self.stem(z))
        for block in self.blocks:
            x = block(x)
        return self.head(F.elu(x))


class STFTEncoder(nn.Module):
    """Waveform ``(B, 1, T)`` -> frames ``(B, dimension, ceil(T / hop_length))`` from the log-magnitudes of an
    ``n_fft = 4 * hop`` STFT whose frame ``f`` is centred on samples ``[f * hop, (f + 1) * hop)`` (the framing of
    :class:`ISTFTDecoder`), through a :class:`ConvNeXtTrunk`. It sees three frames ahead and never the phase."""

    def __init__(self, cfg: CodecConfig):
        super().__init__()
        if cfg.channels != 1:
            raise ValueError("the stft encoder reads one channel")
        self.hop = cfg.hop_length
        self.n_fft = 4 * self.hop
        self.trunk = ConvNeXtTrunk(self.n_fft // 2 + 1, cfg.stft_width, cfg.stft_layers, stem_kernel=1)
        self.head = nn.Linear(cfg.stft_width, cfg.dimension)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        frames = -(-x.shape[-1] // self.hop)
        pad = (self.n_fft - self.hop) // 2
        x = F.pad(x[:, 0].float(), (pad, pad + frames * self.hop - x.shape[-1]))
        spec = torch.stft(x, self.n_fft, self.hop, window=self.window, center=False, return_complex=True)
        return self.head(self.trunk(spec.abs().clamp_min(1e-5).log())).transpose(1, 2)  # (B, dimension, frames)


class ISTFTDecoder(ISTFTGenerator):
    """Frames ``(B, dimension, F)`` -> waveform ``(B, 1, F * hop_length)``: Vocos's generator
    (:class:`genlab.nn.vocos.ISTFTGenerator`) of ``istft_width`` channels and ``istft_layers`` ConvNeXt blocks, with
    an ``n_fft = 4 * hop`` spectrum."""

    def __init__(self, cfg: CodecConfig):
        if cfg.channels != 1:
            raise ValueError("the istft decoder makes one channel")
        super().__init__(cfg.dimension, cfg.istft_width, cfg.istft_layers, cfg.hop_length)

    def forward(self, z: Tensor) -> Tensor:
        return super().forward(z)[:, None]


class Codec(nn.Module):
    """Encoder, residual vector quantiser, decoder (Défossez et al. 2022, figure 1)."""

    def __init__(self, cfg: CodecConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg) if cfg.encoder == "seanet" else STFTEncoder(cfg)
        self.quantizer = ResidualVQ(
            cfg.dimension, cfg.n_q, cfg.codebook_size, quantizer_dropout=cfg.quantizer_dropout,
            ema_decay=cfg.ema_decay, commitment=cfg.commitment, kmeans_iters=cfg.kmeans_iters,
            dead_threshold=cfg.dead_threshold,
        )
        self.decoder = Decoder(cfg) if cfg.decoder == "seanet" else ISTFTDecoder(cfg)

    def forward(self, x: Tensor, n_q: int | None = None,
                generator: torch.Generator | None = None) -> tuple[Tensor, Quantized]:
        """``(B, channels, T)`` -> the reconstruction ``(B, channels, T)`` and the quantiser's output (codes, loss).
        In training with quantizer dropout each example uses a random number of codebooks unless ``n_q`` is given.
        """
        q = self.quantizer(self.encoder(x), n_q, generator)
        return self.decoder(q.z_q)[..., : x.shape[-1]], q

    @torch.no_grad()
    def encode(self, x: Tensor, n_q: int | None = None) -> Tensor:
        """``(B, channels, T)`` -> codes ``(B, n_q, ceil(T / hop_length))``."""
        return self.quantizer.encode(self.encoder(x), n_q)

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        """Codes ``(B, n_q, F)`` -> waveform ``(B, channels, F * hop_length)``."""
        return self.decoder(self.quantizer.decode(codes))


# -----------------------------------------------------------------------------------------------------------------
# The multi-scale STFT discriminator (Défossez et al. 2022, section 3.4).


@dataclass
class DiscriminatorConfig:
    filters: int = 32
    n_ffts: tuple[int, ...] = (2048, 1024, 512, 256, 128)  # one sub-discriminator per window size, hop n_fft / 4
    dilations: tuple[int, ...] = (1, 2, 4)  # in time, one strided (in frequency) conv each


class STFTDiscriminator(nn.Module):
    """One scale: the complex STFT as two channels ``(B, 2, frames, freqs)`` through 2-D convolutions
    (kernel 3 in time x 9 in frequency, dilated in time, strided by 2 in frequency), LeakyReLU(0.2)."""

    def __init__(self, n_fft: int, filters: int, dilations: tuple[int, ...]):
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        convs = [nn.Conv2d(2, filters, (3, 9), padding=(1, 4))]
        for d in dilations:
            convs.append(nn.Conv2d(filters, filters, (3, 9), stride=(1, 2), dilation=(d, 1), padding=(d, 4)))
        convs.append(nn.Conv2d(filters, filters, (3, 3), padding=(1, 1)))
        self.convs = nn.ModuleList([weight_norm(c) for c in convs])
        self.out = weight_norm(nn.Conv2d(filters, 1, (3, 3), padding=(1, 1)))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:  # (B, 1, T) -> logits, feature maps
        spec = torch.stft(x.squeeze(1).float(), self.n_fft, self.n_fft // 4, window=self.window,
                          return_complex=True, normalized=True)  # (B, freqs, frames)
        h = torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)  # (B, 2, frames, freqs)
        features = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
            features.append(h)
        return self.out(h), features


class MultiScaleSTFTDiscriminator(nn.Module):
    """EnCodec's MS-STFTD: ``forward(x)`` -> per scale, (logits, feature maps)."""

    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.scales = nn.ModuleList([STFTDiscriminator(n, cfg.filters, cfg.dilations) for n in cfg.n_ffts])

    def forward(self, x: Tensor) -> list[tuple[Tensor, list[Tensor]]]:
        return [d(x) for d in self.scales]
