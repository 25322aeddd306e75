"""The OpenMoji dataset (rendered on a ~50-glyph subset into a temporary cache), digits, and PNG helpers."""

import json

import numpy as np
import pytest
import torch

from genlab.data import emoji as E
from genlab.data.cache import read_manifest
from genlab.data.images import make_grid, read_png_provenance, save_png
from genlab.errors import GenlabError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_subset_renders_with_captions_categories_and_split(cache):
    train = E.load_emoji(32, "train", limit=50)
    test = E.load_emoji(32, "test", limit=50)
    full = E.load_emoji(32, "all", limit=50)
    assert len(train) + len(test) == len(full) == 50  # nothing in this spread of glyphs is blank
    assert full.images.dtype == torch.uint8 and full.images.shape == (50, 3, 32, 32)
    # White background, something drawn in every image, and colour (not only black outlines) somewhere.
    assert (full.images[:, :, 0, 0] == 255).float().mean() > 0.9
    assert ((full.images < 200).flatten(1).float().mean(1) > 0.005).all()
    assert (full.images.float().std(1) > 30).any()
    assert set(full.categories) <= set(full.category_names)
    assert [full.category_names[i] for i in full.labels] == full.categories
    assert sum(bool(c) for c in full.captions) >= 40
    assert all(E.split_of(h) == "test" for h in test.hexcodes)
    assert full.chars == [E.hexcode_to_char(h) for h in full.hexcodes]
    meta = json.loads((cache / "emoji" / f"{E.FORMAT}-32-limit50" / "meta.json").read_text())
    assert meta["license"] == "CC BY-SA 4.0" and "OpenMoji" in meta["attribution"]
    assert read_manifest(cache / "emoji" / f"{E.FORMAT}-32-limit50") is not None


def test_damaged_cache_is_rebuilt(cache):
    first = E.load_emoji(32, "all", limit=20)
    npz = cache / "emoji" / f"{E.FORMAT}-32-limit20" / "images.npz"
    npz.write_bytes(npz.read_bytes()[:-10])  # truncated: the checksum no longer matches
    assert read_manifest(npz.parent) is None
    again = E.load_emoji(32, "all", limit=20)
    assert torch.equal(first.images, again.images) and first.hexcodes == again.hexcodes


def test_64px_and_bad_arguments(cache):
    big = E.load_emoji(64, "all", limit=8)
    assert big.images.shape[1:] == (3, 64, 64)
    with pytest.raises(GenlabError, match="split"):
        E.load_emoji(32, "validation", limit=8)
    with pytest.raises(GenlabError, match="size"):
        E.load_emoji(4, "all", limit=8)


def test_split_is_stable_and_ignores_fe0f_and_skin_tone():
    hexcodes = E.openmoji_hexcodes()
    test_fraction = np.mean([E.split_of(h) == "test" for h in hexcodes])
    assert 0.10 < test_fraction < 0.20
    # All skin tones of an emoji, with or without FE0F, land on the same side.
    tones = {"-1F3FB", "-1F3FC", "-1F3FD", "-1F3FE", "-1F3FF"}
    for base in ("1F44D", "1F9D1-200D-1F4BB", "1F64B-200D-2640-FE0F"):
        family = [
            h
            for h in hexcodes
            if h.replace("-FE0F", "") == base.replace("-FE0F", "")
            or any(h.replace(t, "", 1).replace("-FE0F", "") == base.replace("-FE0F", "") for t in tones)
        ]
        assert len(family) == 6 and len({E.split_of(h) for h in family}) == 1
    assert E.split_of("1F44D") == E.split_of("1F44D-1F3FD") == E.split_of("1F44D-1F3FF")
    assert E.split_of("2764") == E.split_of("2764-FE0F")
    # Golden values: the held-out split must never move (benchmarks compare against it).
    assert [E.split_of(h) for h in ("002D", "1F0CF", "1F191", "1F199")] == ["test"] * 4
    assert [E.split_of(h) for h in ("0023-FE0F-20E3", "002A-FE0F-20E3", "1F600")] == ["train"] * 3


def test_held_out_glyph_identical_to_a_training_glyph_moves_to_train():
    test_codes = [h for h in E.openmoji_hexcodes() if E.split_of(h) == "test"][:2]
    train_code = next(h for h in E.openmoji_hexcodes() if E.split_of(h) == "train")
    split, moved = E.held_out_split([train_code, *test_codes], ["same", "same", "other"])
    assert split == ["train", "train", "test"] and moved == [test_codes[0]]


def test_captions_and_categories():
    table = E.caption_table()
    groups, order, _ = E.emoji_groups()
    assert E.caption_for("\U0001f600", table) == "grinning face"
    assert E.caption_for("\u2764\ufe0f", table) == E.caption_for("\u2764", table) == "red heart"
    assert E.caption_for("\U0001f1e6", table) == "regional indicator symbol letter a"  # unicodedata fallback
    assert E.caption_for("\ue000", table) == ""  # OpenMoji private-use extra: no honest caption
    assert E.category_for("\U0001f600", groups) == "Smileys & Emotion"
    assert E.category_for("\U0001f44d\U0001f3fd", groups) == "People & Body"
    assert E.category_for("\ue000", groups) == E.EXTRAS_OPENMOJI
    assert E.category_for("\U0001f1e6", groups) == E.EXTRAS_UNICODE
    assert order[0] == "Smileys & Emotion" and "Flags" in order


def test_renderer_refuses_blank_missing_and_unshaped_glyphs():
    r = E.GlyphRenderer()
    assert r.render("\U0001f600")[1] == "ok"
    assert r.render(" ")[1] == "blank"
    assert r.render("\U0010fffd")[1] == "missing"
    assert r.render("\U0001f600\U0001f600")[1] == "unshaped"


def test_digits():
    train, test = E.load_digits_images("train"), E.load_digits_images("test")
    assert train.images.shape[1:] == (1, 8, 8) and train.images.dtype == torch.uint8
    assert len(train) + len(test) == 1797 and 0.1 < len(test) / 1797 < 0.2
    assert not set(train.hexcodes) & set(test.hexcodes)
    assert train.images.max() == 255 and set(train.labels.tolist()) == set(range(10))
    big = E.load_digits_images("test", size=16)
    assert torch.equal(big.images[:, :, ::2, ::2], test.images)


def test_grid_and_png_provenance_round_trip(tmp_path):
    images = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    grid = make_grid(images, nrow=3, pad=1)
    assert grid.size == (1 + 3 * 9, 1 + 2 * 9)
    assert np.array_equal(np.asarray(grid)[1:9, 10:18], images[1].permute(1, 2, 0).numpy())
    prov = {"model": "abc123", "sampler": "ddim", "steps": 10, "seed": 7, "prompt": "a cat 🐱"}
    path = save_png(grid, tmp_path / "sub" / "g.png", prov)
    assert read_png_provenance(path) == prov
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    plain = tmp_path / "plain.png"
    grid.save(plain)
    assert read_png_provenance(plain) == {}


def test_unwritable_png_path_is_one_line_error(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    with pytest.raises(GenlabError, match="cannot write PNG") as e:
        save_png(np.zeros((4, 4, 3), np.uint8), blocker / "x.png", {"seed": 0})
    assert "\n" not in str(e.value)
