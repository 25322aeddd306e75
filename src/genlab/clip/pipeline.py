"""Using a CLIP model: load it (bundled name or checkpoint directory), embed images and texts in batches.

A CLIP with a borrowed text tower (``CLIPConfig.minilm``) holds only its own weights; its checkpoint names the frozen
sentence encoder as the component ``text_encoder`` (a :data:`genlab.models.REGISTRY` name such as ``minilm-l6``, or
a safetensors file, with its weights hash), and :func:`load` puts the two together. The encoder's
``tokenizer.json`` lies beside its weights.

Embeddings are unit length, float32, on the CPU; ``bf16=True`` runs the towers under bf16 autocast (about twice
as fast on CPUs with bf16 matmuls; the embeddings agree with fp32 to about 1e-2). On the CPU both run through
:mod:`genlab.clip.fast` (the same embeddings, with less work around the products).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..checkpoint import load_checkpoint, load_tensors, load_weights_strict, weights_hash
from ..config import from_dict
from ..errors import GenlabError
from ..models import REGISTRY, resolve_model
from . import fast
from .images import normalize
from .model import CLIP, CLIPConfig
from .text import ClipTokenizer, WordPieceTokenizer

KIND = "clip"
TEXT_ENCODER = "text_encoder"  # the component name of a borrowed text tower


@dataclass
class LoadedClip:
    model: CLIP
    cfg: CLIPConfig
    tokenizer_json: dict | None
    source: str
    weights_hash: str  # of the checkpoint's own weights; a borrowed text tower is identified in ``components``
    meta: dict
    components: dict = field(default_factory=dict)  # as the checkpoint records them: {name: {"ref", "hash"}}

    @property
    def tokenizer(self) -> ClipTokenizer | WordPieceTokenizer:
        if self.cfg.minilm is not None:
            return WordPieceTokenizer.from_json(self.tokenizer_json, self.cfg.minilm)
        return ClipTokenizer.from_json(self.tokenizer_json, self.cfg.text)


@dataclass
class TextEncoder:
    """A frozen sentence encoder read from its weights file: how a checkpoint refers to it, the hash of the file's
    weights (what the reference is checked against), the weights under genlab's names, and its tokenizer JSON."""

    ref: str
    hash: str
    weights: dict[str, torch.Tensor]
    tokenizer: dict


def load_text_encoder(ref: str) -> TextEncoder:
    """The encoder's weights from a :data:`genlab.models.REGISTRY` name (``minilm-l6``) or a safetensors file of HF
    ``BertModel`` names with a ``tokenizer.json`` beside it."""
    path = resolve_model(ref)
    if not (path.is_file() and path.suffix == ".safetensors"):
        raise GenlabError(f"text encoder {ref!r}: {path} is not a safetensors file")
    return _text_encoder(ref if ref in REGISTRY else str(path.resolve()), path, load_tensors(path))


def _text_encoder(ref: str, path: Path, state: dict[str, torch.Tensor]) -> TextEncoder:
    from .convert import from_hf_bert_state

    tokenizer = path.parent / "tokenizer.json"
    try:
        tokenizer_json = json.loads(tokenizer.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GenlabError(f"text encoder {ref!r}: cannot read {tokenizer} ({getattr(e, 'strerror', None) or e})") \
            from None
    return TextEncoder(ref, weights_hash(state), from_hf_bert_state(state), tokenizer_json)


def load(name_or_dir: str, use_ema: bool = True, device: str = "cpu") -> LoadedClip:
    """A bundled model by name (``emoji-clip``) or any genlab CLIP checkpoint / run directory; a borrowed text
    tower comes from the checkpoint's ``text_encoder`` component (its hash checked by ``load_checkpoint``)."""
    ckpt = load_checkpoint(resolve_model(name_or_dir), kind=KIND)
    if not isinstance(ckpt.config.get("model"), dict):
        raise GenlabError(f"{ckpt.path}: config.json has no CLIP model config")
    cfg = from_dict(CLIPConfig, ckpt.config["model"])
    model = CLIP(cfg)
    state = ckpt.ema if (use_ema and ckpt.ema is not None) else ckpt.model
    own_hash, tokenizer = weights_hash(state), ckpt.config.get("tokenizer")
    if cfg.minilm is not None:
        if TEXT_ENCODER not in ckpt.components:
            raise GenlabError(f"{ckpt.path}: a CLIP with a borrowed text tower needs its {TEXT_ENCODER!r} component")
        part = ckpt.components[TEXT_ENCODER]
        encoder = _text_encoder(ckpt.component_refs[TEXT_ENCODER]["ref"], part.path, part.model)
        state = {**state, **{f"text.encoder.{k}": v for k, v in encoder.weights.items()}}
        tokenizer = encoder.tokenizer
    load_weights_strict(model, state, ckpt.path)
    return LoadedClip(model.to(device).eval(), cfg, tokenizer, str(ckpt.path), own_hash, ckpt.meta,
                      ckpt.component_refs)


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
            out.append(fast.encode_image(model, pixels).float().cpu())
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
            out.append(fast.encode_text(model, tokens).float().cpu())
    return _unit(out, model.cfg.embed_dim)


def _unit(parts: list[torch.Tensor], dim: int) -> torch.Tensor:
    """Concatenated and renormalised in fp32 (a bf16 pass leaves norms 1 +- 1e-2)."""
    return torch.nn.functional.normalize(torch.cat(parts), dim=-1) if parts else torch.zeros(0, dim)
