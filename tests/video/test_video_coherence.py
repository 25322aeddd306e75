"""The coherence scores: perfect on rendered clips (whose truth is known), lower on hand-made failures.

Each failure is painted with the same renderer as the real clips, changing one thing in the truth: a sprite
swapped for another after it passed behind the bar, a sprite that vanishes in the open, a duplicate that appears,
one frame where an object jumps.
"""

from dataclasses import replace

import numpy as np
import pytest
import torch

from genlab.video.coherence import (
    CoherenceConfig,
    bar_columns,
    coherence,
    fid_drift,
    match_maps,
    sprite_fit,
    truth_clips,
)
from genlab.video.data import paint, render_clip


@pytest.mark.parametrize("frames, split", [(8, "train"), (16, "test"), (32, "train")])
def test_ground_truth_is_perfect(bank, sprite_cfg, frames, split):
    cfg = replace(sprite_cfg, frames=frames)
    scores = coherence(truth_clips(bank, cfg, frames, 24, seed=11, split=split), bank, cfg)
    assert scores["count"] == 1 and scores["identity"] == 1 and scores["permanence"] == 1
    assert scores["first_frame_count"] == 1 and scores["jerk"] == 0 and scores["match_error"] < 1e-6
    assert scores["objects"] == 2 * 24
    if frames >= 16:  # long enough for objects to pass behind the bar and come out again
        assert scores["reappearances"] > 5 and scores["identity_after_occlusion"] == 1


@pytest.mark.parametrize("split", ["train", "test"])
def test_visibility_is_the_sprites_own_pixels_in_view(bank, sprite_cfg, split):
    """The detector's visible fraction at an object's true place is the renderer's: the share of the sprite's mask
    not behind the bar, not of its square (a square half in view can show only a sliver of ink, and a sliver of one
    sprite passes for part of another)."""
    cfg = replace(sprite_cfg, frames=24)
    for clip in (render_clip(bank, cfg, seed=4, index=i, split=split) for i in range(6)):
        frames = torch.from_numpy(clip.video).transpose(0, 1).float() / 255  # (F, 3, H, W)
        _, shown, _ = match_maps(frames, bar_columns(frames, cfg.bar_color, CoherenceConfig()), bank)
        t, k = np.meshgrid(np.arange(cfg.frames), np.arange(cfg.objects), indexing="ij")  # (F, K) each
        x, y = clip.positions[..., 0], clip.positions[..., 1]
        at_truth = shown[t, np.tile(clip.ids, (cfg.frames, 1)), y, x].numpy()  # (F, K)
        np.testing.assert_allclose(at_truth, clip.visible, atol=1e-6)


def _occluded_clip(bank, cfg):
    """A clip where object 0 is hidden and later fully seen again; (clip, first hidden frame, reappearance)."""
    for i in range(200):
        clip = render_clip(bank, cfg, seed=5, index=i)
        vis = clip.visible[:, 0]
        hidden = np.flatnonzero(vis == 0)
        if len(hidden) and (vis[hidden[-1] + 1 :] == 1).sum() >= 3:
            back = hidden[-1] + 1 + int(np.argmax(vis[hidden[-1] + 1 :] == 1))
            return clip, int(hidden[0]), back
    raise AssertionError("no clip with a full occlusion")


def _repaint(bank, cfg, clip, ids):
    video, _ = paint(bank, cfg, ids, clip.positions, clip.bar)
    return torch.from_numpy(video)[None]


def test_swapped_identity_after_occlusion_drops(bank, sprite_cfg):
    cfg = replace(sprite_cfg, frames=24)
    clip, hidden, back = _occluded_clip(bank, cfg)
    ids = np.tile(clip.ids, (cfg.frames, 1))
    other = next(n for n in range(bank.n_train) if n not in clip.ids)
    ids[hidden:, 0] = other  # it went behind the bar as one sprite and came out as another
    good = coherence(torch.from_numpy(clip.video)[None], bank, cfg)
    bad = coherence(_repaint(bank, cfg, clip, ids), bank, cfg)
    assert good["permanence"] == 1 and good["identity_after_occlusion"] == 1
    assert bad["reappearances"] == good["reappearances"] and bad["identity_after_occlusion"] < 1
    assert bad["permanence"] == 0.5 and bad["identity"] < 1
    assert bad["count"] == 1  # the right number of objects all along: only who they are changed


def test_vanished_and_duplicated_objects_drop_the_count(bank, sprite_cfg):
    cfg = replace(sprite_cfg, frames=16)
    clip = next(c for c in (render_clip(bank, cfg, 6, i) for i in range(100)) if (c.visible[6:10, 0] == 1).all())
    ids = np.tile(clip.ids, (cfg.frames, 1))
    ids[8:, 0] = -1  # object 0 vanishes in the open at frame 8 (later frames where it would be behind the bar pass)
    vanished = coherence(_repaint(bank, cfg, clip, ids), bank, cfg)
    assert vanished["permanence"] == 0.5 and vanished["count"] <= 1 - 2 / 16

    # A third object (a copy of object 1, drawn far from both) appears from frame 4 on.
    positions = np.concatenate([clip.positions, clip.positions[:, :1]], axis=1)
    ids3 = np.concatenate([np.tile(clip.ids, (cfg.frames, 1)), np.full((cfg.frames, 1), -1)], axis=1)
    far = [t for t in range(4, cfg.frames) if _free_spot(clip, t, cfg) is not None]
    for t in far:
        positions[t, 2] = _free_spot(clip, t, cfg)
        ids3[t, 2] = clip.ids[1]
    video, _ = paint(bank, cfg, ids3, positions, clip.bar)
    extra = coherence(torch.from_numpy(video)[None], bank, cfg)
    assert len(far) > 0 and extra["count"] <= 1 - len(far) / 16 + 1e-9 and extra["permanence"] == 1


def test_an_empty_clip_is_not_perfect(bank, sprite_cfg):
    cfg = replace(sprite_cfg, frames=8)
    clip = render_clip(bank, cfg, 6, 0)
    video, _ = paint(bank, cfg, np.full((8, 2), -1), clip.positions, clip.bar)  # the bar alone
    scores = coherence(torch.from_numpy(video)[None], bank, cfg)
    assert scores["count"] == 0 and scores["permanence"] == 0 and scores["first_frame_count"] == 0
    assert scores["identity"] is None  # nothing seen: no identity to judge


def test_sprite_fit_says_how_far_blobs_are_from_sprites(bank, sprite_cfg):
    """Rendered clips fit a sprite exactly; the same clips blurred into blobs (what an undertrained model draws)
    are detected nowhere, and the fit says by how much they miss the detector's thresholds."""
    cfg = replace(sprite_cfg, frames=8)
    real = truth_clips(bank, cfg, 8, 6, seed=3, split="train")
    exact = sprite_fit(real, bank, cfg)
    assert exact["median_best_error"] < 1e-6 and exact["median_best_blank_ratio"] < 1e-6
    assert exact["frames_with_a_detection"] > 0.5
    frames = real.transpose(1, 2).reshape(-1, 3, cfg.size, cfg.size).float()  # (N*F, 3, H, W)
    blurred = torch.nn.functional.avg_pool2d(frames, 3, stride=1, padding=1, count_include_pad=False)
    blobs = blurred.round().byte().view(6, 8, 3, cfg.size, cfg.size).transpose(1, 2)  # (N, 3, F, H, W)
    fit = sprite_fit(blobs, bank, cfg)
    assert coherence(blobs, bank, cfg)["sightings"] == 0 and fit["frames_with_a_detection"] == 0
    assert fit["median_best_blank_ratio"] > fit["blank_ratio"] > exact["median_best_blank_ratio"]


def _free_spot(clip, t, cfg):
    s, L = cfg.sprite_size, cfg.size - cfg.sprite_size
    for x in list(range(0, clip.bar[t] - s + 1)) + list(range(clip.bar[t] + cfg.bar_width, L + 1)):
        for y in range(0, L + 1):
            if (np.abs(clip.positions[t] - (x, y)).max(-1) >= s).all():
                return x, y
    return None


def _jump(bank, cfg):
    """A clip and a frame where object 0, in view and away from the walls, can be moved 2 px off its path."""
    for i in range(100):
        clip = render_clip(bank, cfg, 7, i)
        for t in range(1, cfg.frames - 1):
            moved = clip.positions.copy()
            moved[t, 0, 1] += 2 if moved[t, 0, 1] < 12 else -2
            p = moved[t - 1 : t + 2, 0]
            if ((clip.visible[t - 1 : t + 2, 0] >= 0.75).all() and ((p > 2) & (p < 22)).all()
                    and np.abs(moved[t, 0] - moved[t, 1]).max() >= cfg.sprite_size):
                return clip, moved
    raise AssertionError("no clip to move an object in")


def test_a_jump_shows_in_jerk(bank, sprite_cfg):
    cfg = replace(sprite_cfg, frames=16)
    clip, moved = _jump(bank, cfg)
    video, _ = paint(bank, cfg, np.tile(clip.ids, (cfg.frames, 1)), moved, clip.bar)
    scores = coherence(torch.from_numpy(video)[None], bank, cfg)
    assert scores["jerk"] > 0 and scores["permanence"] == 1
    assert coherence(torch.from_numpy(clip.video)[None], bank, cfg)["jerk"] == 0


def test_feature_drift_grows_when_frames_decay(bank, sprite_cfg):
    cfg = replace(sprite_cfg, frames=8)
    real = truth_clips(bank, cfg, 8, 48, seed=1, split="train")
    other = truth_clips(bank, cfg, 8, 48, seed=2, split="train")
    fade = torch.linspace(0, 0.8, 8).view(1, 1, 8, 1, 1)
    g = torch.Generator().manual_seed(0)
    decaying = (other.float() * (1 - fade) + fade * 255 * torch.rand(other.shape, generator=g)).round().byte()
    steady, decay = fid_drift(other, real), fid_drift(decaying, real)
    assert decay["drift"] > 5 * abs(steady["drift"]) and decay["fid_by_part"][-1] > decay["fid_by_part"][0]
