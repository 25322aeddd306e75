"""Training the speaker encoder: the generalized end-to-end loss (Wan et al. 2018, GE2E) on many voices.

Voices: the real speakers of the codec corpus (``genlab data codec``: Asterisk prompts, festvox-ru, the Fish Fillets
actors, the KDE games, codec2's recordings; its held-out speakers are held out here too) and the espeak voices of the
TTS corpus. A batch is ``N`` speakers x ``M`` windows of 1.6 s (section 2); with ``e_ji`` the embedding of window
``i`` of speaker ``j`` and ``c_k`` the centroid of speaker ``k`` (leaving ``e_ji`` out when ``k = j``, eq. 8),
``S_ji,k = w cos(e_ji, c_k) + b`` (eq. 5, ``w > 0`` learned) and the softmax loss (eq. 6) is the cross-entropy of
each window against its own speaker. Evaluation: the equal error rate of same- vs different-speaker pairs of
held-out speakers' utterances (d-vectors averaged over windows, :func:`genlab.tts.voice.dvector`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import to_dict
from ..train import TrainConfig
from .model import SpeakerConfig, SpeakerEncoder
from .task import DataConfig
from .voice import SPEAKER_RATE, WINDOW_FRAMES, dvector, resample, speaker_features

WINDOW_SAMPLES = WINDOW_FRAMES * 160 + 240  # 1.6 s of 10 ms frames (+ the last window's tail)


class GE2E(nn.Module):
    """The encoder and the loss's learned scale and bias (``w = 10, b = -5`` at start, section 2.1)."""

    def __init__(self, cfg: SpeakerConfig):
        super().__init__()
        self.encoder = SpeakerEncoder(cfg)
        self.w = nn.Parameter(torch.tensor(10.0))
        self.b = nn.Parameter(torch.tensor(-5.0))

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, float]:
        """``(N, M, frames, n_mels)`` -> GE2E softmax loss and the accuracy of the nearest centroid."""
        N, M = feats.shape[:2]
        e = self.encoder(feats.flatten(0, 1)).view(N, M, -1)  # (N, M, D)
        total = e.sum(1, keepdim=True)  # (N, 1, D)
        centroids = F.normalize(total.squeeze(1) / M, dim=-1)  # (N, D)
        own = F.normalize((total - e) / (M - 1), dim=-1)  # (N, M, D) own centroid without e_ji (eq. 8)
        cos = torch.einsum("nmd,kd->nmk", e, centroids)  # (N, M, N)
        own_cos = (e * own).sum(-1)  # (N, M)
        eye = torch.eye(N, dtype=torch.bool, device=e.device)[:, None, :].expand(N, M, N)
        cos = torch.where(eye, own_cos[..., None].expand(N, M, N), cos)
        logits = self.w.clamp(min=1e-6) * cos + self.b  # eq. 5
        labels = torch.arange(N, device=e.device).repeat_interleave(M)
        loss = F.cross_entropy(logits.reshape(N * M, N), labels)
        accuracy = (logits.reshape(N * M, N).argmax(-1) == labels).float().mean().item()
        return loss, accuracy


@dataclass
class SpeakerRun:
    model: SpeakerConfig = field(default_factory=SpeakerConfig)
    utterances_per_speaker: int = 6  # M (N is the trainer's batch_size)
    espeak_voices: bool = True
    data: DataConfig = field(default_factory=DataConfig)  # the TTS corpus whose espeak voices are heard
    train: TrainConfig = field(default_factory=TrainConfig)


SPEAKER_PRESETS = {
    # A checkpoint every 250 steps (~4 min on 2 CPU cores): a session on a shared machine can end at any time.
    "speech-speaker": SpeakerRun(train=TrainConfig(steps=6000, batch_size=16, lr=1e-3, warmup_steps=300,
                                                   grad_clip=3.0, ema_decay=0.0, ckpt_every=250, log_every=50)),
    "tiny": SpeakerRun(model=SpeakerConfig(hidden=32, layers=1, dim=16), utterances_per_speaker=2,
                       train=TrainConfig(steps=4, batch_size=3, lr=1e-3, warmup_steps=0, ema_decay=0.0,
                                         ckpt_every=0, log_every=2, progress=False)),
}


class VoicePool:
    """Clips grouped by speaker, each a ``() -> float32 16 kHz`` reader, from the codec corpus and the TTS corpus."""

    def __init__(self, speakers: dict[str, list]):
        self.names = sorted(s for s, clips in speakers.items() if len(clips) >= 2)
        self.clips = [speakers[s] for s in self.names]

    @classmethod
    def build(cls, split: str, espeak: bool = True, codec_corpus=None, tts_corpus=None) -> VoicePool:
        speakers: dict[str, list] = {}
        if codec_corpus is not None:
            data = codec_corpus.train if split == "train" else codec_corpus._test
            for c in codec_corpus.clips(split):
                if c["length"] >= SPEAKER_RATE:  # at least 1 s
                    speakers.setdefault(c["speaker"], []).append(
                        lambda c=c, data=data: data[c["offset"] : c["offset"] + c["length"]].astype(np.float32) / 32767)
        if espeak and tts_corpus is not None:  # resampled once to 16 kHz (int16 again), not at every read
            for u in tts_corpus.utterances("train" if split == "train" else "test"):
                a = tts_corpus.arrays[u["split"]]["audio"][u["sample_offset"] : u["sample_offset"] + u["n_samples"]]
                clip = np.round(np.clip(resample(a / 32767, 22050, SPEAKER_RATE), -1, 1) * 32767).astype(np.int16)
                speakers.setdefault(f"espeak-{u['voice']}", []).append(
                    lambda clip=clip: clip.astype(np.float32) / 32767)
        return cls(speakers)


def random_window(audio: np.ndarray, n: int, g: torch.Generator) -> np.ndarray:
    if len(audio) <= n:
        return np.pad(audio, (0, n - len(audio)))
    start = int(torch.randint(0, len(audio) - n, (), generator=g))
    return audio[start : start + n]


class SpeakerTask:
    """GE2E for :class:`genlab.train.Trainer`: ``batch_size`` speakers x ``utterances_per_speaker`` windows."""

    kind = "tts-speaker"

    def __init__(self, run: SpeakerRun, pool: VoicePool | None = None, eval_pool: VoicePool | None = None):
        if pool is None:
            from ..codec.data import load as load_codec
            from .data import build

            codec, tts = load_codec(SPEAKER_RATE), build(run.data.size(), run.data.seed)
            pool = VoicePool.build("train", run.espeak_voices, codec, tts)
            eval_pool = VoicePool.build("test", False, codec, None)
        self.run, self.pool, self.eval_pool = run, pool, eval_pool
        self.model = GE2E(run.model)
        self.num_examples = len(pool.names) * 1000  # index mod speakers: which speaker leads the batch
        self.meta = {"speakers": pool.names, "held_out": eval_pool.names if eval_pool else []}

    def batch(self, indices: torch.Tensor) -> torch.Tensor:
        """``(N, M, WINDOW_SAMPLES)`` audio: distinct speakers (duplicates replaced by others), M random windows each
        (their features are computed in :meth:`loss`, on the model's device)."""
        n_spk = len(self.pool.names)
        g = torch.Generator().manual_seed(int(indices.sum()) * 7919 + len(indices))
        chosen = list(dict.fromkeys(int(i) % n_spk for i in indices))
        others = [s for s in torch.randperm(n_spk, generator=g).tolist() if s not in chosen]
        chosen = (chosen + others)[: min(len(indices), n_spk)]
        out = []
        for s in chosen:
            clips = self.pool.clips[s]
            picks = torch.randint(0, len(clips), (self.run.utterances_per_speaker,), generator=g)
            out.append(np.stack([random_window(clips[int(k)](), WINDOW_SAMPLES, g) for k in picks]))
        return torch.from_numpy(np.stack(out))

    def loss(self, audio: torch.Tensor, phase: str) -> tuple[torch.Tensor, dict[str, float]]:
        N, M, _ = audio.shape
        feats = speaker_features(audio.flatten(0, 1), self.run.model.n_mels)[:, :WINDOW_FRAMES]  # (N * M, F, n_mels)
        loss, acc = self.model(feats.view(N, M, *feats.shape[1:]))  # (N, M, F, n_mels)
        return loss, {"loss": loss.item(), "accuracy": acc, "w": self.model.w.item()}

    def ema_module(self):
        return None

    def checkpoint_config(self) -> dict:
        return to_dict(self.run.model)

    @torch.no_grad()
    def evaluate(self, step: int, model) -> dict[str, float]:
        if not self.eval_pool or len(self.eval_pool.names) < 2:
            return {}
        enc = (model or self.model).encoder.eval()
        return {"eval/eer": equal_error_rate(enc, self.eval_pool)}


def equal_error_rate(encoder: SpeakerEncoder, pool: VoicePool, per_speaker: int = 8) -> float:
    """EER over all pairs of up to ``per_speaker`` utterances of each speaker in ``pool``."""
    vectors, labels = [], []
    for s, clips in enumerate(pool.clips):
        for read in clips[:per_speaker]:
            vectors.append(dvector(encoder, read()))
            labels.append(s)
    e = torch.stack(vectors)
    labels_t = torch.tensor(labels)
    scores = e @ e.T
    upper = torch.triu(torch.ones_like(scores, dtype=torch.bool), 1)
    same = (labels_t[:, None] == labels_t[None, :])[upper].numpy()
    s = scores[upper].numpy()
    thresholds = np.unique(s)
    far = np.array([(s[~same] >= t).mean() for t in thresholds])  # false accepts
    frr = np.array([(s[same] < t).mean() for t in thresholds])  # false rejects
    k = int(np.argmin(np.abs(far - frr)))
    return float((far[k] + frr[k]) / 2)
