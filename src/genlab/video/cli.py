"""``genlab train video``, ``genlab sample video`` and ``genlab eval video`` (coherence of a model's clips)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import GenlabError

SAMPLERS = ["ddpm", "ddim", "dpmpp-2m", "dpmpp-2m-karras", "euler", "heun"]


def register(commands) -> None:
    from ..cli import add_train_command

    add_train_command(commands, "video", help="train a video diffusion model (space-time UNet)",
                      presets=["sprites-video", "sprites-video-frames", "tiny"], default="sprites-video",
                      handler=_train)

    def sampling_args(p):
        p.add_argument("--model", default="sprites-video", help="bundled model name or checkpoint directory")
        p.add_argument("--sampler", default="ddim", choices=SAMPLERS)
        p.add_argument("--steps", type=int, default=50)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--no-ema", action="store_true", help="use the raw weights instead of the EMA weights")

    p = commands.sample.add_parser("video", help="sample clips from a video diffusion model (GIF or MP4)")
    sampling_args(p)
    p.add_argument("--frames", type=int, default=None, help="clip length (default: the trained length; more is "
                   "refused)")
    p.add_argument("--n", type=int, default=4, help="clips, tiled side by side")
    p.add_argument("--scale", type=int, default=4, help="enlarge each frame this many times")
    p.add_argument("--out", default="clip.gif", help=".gif (Pillow) or .mp4 (PyAV); provenance in it and <out>.json")
    p.set_defaults(handler=_sample)

    p = commands.data.add_parser("sprite-clips", help="render ground-truth sprite clips (the video training data)")
    p.add_argument("--preset", default="sprites-video", help="whose data config to use")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--split", choices=["train", "test"], default="train", help="training or held-out sprites")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="sprite-clips.gif", help=".gif or .mp4, with the clips' truth in <out>.json")
    p.set_defaults(handler=_data)

    p = commands.eval.add_parser("video", help="object permanence and coherence of a video model's clips")
    sampling_args(p)
    p.add_argument("--lengths", default="8,16,32", help="clip lengths to measure")
    p.add_argument("--n", type=int, default=32, help="clips per length")
    p.add_argument("--no-fid", dest="fid", action="store_false", help="skip the feature-drift measurement")
    p.add_argument("--json", default=None, help="write the report here")
    p.set_defaults(handler=_eval)
    commands.tour_sections.append(tour_section)


def tour_section(out_dir, quick: bool) -> str:
    from .tour import video_section

    return video_section(out_dir, quick)


def _train(args) -> None:
    from ..cli import count_parameters, train_preset
    from .task import PRESETS, VideoTask

    def make_task(run) -> VideoTask:
        run.model.check()
        return VideoTask(run.model)

    def describe(task: VideoTask) -> str:
        unet = task.cfg.unet
        temporal = "joint (temporal attention)" if unet.temporal else "frame by frame (no temporal attention)"
        return f"{count_parameters(task.model)} parameters, {temporal}, {unet.frames} frames of {unet.image_size} px"

    train_preset(args, "video", PRESETS, make_task, describe)


def _sample(args) -> None:
    from .pipeline import check_frames, check_output, generate, load, provenance, save_clips

    if args.n < 1 or args.steps < 1 or args.scale < 1:
        raise GenlabError(f"--n, --steps and --scale must be at least 1 (got {args.n}, {args.steps}, {args.scale})")
    if args.frames is not None and args.frames < 1:
        raise GenlabError(f"--frames {args.frames}: a clip needs at least 1 frame")
    out = check_output(args.out)  # before minutes of sampling
    loaded = load(args.model, use_ema=not args.no_ema)
    frames = check_frames(args.frames or loaded.cfg.unet.frames, loaded.cfg)
    video = generate(loaded.model, loaded.cfg, n=args.n, frames=frames, sampler=args.sampler, steps=args.steps,
                     seed=args.seed)
    info = provenance(loaded, args.sampler, args.steps, args.seed, args.n, frames,
                      temporal=loaded.cfg.unet.temporal)
    path = save_clips(video, out, info, fps=loaded.cfg.unet.fps, scale=args.scale)
    print(f"wrote {path} and {path.name}.json ({args.n} clips of {frames} frames, {args.sampler} {args.steps} "
          f"steps, seed {args.seed})")


def _data(args) -> None:
    from dataclasses import replace

    from ..config import pick_preset
    from .data import load_bank, render_clips, stack_videos
    from .pipeline import check_output, save_clips
    from .task import PRESETS

    if args.frames < 2 or args.n < 1:
        raise GenlabError(f"need --frames >= 2 and --n >= 1 (got {args.frames}, {args.n})")
    out = check_output(args.out)
    data = replace(pick_preset(PRESETS, args.preset).model.data, frames=args.frames)
    data.check()
    bank = load_bank(data)
    clips = render_clips(bank, data, args.seed, range(args.n), args.split)
    truth = [{"sprites": [bank.hexcodes[i] for i in c.ids], "positions_xy": c.positions.tolist(),
              "bar_x": c.bar.tolist()} for c in clips]
    info = {"dataset": "openmoji-sprite-clips", "preset": args.preset, "split": args.split, "seed": args.seed,
            "frames": args.frames, "license": bank.license, "attribution": bank.attribution, "clips": truth}
    path = save_clips(stack_videos(clips), out, info, fps=data.fps)
    print(f"wrote {path} and {path.name}.json ({args.n} {args.split}-sprite clips of {args.frames} frames)")


def _eval(args) -> None:
    from .coherence import report
    from .pipeline import check_frames, load

    try:
        lengths = tuple(int(s) for s in args.lengths.split(","))
    except ValueError:
        raise GenlabError(f"--lengths {args.lengths!r}: expected comma-separated integers") from None
    if args.n < 1:
        raise GenlabError(f"--n {args.n}: need at least one clip")
    if args.json:
        _check_writable(Path(args.json))  # before minutes of sampling
    loaded = load(args.model, use_ema=not args.no_ema)
    for frames in lengths:
        check_frames(frames, loaded.cfg)
    result = {"model": loaded.source, "weights_hash": loaded.weights_hash,
              **report(loaded.model, loaded.cfg, lengths, args.n, args.seed, args.sampler, args.steps, args.fid)}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


def _check_writable(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a"):
            pass
    except OSError as e:
        raise GenlabError(f"cannot write {path}: {e.strerror}") from None
