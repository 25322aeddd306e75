"""Clips whose ground truth is known: real OpenMoji sprites moving behind an occluding bar.

Object permanence can only be scored exactly where the truth is known, so the training and evaluation clips are
rendered: ``objects`` emoji (OpenMoji, CC BY-SA 4.0, drawn by :mod:`genlab.data.emoji`) move with integer
velocities and bounce off the frame's edges, on a white background, while a full-height grey bar stands (or
slides) in front of them. Every clip keeps its truth: which sprite each object is, its top-left position in every
frame, the bar's position and how much of each object is visible.

The rules that make the truth unambiguous, and that :mod:`genlab.video.coherence` relies on:

- positions and velocities are integers, so a sprite is pasted pixel-exactly and moves with zero acceleration
  except where it bounces (the unfolded position ``x0 + v t`` folded into ``[0, L]``, a triangle wave);
- objects never overlap one another (trajectories are drawn again until they do not), so only the bar occludes;
- every object is fully visible in frame 0, and the bar keeps ``bar_margin`` pixels from the walls, so an object
  is never hidden while it bounces and is seen at least twice after a bounce before the bar can hide it;
- the bar is wider than a sprite, so an object passing behind it disappears completely.

The sprite bank is chosen once per configuration, deterministically: sprites far from a blank (white) square and
from one another (farthest-point selection on pixels), ``sprites`` from the emoji training split for training and
``held_out`` from the held-out split for evaluation. A sprite's mask is everything not connected to its border
through near-white pixels, so white eyes and teeth stay part of the face.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import GenlabError

WHITE_LEVEL = 235  # pixels at least this bright in all channels and connected to the border are background
MIN_INK = 0.12  # every half of a bank sprite differs from white by this mean squared error (pixels in [0, 1])
MIN_COVER = 0.35  # and covers at least this fraction of its square


@dataclass
class SpriteClipConfig:
    """How clips are drawn. Velocities are in pixels per frame; ``fps`` is only the playback rate."""

    frames: int = 16
    size: int = 32  # frame height and width
    sprite_size: int = 8
    objects: int = 2
    max_speed: int = 2  # |vx| in 1..max_speed (objects always cross the frame), |vy| in 0..1
    bar_width: int = 10  # wider than a sprite: an object behind it is hidden completely
    bar_speed: int = 0  # 0: a standing bar; else it slides and bounces between its margins
    bar_color: tuple[int, int, int] = (110, 110, 110)
    sprites: int = 32  # training sprites in the bank
    held_out: int = 16  # held-out sprites (emoji test split) for evaluation
    fps: float = 8.0
    emoji_limit: int = 0  # > 0: draw the bank from only this many emoji (tests)

    def bar_range(self) -> tuple[int, int]:
        """The bar's left edge stays in ``[lo, hi]``: far enough from the walls that an object half behind it
        cannot be bouncing, and has moved ``2 max_speed`` pixels since its last bounce."""
        lo = math.ceil(self.sprite_size / 2) + 2 * self.max_speed + 1
        return lo, self.size - self.bar_width - lo

    def check(self) -> None:
        lo, hi = self.bar_range()
        problems = []
        if self.frames < 2:
            problems.append(f"frames={self.frames} (a clip needs at least 2)")
        if self.bar_width <= self.sprite_size:
            problems.append(f"bar_width={self.bar_width} must exceed sprite_size={self.sprite_size} to hide a sprite")
        if hi < lo:
            problems.append(f"no room for the bar: size={self.size} is too small for sprite_size, bar_width, "
                            f"max_speed")
        if self.objects < 1 or self.objects * self.sprite_size > self.size:
            problems.append(f"objects={self.objects} do not fit side by side in {self.size} px")
        if self.max_speed < 1:
            problems.append(f"max_speed={self.max_speed} (objects must move)")
        if self.sprites < self.objects:
            problems.append(f"sprites={self.sprites} is fewer than objects={self.objects}")
        if problems:
            raise GenlabError("bad sprite-clip config: " + "; ".join(problems))


# ---------------------------------------------------------------------------------------------------------------
# The sprite bank


@dataclass
class SpriteBank:
    """``images`` uint8 ``(N, 3, s, s)`` drawn on white, ``masks`` bool ``(N, s, s)``; the first ``n_train`` are
    training sprites, the rest held out."""

    images: torch.Tensor
    masks: torch.Tensor
    hexcodes: list[str]
    captions: list[str]
    n_train: int
    attribution: str
    license: str

    def __len__(self) -> int:
        return len(self.hexcodes)

    def ids(self, split: str) -> np.ndarray:
        if split == "train":
            return np.arange(self.n_train)
        if split == "test":
            return np.arange(self.n_train, len(self))
        raise GenlabError(f"unknown sprite split {split!r}: use train or test")


def sprite_mask(image: np.ndarray) -> np.ndarray:
    """uint8 ``(3, s, s)`` on white -> bool ``(s, s)``: the pixels not joined to the border by near-white ones."""
    from scipy import ndimage

    light = (image >= WHITE_LEVEL).all(0)  # (s, s)
    labels, _ = ndimage.label(light)  # 4-connected regions of near-white
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    background = np.isin(labels, border[border > 0])
    return ~background


def partial_ink(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``(N,)``: the least mean squared difference from white (pixels in [0, 1]) of any part of each sprite that
    the bar can leave in view alone: its mask pixels left of a column cut, or right of it, whenever that part holds
    at least half of the mask. A sprite whose visible half could pass for blank background is no use to tell
    objects apart."""
    ink = ((1 - images / 255.0) ** 2).mean(1) * masks  # (N, s, s) per-pixel ink on the mask
    col_ink, col_px = ink.sum(1), masks.sum(1)  # (N, s) per column
    worst = np.full(len(images), np.inf)
    for part in (slice(None), slice(None, None, -1)):  # parts from the left, then from the right
        ink_c, px_c = np.cumsum(col_ink[:, part], 1), np.cumsum(col_px[:, part], 1)  # (N, s)
        big = px_c >= masks.sum((1, 2))[:, None] / 2
        worst = np.minimum(worst, np.where(big, ink_c / np.maximum(px_c, 1), np.inf).min(1))
    return worst


def _farthest(candidates: np.ndarray, chosen: list[np.ndarray], count: int) -> list[int]:
    """Farthest-point selection: repeatedly take the candidate whose nearest chosen vector is farthest."""
    nearest = np.full(len(candidates), np.inf)
    for c in chosen:
        nearest = np.minimum(nearest, ((candidates - c) ** 2).mean(1))
    picked = []
    for _ in range(min(count, len(candidates))):
        i = int(nearest.argmax())
        picked.append(i)
        nearest = np.minimum(nearest, ((candidates - candidates[i]) ** 2).mean(1))
        nearest[i] = -1.0
    return picked


def load_bank(cfg: SpriteClipConfig) -> SpriteBank:
    """The bank of ``cfg``: ``cfg.sprites`` training sprites then ``cfg.held_out`` held-out ones (deterministic)."""
    from ..data import emoji

    source = emoji.load_emoji(cfg.sprite_size, "all", limit=cfg.emoji_limit or None)
    split = np.array([emoji.split_of(h) for h in source.hexcodes])
    images = source.images.numpy()  # (N, 3, s, s) uint8
    masks = np.stack([sprite_mask(im) for im in images])  # (N, s, s)
    flat = np.where(masks[:, None], images, 255).reshape(len(images), -1) / 255.0  # composited on white
    usable = (partial_ink(images, masks) >= MIN_INK) & (masks.mean((1, 2)) >= MIN_COVER)
    white = np.ones(flat.shape[1])
    chosen: list[np.ndarray] = [white]
    order = []
    for part, count in (("train", cfg.sprites), ("test", cfg.held_out)):
        pool = np.flatnonzero(usable & (split == part))
        picked = pool[_farthest(flat[pool], chosen, count)]
        if len(picked) < count:
            raise GenlabError(f"only {len(picked)} usable {part} emoji for a bank of {count} sprites at "
                              f"{cfg.sprite_size} px (emoji_limit={cfg.emoji_limit})")
        chosen += list(flat[picked])
        order += picked.tolist()
    meta = emoji.emoji_meta(cfg.sprite_size, cfg.emoji_limit or None)
    return SpriteBank(
        images=torch.from_numpy(np.where(masks[order][:, None], images[order], 255).astype(np.uint8)),
        masks=torch.from_numpy(masks[order]),
        hexcodes=[source.hexcodes[i] for i in order],
        captions=[source.captions[i] for i in order],
        n_train=cfg.sprites,
        attribution=meta["attribution"],
        license=meta["license"],
    )


# ---------------------------------------------------------------------------------------------------------------
# Trajectories and rendering


def bounce(start: np.ndarray, velocity: np.ndarray, frames: int, high: int | np.ndarray) -> np.ndarray:
    """Integer positions ``(F, ...)`` of points moving at constant ``velocity`` between the walls 0 and ``high``:
    the unfolded path ``start + v t`` folded into ``[0, high]`` (a triangle wave of period ``2 high``)."""
    t = np.arange(frames).reshape(-1, *([1] * np.ndim(start)))
    u = np.mod(start + velocity * t, 2 * high)
    return np.where(u > high, 2 * high - u, u)


@dataclass
class Clip:
    """One rendered clip and its truth: ``video`` uint8 ``(3, F, H, W)``; ``ids`` ``(K,)`` bank indices;
    ``positions`` ``(F, K, 2)`` top-left (x, y); ``bar`` ``(F,)`` the bar's left edge; ``visible`` ``(F, K)`` the
    fraction of each sprite's mask not behind the bar."""

    video: np.ndarray
    ids: np.ndarray
    positions: np.ndarray
    bar: np.ndarray
    visible: np.ndarray


def _trajectories(cfg: SpriteClipConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Object positions ``(F, K, 2)`` and bar left edges ``(F,)`` obeying the module's rules."""
    F, K, s, L = cfg.frames, cfg.objects, cfg.sprite_size, cfg.size - cfg.sprite_size
    lo, hi = cfg.bar_range()
    for _ in range(10_000):
        bar0 = rng.integers(lo, hi + 1)
        bar_v = rng.choice([-cfg.bar_speed, cfg.bar_speed])
        bar = lo + bounce(np.array(bar0 - lo), np.array(bar_v), F, max(hi - lo, 1)) if hi > lo else np.full(F, lo)
        # Frame 0: every object clear of the bar.
        free = np.array([x for x in range(L + 1) if x + s <= bar[0] or x >= bar[0] + cfg.bar_width])
        start = np.stack([rng.choice(free, K), rng.integers(0, L + 1, K)], axis=-1)  # (K, 2)
        speed = np.stack([rng.integers(1, cfg.max_speed + 1, K) * rng.choice([-1, 1], K),
                          rng.integers(-1, 2, K)], axis=-1)  # (K, 2)
        pos = bounce(start, speed, F, L)  # (F, K, 2)
        gap = np.abs(pos[:, :, None] - pos[:, None, :]).max(-1)  # (F, K, K) Chebyshev distance between objects
        if K == 1 or (gap + s * np.eye(K)).min() >= s:
            return pos, np.asarray(bar).reshape(F)
    raise GenlabError("could not draw non-overlapping trajectories: too many objects for the frame")


def render_clip(bank: SpriteBank, cfg: SpriteClipConfig, seed: int, index: int, split: str = "train") -> Clip:
    """Clip ``index`` of the stream ``seed``: a pure function of both (the trainer draws clips by index)."""
    rng = np.random.default_rng([seed, index, 0 if split == "train" else 1])
    ids = rng.choice(bank.ids(split), cfg.objects, replace=False)
    positions, bar = _trajectories(cfg, rng)
    video, visible = paint(bank, cfg, np.broadcast_to(ids, positions.shape[:2]), positions, bar)
    return Clip(video, ids, positions, bar, visible)


def paint(bank: SpriteBank, cfg: SpriteClipConfig, ids: np.ndarray, positions: np.ndarray,
          bar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Draw sprites ``ids`` ``(F, K)`` (-1: absent) at ``positions`` ``(F, K, 2)`` behind the bar at ``bar``
    ``(F,)``. Returns the video uint8 ``(3, F, H, W)`` and each sprite's visible fraction ``(F, K)``. Tests paint
    hand-made failures (a swapped sprite, a vanished one) with it."""
    F, S, s = len(positions), cfg.size, cfg.sprite_size
    video = np.full((F, S, S, 3), 255, dtype=np.uint8)  # (F, H, W, 3)
    sprites = bank.images.numpy().transpose(0, 2, 3, 1)  # (N, s, s, 3)
    masks = bank.masks.numpy()
    visible = np.zeros(ids.shape)
    for t in range(F):
        covered = np.zeros(S, dtype=bool)
        covered[bar[t] : bar[t] + cfg.bar_width] = True
        for k, n in enumerate(ids[t]):
            if n < 0:
                continue
            x, y = positions[t, k]
            patch = video[t, y : y + s, x : x + s]
            patch[masks[n]] = sprites[n][masks[n]]
            visible[t, k] = (masks[n] & ~covered[x : x + s][None, :]).sum() / masks[n].sum()
        video[t, :, bar[t] : bar[t] + cfg.bar_width] = cfg.bar_color  # the bar stands in front
    return video.transpose(3, 0, 1, 2).copy(), visible  # (3, F, H, W)


def render_clips(bank: SpriteBank, cfg: SpriteClipConfig, seed: int, indices, split: str = "train") -> list[Clip]:
    return [render_clip(bank, cfg, seed, int(i), split) for i in indices]


def stack_videos(clips: list[Clip]) -> torch.Tensor:
    """uint8 ``(N, 3, F, H, W)``."""
    return torch.from_numpy(np.stack([c.video for c in clips]))


# ---------------------------------------------------------------------------------------------------------------
# Real footage (Debian packages, installed by scripts/install.d/video.sh) for a qualitative check and feature drift

REAL_CLIPS = {
    "vtest": ("/usr/share/doc/opencv-doc/examples/data/vtest.avi", "opencv-doc", "Apache-2.0 AND BSD-3-Clause",
              "pedestrians on a plaza, OpenCV's sample video"),
    "cockatoo": ("/usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4", "python3-imageio",
                 "BSD-2-Clause", "a cockatoo, imageio's sample video"),
}


def load_real_clips(name: str, frames: int, size: int = 32, stride: int = 1, limit: int | None = None) -> dict:
    """Consecutive ``frames``-frame clips of a real video, centre-cropped square and resized to ``size`` px:
    ``{"video": uint8 (N, 3, F, size, size), "source", "package", "license", "description", "fps"}``. Every
    ``stride``-th frame is kept (``fps`` is the kept rate); ``limit`` caps the number of clips."""
    from PIL import Image

    if name not in REAL_CLIPS:
        raise GenlabError(f"unknown real clip {name!r}: choose one of {', '.join(REAL_CLIPS)}")
    path, package, license, description = REAL_CLIPS[name]
    try:
        import av
    except ImportError:
        raise GenlabError("reading real video needs PyAV (pip install av)") from None
    try:
        container = av.open(path)
    except (OSError, av.error.FFmpegError):
        raise GenlabError(f"{path} is missing or unreadable: install the Debian package {package} "
                          "(scripts/install.d/video.sh)") from None
    kept, need = [], None if limit is None else limit * frames
    with container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate) / stride
        for i, frame in enumerate(container.decode(stream)):
            if i % stride:
                continue
            image = frame.to_image()  # PIL RGB
            side = min(image.size)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)
            kept.append(np.asarray(image))
            if need is not None and len(kept) >= need:
                break
    n = len(kept) // frames
    if n == 0:
        raise GenlabError(f"{path} has {len(kept)} frames at stride {stride}, fewer than one clip of {frames}")
    video = np.stack(kept[: n * frames]).reshape(n, frames, size, size, 3).transpose(0, 4, 1, 2, 3)
    return {"video": torch.from_numpy(np.ascontiguousarray(video)), "source": path, "package": package,
            "license": license, "description": description, "fps": fps}
