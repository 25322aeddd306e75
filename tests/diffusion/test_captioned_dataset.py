"""``model.dataset=captioned-emoji64``: the pixel model trains on the latent model's captioned training images (the
loader stubbed with a few 64 px images: the real set renders thousands of glyphs)."""

import pytest
import torch

from genlab.clip.data import CaptionedImages
from genlab.config import apply_overrides
from genlab.diffusion.task import PRESETS, DiffusionTask, load_images
from genlab.errors import GenlabError
from genlab.latent import data as latent_data


@pytest.fixture
def captioned(monkeypatch):
    """Stub :func:`genlab.latent.data.load_captioned_emoji`: six uint8 (3, 64, 64) images per split; records calls."""
    calls = []

    def fake(size, split):
        calls.append((size, split))
        images = torch.full((6, 3, size, size), len(calls), dtype=torch.uint8)
        return CaptionedImages(images, ["a"] * 6, [""] * 6, ["openmoji"] * 6, [str(i) for i in range(6)], [split] * 6)

    monkeypatch.setattr(latent_data, "load_captioned_emoji", fake)
    return calls


def test_load_images_reads_the_captioned_split(captioned):
    assert load_images("captioned-emoji64").shape == (6, 3, 64, 64)
    load_images("captioned-emoji64", "heldout")
    assert captioned == [(64, "train"), (64, "heldout")]


def test_emoji64_preset_trains_on_captioned_images(captioned):
    run = apply_overrides(PRESETS["emoji64"], ["model.dataset=captioned-emoji64", "model.unet.channels=8,16",
                                               "model.unet.attention=false,true", "model.unet.norm_groups=4",
                                               "model.unet.head_dim=8"])
    task = DiffusionTask(run.model)
    assert captioned == [(64, "train")] and task.num_examples == 6 and task.meta["dataset"] == "captioned-emoji64"
    x0 = task.batch(torch.arange(4))  # (4, 3, 64, 64) in [-1, 1]
    assert x0.shape == (4, 3, 64, 64) and torch.isfinite(task.loss(x0, "main")[0])


def test_unknown_dataset_is_refused():
    with pytest.raises(GenlabError, match="captioned-emoji64"):
        apply_overrides(PRESETS["emoji64"], ["model.dataset=captioned-emoji32"])
