"""A fixed feature network for emoji images, the feature space of genlab's FID and precision/recall.

FID (Heusel et al. 2017) is usually measured in the pool features of an ImageNet Inception-v3. Those weights
cannot be downloaded here, and ImageNet features say little about 32 px line-art glyphs anyway, so genlab trains
its own small CNN on the *training split* of OpenMoji at 32 px (``recipes/emoji_features.py``) and ships it as
``assets/emoji-features-32.safetensors`` with its sha256 pinned below: every FID genlab reports is measured with
exactly these weights, and a changed file is refused.

The network is trained with two heads on one 256-d embedding:

- exemplar classification (Dosovitskiy et al. 2014): every training glyph is its own class, seen under small
  shifts and brightness/contrast jitter. To tell each glyph apart the embedding must keep fine shape *and*
  colour (skin-tone variants differ only in colour), while staying invariant to the jitter;
- the Unicode category (Smileys & Emotion, Animals & Nature, ...), which adds coarse semantics.

Hue and saturation are deliberately not augmented: a colour change must move the features.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..config import from_dict, to_dict
from ..data.cache import sha256_file
from ..errors import GenlabError

ASSET = Path(__file__).resolve().parent.parent / "assets" / "emoji-features-32.safetensors"
ASSET_SHA256 = "e37be191a4b3cf000f0b075b4fdd6ee547867b1f9324f9aa34f025850db8e560"  # from recipes/emoji_features.py


@dataclass
class FeatureNetConfig:
    image_size: int = 32
    channels: tuple[int, ...] = (32, 64, 128, 256)  # one stage per entry; stages after the first halve H, W
    embed_dim: int = 256
    num_categories: int = 12
    num_exemplars: int = 0  # training-only head (one class per training glyph); not shipped


class ConvStage(nn.Module):
    """conv3x3 (stride 1 or 2) -> norm -> SiLU -> conv3x3 -> norm -> SiLU."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.norm1 = nn.GroupNorm(8, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(8, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.silu(self.norm1(self.conv1(x)))
        return F.silu(self.norm2(self.conv2(x)))


class EmojiFeatureNet(nn.Module):
    """uint8 or [0, 1] float images ``(B, 3, 32, 32)`` -> a 256-d embedding, category and exemplar logits.

    GroupNorm, not BatchNorm, so that an image's features never depend on the rest of its batch.
    """

    def __init__(self, cfg: FeatureNetConfig):
        super().__init__()
        self.cfg = cfg
        stages, c_in = [], 3
        for i, c in enumerate(cfg.channels):
            stages.append(ConvStage(c_in, c, stride=1 if i == 0 else 2))
            c_in = c
        self.stages = nn.Sequential(*stages)
        self.embed = nn.Linear(c_in, cfg.embed_dim)
        self.category_head = nn.Linear(cfg.embed_dim, cfg.num_categories)
        # Cosine classifier over exemplars (normalised embedding and class vectors, learned scale): with thousands
        # of classes and a few views each it trains more stably than a plain linear layer.
        self.exemplar_head = nn.Linear(cfg.embed_dim, cfg.num_exemplars, bias=False) if cfg.num_exemplars else None
        # shape (1,), not (): checkpoint.weights_hash cannot view a 0-dim tensor as bytes
        self.logit_scale = nn.Parameter(torch.full((1,), 10.0)) if cfg.num_exemplars else None

    @staticmethod
    def preprocess(images: torch.Tensor) -> torch.Tensor:
        """uint8 [0, 255] -> float [-1, 1]."""
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        return x * 2 - 1

    def embedding(self, images: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.preprocess(images))  # (B, C, H/8, W/8)
        return self.embed(x.mean(dim=(2, 3)))  # (B, D)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        z = self.embedding(images)  # (B, D)
        categories = self.category_head(z)  # (B, num_categories)
        exemplars = None
        if self.exemplar_head is not None:
            w = F.normalize(self.exemplar_head.weight, dim=1)  # (num_exemplars, D)
            exemplars = self.logit_scale * F.normalize(z, dim=1) @ w.t()  # (B, num_exemplars)
        return z, categories, exemplars


# ---------------------------------------------------------------------------------------------------------------


def shipped_state(model: EmojiFeatureNet) -> dict[str, torch.Tensor]:
    """The weights that ship: everything but the training-only exemplar head."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith(("exemplar_head", "logit_scale"))}


def save_feature_net(model: EmojiFeatureNet, path: str | os.PathLike, info: dict) -> str:
    """Write the shipped weights with their config and ``info`` in the safetensors header; returns the sha256."""
    from safetensors.torch import save_file

    cfg = to_dict(model.cfg) | {"num_exemplars": 0}
    tensors = {k: v.detach().cpu().contiguous() for k, v in shipped_state(model).items()}
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    save_file(tensors, str(tmp), metadata={"config": json.dumps(cfg), "info": json.dumps(info)})
    os.chmod(tmp, 0o644)  # a package asset, readable by all
    os.replace(tmp, path)
    return sha256_file(path)


_CACHE: dict[str, EmojiFeatureNet] = {}


def load_feature_net(path: str | os.PathLike | None = None, sha256: str | None = None) -> EmojiFeatureNet:
    """The shipped feature network (eval mode, frozen), after checking the file against the pinned sha256.

    ``path``/``sha256`` exist for the recipe (which checks a freshly trained file) and tests; FID numbers are only
    comparable when both are left at their defaults.
    """
    path = Path(path) if path is not None else ASSET
    expected = sha256 or ASSET_SHA256
    if not path.is_file():
        raise GenlabError(f"{path}: the emoji feature network is missing (reinstall genlab)")
    digest = sha256_file(path)
    if digest != expected:
        raise GenlabError(f"{path}: sha256 {digest[:12]}... does not match the pinned {expected[:12]}...; refusing it")
    if digest in _CACHE:
        return _CACHE[digest]
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        cfg = from_dict(FeatureNetConfig, json.loads(f.metadata()["config"]))
        state = {k: f.get_tensor(k) for k in f.keys()}
    model = EmojiFeatureNet(cfg)
    model.load_state_dict(state)
    model.eval().requires_grad_(False)
    _CACHE[digest] = model
    return model


def feature_net_info(path: str | os.PathLike | None = None) -> dict:
    """The training record stored in the shipped file's header (data, steps, accuracy, command)."""
    from safetensors import safe_open

    with safe_open(str(path or ASSET), framework="pt") as f:
        return json.loads(f.metadata().get("info", "{}"))
