"""Using a trained GAN: load its generator (bundled name or directory), draw latents, sample, save with provenance.

Sample ``i`` of ``(seed, n)`` comes from its own generator seeded by ``(seed, i)`` — its latent and its noise maps
— so it is the same image whatever ``n`` or batch size, and any one sample can be regenerated alone. Every PNG
carries the model's weights hash, the seed, psi, labels and the command in a text chunk.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import load_checkpoint, load_weights_strict, weights_hash
from ..config import from_dict
from ..data.images import make_grid, save_image
from ..errors import GenlabError
from ..models import resolve_model
from .model import GAN
from .task import GANSpec, draw, mix_seed, to_uint8


@dataclass
class LoadedGAN:
    G: nn.Module
    spec: GANSpec
    source: str
    weights_hash: str
    meta: dict


def load(name_or_dir: str, use_ema: bool = True, device: str = "cpu") -> LoadedGAN:
    """The generator of a bundled GAN (``emoji32-gan``, ``fashion-gan``) or of any genlab GAN checkpoint / run dir.

    A training checkpoint holds the whole GAN (``G.``, ``D.``, ...) and the EMA generator; an exported model holds
    the EMA generator alone. ``use_ema=False`` takes the raw training weights.
    """
    ckpt = load_checkpoint(resolve_model(name_or_dir), kind="gan")
    spec = from_dict(GANSpec, ckpt.config)
    G = GAN(spec.net, spec.loss.augment).G
    if use_ema and ckpt.ema is not None:
        state = ckpt.ema
    elif any(k.startswith("G.") for k in ckpt.model):
        state = {k[2:]: v for k, v in ckpt.model.items() if k.startswith("G.")}
    else:
        state = ckpt.model
    load_weights_strict(G, state, ckpt.path)
    G.to(device).eval().requires_grad_(False)
    return LoadedGAN(G, spec, str(ckpt.path), weights_hash(state), ckpt.meta)


def sample_latents(G: nn.Module, seed: int, n: int, start: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Latents ``(n, z_dim)`` and noise maps of samples ``start .. start + n - 1`` of ``seed``."""
    seeds = torch.tensor([mix_seed(seed, i) for i in range(start, start + n)], dtype=torch.long)
    d = draw(seeds, stream=2, z_dim=G.z_dim, noise_shapes=G.noise_shapes())
    return d.z, d.noise


def class_labels(spec: GANSpec, n: int, label: int | None = None) -> torch.Tensor | None:
    """Labels of ``n`` conditional samples: ``label`` for all, else cycling 0, 1, ..., K - 1; None if unconditional."""
    k = spec.net.num_classes
    if not k:
        if label is not None:
            raise GenlabError("this GAN is unconditional: it takes no class")
        return None
    if label is not None and not 0 <= label < k:
        raise GenlabError(f"class {label} is out of range: this GAN has classes 0-{k - 1}")
    return torch.full((n,), label) if label is not None else torch.arange(n) % k


def check_psi(psi: float) -> None:
    if not 0.0 <= psi <= 1.0:
        raise GenlabError(f"psi must be in [0, 1] (1 = no truncation, 0 = the average image), got {psi}")


@torch.no_grad()
def generate_images(G: nn.Module, spec: GANSpec, n: int, seed: int = 0, psi: float = 1.0,
                    labels: torch.Tensor | None = None, batch_size: int = 64, start: int = 0) -> torch.Tensor:
    """``n`` samples as uint8 ``(n, C, S, S)``; sample ``i`` depends only on ``(seed, start + i)``, ``psi``, label."""
    if n < 1:
        raise GenlabError(f"need n >= 1 samples, got {n}")
    check_psi(psi)
    if labels is None:
        labels = class_labels(spec, n)
    device = next(G.parameters()).device
    out = []
    for lo in range(0, n, batch_size):
        hi = min(n, lo + batch_size)
        z, noise = sample_latents(G, seed, hi - lo, start=start + lo)
        c = labels[lo:hi].to(device) if labels is not None else None
        ws = G.mapping(z.to(device), c, psi)  # (b, num_ws, w_dim)
        img = G.synthesis(ws, noise=[m.to(device) for m in noise] if noise else "none")
        out.append(to_uint8(img.cpu()))
    return torch.cat(out)


def provenance(loaded: LoadedGAN, **params) -> dict:
    return {
        "model": loaded.source,
        "weights_hash": loaded.weights_hash,
        **params,
        "command": " ".join(shlex.quote(a) for a in ["genlab", *sys.argv[1:]]) if sys.argv[1:] else None,
    }


def save_grid(images: torch.Tensor, path: str | Path, info: dict, nrow: int | None = None) -> Path:
    nrow = nrow or max(1, int(len(images) ** 0.5))
    return save_image(make_grid(images, nrow=nrow), path, info)
