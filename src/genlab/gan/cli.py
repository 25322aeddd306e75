"""``genlab train gan``, ``genlab sample gan`` (grid, latent walk, truncation row, style mixing) and
``genlab project IMAGE`` (a real image into the generator's w space)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import GenlabError, check_writable

# The keys of task.PRESETS, listed here so that `genlab --help` does not import torch (a test keeps them equal).
PRESET_NAMES = ["emoji32-gan", "fashion-gan", "emoji32-dcgan", "emoji16-collapse", "emoji16-fixed", "digits-gan",
                "tiny"]


def register(commands) -> None:
    from ..cli import add_train_command

    p = add_train_command(commands, "gan", help="train a GAN (StyleGAN2 or the DCGAN baseline)", presets=PRESET_NAMES,
                          default="emoji32-gan", handler=_train)
    p.add_argument("--monitor", type=int, default=500, metavar="N",
                   help="mode-collapse signals from N samples at each train.eval_every (emoji only; 0: off)")

    p = commands.sample.add_parser("gan", help="sample a GAN: a grid, a latent walk (GIF/MP4), truncation, mixing")
    p.add_argument("--model", default="emoji32-gan", help="bundled model name or checkpoint directory")
    p.add_argument("--n", type=int, default=16, help="samples in the grid (or per truncation row set)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--psi", type=float, default=1.0, help="truncation in [0, 1]: 1 = none, 0 = the average image")
    p.add_argument("--class", dest="label", type=int, default=None, help="class index of a conditional GAN")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights instead of the EMA generator")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--walk", action="store_true", help="a looping latent walk, written as .gif or .mp4")
    mode.add_argument("--truncation", action="store_true", help="rows of samples from psi 1 down to 0")
    mode.add_argument("--mixing", action="store_true", help="a style-mixing grid (coarse styles from the top row)")
    p.add_argument("--frames", type=int, default=60, help="frames of a walk")
    p.add_argument("--keyframes", type=int, default=4, help="latents a walk loops through")
    p.add_argument("--space", choices=["w", "z"], default="w", help="walk linearly in w or spherically in z")
    p.add_argument("--fps", type=int, default=20)
    p.add_argument("--scale", type=int, default=4, help="enlarge walk frames this many times (nearest)")
    p.add_argument("--out", default=None, help="grid.png, or walk.gif / walk.mp4 with --walk")
    p.set_defaults(handler=_sample)

    p = commands.top.add_parser("project", help="find the w of a real image in a GAN (optimisation)")
    p.add_argument("image", help="the target image (PNG, JPEG, ...); resized to the model's size if needed")
    p.add_argument("--model", default="emoji32-gan", help="bundled model name or checkpoint directory")
    p.add_argument("--out", required=True, help="directory for target.png, projection.png, progress.gif, w")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=_project)

    commands.tour_sections.append(tour_section)


def _train(args) -> None:
    from ..cli import count_parameters, train_preset
    from .task import PRESETS, GANTask

    if args.monitor < 0:
        raise GenlabError(f"--monitor must be >= 0, got {args.monitor}")

    def make_task(run):
        monitor = None
        if run.train.eval_every and args.monitor and run.model.dataset.startswith("emoji"):
            from .monitor import CollapseMonitor

            monitor = CollapseMonitor(run.model.dataset, n=args.monitor)
        return GANTask(run.model, seed=run.train.seed, monitor=monitor)

    train_preset(args, "gan", PRESETS, make_task, lambda task: f"G {count_parameters(task.model.G)}, D "
                 f"{count_parameters(task.model.D)} parameters, {task.num_examples} images")


def _sample(args) -> None:
    from ..data.images import check_image_path
    from .latent import check_animation_path, save_animation, style_mixing_grid, truncation_row, walk
    from .pipeline import check_psi, class_labels, generate_images, load, provenance, save_grid

    check_psi(args.psi)
    if args.n < 1:
        raise GenlabError(f"--n must be at least 1, got {args.n}")
    if args.walk and args.frames < 1:
        raise GenlabError(f"--frames must be at least 1, got {args.frames}")
    if args.scale < 1 or args.fps < 1:
        raise GenlabError(f"--scale and --fps must be at least 1 (got {args.scale}, {args.fps})")
    out = Path(args.out or ("walk.gif" if args.walk else "samples.png"))
    if args.walk:
        check_animation_path(out)
    else:
        check_image_path(out)
    loaded = load(args.model, use_ema=not args.no_ema)
    G, spec = loaded.G, loaded.spec
    info = provenance(loaded, seed=args.seed, psi=args.psi, label=args.label)
    if args.walk:
        frames = walk(G, spec, args.seed, args.frames, args.keyframes, args.space, args.psi, args.label)
        save_animation(frames, out, {**info, "walk": args.space, "frames": args.frames, "keyframes": args.keyframes,
                                     "fps": args.fps}, fps=args.fps, scale=args.scale)
        print(f"wrote {out} ({args.frames} frames, {args.space}-walk through {args.keyframes} latents of seed "
              f"{args.seed})")
    elif args.truncation:
        psis = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)
        images = truncation_row(G, spec, args.seed, psis, count=args.n, label=args.label)
        save_grid(images, out, {**info, "psi": list(psis)}, nrow=len(psis))
        print(f"wrote {out} ({args.n} samples x psi {', '.join(map(str, psis))})")
    elif args.mixing:
        side = max(2, min(8, args.n))
        images = style_mixing_grid(G, spec, list(range(args.seed, args.seed + side)),
                                   list(range(args.seed + side, args.seed + 2 * side)), label=args.label)
        save_grid(images, out, {**info, "mixing": "coarse styles from the top row"}, nrow=side + 1)
        print(f"wrote {out} (style mixing, {side} x {side})")
    else:
        labels = class_labels(spec, args.n, args.label)
        images = generate_images(G, spec, args.n, args.seed, args.psi, labels)
        save_grid(images, out, {**info, "n": args.n})
        print(f"wrote {out} ({args.n} samples, seed {args.seed}, psi {args.psi})")


def read_target(path: str | Path, size: int, channels: int) -> tuple:
    """The image at ``path`` as uint8 ``(C, size, size)`` and a note if it had to be converted or resized.

    Transparent pixels are composited on white (emoji are drawn on white); a non-square image is centre-cropped.
    """
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise GenlabError(f"{path}: no such image file")
    try:
        with Image.open(path) as im:
            im.load()
            img = im.convert("RGBA")
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise GenlabError(f"{path}: not an image ({type(e).__name__})") from None
    background = Image.new("RGBA", img.size, "white")
    img = Image.alpha_composite(background, img).convert("RGB" if channels == 3 else "L")
    note = None
    if img.size != (size, size):
        w, h = img.size
        side = min(w, h)
        img = img.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side))
        img = img.resize((size, size), Image.Resampling.LANCZOS)
        note = f"{path.name} is {w}x{h}; centre-cropped and resized to the model's {size}x{size}"
    x = np.asarray(img)
    x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)  # (C, size, size)
    return torch.from_numpy(np.array(x, copy=True)), note


def _project(args) -> None:
    import torch
    from safetensors.torch import save_file

    from ..data.images import make_grid, save_png
    from .latent import PerceptualDistance, project, save_animation
    from .pipeline import load, provenance

    if args.steps < 1:
        raise GenlabError(f"--steps must be at least 1, got {args.steps}")
    out = check_writable(Path(args.out), directory=True)
    loaded = load(args.model)
    net = loaded.spec.net
    target, note = read_target(args.image, net.image_size, net.image_channels)
    if note:
        print(f"note: {note}")
    frames = []
    every = max(1, args.steps // 60)
    result = project(loaded.G, loaded.spec, target, steps=args.steps, seed=args.seed, distance=PerceptualDistance(),
                     callback=lambda step, img: frames.append(img) if step % every == 0 else None)
    info = provenance(loaded, target=str(args.image), steps=args.steps, seed=args.seed,
                      perceptual=result["perceptual"], pixel_rmse=result["pixel_rmse"])
    save_png(make_grid(target[None], nrow=1, pad=0), out / "target.png", {**info, "image": "target"})
    save_png(make_grid(result["image"][None], nrow=1, pad=0), out / "projection.png", {**info, "image": "projection"})
    save_png(make_grid(torch.stack([target, result["image"]]), nrow=2), out / "side_by_side.png", info)
    save_animation(torch.stack(frames + [result["image"]]), out / "progress.gif", {**info, "image": "optimisation"},
                   fps=15, scale=4)
    save_file({"w": result["w"].contiguous()}, str(out / "w.safetensors"), metadata={"provenance": json.dumps(info)})
    (out / "projection.json").write_text(json.dumps({**info, "loss_history": result["history"]}, indent=2) + "\n")
    print(f"wrote {out}: perceptual distance {result['perceptual']:.4f}, pixel RMSE {result['pixel_rmse']:.4f}")


def tour_section(out_dir: Path, quick: bool) -> str:
    from .tour import gan_section

    return gan_section(out_dir, quick)
