"""Using a trained video diffusion model: load it, sample clips, write them as GIF or MP4 with provenance.

Sampling a clip is sampling an image with one more axis: the noise is ``(n, 3, F, H, W)`` and any sampler of
:mod:`genlab.diffusion.samplers` steps it, because the sampler contract never looks at the shape. The loop is
:func:`genlab.diffusion.samplers.sample_loop`, written out there in a few lines.

Every file written here carries its provenance (weights hash, sampler, steps, seed, frames, command): in the GIF's
comment extension or the MP4's ``comment`` tag, and in a sidecar ``<file>.json`` beside it.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_checkpoint, load_weights_strict, weights_hash
from ..config import from_dict
from ..data.images import make_grid
from ..diffusion.pipeline import clip_denoised
from ..diffusion.samplers import make_sampler, sample_loop
from ..errors import GenlabError
from ..models import resolve_model
from .model import VideoUNet
from .task import VideoConfig, build_model, to_uint8

FORMATS = (".gif", ".mp4")


@dataclass
class LoadedModel:
    model: VideoUNet
    cfg: VideoConfig
    source: str
    weights_hash: str
    meta: dict


def load(name_or_dir: str, use_ema: bool = True, device: str = "cpu") -> LoadedModel:
    """A bundled model by name (``sprites-video``) or any genlab video checkpoint / run directory."""
    ckpt = load_checkpoint(resolve_model(name_or_dir), kind="video")
    cfg = from_dict(VideoConfig, ckpt.config)
    model = build_model(cfg)
    state = ckpt.ema if (use_ema and ckpt.ema is not None) else ckpt.model
    load_weights_strict(model, state, ckpt.path)
    model.to(device).eval()
    return LoadedModel(model, cfg, str(ckpt.path), weights_hash(state), ckpt.meta)


def check_frames(frames: int, cfg: VideoConfig) -> int:
    """Clips up to the trained length sample; longer ones are refused (their frame offsets were never seen)."""
    if not 1 <= frames <= cfg.unet.frames:
        raise GenlabError(f"--frames {frames}: this model makes 1 to {cfg.unet.frames} frames (it was trained on "
                          f"clips of up to {cfg.unet.frames}; longer clips are refused, not extrapolated)")
    return frames


@torch.no_grad()
def generate(model: torch.nn.Module, cfg: VideoConfig, n: int, frames: int, sampler: str = "ddim", steps: int = 50,
             seed: int = 0, batch_size: int = 16, clip: bool = True, callback=None) -> torch.Tensor:
    """``n`` clips as uint8 ``(n, 3, F, H, W)``. Batch ``b`` draws its noise from ``seed + b``, so a given
    (seed, n, batch_size) always gives the same clips. ``clip`` clamps the implied clean clip to [-1, 1] at every
    step, as for images (:func:`genlab.diffusion.pipeline.clip_denoised`)."""
    if n < 1 or steps < 1:
        raise GenlabError(f"need n >= 1 and steps >= 1 (got n={n}, steps={steps})")
    check_frames(frames, cfg)
    schedule = cfg.noise_schedule()
    device = next(model.parameters()).device
    size = cfg.unet.image_size
    out = []
    for b, start in enumerate(range(0, n, batch_size)):
        count = min(batch_size, n - start)
        smp = make_sampler(sampler, schedule, prediction_type=cfg.prediction_type)
        smp.set_timesteps(steps)
        fn = clip_denoised(model, schedule, cfg.prediction_type) if clip else model
        generator = torch.Generator().manual_seed(seed + b)
        x = sample_loop(fn, smp, (count, 3, frames, size, size), generator, callback, device=device)  # (b, 3, F, H, W)
        out.append(to_uint8(x.cpu()))
    return torch.cat(out)


def provenance(loaded: LoadedModel, sampler: str, steps: int, seed: int, n: int, frames: int, **extra) -> dict:
    return {
        "model": loaded.source,
        "weights_hash": loaded.weights_hash,
        "sampler": sampler,
        "steps": steps,
        "seed": seed,
        "n": n,
        "frames": frames,
        "fps": loaded.cfg.unet.fps,
        **extra,
        "command": " ".join(shlex.quote(a) for a in ["genlab", *sys.argv[1:]]) if sys.argv[1:] else None,
    }


# ---------------------------------------------------------------------------------------------------------------
# Files


def check_output(path: str | os.PathLike) -> Path:
    """Refuse, before any sampling, an output that cannot be written: unknown suffix, MP4 without PyAV, or a
    directory that cannot be created or written to."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise GenlabError(f"cannot write {path}: the clip format is chosen by the suffix, {' or '.join(FORMATS)}")
    if path.suffix.lower() == ".mp4":
        try:
            import av  # noqa: F401
        except ImportError:
            raise GenlabError(f"cannot write {path}: MP4 needs PyAV (pip install av); .gif needs nothing") from None
    for target in (path, path.with_name(path.name + ".json")):  # the clip and its sidecar replace files only
        if target.is_dir():
            raise GenlabError(f"cannot write {path}: {target} is a directory")
    ancestor = next(p for p in (path.parent, *path.parent.parents) if p.exists())
    if not ancestor.is_dir():
        raise GenlabError(f"cannot write {path}: {ancestor} is a file, not a directory")
    probe = path.with_name(f".{path.name}.probe-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise GenlabError(f"cannot write {path}: {e.strerror or e}") from None
    return path


def tile(video: torch.Tensor, scale: int = 1) -> np.ndarray:
    """uint8 ``(n, 3, F, H, W)`` -> uint8 ``(F, H', W', 3)``: the n clips side by side in a grid, each frame
    enlarged ``scale`` times (nearest neighbour)."""
    n = video.shape[0]
    nrow = max(1, int(np.ceil(n**0.5)))
    frames = [np.asarray(make_grid(video[:, :, f], nrow=nrow)) for f in range(video.shape[2])]  # (H', W', 3) each
    grid = np.stack(frames)  # (F, H', W', 3)
    return grid.repeat(scale, axis=1).repeat(scale, axis=2) if scale > 1 else grid


def save_clips(video: torch.Tensor, path: str | os.PathLike, info: dict, fps: float = 8.0, scale: int = 4) -> Path:
    """Write clips uint8 ``(n, 3, F, H, W)`` tiled in one animation (GIF or MP4 by suffix), with ``info`` in its
    comment and in ``<path>.json``; written to a temporary name and renamed."""
    path = check_output(path)
    frames = tile(video, scale)
    text = json.dumps(info, separators=(",", ":"), sort_keys=True, default=str)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    try:
        if path.suffix.lower() == ".gif":
            _write_gif(frames, tmp, fps, text)
        else:
            _write_mp4(frames, tmp, fps, text)
        os.replace(tmp, path)
        sidecar = path.with_name(path.name + ".json")
        sidecar.write_text(json.dumps(info, indent=2, sort_keys=True, default=str) + "\n")
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise GenlabError(f"cannot write {path}: {e.strerror or e}") from None
    return path


def _write_gif(frames: np.ndarray, path: Path, fps: float, comment: str) -> None:
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0,
                   comment=comment.encode())


def _write_mp4(frames: np.ndarray, path: Path, fps: float, comment: str) -> None:
    from fractions import Fraction

    import av

    F, H, W, _ = frames.shape
    with av.open(str(path), mode="w", format="mp4") as container:
        container.metadata["comment"] = comment
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = W + W % 2, H + H % 2  # yuv420p wants even sizes
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12"}
        for f in frames:
            f = np.pad(f, ((0, H % 2), (0, W % 2), (0, 0)), mode="edge")
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode())


def read_clip(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """The frames uint8 ``(F, H, W, 3)`` of a GIF or MP4 and the provenance in its comment ({} if none)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".gif":
            from PIL import Image, ImageSequence

            with Image.open(path) as im:
                comment = im.info.get("comment", b"")
                frames = np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)])
        else:
            import av

            with av.open(str(path)) as container:
                comment = container.metadata.get("comment", "")
                frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    except (OSError, ValueError) as e:
        raise GenlabError(f"cannot read clip {path}: {e}") from None
    comment = comment.decode() if isinstance(comment, bytes) else comment
    return frames, (json.loads(comment) if comment else {})
