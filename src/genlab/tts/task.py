"""Training the speaking machine with the shared trainer: the acoustic model (FastSpeech) and the vocoder (HiFi-GAN).

Acoustic loss (Ren et al. 2019, section 3): L1 between predicted and true log-mels, before and after the post-net,
plus the mean squared error of the predicted ``log(1 + frames)`` per phoneme; the decoder is teacher-forced with
the true durations (espeak's). Vocoder loss (Kong et al. 2020, eq. 7, with EnCodec's multi-scale STFT
discriminator instead of HiFi-GAN's MPD/MSD, reused from ``genlab.codec``): ``45 * L1(log-mel)`` + adversarial +
``2 *`` feature matching for the generator; hinge loss for the discriminator; phases "gen" and "disc".
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import to_dict
from ..train import Phase, TrainConfig
from .data import HOP, TTSCorpus, TTSCorpusSize, build, log_mel
from .model import PAD, AcousticConfig, FastSpeech, VocoderConfig, build_vocoder


@dataclass
class DataConfig:
    train_utterances: int = 2000
    test_utterances: int = 100
    seed: int = 0

    def size(self) -> TTSCorpusSize:
        return TTSCorpusSize(self.train_utterances, self.test_utterances)


@dataclass
class AcousticRun:
    model: AcousticConfig = field(default_factory=AcousticConfig)
    data: DataConfig = field(default_factory=DataConfig)
    speaker_encoder: str = ""  # a tts-speaker checkpoint: with model.speaker_dim > 0, voices are its d-vectors
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class VocoderRun:
    vocoder: VocoderConfig = field(default_factory=VocoderConfig)
    discriminator_filters: int = 16
    segment_frames: int = 32  # 8,192 samples per training window
    mel_weight: float = 45.0
    feature_weight: float = 2.0
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


TINY_DATA = DataConfig(train_utterances=40, test_utterances=4)
ACOUSTIC_PRESETS: dict[str, AcousticRun] = {
    # The bundled acoustic model (recipes/tts_speech.py): ~7M parameters, voices as GE2E d-vectors (cloning).
    # A checkpoint every 100 steps (~5 min on 2 CPU cores): a session on a shared machine can end at any time.
    "speech-tts": AcousticRun(
        model=AcousticConfig(dim=192, n_head=2, encoder_layers=4, decoder_layers=4, speaker_dim=256),
        speaker_encoder="runs/speaker-speech-speaker",
        train=TrainConfig(steps=10000, batch_size=16, lr=5e-4, warmup_steps=500, ema_decay=0.999, ckpt_every=100,
                          log_every=50, eval_every=1000)),
    "tiny": AcousticRun(
        model=AcousticConfig(dim=32, n_head=2, encoder_layers=1, decoder_layers=1, predictor_channels=32,
                             postnet_layers=2, postnet_channels=32),
        data=TINY_DATA, train=TrainConfig(steps=20, batch_size=4, lr=2e-3, warmup_steps=2, ema_decay=0.9,
                                          ckpt_every=0, log_every=5, progress=False)),
}
VOCODER_PRESETS: dict[str, VocoderRun] = {
    "speech-vocoder": VocoderRun(vocoder=VocoderConfig(), train=TrainConfig(  # a checkpoint every ~5 min on 2 cores
        steps=20000, batch_size=16, lr=2e-4, beta1=0.8, beta2=0.99, warmup_steps=0, schedule="constant",
        ema_decay=0.999, ckpt_every=200, log_every=50)),
    # Vocos (Siuzdak 2023) in place of HiFi-GAN: the generator works at the mel frame rate; the paper's learning rate,
    # betas and schedule (5e-4, 0.8 / 0.9, cosine; no weight decay here), windows of 64 frames (16,384 samples).
    "speech-vocos": VocoderRun(vocoder=VocoderConfig(kind="vocos"), segment_frames=64, train=TrainConfig(
        steps=8000, batch_size=16, lr=5e-4, beta1=0.8, beta2=0.9, warmup_steps=0, schedule="cosine",
        ema_decay=0.999, ckpt_every=200, log_every=50)),
    "tiny-vocos": VocoderRun(vocoder=VocoderConfig(kind="vocos", vocos_width=16, vocos_layers=1),
                             discriminator_filters=4, segment_frames=8, data=TINY_DATA,
                             train=TrainConfig(steps=4, batch_size=2, lr=5e-4, warmup_steps=0, ckpt_every=0,
                                               log_every=2, progress=False)),
    "tiny": VocoderRun(vocoder=VocoderConfig(upsample_initial_channel=16, resblock_kernel_sizes=(3,),
                                     resblock_dilation_sizes=((1, 3),)), discriminator_filters=4, segment_frames=8,
                       data=TINY_DATA, train=TrainConfig(steps=4, batch_size=2, lr=2e-4, warmup_steps=0,
                                                         ckpt_every=0, log_every=2, progress=False)),
}


def pad_batch(items: list[dict]) -> dict[str, torch.Tensor]:
    """Pad utterances to the longest: phonemes with PAD (0), durations 0, mels 0; lengths kept."""
    def pad(name, value=0.0):
        return nn.utils.rnn.pad_sequence([it[name] for it in items], batch_first=True, padding_value=value)
    return {"phonemes": pad("phonemes", PAD), "stress": pad("stress"), "durations": pad("durations"),
            "mel": pad("mel"), "speaker": torch.stack([it["speaker"] for it in items]),
            "frames": torch.tensor([len(it["mel"]) for it in items]),
            **({"dvector": torch.stack([it["dvector"] for it in items])} if "dvector" in items[0] else {})}


class AcousticTask:
    """FastSpeech on the espeak corpus, for :class:`genlab.train.Trainer`."""

    kind = "tts-acoustic"

    def __init__(self, run: AcousticRun, corpus: TTSCorpus | None = None):
        self.corpus = corpus or build(run.data.size(), run.data.seed)
        run.model.phonemes = list(self.corpus.vocabulary)
        run.model.n_speakers = len(self.corpus.manifest["voices"])
        self.run = run
        self.model = FastSpeech(run.model)
        self.train_utts = self.corpus.utterances("train")
        self.num_examples = len(self.train_utts)
        self.meta = {"corpus": str(self.corpus.dir), "voices": self.corpus.manifest["voices"],
                     "synthesiser": self.corpus.manifest["synthesiser"]}
        self.dvectors: dict[str, torch.Tensor] = {}
        if run.model.speaker_dim:
            self._voices_from(run.speaker_encoder)

    def _voices_from(self, path: str) -> None:
        """Each utterance's d-vector (the speaker encoder on its audio, on the GPU when there is one), and each
        built-in voice's mean."""
        from ..errors import GenlabError
        from .api import _part
        from .model import SpeakerConfig, SpeakerEncoder
        from .voice import SPEAKER_RATE, dvectors, resample

        if not path:
            raise GenlabError("model.speaker_dim > 0 needs speaker_encoder=CHECKPOINT (genlab train speaker)")
        encoder, h = _part(Path(path), "tts-speaker", SpeakerEncoder, SpeakerConfig, "encoder.")
        encoder.to("cuda" if torch.cuda.is_available() else "cpu")
        if encoder.cfg.dim != self.run.model.speaker_dim:
            raise GenlabError(f"speaker_encoder {path} makes {encoder.cfg.dim}-d vectors, model.speaker_dim is "
                              f"{self.run.model.speaker_dim}")
        cache = self.corpus.dir / f"dvectors-{h[:16]}.safetensors"  # a resume skips the minutes this takes
        self.dvectors = _read_cache(cache)
        sums = torch.zeros(self.run.model.n_speakers, encoder.cfg.dim)
        for split in ("train", "test"):
            utts = self.corpus.utterances(split)
            if any(u["id"] not in self.dvectors for u in utts):
                audio = [resample(self.corpus.item(split, u)["audio"].numpy(), 22050, SPEAKER_RATE) for u in utts]
                self.dvectors.update({u["id"]: d for u, d in zip(utts, dvectors(encoder, audio))})
                _write_cache(cache, self.dvectors)
            if split == "train":
                for u in utts:
                    sums[u["speaker"]] += self.dvectors[u["id"]]
        self.model.voices.copy_(F.normalize(sums, dim=-1))
        self.meta["speaker_encoder"] = {"path": path, "weights_hash": h}

    def _item(self, split: str, u: dict) -> dict[str, torch.Tensor]:
        it = self.corpus.item(split, u)
        if self.dvectors:
            it["dvector"] = self.dvectors[u["id"]]
        return it

    def batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        return pad_batch([self._item("train", self.train_utts[int(i)]) for i in indices])

    def loss(self, b: dict[str, torch.Tensor], phase: str) -> tuple[torch.Tensor, dict[str, float]]:
        mel, post, log_d, valid = self.model(b["phonemes"], b["stress"], b["speaker"], durations=b["durations"],
                                             dvector=b.get("dvector"))
        target = b["mel"][:, : mel.shape[1]]
        m = valid[..., None].float()
        n = m.sum() * mel.shape[-1]
        mel_l1 = ((mel.float() - target).abs() * m).sum() / n
        post_l1 = ((post.float() - target).abs() * m).sum() / n
        spoken = (b["phonemes"] != PAD).float()
        dur = (((log_d.float() - torch.log1p(b["durations"].float())) ** 2) * spoken).sum() / spoken.sum()
        loss = mel_l1 + post_l1 + dur
        return loss, {"loss": loss.item(), "mel_l1": mel_l1.item(), "postnet_l1": post_l1.item(),
                      "duration_mse": dur.item()}

    def checkpoint_config(self) -> dict:
        return to_dict(self.run.model)

    @torch.no_grad()
    def evaluate(self, step: int, ema_model: nn.Module) -> dict[str, float]:
        """Held-out sentences of the built-in voice: mel L1 with true durations, and duration error in frames."""
        utts = self.corpus.utterances("test")[:16]
        if not utts:
            return {}
        device = next(ema_model.parameters()).device
        b = {k: v.to(device) for k, v in pad_batch([self._item("test", u) for u in utts]).items()}
        mel, post, log_d, valid = ema_model.eval()(b["phonemes"], b["stress"], b["speaker"], durations=b["durations"],
                                                   dvector=b.get("dvector"))
        m = valid[..., None].float()
        l1 = ((post - b["mel"][:, : mel.shape[1]]).abs() * m).sum() / (m.sum() * mel.shape[-1])
        frames = FastSpeech.frames(log_d, b["phonemes"])
        spoken = b["phonemes"] != PAD
        return {"eval/postnet_l1": l1.item(),
                "eval/duration_abs_frames": (frames - b["durations"]).abs()[spoken].float().mean().item()}


class VocoderTask:
    """HiFi-GAN or Vocos on the corpus's audio, two phases ("gen", "disc"), for :class:`genlab.train.Trainer`."""

    kind = "tts-vocoder"

    def __init__(self, run: VocoderRun, corpus: TTSCorpus | None = None):
        from ..codec.model import DiscriminatorConfig, MultiScaleSTFTDiscriminator

        self.run = run
        self.corpus = corpus or build(run.data.size(), run.data.seed)
        self.generator = build_vocoder(run.vocoder)
        self.disc = MultiScaleSTFTDiscriminator(DiscriminatorConfig(filters=run.discriminator_filters,
                                                                    n_ffts=(1024, 512, 256)))
        self.model = nn.ModuleDict({"generator": self.generator, "disc": self.disc})
        self.phases = [Phase("gen"), Phase("disc")]
        self.utts = [u for u in self.corpus.utterances("train") if u["n_frames"] > run.segment_frames]
        self.num_examples = len(self.utts)
        self._fakes: deque = deque(maxlen=4)
        self.meta = {"corpus": str(self.corpus.dir)}

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Random windows: ``(B, n_mels, F)`` log-mels and the ``(B, 1, F * hop)`` audio under them."""
        F_ = self.run.segment_frames
        mels, audio = [], []
        for i in indices:
            it = self.corpus.item("train", self.utts[int(i)])
            start = int(torch.randint(0, len(it["mel"]) - F_, ()))
            mels.append(it["mel"][start : start + F_].T)
            wav = it["audio"][start * HOP : (start + F_) * HOP]
            audio.append(F.pad(wav, (0, F_ * HOP - len(wav))))
        return torch.stack(mels), torch.stack(audio)[:, None]

    def parameters(self, phase: str):
        return self.disc.parameters() if phase == "disc" else self.generator.parameters()

    def ema_module(self) -> nn.Module:
        return self.generator

    def loss(self, b, phase: str) -> tuple[torch.Tensor, dict[str, float]]:
        from ..codec.loss import discriminator_loss, feature_matching_loss, generator_loss

        mel, x = b
        if phase == "disc":
            fake = next((f for real, f in self._fakes if real is x), None)
            if fake is None:
                with torch.no_grad():
                    fake = self.generator(mel)[:, None]
            loss = discriminator_loss([r for r, _ in self.disc(x)], [f for f, _ in self.disc(fake)])
            return loss, {"loss": loss.item()}
        y = self.generator(mel)[:, None]  # (B, 1, T)
        mel_l1 = F.l1_loss(log_mel(y[:, 0]).transpose(-1, -2)[..., : mel.shape[-1]], mel)
        self.disc.requires_grad_(False)
        fake = self.disc(y)
        with torch.no_grad():
            real = self.disc(x)
        self.disc.requires_grad_(True)
        adv = generator_loss([f for f, _ in fake])
        feat = feature_matching_loss([f for _, f in real], [f for _, f in fake])
        self._fakes.append((x, y.detach()))
        loss = self.run.mel_weight * mel_l1 + adv + self.run.feature_weight * feat
        return loss, {"loss": loss.item(), "mel_l1": mel_l1.item(), "adversarial": adv.item(), "feature": feat.item()}

    def checkpoint_config(self) -> dict:
        return to_dict(self.run.vocoder)

    @torch.no_grad()
    def evaluate(self, step: int, ema_model: nn.Module) -> dict[str, float]:
        """Log-mel L1 of held-out utterances resynthesised from their true mels."""
        errs, device = [], next(ema_model.parameters()).device
        for u in self.corpus.utterances("test")[:4]:
            it = {k: v.to(device) for k, v in self.corpus.item("test", u).items()}
            y = ema_model.eval()(it["mel"].T[None])[0]
            errs.append(F.l1_loss(log_mel(y)[: len(it["mel"])], it["mel"][: len(log_mel(y))]).item())
        return {"eval/resynthesis_mel_l1": float(np.mean(errs))} if errs else {}


def _read_cache(path: Path) -> dict[str, torch.Tensor]:
    """The d-vectors a run with the same speaker encoder (its weights hash names the file) saved; none if unreadable."""
    from safetensors.torch import load_file

    try:
        return dict(load_file(str(path))) if path.exists() else {}
    except Exception:  # a torn or foreign file: compute again and overwrite it
        return {}


def _write_cache(path: Path, vectors: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file({k: v.clone() for k, v in vectors.items()}, str(tmp))
        os.replace(tmp, path)
    except OSError:  # a read-only corpus folder: the next start computes them again
        tmp.unlink(missing_ok=True)
