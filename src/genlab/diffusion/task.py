"""Training pixel diffusion with the shared trainer: configs, presets, and the task (Ho et al. 2020, Algorithm 1).

Algorithm 1: take a clean image x0, a uniform timestep t and Gaussian noise eps; make x_t = sqrt(abar_t) x0 +
sqrt(1 - abar_t) eps; regress the network's output on eps (or on v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0,
Salimans & Ho 2022) with a mean squared error. That is the whole loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from ..config import to_dict
from ..errors import GenlabError
from ..train import TrainConfig
from .model import UNet, UNetConfig
from .schedule import NoiseSchedule


@dataclass
class DiffusionConfig:
    """Everything needed to rebuild a diffusion model and to sample from it; stored in every checkpoint."""

    unet: UNetConfig = field(default_factory=UNetConfig)
    schedule: Literal["linear", "cosine"] = "linear"
    num_train_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    prediction_type: Literal["epsilon", "v_prediction"] = "epsilon"
    # emoji32 / emoji64: every OpenMoji glyph of the emoji set's training split (data/emoji.py); captioned-emoji64:
    # the 3,263 captioned training images of the latent model (latent/data.py), which leave out its held-out
    # combinations, so the two families train on the same images; digits: sklearn's digits at 16 px.
    dataset: Literal["emoji32", "emoji64", "captioned-emoji64", "digits"] = "emoji32"

    def __post_init__(self):
        problem = unet_problem(self.unet)
        if problem:
            raise GenlabError(problem)
        if self.num_train_timesteps < 1 or not 0 < self.beta_start < self.beta_end < 1:
            raise GenlabError(f"need num_train_timesteps >= 1 and 0 < beta_start < beta_end < 1 (got "
                              f"{self.num_train_timesteps}, {self.beta_start}, {self.beta_end})")

    def noise_schedule(self) -> NoiseSchedule:
        return NoiseSchedule(self.schedule, self.num_train_timesteps, self.beta_start, self.beta_end)


def unet_problem(u: UNetConfig) -> str | None:
    """What makes a UNet config unbuildable, in one line naming the fields (None when it can be built). Checked
    when the config is made or overridden, so that ``model.unet.channels=30,60`` fails at once, not deep in
    GroupNorm."""
    if not u.channels or len(u.attention) != len(u.channels):
        return (f"unet.attention {tuple(u.attention)} needs one entry per stage of unet.channels "
                f"{tuple(u.channels)}")
    if min(u.channels) < 1 or u.layers_per_block < 1 or u.norm_groups < 1 or u.head_dim < 0:
        return "unet.channels, unet.layers_per_block and unet.norm_groups must be >= 1, unet.head_dim >= 0"
    odd = [c for c in u.channels if c % u.norm_groups]
    if odd:
        return (f"unet.channels {tuple(u.channels)}: {odd[0]} is not divisible by unet.norm_groups={u.norm_groups} "
                "(GroupNorm splits the channels into equal groups)")
    attended = [c for c, a in zip(u.channels, u.attention) if a] + ([u.channels[-1]] if u.mid_attention else [])
    if u.head_dim and any(c % u.head_dim for c in attended):
        return (f"unet.channels {tuple(u.channels)}: stages with attention must be divisible by "
                f"unet.head_dim={u.head_dim}")
    if u.image_size % 2 ** (len(u.channels) - 1):
        return (f"unet.image_size={u.image_size} must be divisible by 2^{len(u.channels) - 1} (each of the "
                f"{len(u.channels)} stages but the last halves it)")
    return None


@dataclass
class DiffusionRun:
    """A preset: the model and how to train it (``genlab train diffusion --preset NAME key=value ...``)."""

    model: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


PRESETS: dict[str, DiffusionRun] = {
    # The bundled model (recipes/emoji32_ddpm.py): a 32 px UNet small enough to train on 2 CPU cores. It predicts
    # v, not epsilon: under bf16 autocast an epsilon-UNet cannot return x_t precisely enough at the noisiest steps,
    # and the clean image implied there amplifies its error ~150-fold (see the recipe).
    "emoji32": DiffusionRun(
        DiffusionConfig(UNetConfig(image_size=32, channels=(32, 64, 128), attention=(False, False, True),
                                   layers_per_block=2, head_dim=32), dataset="emoji32",
                        prediction_type="v_prediction"),
        TrainConfig(steps=8000, batch_size=64, lr=4e-4, warmup_steps=200, ema_decay=0.999, ckpt_every=500,
                    sample_every=1000),
    ),
    "emoji64": DiffusionRun(
        DiffusionConfig(UNetConfig(image_size=64, channels=(64, 128, 128, 256), attention=(False, False, True, True),
                                   layers_per_block=2, head_dim=32), dataset="emoji64",
                        prediction_type="v_prediction"),
        TrainConfig(steps=40000, batch_size=64, lr=2e-4, warmup_steps=500, ckpt_every=1000, sample_every=2000),
    ),
    # sklearn digits, 8x8 padded to 16x16: the fastest real-data smoke run (a minute on a laptop CPU).
    "digits": DiffusionRun(
        DiffusionConfig(UNetConfig(image_size=16, in_channels=1, out_channels=1, channels=(32, 64),
                                   attention=(False, True), layers_per_block=1, norm_groups=8, head_dim=16),
                        dataset="digits"),
        TrainConfig(steps=1500, batch_size=64, lr=1e-3, warmup_steps=50, ema_decay=0.995, ckpt_every=500),
    ),
}


def build_model(cfg: DiffusionConfig) -> UNet:
    return UNet(cfg.unet)


def load_images(dataset: str, split: str = "train") -> torch.Tensor:
    """The training images as uint8 (N, C, H, W)."""
    from ..data import emoji

    if dataset == "captioned-emoji64":
        from ..latent.data import load_captioned_emoji

        return load_captioned_emoji(64, split).images
    if dataset == "digits":
        return emoji.load_digits_images(split, size=16).images
    return emoji.load_emoji(size=int(dataset.removeprefix("emoji")), split=split).images


def to_model_range(images_uint8: torch.Tensor) -> torch.Tensor:
    return images_uint8.float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class DiffusionTask:
    """The diffusion task handed to :class:`genlab.train.Trainer`."""

    kind = "diffusion"

    def __init__(self, cfg: DiffusionConfig, images: torch.Tensor | None = None, sample_grid: int = 16):
        self.cfg = cfg
        self.model = build_model(cfg)
        self.schedule = cfg.noise_schedule()
        self.images = load_images(cfg.dataset) if images is None else images  # uint8 (N, C, H, W)
        expected = (cfg.unet.in_channels, cfg.unet.image_size, cfg.unet.image_size)
        if tuple(self.images.shape[1:]) != expected:
            raise ValueError(f"dataset images are {tuple(self.images.shape[1:])}, the UNet expects {expected}")
        self.num_examples = len(self.images)
        self.sample_grid = sample_grid
        self.meta = {"dataset": cfg.dataset, "num_examples": self.num_examples}

    def batch(self, indices: torch.Tensor) -> torch.Tensor:
        x0 = to_model_range(self.images[indices])
        return torch.where(torch.rand(len(x0), 1, 1, 1) < 0.5, x0, x0.flip(-1))  # horizontal flips

    def loss(self, x0: torch.Tensor, phase: str) -> tuple[torch.Tensor, dict[str, float]]:
        loss = self.schedule.loss(self.model, x0, self.cfg.prediction_type)
        return loss, {"loss": loss.item()}

    def checkpoint_config(self) -> dict:
        return to_dict(self.cfg)

    @torch.no_grad()
    def sample(self, out_dir: Path, step: int, ema_model) -> None:
        """A DDIM-50 grid of the EMA model during training, for eyeballing progress."""
        from .pipeline import generate, save_grid

        images = generate(ema_model, self.cfg, n=self.sample_grid, sampler="ddim", steps=50, seed=0)
        save_grid(images, out_dir / f"step_{step:07d}.png", {"step": step, "sampler": "ddim", "steps": 50, "seed": 0})

