"""Object permanence and temporal coherence, measured on any clip of the sprite world (generated or real).

Nothing here reads a clip's ground truth: the same numbers are computed on generated clips and on the rendered
clips whose truth is known, where they must be perfect (``tests/video/test_video_coherence.py`` checks that, and that
hand-made failures lower them).

1. **Find the bar**: the columns whose pixels are nearly all the bar's colour (it is full height; a sprite is not).
2. **Detect sprites** in every frame by nearest-sprite matching against the bank: for every sprite ``n`` and
   top-left position ``p``, the mean squared error between the frame and the sprite's square (the sprite on white)
   over the square's columns that are not behind the bar (computed for all ``n`` and ``p`` at once as three
   correlations, ``sum f^2 - 2 sum f s + sum s^2``). The best (sprite, position) pairs below ``max_error``, with at
   least ``min_visible`` of the sprite's own pixels (its mask) in view, and explained far better by the sprite than
   by blank background (``blank_ratio``), are taken greedily; boxes that overlap a taken one are the same object.
   Visibility counts the mask, not the square: a square half behind the bar can leave only a sliver of a sprite's
   ink in view, and a sliver of one sprite passes for part of another (a held-out sprite read as a training one).
   Every bank sprite covers at least ``MIN_COVER`` of its square, so with at most one column behind the bar at least
   ``min_visible`` of its mask is in view: a rendered object is always either detected or hidden.
3. **Track**: frame 0's detections are the objects. In each later frame an object is predicted at constant
   velocity (from its last two sightings, reflected at the frame's edges) and matched to the nearest detection
   within ``gate`` pixels. An object without a detection is *hidden* if at its predicted place the bar would leave
   less than ``min_visible + hidden_slack`` of it in view, else *lost*. A detection matched to no object is an
   *extra* object (one that appeared, or a duplicate).

The scores (all 1 for a perfect clip, ``jerk`` 0):

- ``count``: fraction of frames that hold the expected number of objects: the first frame shows as many as the data
  has, and later every one of them is seen or hidden and nothing extra is seen;
- ``identity``: fraction of sightings (with at least ``identity_visible`` in view) that are the object's sprite;
- ``identity_after_occlusion``: fraction of reappearances after being hidden that are the object's sprite;
- ``permanence``: fraction of objects never lost and never seen as another sprite, over the whole clip (objects
  missing from the first frame count as lost);
- ``jerk``: mean ``|p(t+1) - 2 p(t) + p(t-1)|_1`` in pixels over consecutive sightings, away from the walls
  (within ``wall_band`` of a wall a bounce changes the velocity);
- ``first_frame_count``: fraction of clips whose first frame shows the expected number of objects;
- ``match_error``: mean error of the sightings (how faithfully the sprites are drawn).

Frame-to-frame drift is measured apart, in the feature space of genlab's emoji network: the Fréchet distance of
the frames at each quarter of the clips to the real frames (:func:`fid_drift`). Clips whose objects are not
pixel-exact sprites are scored without the detector by :mod:`genlab.video.blobs` (the bar, colour blobs, tracks).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from .data import SpriteBank, SpriteClipConfig


@dataclass
class CoherenceConfig:
    max_error: float = 0.05  # mean squared error (pixels in [0, 1]) of a detection over the sprite's visible pixels
    min_visible: float = 0.625  # a detection shows at least this fraction of its sprite's mask
    identity_visible: float = 0.75  # identity is judged on sightings showing at least this much of the mask
    hidden_slack: float = 0.25  # a missing object counts as hidden where less than min_visible + this of its square
    # is in view at its predicted place (6 of 8 columns: with 7 in view it is always detectable)
    gate: float = 0.0  # association distance in pixels (0: half a sprite)
    blank_ratio: float = 0.1  # ... and at most this fraction of the error that blank background would have there
    bar_tolerance: float = 0.12  # a pixel is bar-coloured within this (max over channels, pixels in [0, 1])
    bar_fill: float = 0.8  # a column is bar where at least this fraction of its pixels is bar-coloured
    wall_band: int = 2  # jerk is not measured within this many pixels of a wall (use the data's max_speed)
    max_detections: int = 6


@dataclass
class Detection:
    sprite: int
    x: int
    y: int
    error: float
    visible: float


# ---------------------------------------------------------------------------------------------------------------
# 1-2. The bar and the sprites in each frame


def bar_columns(frames: torch.Tensor, color: tuple[int, int, int], cc: CoherenceConfig) -> torch.Tensor:
    """``frames`` float ``(T, 3, H, W)`` in [0, 1] -> bool ``(T, W)``: the columns the bar covers."""
    c = torch.tensor(color, dtype=frames.dtype).view(1, 3, 1, 1) / 255
    close = ((frames - c).abs().amax(1) <= cc.bar_tolerance).float()  # (T, H, W)
    return close.mean(1) >= cc.bar_fill  # (T, W)


def match_maps(frames: torch.Tensor, covered: torch.Tensor,
               bank: SpriteBank) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean squared error, the visible fraction of the sprite's mask, and the error a blank (white) square would
    have, of every sprite at every top-left position, ``(T, N, P, P)`` each with ``P = H - s + 1``. A sprite is
    matched as the whole square it is drawn in (white off its mask: objects never overlap, so the square around a
    real one is white), over the square's columns that are not behind the bar; correlations give it for all sprites
    and positions."""
    T, _, H, W = frames.shape
    s = bank.images.to(frames.dtype) / 255  # (N, 3, s, s) sprites on white
    size = s.shape[-1]
    view = (~covered).to(frames.dtype)[:, None, None, :].expand(T, 1, H, W)  # (T, 1, H, W) 1 = not behind the bar
    box = torch.ones(1, 1, size, size, dtype=frames.dtype)
    seen = F.conv2d(view, box)  # (T, 1, P, P) pixels of the square in view
    f2 = F.conv2d((frames**2).sum(1, keepdim=True) * view, box)  # (T, 1, P, P) sum of |f|^2 in view
    fs = F.conv2d(frames * view, s)  # (T, N, P, P) sum of f . s in view
    s2 = F.conv2d(view, (s**2).sum(1, keepdim=True))  # (T, N, P, P) sum of |s|^2 in view
    blank = F.conv2d(((1 - frames) ** 2).sum(1, keepdim=True) * view, box)  # the same sum against white
    mask = bank.masks.to(frames.dtype)[:, None]  # (N, 1, s, s)
    shown = F.conv2d(view, mask) / mask.sum((1, 2, 3)).view(1, -1, 1, 1)  # (T, N, P, P) fraction of the mask in view
    count = 3 * seen.clamp(min=1)
    error = (f2 - 2 * fs + s2).clamp(min=0) / count
    return error, shown, (blank / count).expand_as(error)


def detect(frames: torch.Tensor, covered: torch.Tensor, bank: SpriteBank, cc: CoherenceConfig,
           sprite_size: int) -> list[list[Detection]]:
    """Greedy nearest-sprite detections in each frame ``(T, 3, H, W)`` (see the module docstring, step 2)."""
    error, visible, blank = match_maps(frames, covered, bank)
    # A detection shows enough of its sprite, is close to it, and is far better explained by it than by blank paper.
    usable = (visible >= cc.min_visible) & (error <= cc.max_error) & (error <= cc.blank_ratio * blank)
    score = torch.where(usable, error - 1e-6 * visible, torch.inf)  # ties go to the sprite more in view
    best, sprite = (a.numpy() for a in score.min(1))  # (T, P, P) the best sprite at each position
    error, visible = error.numpy(), visible.numpy()
    out = []
    for t in range(len(frames)):
        found, b = [], best[t].copy()
        while len(found) < cc.max_detections and np.isfinite(b.min()):
            y, x = np.unravel_index(b.argmin(), b.shape)
            n = int(sprite[t, y, x])
            found.append(Detection(n, int(x), int(y), float(error[t, n, y, x]), float(visible[t, n, y, x])))
            # Objects never overlap, so every box overlapping this one is the same object.
            b[max(0, y - sprite_size + 1) : y + sprite_size, max(0, x - sprite_size + 1) : x + sprite_size] = np.inf
        out.append(found)
    return out


# ---------------------------------------------------------------------------------------------------------------
# 3. Tracking and the scores of one clip


@dataclass
class Track:
    sprite: int  # the sprite seen in frame 0
    seen: dict[int, Detection] = field(default_factory=dict)  # frame -> sighting
    state: list[str] = field(default_factory=list)  # per frame: "seen", "hidden" or "lost"

    def predict(self, t: int, limit: int) -> np.ndarray:
        """Top-left (x, y) at frame ``t``: constant velocity from the last two sightings, folded into [0, limit]."""
        frames = sorted(self.seen)[-2:]
        last = self.seen[frames[-1]]
        p = np.array([last.x, last.y], dtype=float)
        if len(frames) == 2:
            first = self.seen[frames[0]]
            v = (p - np.array([first.x, first.y])) / (frames[1] - frames[0])
            p = p + v * (t - frames[-1])
        u = np.mod(p, 2 * limit)
        return np.where(u > limit, 2 * limit - u, u)


def track_clip(frames: torch.Tensor, bank: SpriteBank, data: SpriteClipConfig,
               cc: CoherenceConfig) -> tuple[list[Track], list[int]]:
    """Objects of one clip ``(T, 3, H, W)`` in [0, 1], followed through it; and the extra detections per frame."""
    covered = bar_columns(frames, data.bar_color, cc)
    detections = detect(frames, covered, bank, cc, data.sprite_size)
    limit = data.size - data.sprite_size
    gate = cc.gate or data.sprite_size / 2
    tracks = [Track(d.sprite, {0: d}, ["seen"]) for d in detections[0]]
    extra = [0]
    for t in range(1, len(frames)):
        predicted = [tr.predict(t, limit) for tr in tracks]
        pairs = sorted((np.abs(predicted[k] - (d.x, d.y)).max(), k, j)
                       for k in range(len(tracks)) for j, d in enumerate(detections[t]))
        taken_tracks, taken_dets = set(), set()
        for dist, k, j in pairs:
            if dist <= gate and k not in taken_tracks and j not in taken_dets:
                tracks[k].seen[t] = detections[t][j]
                taken_tracks.add(k)
                taken_dets.add(j)
        for k, tr in enumerate(tracks):
            if k in taken_tracks:
                tr.state.append("seen")
                continue
            x = int(round(predicted[k][0]))
            in_view = 1 - covered[t, x : x + data.sprite_size].float().mean()  # the fraction of its square in view
            hidden = in_view < cc.min_visible + cc.hidden_slack
            tr.state.append("hidden" if hidden else "lost")
        extra.append(len(detections[t]) - len(taken_dets))
    return tracks, extra


@dataclass
class Tally:
    """Numerators and denominators of the scores, summed over clips (so rates weigh every event alike)."""

    frames_ok: int = 0
    frames: int = 0
    same_sprite: int = 0
    sightings: int = 0
    same_after: int = 0
    reappearances: int = 0
    kept: int = 0
    objects: int = 0
    jerk_sum: float = 0.0
    jerk_n: int = 0
    first_ok: int = 0
    clips: int = 0
    error_sum: float = 0.0
    error_n: int = 0

    def add_clip(self, tracks: list[Track], extra: list[int], expected: int, cc: CoherenceConfig, limit: int):
        T = len(extra)
        self.clips += 1
        right = len(tracks) == expected
        self.first_ok += right
        self.frames += T
        self.frames_ok += sum(right and extra[t] == 0 and all(tr.state[t] != "lost" for tr in tracks) for t in range(T))
        self.objects += max(0, expected - len(tracks))  # objects the first frame should have shown: never kept
        for tr in tracks:
            checked = [(t, d) for t, d in sorted(tr.seen.items()) if t > 0 and d.visible >= cc.identity_visible]
            same = [d.sprite == tr.sprite for _, d in checked]
            self.same_sprite += sum(same)
            self.sightings += len(same)
            self.objects += 1
            self.kept += all(same) and "lost" not in tr.state
            for t in range(1, T):  # the first identity-checked sighting after each hidden spell
                if tr.state[t - 1] == "hidden" and tr.state[t] != "hidden":
                    after = [d for u, d in checked if u >= t]
                    if after:
                        self.reappearances += 1
                        self.same_after += after[0].sprite == tr.sprite
            for t in range(1, T - 1):
                if all(u in tr.seen for u in (t - 1, t, t + 1)):
                    p = np.array([[tr.seen[u].x, tr.seen[u].y] for u in (t - 1, t, t + 1)])
                    if ((p > cc.wall_band) & (p < limit - cc.wall_band)).all():
                        self.jerk_sum += float(np.abs(p[2] - 2 * p[1] + p[0]).sum())
                        self.jerk_n += 1
            self.error_sum += sum(d.error for d in tr.seen.values())
            self.error_n += len(tr.seen)

    def scores(self) -> dict[str, float | int | None]:
        rate = lambda a, b: a / b if b else None  # noqa: E731
        return {
            "count": rate(self.frames_ok, self.frames),
            "identity": rate(self.same_sprite, self.sightings),
            "identity_after_occlusion": rate(self.same_after, self.reappearances),
            "permanence": rate(self.kept, self.objects),
            "jerk": rate(self.jerk_sum, self.jerk_n),
            "first_frame_count": rate(self.first_ok, self.clips),
            "match_error": rate(self.error_sum, self.error_n),
            "clips": self.clips,
            "objects": self.objects,
            "reappearances": self.reappearances,
            "sightings": self.sightings,
        }


def coherence(videos: torch.Tensor, bank: SpriteBank, data: SpriteClipConfig,
              cc: CoherenceConfig | None = None) -> dict[str, float | int | None]:
    """The scores of clips uint8 ``(N, 3, F, H, W)``: ``data.objects`` objects are expected in each."""
    cc = cc or CoherenceConfig(wall_band=data.max_speed)
    tally = Tally()
    for video in videos:
        frames = video.transpose(0, 1).float() / 255  # (F, 3, H, W)
        tracks, extra = track_clip(frames, bank, data, cc)
        tally.add_clip(tracks, extra, data.objects, cc, data.size - data.sprite_size)
    return tally.scores()


def sprite_fit(videos: torch.Tensor, bank: SpriteBank, data: SpriteClipConfig,
               cc: CoherenceConfig | None = None) -> dict[str, float]:
    """How near clips uint8 ``(N, 3, F, H, W)`` come to showing a sprite at all, detected or not (it says how far
    clips whose scores are empty are from being scored). Per frame, over every sprite and placement showing at
    least ``min_visible`` of its mask: the least match error (the detector needs ``max_error``) and the least ratio of
    that error to blank paper's (it needs ``blank_ratio``); their medians over all frames, and the fraction of
    frames holding at least one detection."""
    cc = cc or CoherenceConfig(wall_band=data.max_speed)
    errors, ratios, found = [], [], []
    for video in videos:
        frames = video.transpose(0, 1).float() / 255  # (F, 3, H, W)
        error, visible, blank = match_maps(frames, bar_columns(frames, data.bar_color, cc), bank)  # (F, N, P, P)
        shown = visible >= cc.min_visible
        usable = shown & (error <= cc.max_error) & (error <= cc.blank_ratio * blank)
        errors.append(torch.where(shown, error, torch.inf).flatten(1).min(1).values)  # (F,)
        ratios.append(torch.where(shown, error / blank.clamp(min=1e-12), torch.inf).flatten(1).min(1).values)
        found.append(usable.flatten(1).any(1).float())
    return {"median_best_error": torch.cat(errors).median().item(), "max_error": cc.max_error,
            "median_best_blank_ratio": torch.cat(ratios).median().item(), "blank_ratio": cc.blank_ratio,
            "frames_with_a_detection": torch.cat(found).mean().item()}


# ---------------------------------------------------------------------------------------------------------------
# Frame-to-frame drift in feature space


def fid_drift(videos: torch.Tensor, real: torch.Tensor, parts: int = 4) -> dict[str, object]:
    """Fréchet distance, in the emoji feature network's space, between the frames of each of ``parts`` equal
    stretches of the clips ``(N, 3, F, H, W)`` and all frames of the ``real`` clips; ``drift`` is the last stretch's
    distance minus the first's. Small sample counts bias FID upwards; every stretch has the same count."""
    from ..eval.fid import extract_features, frechet_distance

    def frames(v: torch.Tensor) -> torch.Tensor:
        return v.transpose(1, 2).reshape(-1, *v.shape[1:2], *v.shape[3:])  # (N*F, 3, H, W)

    reference = extract_features(frames(real))
    F_ = videos.shape[2]
    bounds = np.linspace(0, F_, parts + 1).round().astype(int)
    curve = [frechet_distance(extract_features(frames(videos[:, :, a:b])), reference)
             for a, b in zip(bounds[:-1], bounds[1:])]
    return {"fid_by_part": curve, "drift": curve[-1] - curve[0], "frames_per_part": int(len(videos) * F_ / parts),
            "real_frames": len(reference)}


# ---------------------------------------------------------------------------------------------------------------
# A model's report: its clips against rendered ones, at several lengths


def truth_clips(bank: SpriteBank, data: SpriteClipConfig, frames: int, n: int, seed: int, split: str) -> torch.Tensor:
    """``n`` rendered clips of ``frames`` frames from the ``split`` sprites, stream ``seed``: uint8 (n, 3, F, H, W)."""
    from .data import render_clips, stack_videos

    return stack_videos(render_clips(bank, replace(data, frames=frames), seed, range(n), split))


def report(model: torch.nn.Module, cfg, lengths: tuple[int, ...], n: int, seed: int = 0, sampler: str = "ddim",
           steps: int = 50, fid: bool = True) -> dict:
    """Coherence of ``n`` generated clips at each length beside the same numbers on ``n`` rendered clips of the
    training sprites (what the model was shown) and of the held-out sprites (the metric on sprites it never saw);
    the detector-free measures of :mod:`genlab.video.blobs` on the generated clips, the rendered ones and their
    shuffled and mixed controls; and, with ``fid``, the feature drift of the generated clips against the rendered
    ones."""
    import time

    from .blobs import blob_report
    from .data import load_bank, render_clips, stack_videos
    from .pipeline import generate

    bank = load_bank(cfg.data)
    out = {"n": n, "seed": seed, "sampler": sampler, "steps": steps, "by_length": {}}
    for frames in lengths:
        t0 = time.perf_counter()
        video = generate(model, cfg, n=n, frames=frames, sampler=sampler, steps=steps, seed=seed)
        seconds = time.perf_counter() - t0
        rendered = render_clips(bank, replace(cfg.data, frames=frames), seed + 1, range(n), "train")
        real = stack_videos(rendered)  # (n, 3, F, H, W): truth_clips(bank, cfg.data, frames, n, seed + 1, "train")
        row = {
            "generated": coherence(video, bank, cfg.data),
            "real_train_sprites": coherence(real, bank, cfg.data),
            "real_held_out_sprites": coherence(truth_clips(bank, cfg.data, frames, n, seed + 2, "test"), bank,
                                               cfg.data),
            "sampling_seconds_per_clip": seconds / n,
            "sprite_fit_generated": sprite_fit(video, bank, cfg.data),
            "sprite_fit_real": sprite_fit(real, bank, cfg.data),
            "blobs": blob_report(video, rendered, bank, cfg.data, seed),
        }
        if fid and frames >= 4:
            row["fid_drift_generated"] = fid_drift(video, real)
            row["fid_drift_real"] = fid_drift(truth_clips(bank, cfg.data, frames, n, seed + 3, "train"), real)
        out["by_length"][str(frames)] = row
    return out
