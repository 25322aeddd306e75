"""The captioned sources and Fashion-MNIST: parsing, fixed splits, held-out categories, duplicates, licences."""

import numpy as np
import pytest
import torch

from genlab.clip import data
from genlab.clip.data import (
    FASHION_CLASSES,
    HELD_OUT_CATEGORIES,
    _drop_duplicates,
    _render,
    caption_variants,
    load_fashion_mnist,
    openclipart_items,
    split_of,
    tuxpaint_items,
)


def test_split_is_a_fixed_function_of_the_item():
    assert split_of("tuxpaint", "animals/mammals/badger.png", "animals") == split_of(
        "tuxpaint", "animals/mammals/badger.png", "animals")
    assert split_of("tuxpaint", "vehicles/car.png", "vehicles") == "heldout"
    splits = [split_of("openclipart", f"misc/item{i}.png", "misc") for i in range(4000)]
    assert abs(splits.count("test") / 4000 - 0.15) < 0.02 and "heldout" not in splits


def test_caption_templates():
    assert caption_variants("a badger", "tuxpaint", "animals") == [
        "a badger", "a picture of a badger", "a stamp of a badger", "a badger, animals"]
    assert caption_variants("x", "unknown", "c") == ["x"]


def test_duplicates_keep_the_held_out_copy():
    img = [np.zeros((3, 4, 4), np.uint8), np.ones((3, 4, 4), np.uint8), np.zeros((3, 4, 4), np.uint8)]
    merged = {"images": img, "captions": ["a", "b", "c"], "categories": ["x"] * 3, "sources": ["s"] * 3,
              "keys": ["k0", "k1", "k2"], "splits": ["train", "train", "heldout"]}
    skipped = []
    out = _drop_duplicates(merged, skipped)
    assert out["keys"] == ["k1", "k2"] and skipped == [{"source": "s", "key": "k0", "reason": "duplicate image"}]


@pytest.mark.skipif(not data.TUXPAINT_DIR.is_dir(), reason="tuxpaint-stamps-default not installed")
def test_tuxpaint_captions_from_their_txt_files():
    items = {key: (caption, category) for key, _, caption, category in tuxpaint_items()}
    assert items["animals/mammals/badger.png"] == ("a badger", "animals")
    assert len(items) > 700
    assert {c for _, c in items.values()} >= set(HELD_OUT_CATEGORIES["tuxpaint"])


@pytest.mark.skipif(not data.OPENCLIPART_DIR.is_dir(), reason="openclipart-png not installed")
def test_openclipart_names_links_and_rendering():
    items = openclipart_items()
    keys = {key for key, *_ in items}
    assert "science/astronomy/full_moon_dan_gerhards_01.png" in keys
    assert "science/astronomy/southen_cross_01.png" not in keys  # a link to geography/: one copy only
    assert not any(category in data.OPENCLIPART_SKIP for *_, category in items)
    moon = next(i for i in items if i[0] == "science/astronomy/full_moon_dan_gerhards_01.png")
    assert moon[2] == "full moon dan gerhards"
    skipped = []
    out = _render([moon], "openclipart", 32, skipped)
    assert out["images"][0].shape == (3, 32, 32) and out["images"][0].dtype == np.uint8 and not skipped
    assert out["images"][0][:, 0, 0].tolist() == [255, 255, 255]  # transparent corners on white


@pytest.mark.skipif(not data.FASHION_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_test_split():
    images, labels = load_fashion_mnist("test")
    assert images.shape == (10000, 1, 28, 28) and images.dtype == torch.uint8
    assert torch.bincount(labels).tolist() == [1000] * 10 and len(FASHION_CLASSES) == 10
    assert images[:, :, 0, 0].float().mean() < 5  # white garments on black, as distributed
