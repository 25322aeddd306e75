"""Training the codec with the shared trainer: configs, presets, and the task (Défossez et al. 2022, section 3.4).

The generator phase (``gen``, metrics ``gen/...``) reconstructs a batch of 1-second speech windows through the
codec, each example with its own random number of codebooks (quantizer dropout), and is trained on

    L_G = w_time |x - x_hat|_1 + w_mel L_mel + w_stft L_stft + w_commit L_commit + w_adv L_adv + w_feat L_feat

(:mod:`genlab.codec.loss`); the codebooks themselves learn by moving averages inside the quantiser. The
discriminator phase (``disc``, ``disc/loss``) trains the multi-scale STFT discriminator on the same real windows
against the generator's output of this step (kept from the ``gen`` phase, detached, so the codec runs once a
step). With ``adversarial = 0`` there is no discriminator and one phase (``main``).
"""

from __future__ import annotations

import wave
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import from_dict, to_dict
from ..train import Phase, TrainConfig
from . import loss as losses
from .model import Codec, CodecConfig, DiscriminatorConfig, MultiScaleSTFTDiscriminator


@dataclass
class LossWeights:
    time: float = 0.1
    mel: float = 15.0  # DAC's weight for its multi-scale log-mel L1
    stft: float = 1.0
    frequency: float = 0.0  # EnCodec's linear-magnitude mel loss (loss.frequency_loss); 0: not computed
    commitment: float = 1.0
    adversarial: float = 1.0  # 0: no discriminator
    feature: float = 2.0
    gan: Literal["hinge", "lsgan"] = "hinge"


@dataclass
class DataConfig:
    segment: float = 1.0  # seconds per training window (EnCodec trains on 1 s crops)
    min_gain_db: float = -12.0  # each window is scaled by a random gain in [min_gain_db, 0] dB
    eval_clips: int = 16  # held-out clips scored by evaluate() (their first eval_seconds)
    eval_seconds: float = 5.0


@dataclass
class CodecModelConfig:
    """What a codec checkpoint stores: the codec (rebuilt for inference), the discriminator and the training choices."""

    codec: CodecConfig = field(default_factory=CodecConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    data: DataConfig = field(default_factory=DataConfig)
    # A codec checkpoint (run directory or checkpoint) whose codec weights (EMA if stored) start this run: the
    # second, adversarial stage of the bundled recipe starts from the first, reconstruction-only stage.
    init_from: str | None = None
    # "decoder": the encoder and quantiser (from init_from) stay frozen and only the decoder learns, each example
    # decoded from a random number of its codebooks (a new decoder for existing tokens, as Vocos is for EnCodec's).
    # init_from may then differ from this run in its decoder alone.
    train_parts: Literal["all", "decoder"] = "all"


@dataclass
class CodecRun:
    """A preset: ``genlab train codec --preset NAME key=value ...``."""

    model: CodecModelConfig = field(default_factory=CodecModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# The bundled speech codec: 16 kHz (codec/data.py says why), 50 frames a second, 1024-entry codebooks, 12 of them:
# 500 bit/s each, so 1.5 / 3 / 6 kbps keep 3 / 6 / 12 codebooks. EnCodec's architecture at half its width
# (16 filters) with 64-wide frames, so a training step is seconds on 2 CPU cores. It trains in three stages
# (recipes/speech_codec.py), each from the last one's weights: the waveform L1 alone, which brings in the input's
# phase; then the reconstruction losses with the waveform term kept strong (trained on the log-mel losses from the
# start, the codec matched magnitudes and had no phase after 13,000 steps); then with the discriminator (three
# scales, 8 filters), the share of compute the adversarial terms need being large on a CPU.
SPEECH_CODEC = CodecConfig(sample_rate=16000, n_filters=16, ratios=(8, 5, 4, 2), dimension=64, codebook_size=1024,
                           n_q=12, lstm_layers=2)

PRESETS: dict[str, CodecRun] = {
    "speech-codec-wave": CodecRun(
        CodecModelConfig(SPEECH_CODEC, DiscriminatorConfig(filters=8, n_ffts=(1024, 512, 256)),
                         LossWeights(time=1.0, mel=0.0, stft=0.0, adversarial=0.0)),
        TrainConfig(steps=350, batch_size=8, lr=5e-4, beta1=0.5, beta2=0.9, warmup_steps=0, schedule="constant",
                    grad_clip=10.0, ema_decay=0.0, ckpt_every=100, eval_every=200),
    ),
    "speech-codec": CodecRun(
        CodecModelConfig(SPEECH_CODEC, DiscriminatorConfig(filters=8, n_ffts=(1024, 512, 256)),
                         LossWeights(time=50.0, adversarial=0.0)),
        TrainConfig(steps=13000, batch_size=8, lr=5e-4, beta1=0.5, beta2=0.9, warmup_steps=100, schedule="cosine",
                    grad_clip=10.0, ema_decay=0.999, ckpt_every=250, eval_every=2000),
    ),
    "speech-codec-gan": CodecRun(
        CodecModelConfig(SPEECH_CODEC, DiscriminatorConfig(filters=8, n_ffts=(1024, 512, 256))),
        TrainConfig(steps=4800, batch_size=8, lr=2e-4, beta1=0.5, beta2=0.9, warmup_steps=0, schedule="constant",
                    grad_clip=10.0, ema_decay=0.999, ckpt_every=100, eval_every=200),
    ),
    # A Vocos decoder (codec/model.py, ISTFTDecoder) learnt for the speech codec's frozen encoder and codebooks:
    # its tokens stay the same. Reconstruction losses only (stage 1's weights), Vocos's rate and betas.
    "speech-codec-istft": CodecRun(
        CodecModelConfig(replace(SPEECH_CODEC, decoder="istft"), loss=LossWeights(time=50.0, adversarial=0.0),
                         train_parts="decoder"),
        TrainConfig(steps=4000, batch_size=8, lr=5e-4, beta1=0.8, beta2=0.9, warmup_steps=100, schedule="cosine",
                    grad_clip=10.0, ema_decay=0.999, ckpt_every=250, eval_every=500),
    ),
    # Frequency-domain trial: the STFT encoder and the Vocos decoder (codec/model.py), both at the frame rate, the
    # same codebooks as the speech codec; log-mel and STFT losses (the encoder never sees the phase: no waveform L1).
    "speech-codec-spectral": CodecRun(
        CodecModelConfig(replace(SPEECH_CODEC, encoder="stft", decoder="istft", lstm_layers=0),
                         loss=LossWeights(time=0.0, adversarial=0.0)),
        TrainConfig(steps=8000, batch_size=8, lr=5e-4, beta1=0.8, beta2=0.9, warmup_steps=100, schedule="cosine",
                    grad_clip=10.0, ema_decay=0.999, ckpt_every=250, eval_every=1000),
    ),
    # Its second stage: the multi-scale STFT discriminator added (hinge, feature matching), from the first's EMA.
    # 1,000 steps at a constant rate, so a shorter run is the first steps of a longer one. First set to 6,000; in
    # that run Whisper no longer looped at 3 and 1.5 kbps by step 1,750 (codec_eval_spectral_gan_1750.json). The
    # bundled run stopped at 1,000: on 2 cores of the AMD EPYC of 2026-12-06 a step took 2.8 s, and that session
    # had no time for more.
    "speech-codec-spectral-gan": CodecRun(
        CodecModelConfig(replace(SPEECH_CODEC, encoder="stft", decoder="istft", lstm_layers=0),
                         DiscriminatorConfig(filters=16, n_ffts=(1024, 512, 256)), LossWeights(time=0.0)),
        TrainConfig(steps=1000, batch_size=8, lr=2e-4, beta1=0.8, beta2=0.9, warmup_steps=0, schedule="constant",
                    grad_clip=10.0, ema_decay=0.999, ckpt_every=250, eval_every=1000),
    ),
    # EnCodec 24 kHz exactly (the shape that Hugging Face's facebook/encodec_24khz weights load into).
    "encodec-24khz": CodecRun(
        CodecModelConfig(CodecConfig()),
        TrainConfig(steps=300000, batch_size=64, lr=3e-4, beta1=0.5, beta2=0.9, warmup_steps=0, schedule="constant"),
    ),
    # For tests and smoke runs: a few thousand parameters, 16 ms frames at 16 kHz.
    "tiny": CodecRun(
        CodecModelConfig(
            CodecConfig(sample_rate=16000, n_filters=4, ratios=(4, 4), dimension=16, codebook_size=32, n_q=4,
                        lstm_layers=1, kmeans_iters=2),
            DiscriminatorConfig(filters=4, n_ffts=(256, 128), dilations=(1, 2)),
            data=DataConfig(segment=0.25, eval_clips=4)),
        TrainConfig(steps=20, batch_size=4, lr=1e-3, beta1=0.5, beta2=0.9, warmup_steps=0, schedule="constant",
                    ema_decay=0.0, log_every=5, ckpt_every=10),
    ),
}


def codec_config(config: dict) -> CodecConfig:
    """The codec's config from a checkpoint's ``config.json`` ``config`` object."""
    return from_dict(CodecConfig, config["codec"])


class CodecTask:
    """The codec task handed to :class:`genlab.train.Trainer`; ``corpus`` is a :class:`~.data.SpeechCorpus`
    (or anything with ``train``, ``sample_rate``, ``window(start, length)`` and ``test_clips()``)."""

    kind = "codec"

    def __init__(self, cfg: CodecModelConfig, corpus=None):
        from .data import load

        self.cfg = cfg
        self.corpus = load(cfg.codec.sample_rate) if corpus is None else corpus
        if self.corpus.sample_rate != cfg.codec.sample_rate:
            raise ValueError(f"corpus is {self.corpus.sample_rate} Hz, the codec {cfg.codec.sample_rate} Hz")
        self.codec = Codec(cfg.codec)
        if cfg.init_from:
            self._init_from(cfg.init_from)
        parts = {"codec": self.codec}
        if cfg.loss.adversarial > 0:
            self.disc = MultiScaleSTFTDiscriminator(cfg.discriminator)
            parts["disc"] = self.disc
        else:
            self.disc = None
        self.model = nn.ModuleDict(parts)
        self.phases = [Phase("gen"), Phase("disc")] if self.disc is not None else [Phase("main")]
        self.segment = int(round(cfg.data.segment * cfg.codec.sample_rate))
        self.num_examples = max(1, len(self.corpus.train) // self.segment)
        self._fakes: deque = deque(maxlen=8)  # (real batch, detached reconstruction) from the gen phase
        manifest = getattr(self.corpus, "manifest", {})
        self.meta = {**getattr(self, "meta", {}),
                     "train_seconds": round(len(self.corpus.train) / cfg.codec.sample_rate, 1),
                     "data": manifest.get("sources", {}),
                     **({"data_subset": manifest["subset"]} if "subset" in manifest else {})}

    def _init_from(self, path: str) -> None:
        from ..errors import GenlabError
        from .api import load

        loaded = load(path)
        state = loaded.codec.state_dict()
        if loaded.cfg == self.cfg.codec:
            self.codec.load_state_dict(state)
        elif self.cfg.train_parts == "decoder" and _without_decoder(loaded.cfg) == _without_decoder(self.cfg.codec):
            self.codec.load_state_dict({k: v for k, v in state.items() if not k.startswith("decoder.")}, strict=False)
        else:
            what = "encoder or quantiser" if self.cfg.train_parts == "decoder" else "codec"
            raise GenlabError(f"init_from {path}: its {what} config differs from this run's")
        self.meta = {**getattr(self, "meta", {}), "init_from": {"path": path, "weights_hash": loaded.weights_hash}}

    def batch(self, indices: torch.Tensor) -> torch.Tensor:
        """``(B, 1, segment)`` windows: window ``i`` starts at ``i * segment`` plus a random shift, random gain."""
        shifts = torch.randint(0, self.segment, (len(indices),))
        gains = 10 ** (torch.empty(len(indices)).uniform_(self.cfg.data.min_gain_db, 0.0) / 20)
        windows = [self.corpus.window(int(i) * self.segment + int(s), self.segment) for i, s in zip(indices, shifts)]
        return torch.from_numpy(np.stack(windows))[:, None] * gains[:, None, None]

    def parameters(self, phase: str):
        return self.disc.parameters() if phase == "disc" else self.codec.parameters()

    def frozen(self) -> dict[str, nn.Module]:
        if self.cfg.train_parts != "decoder":
            return {}
        return {"encoder": self.codec.encoder, "quantizer": self.codec.quantizer}

    def _reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float | None]:
        """The codec's output for ``x``, its commitment loss and its codebooks' mean perplexity (None when frozen).
        With a frozen encoder and quantiser each example keeps its first ``k ~ U{1..n_q}`` codebooks (quantizer
        dropout without the codebooks learning)."""
        if self.cfg.train_parts != "decoder":
            x_hat, q = self.codec(x)
            return x_hat, q.loss.float(), _mean_used(q.perplexity)
        with torch.no_grad():
            quantizer = self.codec.quantizer
            codes = quantizer.encode(self.codec.encoder(x))  # (B, n_q, F)
            levels = torch.stack([quantizer.layers[i].lookup(codes[:, i]) for i in range(codes.shape[1])], dim=1)
            keep = torch.randint(1, codes.shape[1] + 1, (len(x),))
            z_q = levels.cumsum(dim=1)[torch.arange(len(x)), keep - 1]  # (B, D, F)
        return self.codec.decoder(z_q)[..., : x.shape[-1]], x.new_zeros(()), None

    def ema_module(self) -> nn.Module:
        return self.codec

    def loss(self, x: torch.Tensor, phase: str) -> tuple[torch.Tensor, dict[str, float]]:
        return self._disc_loss(x) if phase == "disc" else self._gen_loss(x)

    def _gen_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        w, sr = self.cfg.loss, self.cfg.codec.sample_rate
        x_hat, commitment, perplexity = self._reconstruct(x)
        x_hat32 = x_hat.float()
        terms = {"time": F.l1_loss(x_hat32, x), "mel": losses.mel_distance(x_hat32, x, sr),
                 "stft": losses.multiscale_stft_loss(x_hat32, x), "commitment": commitment}
        if w.frequency > 0:
            terms["frequency"] = losses.frequency_loss(x_hat32, x, sr)
        if self.disc is not None:
            self.disc.requires_grad_(False)  # the generator's step needs no discriminator gradients
            fake = self.disc(x_hat)
            with torch.no_grad():
                real = self.disc(x)
            self.disc.requires_grad_(True)
            terms["adversarial"] = losses.generator_loss([logits for logits, _ in fake], w.gan)
            terms["feature"] = losses.feature_matching_loss([f for _, f in real], [f for _, f in fake])
            self._fakes.append((x, x_hat.detach()))
        loss = sum(getattr(w, name) * value for name, value in terms.items())
        # The time-domain term is logged as "l1": the trainer's log line has its own "time" (seconds elapsed).
        metrics = {"loss": loss.item(), **{("l1" if k == "time" else k): v.item() for k, v in terms.items()},
                   **({"perplexity": perplexity} if perplexity is not None else {})}
        return loss, metrics

    def _disc_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        x_hat = next((fake for real, fake in self._fakes if real is x), None)
        if x_hat is None:  # no gen phase ran on this batch: make the reconstruction here
            with torch.no_grad():
                x_hat = self.codec(x)[0]
        real, fake = self.disc(x), self.disc(x_hat)
        loss = losses.discriminator_loss([r for r, _ in real], [f for f, _ in fake], self.cfg.loss.gan)
        return loss, {"loss": loss.item()}

    def _eval_clips(self) -> list[np.ndarray]:
        n = int(self.cfg.data.eval_seconds * self.cfg.codec.sample_rate)
        return [audio[:n] for _, audio in self.corpus.test_clips(min_seconds=1.0)]

    def checkpoint_config(self) -> dict:
        return to_dict(self.cfg)

    @torch.no_grad()
    def evaluate(self, step: int, ema_model: nn.Module) -> dict[str, float]:
        """SI-SDR and mel distance of held-out speakers' clips at 1, half and all codebooks."""
        ema_model = _codec(ema_model)
        device = next(ema_model.parameters()).device
        clips = self._eval_clips()[: self.cfg.data.eval_clips]
        out: dict[str, float] = {}
        n_q = self.cfg.codec.n_q
        for k in sorted({1, max(1, n_q // 2), n_q}):
            sdr, mel = [], []
            for audio in clips:
                x = torch.from_numpy(audio)[None, None].to(device)
                y = ema_model.decode(ema_model.encode(x, k))[..., : x.shape[-1]]
                sdr.append(losses.si_sdr(y, x).item())
                mel.append(losses.mel_distance(y, x, self.cfg.codec.sample_rate).item())
            out[f"eval/si_sdr@{k}"] = float(np.mean(sdr)) if sdr else float("nan")
            out[f"eval/mel@{k}"] = float(np.mean(mel)) if mel else float("nan")
        return out

    def sample(self, out_dir: Path, step: int, ema_model: nn.Module) -> None:
        """Write the first held-out clip decoded at every bitrate of the ladder, for listening during training (16-bit
        WAV by the standard library: a training machine may lack libsndfile)."""
        clips = self._eval_clips()
        if not clips:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        ema_model = _codec(ema_model)
        audio = torch.from_numpy(clips[0])[None, None].to(next(ema_model.parameters()).device)
        for k in range(1, self.cfg.codec.n_q + 1):
            y = ema_model.decode(ema_model.encode(audio, k))[0, 0, : audio.shape[-1]]  # (T,)
            pcm = (y.clamp(-1, 1) * 32767).round().to(torch.int16).cpu().numpy()
            with wave.open(str(out_dir / f"step_{step:07d}_nq{k}.wav"), "wb") as f:
                f.setnchannels(1)
                f.setsampwidth(2)
                f.setframerate(self.cfg.codec.sample_rate)
                f.writeframes(pcm.astype("<i2").tobytes())


def _without_decoder(cfg: CodecConfig) -> CodecConfig:
    return replace(cfg, decoder="seanet", istft_width=0, istft_layers=0, trim_right_ratio=0.0)


def _mean_used(perplexity: torch.Tensor) -> float:
    """The mean perplexity over the levels some example of the batch used (quantizer dropout leaves a level with no
    vectors at 0, which would drag the mean below 1, the least a used codebook can have)."""
    used = perplexity[perplexity > 0]
    return used.mean().item() if len(used) else 0.0


def _codec(module: nn.Module) -> Codec:
    """The codec of the trainer's EMA copy (a Codec) or of the live model (the task's ModuleDict), in eval mode."""
    codec = module["codec"] if isinstance(module, nn.ModuleDict) else module
    return codec.eval()
