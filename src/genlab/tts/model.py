"""The speaking machine's modules: phonemes -> mel frames (FastSpeech), mel frames -> waveform (HiFi-GAN), and a
few seconds of a voice -> a speaker embedding (GE2E).

Reading order: the acoustic model's parts (encoder, duration predictor, length regulator, decoder, post-net), the
acoustic model, the vocoder, the speaker encoder. Every transformer layer is genlab's shared
:class:`~genlab.nn.attention.TransformerBlock` with rotary positions.

- :class:`FastSpeech` — Ren et al. 2019 ("FastSpeech") / 2021 ("FastSpeech 2") without pitch and energy predictors:
  a non-autoregressive encoder over phonemes, a duration predictor trained on durations known in advance (espeak
  reports when each phoneme starts), a length regulator that repeats each phoneme's vector for its frames, a
  decoder over frames, and a convolutional post-net (Shen et al. 2018, Tacotron 2) refining the mel.
- :class:`HiFiGAN` — Kong et al. 2020, the generator: transposed-conv upsampling with multi-receptive-field
  residual blocks; parameter names as ``transformers``' SpeechT5HifiGan (the tests check parity).
- :class:`VocosVocoder` — Siuzdak 2023 (Vocos): the same job at the mel frame rate, an inverse STFT at the end.
- :class:`SpeakerEncoder` — Wan et al. 2018 ("Generalized end-to-end loss for speaker verification"): a 3-layer
  LSTM over 40-band log-mels, the last state projected and L2-normalised (the d-vector; resemblyzer's shape).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.attention import BlockConfig, RotaryEmbedding, TransformerBlock
from ..nn.vocos import ISTFTGenerator


@dataclass
class AcousticConfig:
    phonemes: list[str] = field(default_factory=list)  # vocabulary after the 3 specials (pad, unknown, pause)
    n_speakers: int = 1  # built-in voices
    speaker_dim: int = 0  # 0: a learned table of voices; > 0: voices are d-vectors of this size (cloning)
    dim: int = 192
    n_head: int = 2
    encoder_layers: int = 4
    decoder_layers: int = 4
    predictor_channels: int = 192
    predictor_kernel: int = 3
    postnet_layers: int = 5
    postnet_channels: int = 256
    dropout: float = 0.1
    n_mels: int = 80

    @property
    def vocab_size(self) -> int:
        return len(self.phonemes) + 3


PAD, UNKNOWN, PAUSE = 0, 1, 2
N_STRESS = 3  # none, primary (ˈ), secondary (ˌ)


def _blocks(cfg: AcousticConfig, n: int) -> nn.ModuleList:
    block = BlockConfig(dim=cfg.dim, n_head=cfg.n_head, mlp_hidden=4 * cfg.dim)
    return nn.ModuleList(TransformerBlock(block) for _ in range(n))


class Stack(nn.Module):
    """Non-causal transformer layers over a padded sequence, rotary positions, a final norm."""

    def __init__(self, cfg: AcousticConfig, n_layers: int):
        super().__init__()
        self.blocks = _blocks(cfg, n_layers)
        self.rope = RotaryEmbedding(cfg.dim // cfg.n_head)
        self.ln = nn.LayerNorm(cfg.dim)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:  # (B, T, C), (B, T) bool
        mask = valid[:, None, None, :]  # (B, 1, 1, T): every position attends to the real ones
        for block in self.blocks:
            x = self.drop(block(x, mask=mask, rope=self.rope))
        return self.ln(x) * valid[..., None]


class DurationPredictor(nn.Module):
    """Two conv layers (ReLU, LayerNorm, dropout) and a linear head: log(1 + frames) per phoneme (FastSpeech 3.3)."""

    def __init__(self, cfg: AcousticConfig):
        super().__init__()
        k, c = cfg.predictor_kernel, cfg.predictor_channels
        self.conv1 = nn.Conv1d(cfg.dim, c, k, padding=k // 2)
        self.ln1 = nn.LayerNorm(c)
        self.conv2 = nn.Conv1d(c, c, k, padding=k // 2)
        self.ln2 = nn.LayerNorm(c)
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(c, 1)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:  # (B, N, C) -> (B, N)
        h = self.drop(self.ln1(F.relu(self.conv1(x.transpose(1, 2))).transpose(1, 2)))  # (B, N, c)
        h = self.drop(self.ln2(F.relu(self.conv2(h.transpose(1, 2))).transpose(1, 2)))
        return self.out(h).squeeze(-1) * valid


class LengthRegulator(nn.Module):
    """Repeat phoneme ``i``'s vector ``d_i`` times (FastSpeech 3.2): ``(B, N, C)`` -> ``(B, T, C)``, T = max sum d."""

    def forward(self, x: torch.Tensor, durations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ends = durations.long().cumsum(1)  # (B, N) the frame after each phoneme
        T = max(int(ends[:, -1].max()), 1)
        frames = torch.arange(T, device=x.device).repeat(x.shape[0], 1)  # (B, T)
        index = torch.searchsorted(ends, frames, right=True).clamp(max=x.shape[1] - 1)  # phoneme of each frame
        out = x.gather(1, index[..., None].expand(-1, -1, x.shape[2]))  # (B, T, C)
        valid = frames < ends[:, -1:]  # (B, T)
        return out * valid[..., None], valid


class PostNet(nn.Module):
    """Five 1-D convs with tanh refining the decoder's mel as a residual (Tacotron 2, section 2.2)."""

    def __init__(self, cfg: AcousticConfig):
        super().__init__()
        chans = [cfg.n_mels] + [cfg.postnet_channels] * (cfg.postnet_layers - 1) + [cfg.n_mels]
        self.convs = nn.ModuleList(nn.Conv1d(a, b, 5, padding=2) for a, b in zip(chans[:-1], chans[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(b) for b in chans[1:])

    def forward(self, mel: torch.Tensor) -> torch.Tensor:  # (B, T, n_mels)
        h = mel.transpose(1, 2)  # (B, n_mels, T)
        for i, (conv, bn) in enumerate(zip(self.convs, self.norms)):
            h = bn(conv(h))
            h = torch.tanh(h) if i < len(self.convs) - 1 else h
        return mel + h.transpose(1, 2)


class FastSpeech(nn.Module):
    """Phonemes (+ stress, speaker) -> log-mel frames. ``forward`` returns the decoder's mel, the post-net's mel, the
    predicted log durations and the frame mask; given ``durations`` (training) the length regulator uses them."""

    def __init__(self, cfg: AcousticConfig):
        super().__init__()
        self.cfg = cfg
        self.phoneme = nn.Embedding(cfg.vocab_size, cfg.dim, padding_idx=PAD)
        self.stress = nn.Embedding(N_STRESS, cfg.dim)
        if cfg.speaker_dim:  # voices are d-vectors: the built-in ones are kept, one per training voice
            self.dvector = nn.Linear(cfg.speaker_dim, cfg.dim)
            self.register_buffer("voices", torch.zeros(cfg.n_speakers, cfg.speaker_dim))
        else:
            self.speaker = nn.Embedding(cfg.n_speakers, cfg.dim)
            self.dvector = None
        self.encoder = Stack(cfg, cfg.encoder_layers)
        self.duration = DurationPredictor(cfg)
        self.regulate = LengthRegulator()
        self.decoder = Stack(cfg, cfg.decoder_layers)
        self.to_mel = nn.Linear(cfg.dim, cfg.n_mels)
        self.postnet = PostNet(cfg)

    def voice(self, speaker: torch.Tensor, dvector: torch.Tensor | None) -> torch.Tensor:
        """``(B,)`` built-in voice ids, or with a d-vector model ``(B, speaker_dim)`` d-vectors (None: the built-in
        voices' own) -> ``(B, 1, dim)``."""
        if self.dvector is None:
            return self.speaker(speaker)[:, None, :]
        return self.dvector(self.voices[speaker] if dvector is None else dvector)[:, None, :]

    def encode(self, phonemes, stress, speaker, dvector=None):
        valid = phonemes != PAD  # (B, N)
        x = self.phoneme(phonemes) + self.stress(stress)  # (B, N, C)
        h = self.encoder(x, valid) + self.voice(speaker, dvector)
        return h * valid[..., None], valid

    def forward(self, phonemes: torch.Tensor, stress: torch.Tensor, speaker: torch.Tensor,
                durations: torch.Tensor | None = None, dvector: torch.Tensor | None = None, pace: float = 1.0):
        h, valid = self.encode(phonemes, stress, speaker, dvector)  # (B, N, C)
        log_d = self.duration(h.detach() if durations is not None else h, valid)  # (B, N)
        if durations is None:
            durations = self.frames(log_d, phonemes, pace)
        frames, frame_valid = self.regulate(h, durations)  # (B, T, C)
        y = self.decoder(frames, frame_valid)
        mel = self.to_mel(y) * frame_valid[..., None]  # (B, T, n_mels)
        return mel, self.postnet(mel) * frame_valid[..., None], log_d, frame_valid

    @staticmethod
    def frames(log_d: torch.Tensor, phonemes: torch.Tensor, pace: float = 1.0) -> torch.Tensor:
        """Predicted frames per phoneme: ``round(exp(log_d) - 1) / pace``, at least 1 for a spoken phoneme."""
        d = torch.round(torch.expm1(log_d).clamp(min=0) / pace)
        spoken = (phonemes != PAD) & (phonemes != PAUSE)
        return torch.where(spoken, d.clamp(min=1), d) * (phonemes != PAD)


# -------------------------------------------------------------------------------------------------------------------
# Vocoder


@dataclass
class VocoderConfig:
    n_mels: int = 80
    kind: str = "hifigan"  # or "vocos": :class:`VocosVocoder` (the upsampling fields then give only the hop)
    vocos_width: int = 256
    vocos_layers: int = 8
    upsample_initial_channel: int = 128
    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)  # product = the mel hop (256)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    leaky_relu_slope: float = 0.1


class ResBlock(nn.Module):
    """HiFi-GAN's ResBlock1: for each dilation, ``x + conv2(lrelu(conv1_dilated(lrelu(x))))``."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...], slope: float):
        super().__init__()
        self.slope = slope
        self.convs1 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d, padding=(kernel * d - d) // 2)
                                    for d in dilations)
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, padding=(kernel - 1) // 2)
                                    for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        for c1, c2 in zip(self.convs1, self.convs2):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, self.slope)), self.slope))
        return x


class HiFiGAN(nn.Module):
    """Log-mel ``(B, n_mels, T)`` -> waveform ``(B, T * hop)`` in [-1, 1] (Kong et al. 2020, generator)."""

    def __init__(self, cfg: VocoderConfig):
        super().__init__()
        self.cfg = cfg
        ch = cfg.upsample_initial_channel
        self.conv_pre = nn.Conv1d(cfg.n_mels, ch, 7, padding=3)
        self.upsampler = nn.ModuleList(
            nn.ConvTranspose1d(ch // 2**i, ch // 2 ** (i + 1), k, stride=r, padding=(k - r) // 2)
            for i, (r, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)))
        self.resblocks = nn.ModuleList(
            ResBlock(ch // 2 ** (i + 1), k, d, cfg.leaky_relu_slope)
            for i in range(len(cfg.upsample_rates))
            for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes))
        self.conv_post = nn.Conv1d(ch // 2 ** len(cfg.upsample_rates), 1, 7, padding=3)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)  # (B, C, T)
        n = len(self.cfg.resblock_kernel_sizes)
        for i, up in enumerate(self.upsampler):
            x = up(F.leaky_relu(x, self.cfg.leaky_relu_slope))  # (B, C / 2, T * r)
            x = sum(self.resblocks[i * n + j](x) for j in range(n)) / n  # multi-receptive-field fusion
        x = self.conv_post(F.leaky_relu(x))  # default slope 0.01 here, as the reference implementation
        return torch.tanh(x).squeeze(1)  # (B, T * hop)


class VocosVocoder(ISTFTGenerator):
    """Log-mel ``(B, n_mels, T)`` -> waveform ``(B, T * hop)`` (Siuzdak 2023, Vocos): ConvNeXt blocks at the mel frame
    rate, each frame's magnitude and phase, an inverse STFT (:class:`genlab.nn.vocos.ISTFTGenerator`). Its output is
    not bounded; the caller clips it."""

    def __init__(self, cfg: VocoderConfig):
        super().__init__(cfg.n_mels, cfg.vocos_width, cfg.vocos_layers, math.prod(cfg.upsample_rates))
        self.cfg = cfg


def build_vocoder(cfg: VocoderConfig) -> HiFiGAN | VocosVocoder:
    """The generator ``cfg.kind`` names."""
    if cfg.kind not in ("hifigan", "vocos"):
        raise ValueError(f"unknown vocoder kind {cfg.kind!r} (hifigan or vocos)")
    return HiFiGAN(cfg) if cfg.kind == "hifigan" else VocosVocoder(cfg)


# -------------------------------------------------------------------------------------------------------------------
# Speaker encoder


@dataclass
class SpeakerConfig:
    n_mels: int = 40
    hidden: int = 256
    layers: int = 3
    dim: int = 256


class SpeakerEncoder(nn.Module):
    """40-band log-mel frames ``(B, T, 40)`` -> unit d-vectors ``(B, dim)`` (Wan et al. 2018, section 2)."""

    def __init__(self, cfg: SpeakerConfig):
        super().__init__()
        self.cfg = cfg
        self.lstm = nn.LSTM(cfg.n_mels, cfg.hidden, cfg.layers, batch_first=True)
        self.linear = nn.Linear(cfg.hidden, cfg.dim)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(mels)  # h: (layers, B, hidden)
        e = F.relu(self.linear(h[-1]))  # (B, dim)
        return F.normalize(e, dim=-1)
