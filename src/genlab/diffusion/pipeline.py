"""Using a trained diffusion model: load it (by bundled name or directory), sample, save images with provenance.

The sampling loop itself is :func:`genlab.diffusion.samplers.sample_loop` — a handful of visible lines. Every image
written here (PNG, JPEG or WebP, as the suffix says) carries the model's weights hash, the sampler, the steps, the
seed and the command that reproduces it (read it back with :func:`genlab.data.images.read_image_provenance`).
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoint import load_checkpoint, load_weights_strict, weights_hash
from ..config import from_dict
from ..data.images import make_grid, save_image, save_png
from ..errors import GenlabError
from ..models import ASSETS, REGISTRY, resolve_model
from .model import UNet
from .samplers import make_sampler, sample_loop
from .schedule import NoiseSchedule, make_prediction, split_prediction
from .task import DiffusionConfig, build_model, to_uint8

# The diffusion models of genlab.models.REGISTRY (benchmarks/diffusion_sweep.py writes their metrics.json).
BUNDLED = {name: ASSETS / REGISTRY[name].asset for name in ("emoji32-ddpm",)}


@dataclass
class LoadedModel:
    model: UNet
    cfg: DiffusionConfig
    source: str
    weights_hash: str
    meta: dict


def load(name_or_dir: str, use_ema: bool = True, device: str = "cpu") -> LoadedModel:
    """Load a bundled model by name (``emoji32-ddpm``) or any genlab diffusion checkpoint / run directory."""
    ckpt = load_checkpoint(resolve_model(name_or_dir), kind="diffusion")
    cfg = from_dict(DiffusionConfig, ckpt.config)
    model = build_model(cfg)
    state = ckpt.ema if (use_ema and ckpt.ema is not None) else ckpt.model
    load_weights_strict(model, state, ckpt.path)
    model.to(device).eval()
    return LoadedModel(model, cfg, str(ckpt.path), weights_hash(state), ckpt.meta)


def clip_denoised(model_fn, schedule: NoiseSchedule, prediction_type: str):
    """Wrap ``model_fn`` so that the clean image it implies is clamped to the data range [-1, 1].

    Ho et al. 2020 clip the predicted x0 when sampling (``clip_denoised=True`` in their code): at high noise an
    eps-model's x0 estimate is the noise divided by sqrt(abar_t) ~ 0.006, and without the clamp an imperfect model
    can drive the sample out of range. Done here, around the model, it applies to every sampler alike (the samplers
    themselves stay equal to diffusers'). Fractional timesteps (Euler, Heun) get sigma by log-linear interpolation.
    """

    def wrapped(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = model_fn(x_t, t)
        sigma_vp = torch.as_tensor(schedule.t_to_sigma(t.detach().cpu().double().numpy()), dtype=x_t.dtype)
        abar = (1 / (1 + sigma_vp**2)).to(x_t.device).view(-1, *([1] * (x_t.ndim - 1)))  # (B, 1, 1, 1)
        alpha, sigma = abar.sqrt(), (1 - abar).sqrt()
        x0, _ = split_prediction(out, x_t, alpha, sigma, prediction_type)
        x0 = x0.clamp(-1, 1)
        eps = (x_t - alpha * x0) / sigma
        return make_prediction(x0, eps, alpha, sigma, prediction_type)

    return wrapped


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    cfg: DiffusionConfig,
    n: int,
    sampler: str = "ddim",
    steps: int = 50,
    seed: int = 0,
    batch_size: int = 256,
    callback=None,
    precision: str = "fp32",
    clip: bool = True,
    amp: bool | None = None,
) -> torch.Tensor:
    """``n`` samples as uint8 (n, C, H, W). Batch ``b`` draws its noise from ``seed + b``, so a given
    (seed, n, batch_size) always gives the same images, and any batch can be regenerated on its own. ``clip``
    clamps the model's implied clean image to [-1, 1] at every step (see :func:`clip_denoised`). ``precision``
    ``bf16`` runs the UNet under bf16 autocast (``amp=True`` is the old spelling, still read for
    benchmarks/diffusion_sweep.py)."""
    if amp is not None:
        precision = "bf16" if amp else "fp32"
    check_sampling(n, steps, precision)
    schedule = cfg.noise_schedule()
    device = next(model.parameters()).device
    size = cfg.unet.image_size
    out = []
    for b, start in enumerate(range(0, n, batch_size)):
        count = min(batch_size, n - start)
        smp = make_sampler(sampler, schedule, prediction_type=cfg.prediction_type)
        smp.set_timesteps(steps)
        generator = torch.Generator().manual_seed(seed + b)

        def model_fn(x, t):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                return model(x, t).float()

        fn = clip_denoised(model_fn, schedule, cfg.prediction_type) if clip else model_fn
        x = sample_loop(fn, smp, (count, cfg.unet.in_channels, size, size), generator, callback, device=device)
        out.append(to_uint8(x.cpu()))
    return torch.cat(out)


def check_sampling(n: int, steps: int, precision: str = "fp32") -> None:
    """The sampling arguments a user gives, checked before a model is loaded."""
    if n < 1 or steps < 1:
        raise GenlabError(f"need n >= 1 and steps >= 1 (got n={n}, steps={steps})")
    if precision not in ("fp32", "bf16"):
        raise GenlabError(f"precision {precision!r}: choose fp32 or bf16")


def provenance(loaded: LoadedModel, sampler: str, steps: int, seed: int, n: int, **extra) -> dict:
    return {
        "model": loaded.source,
        "weights_hash": loaded.weights_hash,
        "sampler": sampler,
        "steps": steps,
        "seed": seed,
        "n": n,
        **extra,
        "command": " ".join(shlex.quote(a) for a in ["genlab", *sys.argv[1:]]) if sys.argv[1:] else None,
    }


def save_grid(images: torch.Tensor, path: str | Path, info: dict, nrow: int | None = None) -> Path:
    """One grid image, in the format ``path``'s suffix names (.png, .jpg, .webp), provenance inside."""
    nrow = nrow or max(1, int(len(images) ** 0.5))
    return save_image(make_grid(images, nrow=nrow), path, info)


def save_each(images: torch.Tensor, directory: str | Path, info: dict) -> list[Path]:
    """One PNG per sample, each with its index in the provenance."""
    directory = Path(directory)
    return [save_png(make_grid(img[None], nrow=1, pad=0), directory / f"{i:05d}.png", {**info, "index": i})
            for i, img in enumerate(images)]
