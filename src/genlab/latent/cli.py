"""``genlab generate image``, ``genlab encode|decode``, ``genlab train vae|ldm``, ``genlab eval vae`` and
``genlab convert --from diffusers-vae``. Heavy imports live inside the handlers.

Every option is checked before a model is loaded: an empty prompt, a negative guidance scale, an unknown sampler,
an unwritable output, a VAE whose latents do not fit the UNet each end the program with one line and exit 2. A
prompt longer than the text tower reads is cut, with a warning.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import GenlabError, check_writable


def register(commands) -> None:
    from ..cli import add_train_command

    p = commands.generate.add_parser("image", help="text to image with a latent diffusion model")
    p.add_argument("prompt", help="what to draw")
    p.add_argument("--model", default="emoji64-ldm", help="bundled model name or latent diffusion checkpoint")
    p.add_argument("--vae", default=None, help="use this autoencoder instead of the model's own (a VAE checkpoint)")
    p.add_argument("--negative", default="", help="negative prompt: what guidance steers away from")
    p.add_argument("--guidance", type=float, default=4.0, help="classifier-free guidance scale (1 = the prompt "
                   "alone, 0 = unconditional; default 4)")
    p.add_argument("--sampler", default="dpmpp-2m-karras", help="ddpm, ddim, dpmpp-2m, dpmpp-2m-karras, euler, heun")
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--n", type=int, default=8, help="images (one grid)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--out", default="image.png", help=".png (provenance in A1111's 'parameters'), .jpg or .webp")
    p.set_defaults(handler=_generate)

    p = commands.top.add_parser("encode", help="images -> latents of a VAE (a safetensors file)")
    p.add_argument("images", nargs="+", help="image files (squared by padding with white to --size)")
    p.add_argument("--vae", default="emoji64-vae", help="bundled name or VAE checkpoint (genlab or converted)")
    p.add_argument("--size", type=int, default=0, help="pixels per side (default: the VAE's training size)")
    p.add_argument("--sample", action="store_true", help="draw z from the posterior instead of taking its mean")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="latents.safetensors")
    p.set_defaults(handler=_encode)

    p = commands.top.add_parser("decode", help="latents (from genlab encode) -> images through a VAE")
    p.add_argument("latents", help="a safetensors file with a 'latents' tensor (N, c, h, w)")
    p.add_argument("--vae", default=None, help="default: the VAE the latents were encoded with")
    p.add_argument("--out", default="decoded.png", help="one grid image: .png, .jpg or .webp")
    p.set_defaults(handler=_decode)

    p = commands.eval.add_parser("vae", help="PSNR, SSIM and FID of a VAE's reconstructions of held-out emoji")
    p.add_argument("--vae", default="emoji64-vae")
    p.add_argument("--n", type=int, default=0, help="held-out images (default: all of the test split)")
    p.add_argument("--json", default=None, help="write the result here")
    p.set_defaults(handler=_eval_vae)

    from .task import LDM_PRESETS, VAE_PRESETS

    add_train_command(commands, "vae", help="train the KL autoencoder of latent diffusion",
                      presets=VAE_PRESETS, default="emoji64-vae", handler=_train_vae)
    add_train_command(commands, "ldm", help="train a text-conditioned latent diffusion model (vae=VAE_CHECKPOINT)",
                      presets=LDM_PRESETS, default="emoji64-ldm", handler=_train_ldm)
    commands.converters["diffusers-vae"] = _convert_vae
    commands.tour_sections.append(tour_section)


# ---------------------------------------------------------------------------------------------------------------


def _check_prompt(prompt: str) -> None:
    if not prompt.strip():
        raise GenlabError("empty prompt: say what to draw (for unconditional samples give any prompt with "
                          "--guidance 0)")


def _generate(args) -> None:
    from ..data.images import check_image_path
    from .pipeline import check_generation, generate, load, provenance, save_images
    from .text import truncated

    _check_prompt(args.prompt)
    check_generation(args.guidance, args.sampler, args.steps, args.n, args.precision)
    check_image_path(args.out)
    loaded = load(args.model, vae=args.vae)
    for what, text in (("prompt", args.prompt), ("negative prompt", args.negative)):
        cut = truncated(loaded.tokenizer, text)
        if cut:
            print(f"genlab: warning: the {what} is cut to the text tower's {loaded.cfg.text.context_length - 2} "
                  f"tokens ({cut} tokens dropped)", file=sys.stderr)
    images = generate(loaded, args.prompt, args.negative, args.guidance, args.sampler, args.steps, args.n,
                      args.seed, precision=args.precision)
    info = provenance(loaded, args.prompt, args.negative, args.guidance, args.sampler, args.steps, args.seed, args.n,
                      precision=args.precision)
    path = save_images(images, args.out, info)
    print(f"wrote {path} ({args.n} images, guidance {args.guidance:g}, {args.sampler} {args.steps} steps, seed "
          f"{args.seed})")


def _read_images(paths: list[str], size: int):
    import numpy as np
    import torch

    from ..clip.images import read_image, to_square

    out = []
    for path in paths:
        result = read_image(path)
        if result.image is None:
            raise GenlabError(f"{path}: {result.skipped}")
        out.append(to_square(result.image, size, "pad"))
    return torch.from_numpy(np.stack(out))  # (N, 3, size, size) uint8


def _encode(args) -> None:
    import torch
    from safetensors.torch import save_file

    from ..diffusion.task import to_model_range
    from .pipeline import load_vae

    check_writable(args.out)
    vae, vae_hash = load_vae(args.vae)
    size = args.size or vae.cfg.image_size
    if size < vae.cfg.factor or size % vae.cfg.factor:
        raise GenlabError(f"--size {size} must be a positive multiple of the VAE's downsampling factor "
                          f"{vae.cfg.factor}")
    images = _read_images(args.images, size)
    with torch.no_grad():
        mean, logvar = vae.encode(to_model_range(images))
        noise = torch.randn(mean.shape, generator=torch.Generator().manual_seed(args.seed))
        z = mean + torch.exp(0.5 * logvar) * noise if args.sample else mean
    meta = {"vae": str(args.vae), "vae_hash": vae_hash, "files": json.dumps(args.images), "size": str(size),
            "sample": str(args.sample), "seed": str(args.seed), "scaling_factor": str(vae.cfg.scaling_factor),
            "what": "unscaled latents z (diffusion uses scaling_factor * (z - shift_factor))"}
    try:
        save_file({"latents": z.contiguous()}, args.out, metadata=meta)
    except OSError as e:
        raise GenlabError(f"cannot write {args.out}: {e.strerror}") from None
    print(f"wrote {args.out}: {len(images)} latents {tuple(z.shape[1:])} from {size} px images")


def _decode(args) -> None:
    import torch
    from safetensors import safe_open

    from ..checkpoint import load_tensors
    from ..data.images import check_image_path, make_grid, save_image
    from ..diffusion.task import to_uint8
    from .pipeline import load_vae

    check_image_path(args.out)
    tensors = load_tensors(Path(args.latents))
    with safe_open(args.latents, framework="pt") as f:
        meta = f.metadata() or {}
    z = tensors.get("latents")
    if z is None or z.ndim != 4:
        raise GenlabError(f"{args.latents}: needs a 'latents' tensor of shape (N, c, h, w)")
    vae_ref = args.vae or meta.get("vae")
    if not vae_ref:
        raise GenlabError(f"{args.latents}: does not say which VAE made it; pass --vae")
    vae, vae_hash = load_vae(vae_ref)
    if z.shape[1] != vae.cfg.latent_channels:
        raise GenlabError(f"{args.latents}: latents have {z.shape[1]} channels; VAE {vae_ref} decodes "
                          f"{vae.cfg.latent_channels}")
    with torch.no_grad():
        images = to_uint8(vae.decode(z.float()))
    info = {"latents": str(Path(args.latents).resolve()), "vae": vae_ref, "vae_hash": vae_hash,
            "encoded_with": meta.get("vae_hash"), "n": len(images)}
    path = save_image(make_grid(images, nrow=max(1, int(len(images) ** 0.5))), args.out, info)
    print(f"wrote {path} ({len(images)} images)")


def _eval_vae(args) -> None:
    from .evaluate import vae_report
    from .pipeline import load_vae

    if args.json:
        check_writable(args.json)
    if args.n < 0:
        raise GenlabError(f"--n must be >= 0, got {args.n}")
    vae, vae_hash = load_vae(args.vae)
    report = {"vae": args.vae, "vae_hash": vae_hash, **vae_report(vae, n=args.n or None)}
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


def _train_vae(args) -> None:
    from ..cli import count_parameters, train_preset
    from .task import VAE_PRESETS, VAETask

    train_preset(args, "vae", VAE_PRESETS, VAETask,
                 lambda task: f"{count_parameters(task.model)} parameters, {task.num_examples} images")


def _train_ldm(args) -> None:
    from ..cli import train_preset
    from .task import LDM_PRESETS, LDMTask

    def describe(task) -> str:
        trained = sum(p.numel() for p in task.model.parameters()) - sum(
            p.numel() for m in task.frozen().values() for p in m.parameters())
        return f"{trained / 1e6:.2f}M trained parameters, {task.num_examples} captioned images, VAE {task.run.vae}"

    train_preset(args, "ldm", LDM_PRESETS, LDMTask, describe)


def _convert_vae(src: str, out: str, args) -> None:
    from .convert import convert_vae

    print(f"wrote genlab VAE checkpoint {convert_vae(src, out)}")


def tour_section(out_dir: Path, quick: bool) -> str:
    from .tour import latent_section

    return latent_section(out_dir, quick)
