"""Training CLIP with the shared trainer: run configs, presets, and the contrastive task (Radford et al. 2021).

Each step takes a batch of (image, caption) pairs, embeds both sides, and minimises figure 3's symmetric
cross-entropy (``clip/loss.py``) over the *global* batch: under ``torchrun`` the embeddings of every rank are
gathered, so every pair has ``batch_size - 1`` negatives whatever the number of processes. With gradient
accumulation the negatives are those of one micro-batch (as in open_clip without ``--accum-freq``).

The temperature is learned as ``t = log(1 / 0.07)`` initially and clamped to ``[0, log 100]`` before each forward
pass (open_clip clamps after each optimizer step; the effect is the same: it never scales logits beyond 100).

Data: captioned images from ``clip/data.py``; each step shows every image with one of its source's caption
templates drawn at random and shifted by up to ``shift`` pixels (white fill).

A borrowed text tower (``CLIPConfig.minilm``, preset ``emoji-clip-minilm``) is loaded from its weights file, frozen,
and recorded as the checkpoint component ``text_encoder`` (referenced by name and hash, not copied); the optimizer
sees only the image tower, the text projection and the temperature. Its output for a caption never changes, so the
task keeps each caption's sentence embedding once computed (the first time the caption is drawn) and each step runs
only the projection on the text side: the numbers of running the frozen encoder every step (to float rounding), at
the cost of the image tower alone.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import load_weights_strict
from ..config import to_dict
from ..train import TrainConfig, TrainContext, all_gather
from .data import LICENSES, CaptionedImages, caption_variants
from .images import normalize
from .loss import contrastive_loss
from .model import CLIP, CLIPConfig
from .model import PRESETS as MODEL_PRESETS
from .pipeline import TEXT_ENCODER, load_text_encoder
from .text import ClipTokenizer, WordPieceTokenizer


@dataclass
class ClipDataConfig:
    sources: tuple[str, ...] = ("openmoji", "tuxpaint", "openclipart")
    shift: int = 2  # random translation augmentation, pixels
    eval_pairs: int = 512  # held-out pairs scored by the trainer's evaluate hook


@dataclass
class ClipRun:
    """A preset: the model, its data and how to train it (``genlab train clip --preset NAME key=value ...``)."""

    model: CLIPConfig = field(default_factory=CLIPConfig)
    data: ClipDataConfig = field(default_factory=ClipDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# The bundled model's schedule (recipes/emoji_clip.py). AdamW with beta2 0.98 and weight decay 0.2 as in the paper
# (section 2.5 and appendix F); batch 256 is what 2 CPU cores afford.
EMOJI_TRAIN = TrainConfig(steps=3000, batch_size=256, lr=1e-3, warmup_steps=300, beta2=0.98, weight_decay=0.2,
                          ema_decay=0.999, ckpt_every=500, eval_every=500, grad_clip=1.0)

PRESETS: dict[str, ClipRun] = {
    "emoji-clip": ClipRun(MODEL_PRESETS["emoji-clip"], ClipDataConfig(), EMOJI_TRAIN),
    # The same image tower, data and schedule with the frozen all-MiniLM-L6-v2 as the text tower.
    "emoji-clip-minilm": ClipRun(MODEL_PRESETS["emoji-clip-minilm"], ClipDataConfig(), EMOJI_TRAIN),
    "tiny": ClipRun(
        MODEL_PRESETS["tiny"],
        ClipDataConfig(sources=("openmoji",), eval_pairs=64),
        TrainConfig(steps=20, batch_size=32, lr=1e-3, warmup_steps=5, beta2=0.98, ema_decay=0.0, ckpt_every=0),
    ),
}


def shift_images(images: torch.Tensor, shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Translate each uint8 ``(B, C, S, S)`` image by up to ``shift`` pixels each way, filling with white."""
    if shift <= 0:
        return images
    B, _, S, _ = images.shape
    padded = F.pad(images, (shift, shift, shift, shift), value=255)  # (B, C, S + 2s, S + 2s)
    dy, dx = torch.randint(0, 2 * shift + 1, (2, B), generator=generator)
    return torch.stack([padded[i, :, dy[i] : dy[i] + S, dx[i] : dx[i] + S] for i in range(B)])  # (B, C, S, S)


class ClipTask:
    """The contrastive task handed to :class:`genlab.train.Trainer`. ``tokenizer`` is the trained-here text tower's
    (None with a borrowed tower: its WordPiece tokenizer comes with its weights)."""

    kind = "clip"

    def __init__(self, cfg: CLIPConfig, data: CaptionedImages, tokenizer: ClipTokenizer | None, shift: int = 2,
                 eval_data: CaptionedImages | None = None):
        size = cfg.vision.image_size
        if tuple(data.images.shape[1:]) != (cfg.vision.channels, size, size):
            raise ValueError(f"images are {tuple(data.images.shape[1:])}; the image tower takes {size} px")
        self.cfg, self.data, self.shift, self.eval_data = cfg, data, shift, eval_data
        self.model = CLIP(cfg)
        self.encoder = None
        if cfg.minilm is not None:  # the borrowed text tower: its weights and tokenizer from its file
            self.encoder = load_text_encoder(cfg.minilm.weights)
            load_weights_strict(self.model.text.encoder, self.encoder.weights, self.encoder.ref)
            tokenizer = WordPieceTokenizer.from_json(self.encoder.tokenizer, cfg.minilm)
        elif tokenizer is None:
            raise ValueError("a CLIP that trains its text tower needs the tokenizer of its alphabet")
        self.tokenizer = tokenizer
        self.num_examples = len(data)
        self.ctx = TrainContext(0, 1, torch.device("cpu"))  # the trainer's setup(ctx) says otherwise under torchrun
        self.variants = [caption_variants(c, s, k) for c, s, k in zip(data.captions, data.sources, data.categories)]
        # Every caption variant numbered (item i's j-th is first[i] + j); a borrowed tower's sentence embeddings of
        # them, filled in as they are first drawn.
        self.first = [0, *itertools.accumulate(len(v) for v in self.variants)][:-1]
        self.variant_texts = [v for vs in self.variants for v in vs]
        width = cfg.minilm.width if cfg.minilm is not None else 0
        self.sentences = torch.zeros(len(self.variant_texts), width)  # (N_variants, width)
        self.known = torch.zeros(len(self.variant_texts), dtype=torch.bool)
        self.meta = {"num_examples": self.num_examples}
        if self.encoder is not None:
            terms = LICENSES.get(self.encoder.ref, "see the weights' own licence")
            self.meta["text_encoder"] = {"ref": self.encoder.ref, "hash": self.encoder.hash, "license": terms}

    def setup(self, ctx) -> None:
        """Called by the trainer before training with ``ctx.rank``, ``ctx.world_size``, ``ctx.device``."""
        self.ctx = ctx

    def frozen(self) -> dict[str, nn.Module]:
        return {TEXT_ENCODER: self.model.text.encoder} if self.encoder is not None else {}

    def components(self) -> dict[str, dict[str, str]]:
        return {TEXT_ENCODER: {"ref": self.encoder.ref, "hash": self.encoder.hash}} if self.encoder is not None else {}

    def batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        rows = indices.tolist()
        pick = [int(torch.randint(len(self.variants[i]), ())) for i in rows]
        images = shift_images(self.data.images[indices], self.shift)
        if self.encoder is not None:
            return {"images": images, "captions": torch.tensor([self.first[i] + j for i, j in zip(rows, pick)])}
        texts = [self.variants[i][j] for i, j in zip(rows, pick)]
        return {"images": images, "tokens": self.tokenizer.encode(texts)}

    def encode_text(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Unit text embeddings ``(b, D)`` of a batch: the text tower on its tokens, or the projection of the frozen
        encoder's stored sentence embeddings of its captions."""
        if "tokens" in batch:
            return self.model.encode_text(batch["tokens"])
        ids = batch["captions"].cpu()
        self._embed_sentences(ids)
        sentences = self.sentences[ids].to(batch["captions"].device)  # (b, width)
        return F.normalize(self.model.text.proj(sentences), dim=-1)

    @torch.no_grad()
    def _embed_sentences(self, ids: torch.Tensor) -> None:
        """Store the frozen encoder's sentence embeddings of the captions ``ids`` not seen before (in fp32, also
        under the trainer's bf16 autocast: they are computed once and read for the rest of the run)."""
        new = ids[~self.known[ids]].unique()
        if len(new):
            device = self.model.logit_scale.device
            tokens = self.tokenizer.encode([self.variant_texts[i] for i in new.tolist()]).to(device)
            with torch.autocast(device.type, enabled=False):
                self.sentences[new] = self.model.text.encoder.embed(tokens).float().cpu()
            self.known[new] = True

    def loss(self, batch: dict[str, torch.Tensor], phase: str) -> tuple[torch.Tensor, dict[str, float]]:
        with torch.no_grad():
            self.model.logit_scale.clamp_(0, math.log(self.cfg.logit_scale_max))
        image = self.model.encode_image(normalize(batch["images"], self.cfg.vision))  # (b, D)
        text = self.encode_text(batch)  # (b, D)
        image, text = all_gather(image, self.ctx), all_gather(text, self.ctx)  # the global batch's negatives
        loss, logits = contrastive_loss(image, text, self.model.temperature())
        labels = torch.arange(logits.shape[0], device=logits.device)
        return loss, {
            "loss": loss.item(),
            "temperature": self.model.temperature().item(),
            "acc_i2t": (logits.argmax(1) == labels).float().mean().item(),
            "acc_t2i": (logits.argmax(0) == labels).float().mean().item(),
        }

    def checkpoint_config(self) -> dict:
        """The model config and the trained-here tokenizer (None for a borrowed tower: it comes with its weights)."""
        tokenizer = self.tokenizer.to_json() if self.encoder is None else None
        return {"model": to_dict(self.cfg), "tokenizer": tokenizer}

    @torch.no_grad()
    def evaluate(self, step: int, ema_model) -> dict[str, float]:
        """Recall@1/5 both ways on up to ``eval_pairs`` held-out pairs (captions as given, no template)."""
        from .pipeline import embed_images, embed_texts
        from .zeroshot import recall_at_k

        if self.eval_data is None or len(self.eval_data) == 0:
            return {}
        was_training = ema_model.training
        ema_model.eval()
        image = embed_images(ema_model, self.eval_data.images)
        text = embed_texts(ema_model, self.tokenizer, self.eval_data.captions)
        ema_model.train(was_training)
        return {f"eval/{k}": v for k, v in recall_at_k(image, text, ks=(1, 5)).items()}
