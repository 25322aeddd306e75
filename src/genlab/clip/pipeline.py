"""Using a CLIP model: load it (bundled name or checkpoint directory), embed images and texts in batches.

Embeddings are unit length, float32, on the CPU; ``bf16=True`` runs the towers under bf16 autocast (about twice
as fast on CPUs with bf16 matmuls; the embeddings agree with fp32 to about 1e-2).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from ..checkpoint import load_checkpoint, load_weights_strict, weights_hash
from ..config import from_dict
from ..errors import GenlabError
from ..models import resolve_model
from .images import normalize
from .model import CLIP, CLIPConfig
from .text import ClipTokenizer

KIND = "clip"


@dataclass
class LoadedClip:
    model: CLIP
    cfg: CLIPConfig
    tokenizer_json: dict | None
    source: str
    weights_hash: str
    meta: dict

    @property
    def tokenizer(self) -> ClipTokenizer:
        return ClipTokenizer.from_json(self.tokenizer_json, self.cfg.text)


def load(name_or_dir: str, use_ema: bool = True, device: str = "cpu") -> LoadedClip:
    """A bundled model by name (``emoji-clip``) or any genlab CLIP checkpoint / run directory."""
    ckpt = load_checkpoint(resolve_model(name_or_dir), kind=KIND)
    if not isinstance(ckpt.config.get("model"), dict):
        raise GenlabError(f"{ckpt.path}: config.json has no CLIP model config")
    cfg = from_dict(CLIPConfig, ckpt.config["model"])
    model = CLIP(cfg)
    state = ckpt.ema if (use_ema and ckpt.ema is not None) else ckpt.model
    load_weights_strict(model, state, ckpt.path)
    return LoadedClip(model.to(device).eval(), cfg, ckpt.config.get("tokenizer"), str(ckpt.path),
                      weights_hash(state), ckpt.meta)


def _autocast(bf16: bool, device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()


@torch.no_grad()
def embed_images(model: CLIP, images: torch.Tensor, batch_size: int = 64, bf16: bool = False) -> torch.Tensor:
    """uint8 ``(N, C, S, S)`` at the model's size -> unit embeddings ``(N, embed_dim)`` float32."""
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        pixels = normalize(images[start : start + batch_size].to(device), model.cfg.vision)
        with _autocast(bf16, device):
            out.append(model.encode_image(pixels).float().cpu())
    return _unit(out, model.cfg.embed_dim)


@torch.no_grad()
def embed_texts(model: CLIP, tokenizer: ClipTokenizer, texts: Sequence[str], batch_size: int = 256,
                bf16: bool = False) -> torch.Tensor:
    """Texts -> unit embeddings ``(N, embed_dim)`` float32."""
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(texts), batch_size):
        tokens = tokenizer.encode(list(texts[start : start + batch_size])).to(device)
        with _autocast(bf16, device):
            out.append(model.encode_text(tokens).float().cpu())
    return _unit(out, model.cfg.embed_dim)


def _unit(parts: list[torch.Tensor], dim: int) -> torch.Tensor:
    """Concatenated and renormalised in fp32 (a bf16 pass leaves norms 1 +- 1e-2)."""
    return torch.nn.functional.normalize(torch.cat(parts), dim=-1) if parts else torch.zeros(0, dim)
