"""The sprite clips keep the rules the coherence metrics rely on, and the real footage loads."""

import numpy as np
import pytest
import torch

from genlab.data.emoji import split_of
from genlab.errors import GenlabError
from genlab.video.data import SpriteClipConfig, bounce, load_real_clips, render_clip, sprite_mask


def test_bank_is_deterministic_and_split(bank, sprite_cfg):
    from genlab.video.data import load_bank

    again = load_bank(sprite_cfg)
    assert again.hexcodes == bank.hexcodes and torch.equal(again.images, bank.images)
    assert len(bank) == 24 and bank.n_train == 16
    assert all(split_of(h) == "train" for h in bank.hexcodes[:16])
    assert all(split_of(h) == "test" for h in bank.hexcodes[16:])  # held-out sprites come from held-out emoji
    assert len(set(bank.hexcodes)) == 24
    # Sprites are drawn on white off their masks, and no two are the same picture.
    assert (bank.images.permute(0, 2, 3, 1)[~bank.masks] == 255).all()
    flat = bank.images.flatten(1).float()
    assert torch.cdist(flat, flat).add(torch.eye(24) * 1e9).min() > 0
    assert "OpenMoji" in bank.attribution and bank.license == "CC BY-SA 4.0"


def test_mask_keeps_enclosed_white():
    ring = np.full((3, 6, 6), 255, dtype=np.uint8)
    ring[:, 1:5, 1:5] = 0
    ring[:, 2:4, 2:4] = 255  # a white eye inside a black outline
    mask = sprite_mask(ring)
    assert mask[2:4, 2:4].all() and mask[1:5, 1:5].all() and not mask[0].any() and not mask[:, 0].any()


def test_bounce_is_a_triangle_wave():
    x = bounce(np.array(3), np.array(2), 12, 8)
    assert x.tolist() == [3, 5, 7, 7, 5, 3, 1, 1, 3, 5, 7, 7]  # reflected at 0 and 8, speed kept


def test_clips_obey_the_rules(bank, sprite_cfg):
    cfg, s = sprite_cfg, sprite_cfg.sprite_size
    lo, hi = cfg.bar_range()
    for i in range(40):
        clip = render_clip(bank, cfg, seed=3, index=i)
        assert clip.video.shape == (3, cfg.frames, cfg.size, cfg.size) and clip.video.dtype == np.uint8
        p = clip.positions  # (F, K, 2)
        gap = np.abs(p[:, 0] - p[:, 1]).max(-1)
        assert (gap >= s).all()  # objects never overlap
        assert (clip.visible[0] == 1).all()  # all fully visible in the first frame
        assert ((clip.bar >= lo) & (clip.bar <= hi)).all()
        v = np.diff(p, axis=0)
        inner = ((p[1:-1] > cfg.max_speed) & (p[1:-1] < cfg.size - s - cfg.max_speed)).all(-1)  # (F-2, K)
        assert (np.abs(np.diff(v, axis=0)).sum(-1)[inner] == 0).all()  # constant velocity away from the walls
        assert (np.abs(v[..., 0]) <= cfg.max_speed).all() and (np.abs(v[..., 0]).max(0) >= 1).all()  # all move
        for t in (0, cfg.frames - 1):  # each sprite pasted pixel-exactly where it is in view
            for k, n in enumerate(clip.ids):
                x, y = p[t, k]
                patch = clip.video[:, t, y : y + s, x : x + s]
                in_view = bank.masks[n].numpy() & ~((np.arange(x, x + s) >= clip.bar[t])
                                                    & (np.arange(x, x + s) < clip.bar[t] + cfg.bar_width))[None]
                assert (patch[:, in_view] == bank.images[n].numpy()[:, in_view]).all()
        assert (clip.video[:, :, :, clip.bar[0]] == np.array(cfg.bar_color)[:, None, None]).all()
    again = render_clip(bank, cfg, seed=3, index=5)
    assert np.array_equal(again.video, render_clip(bank, cfg, seed=3, index=5).video)
    assert not np.array_equal(again.video, render_clip(bank, cfg, seed=4, index=5).video)
    held = render_clip(bank, cfg, seed=3, index=5, split="test")
    assert (held.ids >= bank.n_train).all()


def test_bad_config_is_refused():
    with pytest.raises(GenlabError, match="bar_width"):
        SpriteClipConfig(bar_width=8).check()
    with pytest.raises(GenlabError, match="objects"):
        SpriteClipConfig(objects=5).check()


@pytest.mark.parametrize("name", ["vtest", "cockatoo"])
def test_real_footage(name):
    from genlab.video.data import REAL_CLIPS

    if not __import__("os").path.exists(REAL_CLIPS[name][0]):
        pytest.skip(f"{REAL_CLIPS[name][1]} is not installed (scripts/install.d/video.sh)")
    pytest.importorskip("av")
    real = load_real_clips(name, frames=4, size=32, stride=3, limit=2)
    assert real["video"].shape == (2, 3, 4, 32, 32) and real["video"].dtype == torch.uint8
    assert real["license"] and real["package"] and real["fps"] > 0
    assert real["video"].float().std() > 10  # real pictures, not a blank
