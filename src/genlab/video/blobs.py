"""Coherence without a sprite detector: the bar, the objects as colour blobs, and their tracks.

The detector of :mod:`genlab.video.coherence` wants pixel-exact sprites (it is the identity measure), so it finds
nothing in clips whose objects are sprite-sized coloured shapes that are not quite sprites. The measures here ask
only what every clip of the sprite world shows: a grey bar that stands still, a few coloured objects on white paper,
each moving smoothly and keeping its colours, and coming out of the bar as the object that went in. Nothing reads a
clip's ground truth. Rendered clips are not perfect on them (an object behind the bar is not seen, two objects side
by side can merge into one blob, a sliver at the bar's edge is too small to count), so their scores are the ceiling;
the same frames shuffled in time, or taken from a different clip in every frame, are floors
(``tests/video/test_video_blobs.py`` checks that each measure separates rendered clips from the floor that breaks
what it looks at).

1. **Bar**: in each frame, the columns :func:`~genlab.video.coherence.bar_columns` finds; its position is their
   centre.
2. **Blobs**: foreground is every pixel farther from white paper than the renderer's own background rule allows
   (a channel below ``data.WHITE_LEVEL``) and farther than ``bar_tolerance`` from the bar's colour. It is grown by one
   pixel (so an object drawn in pieces, or a sprite cut by white eyes or outlines, stays one object; alone on paper,
   every bank sprite is then one component) and cut into 8-connected components; a component with at least
   ``min_area`` foreground pixels is an object. Its centroid, columns, mean colour and per-channel colour histogram
   are taken over its foreground pixels.
3. **Tracks**: the blobs of consecutive frames are paired by the Hungarian algorithm on centroid distance; a pair
   farther than ``gate`` is not linked, and an unpaired blob starts a new track.

The scores (arrows say which way is better; rendered clips give the ceiling):

- ``bar_found`` ↑: fraction of frames with a bar; ``bar_still`` ↑: fraction of clips whose bar is found in every
  frame and never moves, its centre changing by less than ``bar_step`` columns between frames; ``bar_shift`` ↓: mean
  ``|change|`` of the bar's centre between consecutive frames, in columns;
- ``count_constancy`` ↑: fraction of frames holding their clip's modal number of blobs; ``count_modal_true`` ↑:
  fraction of clips whose modal number is ``data.objects``; ``count_changes`` ↓: fraction of consecutive frame pairs
  whose numbers of blobs differ (the first two are blind to the order of the frames, this one is not);
- ``linked`` ↑: fraction of blobs after the first frame that continue a track;
- ``jerk`` ↓: mean ``|c(t+1) - 2 c(t) + c(t-1)|_1`` of a track's centroids in pixels (``triples`` of them). Rendered
  objects move at constant velocity except where they bounce off a wall or slide behind the bar (a half-hidden blob's
  centroid moves at another speed), so theirs is small, not 0;
- ``colour_step`` ↓: mean absolute change of a track's mean colour between consecutive frames (per channel, pixels
  in [0, 1]); ``histogram_step`` ↓: mean total-variation distance between its colour histograms (per channel,
  averaged: 0 the same colours, 1 none shared); both over the ``pairs`` of linked blobs;
- ``through_bar`` ↑: when a track ends at the bar and another starts at the bar's other side within ``within``
  frames, with a second object in view when the first went in: whether the track that came out is closer in colour
  histogram (its blobs' mean) to the one that went in than to that second object (ties count half): a choice of
  two, chance 0.5, over ``crossings`` events. Where two objects pass the bar together it can pair the wrong ones, so
  rendered clips score a little below 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .coherence import CoherenceConfig, bar_columns
from .data import WHITE_LEVEL, Clip, SpriteBank, SpriteClipConfig


@dataclass
class BlobConfig:
    paper_level: int = WHITE_LEVEL  # a pixel at least this bright (0-255) in every channel is paper
    bar_tolerance: float = CoherenceConfig.bar_tolerance  # one within this of the bar's colour (in [0, 1]) is bar
    bar_fill: float = CoherenceConfig.bar_fill  # a column is bar where this fraction of its pixels is bar-coloured
    bar_step: float = 1.0  # the bar moved where its centre changed by this many columns (0.5 is one edge's jitter)
    bar_margin: int = 1  # a blob within this many columns of the bar's edge is at the bar
    min_area: int = 0  # foreground pixels of an object (0: a sixteenth of a sprite's square)
    gate: float = 0.0  # link distance in pixels (0: half a sprite)
    within: int = 0  # a reappearance counts up to this many frames after the entry (0: see ``reappear_window``)
    bins: int = 4  # histogram bins per channel


def reappear_window(data: SpriteClipConfig) -> int:
    """Frames an object moving at the slowest speed (1 px a frame) takes to pass a bar from first touching it to
    leaving it: ``bar_width + sprite_size``. Every rendered crossing fits in it."""
    return data.bar_width + data.sprite_size


@dataclass
class Blob:
    x: float  # centroid, pixels
    y: float
    area: int  # foreground pixels
    left: int  # first and last column, inclusive
    right: int
    colour: np.ndarray  # (3,) mean RGB in [0, 1]
    hist: np.ndarray  # (3, bins) per-channel histogram, each row sums to 1


@dataclass
class BlobTrack:
    start: int  # the frame of its first blob
    blobs: list[Blob] = field(default_factory=list)  # one per frame from ``start`` on

    @property
    def end(self) -> int:
        return self.start + len(self.blobs) - 1


@dataclass
class ClipView:
    """What the measures see of one clip: the bar's first and last column per frame (NaN where none), the blobs of
    each frame and their tracks."""

    bar_left: np.ndarray  # (T,)
    bar_right: np.ndarray  # (T,)
    blobs: list[list[Blob]]
    tracks: list[BlobTrack]

    def at_bar(self, t: int, b: Blob, margin: int) -> bool:
        lo, hi = self.bar_left[t], self.bar_right[t]
        return bool(np.isfinite(lo) and b.left <= hi + 1 + margin and b.right >= lo - 1 - margin)

    def side(self, t: int, b: Blob) -> float:
        """-1 left of the bar, +1 right of it."""
        return float(np.sign(b.x - (self.bar_left[t] + self.bar_right[t]) / 2))


# ---------------------------------------------------------------------------------------------------------------
# 1-3. The bar, the blobs of each frame and their tracks


def foreground(frames: torch.Tensor, color: tuple[int, int, int], bc: BlobConfig) -> np.ndarray:
    """``frames`` float ``(T, 3, H, W)`` in [0, 1] -> bool ``(T, H, W)``: pixels neither paper nor bar."""
    bar = torch.tensor(color, dtype=frames.dtype).view(1, 3, 1, 1) / 255
    paper = ((frames * 255).round() >= bc.paper_level).all(1)  # (T, H, W)
    barlike = (frames - bar).abs().amax(1) <= bc.bar_tolerance  # (T, H, W)
    return (~paper & ~barlike).numpy()


def frame_blobs(frame: np.ndarray, fg: np.ndarray, min_area: int, bins: int) -> list[Blob]:
    """The objects of one frame: ``frame`` float ``(3, H, W)`` in [0, 1], ``fg`` its bool foreground ``(H, W)``."""
    from scipy import ndimage

    eight = np.ones((3, 3), dtype=bool)
    labels, _ = ndimage.label(ndimage.binary_dilation(fg, eight), structure=eight)  # (H, W) components, grown
    labels = np.where(fg, labels, 0)  # measured on foreground pixels only
    out = []
    for k in np.unique(labels[labels > 0]):
        ys, xs = np.nonzero(labels == k)
        if len(xs) < min_area:
            continue
        pixels = frame[:, ys, xs]  # (3, A)
        index = np.minimum((pixels * bins).astype(int), bins - 1)  # (3, A) bin of each channel value
        hist = np.stack([np.bincount(row, minlength=bins) for row in index]) / len(xs)  # (3, bins)
        out.append(Blob(float(xs.mean()), float(ys.mean()), len(xs), int(xs.min()), int(xs.max()), pixels.mean(1),
                        hist))
    return out


def link(blobs: list[list[Blob]], gate: float) -> list[BlobTrack]:
    """Tracks through the frames: each frame's blobs paired with the previous frame's by least total centroid
    distance (the assignment problem of the Hungarian method, Kuhn 1955: scipy's ``linear_sum_assignment``), pairs
    farther than ``gate`` left unpaired."""
    from scipy.optimize import linear_sum_assignment

    tracks: list[BlobTrack] = []
    active: list[BlobTrack] = []  # the tracks with a blob in the previous frame
    for t, current in enumerate(blobs):
        paired: dict[int, BlobTrack] = {}
        if active and current:
            last = np.array([[tr.blobs[-1].x, tr.blobs[-1].y] for tr in active])  # (A, 2)
            now = np.array([[b.x, b.y] for b in current])  # (B, 2)
            dist = np.linalg.norm(last[:, None] - now[None], axis=-1)  # (A, B)
            # Infeasible pairs cost more than all feasible ones together: the most pairs within the gate are made.
            rows, cols = linear_sum_assignment(np.where(dist <= gate, dist, 1e6))
            paired = {j: active[i] for i, j in zip(rows, cols) if dist[i, j] <= gate}
        active = []
        for j, b in enumerate(current):
            tr = paired.get(j)
            if tr is None:
                tr = BlobTrack(start=t)
                tracks.append(tr)
            tr.blobs.append(b)
            active.append(tr)
    return tracks


def view_clip(frames: torch.Tensor, data: SpriteClipConfig, bc: BlobConfig) -> ClipView:
    """Bar, blobs and tracks of one clip ``(T, 3, H, W)`` in [0, 1]."""
    covered = bar_columns(frames, data.bar_color, CoherenceConfig(bar_tolerance=bc.bar_tolerance,
                                                                  bar_fill=bc.bar_fill)).numpy()  # (T, W)
    where = [np.flatnonzero(c) for c in covered]
    bar_left = np.array([w.min() if len(w) else np.nan for w in where], dtype=float)  # (T,)
    bar_right = np.array([w.max() if len(w) else np.nan for w in where], dtype=float)  # (T,)
    fg = foreground(frames, data.bar_color, bc)  # (T, H, W)
    pixels = frames.numpy()
    min_area = bc.min_area or data.sprite_size**2 // 16
    blobs = [frame_blobs(pixels[t], fg[t], min_area, bc.bins) for t in range(len(frames))]
    tracks = link(blobs, bc.gate or data.sprite_size / 2)
    return ClipView(bar_left, bar_right, blobs, tracks)


# ---------------------------------------------------------------------------------------------------------------
# The measures of one clip, each as (sum, count) pairs so that clips add up


def bar_stats(v: ClipView, bc: BlobConfig) -> dict[str, tuple[float, int]]:
    centre = (v.bar_left + v.bar_right) / 2  # (T,) NaN where no bar
    shift = np.abs(np.diff(centre))  # (T-1,)
    both = np.isfinite(shift)
    still = bool(np.isfinite(centre).all() and (shift < bc.bar_step).all())
    return {"bar_found": (float(np.isfinite(centre).sum()), len(centre)), "bar_still": (float(still), 1),
            "bar_shift": (float(shift[both].sum()), int(both.sum()))}


def count_stats(v: ClipView, data: SpriteClipConfig) -> dict[str, tuple[float, int]]:
    counts = np.array([len(b) for b in v.blobs])  # (T,)
    modal = int(np.bincount(counts).argmax())  # the smallest of tied modes
    return {"count_constancy": (float((counts == modal).sum()), len(counts)),
            "count_modal_true": (float(modal == data.objects), 1),
            "count_changes": (float((np.diff(counts) != 0).sum()), len(counts) - 1)}


def track_stats(v: ClipView) -> dict[str, tuple[float, int]]:
    jerk, triples, colour, hist, pairs = 0.0, 0, 0.0, 0.0, 0
    for tr in v.tracks:
        for a, b in zip(tr.blobs, tr.blobs[1:]):
            colour += float(np.abs(a.colour - b.colour).mean())
            hist += float(np.abs(a.hist - b.hist).sum(1).mean() / 2)
            pairs += 1
        for a, b, c in zip(tr.blobs, tr.blobs[1:], tr.blobs[2:]):
            jerk += abs(c.x - 2 * b.x + a.x) + abs(c.y - 2 * b.y + a.y)
            triples += 1
    later = sum(len(b) for b in v.blobs[1:])
    return {"linked": (float(pairs), later), "jerk": (jerk, triples), "colour_step": (colour, pairs),
            "histogram_step": (hist, pairs)}


def crossing_stats(v: ClipView, bc: BlobConfig, within: int) -> dict[str, tuple[float, int]]:
    """Tracks that go into the bar, and whether the one that comes out at the other side is the same object."""
    T, m = len(v.blobs), bc.bar_margin
    distance = lambda a, b: float(np.abs(a - b).sum(1).mean() / 2)  # noqa: E731 total variation, per channel
    right, crossings = 0.0, 0
    for tr in v.tracks:
        t0, gone = tr.end, tr.blobs[-1]
        if t0 == T - 1 or not v.at_bar(t0, gone, m) or v.side(t0, gone) == 0:
            continue
        out = [u for u in v.tracks if t0 < u.start <= t0 + within and v.at_bar(u.start, u.blobs[0], m)
               and v.side(u.start, u.blobs[0]) == -v.side(t0, gone)]
        others = [u for u in v.tracks if u is not tr and u.start <= t0 <= u.end]  # the objects in view at the entry
        if not out or not others:
            continue
        back = min(out, key=lambda u: (u.start, abs(u.blobs[0].y - gone.y)))
        other = max(others, key=lambda u: u.blobs[t0 - u.start].area)
        came, went, stayed = (np.mean([b.hist for b in u.blobs], axis=0) for u in (back, tr, other))  # (3, bins)
        d_same, d_other = distance(came, went), distance(came, stayed)
        right += 1.0 if d_same < d_other else 0.5 if d_same == d_other else 0.0
        crossings += 1
    return {"through_bar": (right, crossings)}


# ---------------------------------------------------------------------------------------------------------------
# Clips in, scores out; the controls; the foreground against the truth


def blob_coherence(videos: torch.Tensor, data: SpriteClipConfig,
                   bc: BlobConfig | None = None) -> dict[str, float | int | None]:
    """The scores of clips uint8 ``(N, 3, F, H, W)`` (see the module docstring); each is a ratio of sums over the
    clips, so every frame, pair or event weighs alike; ``pairs``, ``triples`` and ``crossings`` count the events
    behind the colour steps, the jerk and ``through_bar``."""
    bc = bc or BlobConfig()
    within = bc.within or reappear_window(data)
    sums: dict[str, list[float]] = {}
    for video in videos:
        v = view_clip(video.transpose(0, 1).float() / 255, data, bc)  # frames (F, 3, H, W)
        for part in (bar_stats(v, bc), count_stats(v, data), track_stats(v), crossing_stats(v, bc, within)):
            for key, (s, n) in part.items():
                acc = sums.setdefault(key, [0.0, 0])
                acc[0], acc[1] = acc[0] + s, acc[1] + n
    out: dict[str, float | int | None] = {k: s / n if n else None for k, (s, n) in sums.items()}
    counted = lambda key: int(sums.get(key, [0, 0])[1])  # noqa: E731
    out.update(clips=len(videos), pairs=counted("colour_step"), triples=counted("jerk"),
               crossings=counted("through_bar"), within=within)
    return out


def shuffled_in_time(videos: torch.Tensor, seed: int) -> torch.Tensor:
    """Control: every clip ``(N, 3, F, H, W)`` with its frames in a random order (its own permutation)."""
    rng = np.random.default_rng(seed)
    order = np.stack([rng.permutation(videos.shape[2]) for _ in range(len(videos))])  # (N, F)
    return torch.stack([v[:, torch.from_numpy(o)] for v, o in zip(videos, order)])


def mixed_clips(videos: torch.Tensor) -> torch.Tensor:
    """Control: frame ``t`` of clip ``i`` is frame ``t`` of clip ``(i + t) mod N``, so consecutive frames always
    come from different clips (``N >= 2``) while each frame stays a real one."""
    N, F = len(videos), videos.shape[2]
    source = (np.arange(N)[:, None] + np.arange(F)[None]) % N  # (N, F) the clip each frame comes from
    return torch.stack([torch.stack([videos[source[i, t], :, t] for t in range(F)], 1) for i in range(N)])


def foreground_agreement(clips: list[Clip], bank: SpriteBank, data: SpriteClipConfig,
                         bc: BlobConfig | None = None) -> dict[str, float]:
    """The foreground against rendered clips' truth: the fraction of the sprites' visible mask pixels it keeps (the
    rest are near-white eyes and teeth, or bar-grey ink) and the fraction of other pixels it takes (should be 0)."""
    bc = bc or BlobConfig()
    kept = shown = taken = other = 0
    for clip in clips:
        frames = torch.from_numpy(clip.video).transpose(0, 1).float() / 255  # (F, 3, H, W)
        fg = foreground(frames, data.bar_color, bc)  # (F, H, W)
        truth = np.zeros_like(fg)
        s = data.sprite_size
        for t, row in enumerate(clip.positions):
            for n, (x, y) in zip(clip.ids, row):
                truth[t, y : y + s, x : x + s] |= bank.masks[n].numpy()
            truth[t, :, clip.bar[t] : clip.bar[t] + data.bar_width] = False  # the bar stands in front
        kept, shown = kept + int((fg & truth).sum()), shown + int(truth.sum())
        taken, other = taken + int((fg & ~truth).sum()), other + int((~truth).sum())
    return {"sprite_pixels_kept": kept / shown, "other_pixels_taken": taken / other}


def blob_report(generated: torch.Tensor, rendered: list[Clip], bank: SpriteBank, data: SpriteClipConfig,
                seed: int) -> dict[str, dict]:
    """The measures on ``generated`` clips uint8 ``(N, 3, F, H, W)`` beside the ``rendered`` clips (the ceiling), the
    same clips shuffled in time (stream ``seed``) and mixed across clips (the floors), and how the foreground agrees
    with the rendered clips' truth."""
    from .data import stack_videos

    real = stack_videos(rendered)  # (N, 3, F, H, W)
    return {"generated": blob_coherence(generated, data), "rendered": blob_coherence(real, data),
            "shuffled": blob_coherence(shuffled_in_time(real, seed), data),
            "mixed": blob_coherence(mixed_clips(real), data),
            "foreground_on_rendered": foreground_agreement(rendered, bank, data)}
