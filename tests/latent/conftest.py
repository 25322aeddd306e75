"""Tiny real runs shared by the latent tests: a VAE and a text-conditioned latent diffusion model trained for a few
steps on 16 px OpenMoji with their real captions (the mechanics, not the quality)."""

import pytest
import torch

from genlab.config import apply_overrides
from genlab.latent.task import LDM_PRESETS, VAE_PRESETS, LDMTask, VAETask
from genlab.train import Trainer, seed_everything

QUIET = ["train.progress=false", "train.threads=1", "train.log_every=1"]


@pytest.fixture(scope="session")
def emoji16():
    """(uint8 images (N, 3, 16, 16), captions) of 120 captioned OpenMoji glyphs."""
    from genlab.data.emoji import load_emoji

    data = load_emoji(16, "all", limit=160)
    keep = [i for i, c in enumerate(data.captions) if c][:120]
    return data.images[keep], [data.captions[i] for i in keep]


def _train_vae(out, images, *overrides):
    run = apply_overrides(VAE_PRESETS["tiny"], [*QUIET, *overrides])
    seed_everything(run.train.seed)
    task = VAETask(run, images=images, eval_images=images[:8])
    trainer = Trainer(task, run.train, out)
    trainer.fit()
    return task, trainer


def _train_ldm(out, images, captions, vae, *overrides):
    run = apply_overrides(LDM_PRESETS["tiny"], [*QUIET, f"vae={vae}", *overrides])
    seed_everything(run.train.seed)
    task = LDMTask(run, images=images, captions=captions)
    trainer = Trainer(task, run.train, out)
    trainer.fit()
    return task, trainer


@pytest.fixture(scope="session")
def train_vae():
    """``train_vae(out, images, *overrides) -> (task, trainer)``: the tiny VAE preset."""
    return _train_vae


@pytest.fixture(scope="session")
def train_ldm():
    """``train_ldm(out, images, captions, vae, *overrides) -> (task, trainer)``: the tiny LDM preset."""
    return _train_ldm


@pytest.fixture(scope="session")
def vae_run(tmp_path_factory, emoji16):
    out = tmp_path_factory.mktemp("vae") / "run"
    _train_vae(out, emoji16[0], "train.steps=3", "loss.adversarial=0.5", "loss.adversarial_start=1")
    return out


@pytest.fixture(scope="session")
def ldm_run(tmp_path_factory, emoji16, vae_run):
    out = tmp_path_factory.mktemp("ldm") / "run"
    torch.manual_seed(0)
    _train_ldm(out, *emoji16, vae_run)
    return out
