"""``genlab train|sample|eval ... diffusion``, ``genlab convert --from diffusers``, and the tour's diffusion section."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import GenlabError, check_writable

SAMPLERS = ["ddpm", "ddim", "dpmpp-2m", "dpmpp-2m-karras", "euler", "heun"]


def register(commands) -> None:
    from ..cli import add_train_command

    add_train_command(commands, "diffusion", help="train a pixel diffusion model (DDPM)",
                      presets=["emoji32", "emoji64", "digits"], default="emoji32", handler=_train)

    def sampling_args(p):
        p.add_argument("--model", default="emoji32-ddpm", help="bundled model name or checkpoint directory")
        p.add_argument("--sampler", default="dpmpp-2m", choices=SAMPLERS)
        p.add_argument("--steps", type=int, default=20)
        p.add_argument("--n", type=int, default=16)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--no-ema", action="store_true", help="use the raw weights instead of the EMA weights")
        p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                       help="bf16: autocast the UNet (about 2x faster on CPU at large batch)")
        p.add_argument("--bf16", dest="precision", action="store_const", const="bf16", help=argparse.SUPPRESS)
        p.add_argument("--no-clip", dest="clip", action="store_false",
                       help="do not clamp the predicted clean image to [-1, 1] at each step (Ho et al. do)")

    p = commands.sample.add_parser("diffusion", help="sample images from a diffusion model")
    sampling_args(p)
    p.add_argument("--out", default="samples.png", help="the grid image: .png, .jpg/.jpeg or .webp (provenance in "
                   "a PNG text chunk, or in EXIF ImageDescription for JPEG/WebP)")
    p.add_argument("--save-each", default=None, metavar="DIR", help="also write every sample as its own PNG")
    p.set_defaults(handler=_sample)

    p = commands.eval.add_parser("fid", help="FID / precision / recall of samples vs the held-out emoji split")
    sampling_args(p)
    p.set_defaults(n=2000)
    p.add_argument("--json", default=None, help="write the result here")
    p.set_defaults(handler=_eval_fid)

    commands.converters["diffusers"] = _convert_diffusers
    commands.tour_sections.append(tour_section)


def _train(args) -> None:
    from ..cli import count_parameters, train_preset
    from .task import PRESETS, DiffusionTask

    train_preset(args, "diffusion", PRESETS, lambda run: DiffusionTask(run.model),
                 lambda task: f"{count_parameters(task.model)} parameters, {task.num_examples} images")


def _load_and_generate(args):
    from .pipeline import generate, load, provenance

    loaded = load(args.model, use_ema=not args.no_ema)
    images = generate(loaded.model, loaded.cfg, n=args.n, sampler=args.sampler, steps=args.steps, seed=args.seed,
                      precision=args.precision, clip=args.clip)
    return loaded, images, provenance(loaded, args.sampler, args.steps, args.seed, args.n, precision=args.precision,
                                      clip=args.clip)


def _sample(args) -> None:
    from ..data.images import check_image_path
    from .pipeline import check_sampling, save_each, save_grid

    # Everything the user gave is checked before minutes of sampling.
    check_sampling(args.n, args.steps, args.precision)
    check_image_path(args.out)
    if args.save_each:
        check_writable(args.save_each, directory=True)
    loaded, images, info = _load_and_generate(args)
    path = save_grid(images, args.out, info)
    print(f"wrote {path} ({len(images)} samples, {args.sampler} {args.steps} steps, seed {args.seed})")
    if args.save_each:
        paths = save_each(images, args.save_each, info)
        print(f"wrote {len(paths)} images to {args.save_each}")


def _eval_fid(args) -> None:
    from ..eval.fid import fid_report
    from .pipeline import check_sampling

    check_sampling(args.n, args.steps, args.precision)
    if args.json:
        check_writable(args.json)
    loaded, images, info = _load_and_generate(args)
    if loaded.cfg.dataset != "emoji32":
        raise GenlabError(f"FID is defined on emoji32 (genlab's feature network); {args.model} is {loaded.cfg.dataset}")
    info["precision_mode"] = info.pop("precision", args.precision)  # "precision" is the metric in the report
    report = {**info, **fid_report(images, n=args.n, seed=args.seed)}
    print(json.dumps({k: v for k, v in report.items() if not isinstance(v, (list, dict))}, indent=2))
    if args.json:
        try:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        except OSError as e:
            raise GenlabError(f"cannot write {args.json}: {e.strerror}") from None


def _convert_diffusers(src: str, out: str, args) -> None:
    from ..interop.diffusers import convert_unet

    path = convert_unet(src, out)
    print(f"wrote genlab diffusion checkpoint {path}")


def tour_section(out_dir: Path, quick: bool) -> str:
    from .tour import diffusion_section

    return diffusion_section(out_dir, quick)
