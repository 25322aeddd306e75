"""Text to image with a latent diffusion model: load it with its components, sample with guidance, save with
provenance.

Sampling is the pixel family's loop (:func:`genlab.diffusion.samplers.sample_loop`) on latents: the denoiser it
calls is the UNet wrapped in classifier-free guidance (:func:`genlab.diffusion.samplers.guided`, the prompt and the
negative prompt in one batch), so every sampler guides alike. The final latent is unscaled and decoded by the
autoencoder. Every image written carries the prompt, negative prompt, guidance, sampler, steps, seed and the weights
hashes of the UNet, the autoencoder and the text tower: as JSON (``genlab`` chunk) and in AUTOMATIC1111's
``parameters`` layout, which image tools that know Stable Diffusion show.
"""

from __future__ import annotations

import json
import shlex
import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..checkpoint import load_checkpoint, load_component, load_weights_strict, weights_hash
from ..clip.text import ClipTokenizer
from ..config import from_dict
from ..data.images import make_grid, save_image
from ..diffusion.samplers import SAMPLERS, guided, make_sampler, sample_loop
from ..diffusion.task import to_uint8
from ..errors import GenlabError
from ..models import resolve_model
from .model import LatentDiffusion
from .task import LDM_KIND, VAE_KIND, LDMConfig, check_vae_fits, component_ref, component_state, load_vae_component
from .text import tokenize
from .vae import AutoencoderKL, VAEConfig

A1111_SAMPLERS = {"ddpm": "DDPM", "ddim": "DDIM", "dpmpp-2m": "DPM++ 2M", "dpmpp-2m-karras": "DPM++ 2M Karras",
                  "euler": "Euler Karras", "heun": "Heun Karras"}


@dataclass
class LoadedLDM:
    model: LatentDiffusion
    cfg: LDMConfig
    tokenizer: ClipTokenizer
    source: str
    hashes: dict[str, str]  # weights hash of the checkpoint's own weights ("model") and of each component
    refs: dict[str, str]  # where each component came from
    meta: dict = field(default_factory=dict)


def load(name_or_dir: str, vae: str | None = None, use_ema: bool = True, device: str = "cpu") -> LoadedLDM:
    """A latent diffusion checkpoint (bundled name or directory) with its components, each verified by its weights
    hash. ``vae`` swaps in another autoencoder (refused in one line when its latents do not fit the UNet)."""
    ckpt = load_checkpoint(resolve_model(name_or_dir), kind=LDM_KIND, with_components=False)
    if not isinstance(ckpt.config.get("model"), dict):
        raise GenlabError(f"{ckpt.path}: config.json has no latent diffusion model config")
    cfg = from_dict(LDMConfig, ckpt.config["model"])
    parts, refs = {}, {}
    for name, entry in ckpt.component_refs.items():
        if name == "vae" and vae is not None:  # the user's choice: no recorded hash to match
            parts[name], refs[name] = load_checkpoint(resolve_model(vae), kind=VAE_KIND), component_ref(vae)
        else:
            parts[name] = load_component(name, entry.get("ref", ""), entry.get("hash"), beside=ckpt.path)
            refs[name] = entry.get("ref", "")
    if "vae" not in parts or parts["vae"].kind != VAE_KIND or not isinstance(parts["vae"].config.get("vae"), dict):
        raise GenlabError(f"{ckpt.path}: needs a genlab VAE checkpoint as its 'vae' component")
    vae_cfg = from_dict(VAEConfig, parts["vae"].config["vae"])
    check_vae_fits(vae_cfg, cfg.diffusion.unet, refs["vae"])
    model = LatentDiffusion(cfg.diffusion.unet, vae_cfg, cfg.text, cfg.text_embed_dim)
    own = ckpt.ema if (use_ema and ckpt.ema is not None) else ckpt.model
    state = dict(own)
    for part in parts.values():
        state.update({k: v for k, v in component_state(model, part.model).items() if k not in own})
    load_weights_strict(model, state, ckpt.path)
    tokenizer = ClipTokenizer.from_json(ckpt.config.get("tokenizer"), cfg.text)
    hashes = {"model": weights_hash(own), **{name: weights_hash(p.model) for name, p in parts.items()}}
    return LoadedLDM(model.to(device).eval(), cfg, tokenizer, str(ckpt.path), hashes, refs, ckpt.meta)


def load_vae(ref: str, device: str = "cpu") -> tuple[AutoencoderKL, str]:
    """A genlab VAE checkpoint (a ``genlab train vae`` run, a converted diffusers VAE, a bundled name) and its
    weights hash."""
    comp = load_vae_component(ref)
    vae = AutoencoderKL(from_dict(VAEConfig, comp.config["vae"]))
    load_weights_strict(vae, {k[4:]: v for k, v in comp.weights.items() if k.startswith("vae.")}, comp.ref)
    return vae.to(device).eval(), comp.hash


def check_generation(guidance: float, sampler: str, steps: int, n: int, precision: str = "fp32") -> None:
    """The sampling arguments a user gives, checked before a model is loaded."""
    if not guidance >= 0:  # also refuses NaN
        raise GenlabError(f"guidance scale must be >= 0 (1 = the prompt alone, 0 = unconditional), got {guidance}")
    if sampler not in SAMPLERS:
        raise GenlabError(f"unknown sampler {sampler!r}: choose one of {', '.join(SAMPLERS)}")
    if n < 1 or steps < 1:
        raise GenlabError(f"need n >= 1 and steps >= 1 (got n={n}, steps={steps})")
    if precision not in ("fp32", "bf16"):
        raise GenlabError(f"precision {precision!r}: choose fp32 or bf16")


def _per_image(texts: str | list[str], n: int, what: str) -> list[str]:
    texts = [texts] * n if isinstance(texts, str) else list(texts)
    if len(texts) != n:
        raise GenlabError(f"{len(texts)} {what}s for {n} images")
    return texts


@torch.no_grad()
def generate(loaded: LoadedLDM, prompts: str | list[str], negative: str | list[str] = "", guidance: float = 4.0,
             sampler: str = "dpmpp-2m-karras", steps: int = 25, n: int | None = None, seed: int = 0,
             batch_size: int = 16, precision: str = "fp32", callback=None) -> torch.Tensor:
    """Images uint8 ``(n, 3, H, W)``, one per prompt (a single prompt is repeated ``n`` times). ``negative`` (one or
    one per image) replaces the empty prompt as the unconditional side of guidance. Batch ``b`` draws its noise
    from ``seed + b``, so (seed, n, batch_size) always gives the same images. Prompts longer than the text tower's
    context are cut (:func:`genlab.latent.text.truncated` tells by how much)."""
    n = len(prompts) if n is None and not isinstance(prompts, str) else (n or 1)
    prompts, negatives = _per_image(prompts, n, "prompt"), _per_image(negative, n, "negative prompt")
    check_generation(guidance, sampler, steps, n, precision)
    model, vae_cfg = loaded.model, loaded.model.vae.cfg
    device = next(model.parameters()).device
    schedule = loaded.cfg.diffusion.noise_schedule()
    unet_cfg = loaded.cfg.diffusion.unet
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()

    def unet(x, t, context):
        with autocast:
            return model.unet(x, t, context).float()

    out = []
    for b, start in enumerate(range(0, n, batch_size)):
        rows = slice(start, min(n, start + batch_size))
        cond = model.encode_text(tokenize(loaded.tokenizer, prompts[rows]).to(device))[0]  # (b, L, D)
        uncond = model.encode_text(tokenize(loaded.tokenizer, negatives[rows]).to(device))[0]
        smp = make_sampler(sampler, schedule, prediction_type=loaded.cfg.diffusion.prediction_type)
        smp.set_timesteps(steps)
        generator = torch.Generator().manual_seed(seed + b)
        shape = (len(cond), unet_cfg.in_channels, unet_cfg.image_size, unet_cfg.image_size)
        z = sample_loop(guided(unet, cond, uncond, guidance), smp, shape, generator, callback, device=device)
        with autocast:
            x = model.vae.decode(z / vae_cfg.scaling_factor + vae_cfg.shift_factor).float()
        out.append(to_uint8(x.cpu()))
    return torch.cat(out)


def provenance(loaded: LoadedLDM, prompt: str, negative: str, guidance: float | None, sampler: str, steps: int,
               seed: int, n: int, **extra) -> dict:
    return {
        "prompt": prompt, "negative_prompt": negative, "guidance": guidance, "sampler": sampler, "steps": steps,
        "seed": seed, "n": n, "model": loaded.source, "weights_hash": loaded.hashes.get("model"),
        "components": {name: {"ref": loaded.refs.get(name), "hash": h} for name, h in loaded.hashes.items()
                       if name != "model"},
        **extra,
        "command": " ".join(shlex.quote(a) for a in ["genlab", *sys.argv[1:]]) if sys.argv[1:] else None,
    }


def _a1111_value(value) -> str:
    text = str(value)
    return json.dumps(text) if any(c in text for c in ",:\n\"") else text  # A1111 quotes values with separators


def a1111_parameters(info: dict, size: tuple[int, int]) -> str:
    """The ``parameters`` text AUTOMATIC1111's web UI writes: prompt, ``Negative prompt: ...``, then one line of
    settings (``Steps: 25, Sampler: DPM++ 2M Karras, CFG scale: 4, Seed: 0, Size: 64x64, Model hash: ...``)."""
    lines = [info["prompt"]]
    if info.get("negative_prompt"):
        lines.append(f"Negative prompt: {info['negative_prompt']}")
    components = info.get("components", {})
    settings = [("Steps", info["steps"]), ("Sampler", A1111_SAMPLERS.get(info["sampler"], info["sampler"])),
                ("CFG scale", f"{info['guidance']:g}"), ("Seed", info["seed"]), ("Size", f"{size[1]}x{size[0]}"),
                ("Model hash", info["weights_hash"]), ("Model", Path(info["model"]).name),
                ("VAE hash", components.get("vae", {}).get("hash")), ("VAE", components.get("vae", {}).get("ref"))]
    if "clip" in components:
        settings.append(("Text encoder hash", components["clip"]["hash"]))
    settings.append(("Batch size", info["n"]))
    lines.append(", ".join(f"{k}: {_a1111_value(v)}" for k, v in settings if v is not None))
    return "\n".join(lines)


def save_images(images: torch.Tensor, path: str | Path, info: dict, nrow: int | None = None) -> Path:
    """One grid image in the format ``path``'s suffix names; a PNG gets A1111's ``parameters`` text when ``info``
    holds a prompt."""
    nrow = nrow or max(1, int(len(images) ** 0.5))
    parameters = a1111_parameters(info, tuple(images.shape[-2:])) if "prompt" in info else None
    return save_image(make_grid(images, nrow=nrow), path, info, parameters=parameters)
