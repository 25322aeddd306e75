"""Training a GAN with the shared trainer: configs, presets, data, and the two-phase task.

One training step plays one round of the game (Goodfellow et al. 2014, Algorithm 1, with k = 1):

- phase ``D``: generate a batch without gradients, score it and a batch of real images (both augmented, see
  ``augment.py``), step the discriminator on the logistic loss; every ``r1_every`` steps add the R1 penalty times
  ``r1_every`` (lazy regularisation, StyleGAN2 sec. 3.1), and feed ``sign(D(real))`` to ADA's controller;
- phase ``G``: generate a batch, score it through the same augmentation, step the generator on the
  non-saturating loss; the mapping network's ``w_avg`` follows the batch's mean ``w``.

Each phase has its own Adam with StyleGAN2's betas (0, 0.99) and no gradient clipping. The trainer keeps an EMA of
the generator (``ema_module``), the model that samples.

Lazy R1 runs *inside* the ``D`` phase, not as a phase of its own with ``every=16``: in StyleGAN2 the regularisation
step shares the discriminator's Adam (its moment estimates), and that is what gives ``gamma`` its meaning. A phase
with an optimizer of its own would normalise the penalty's gradient away (Adam is invariant to the scale of the
loss), whatever ``gamma`` is.

Every random number of a step is drawn per example, from a generator seeded by (seed, step, example index): the
latents, the noise maps, the style-mixing crossover, the augmentations. A batch split over N processes therefore
draws exactly what one process draws, and data-parallel training computes the same update as one process
(``tests/gan/test_task.py``); resuming needs nothing but the step, which lives in the model's ``step`` buffer with
ADA's ``p`` and statistics, so checkpoints carry them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.distributed as dist

from ..config import to_dict
from ..train import TrainConfig
from .augment import NUM_UNIFORMS
from .loss import ada_adjust, d_logistic_loss, g_nonsaturating_loss, r1_penalty
from .model import GAN, GANConfig

Dataset = Literal["emoji16", "emoji32", "emoji64", "fashion32", "digits16"]


@dataclass
class GANLossConfig:
    r1_gamma: float = 0.05  # R1 weight; 0 disables. StyleGAN2-ADA's heuristic: 0.0002 * size^2 / batch
    r1_every: int = 16  # lazy regularisation interval (StyleGAN2 sec. 3.1); 1 = every step
    style_mixing: float = 0.0  # probability of mixing two latents at a random layer (StyleGAN sec. 3.1)
    mirror: bool = True  # flip real images left-right at random (dataset augmentation, not seen by G)
    augment: tuple[str, ...] = ()  # ops of augment.AugmentPipe
    augment_p: float = 0.0  # the probability of each op: fixed, or ADA's starting point
    ada_target: float = 0.0  # > 0: adapt p so that E[sign(D(real))] stays at this value (ADA: 0.6)
    ada_interval: int = 4  # steps between adjustments of p
    ada_kimg: float = 100.0  # thousands of images for p to move by 1 (StyleGAN2-ADA: 500, for long runs)


@dataclass
class GANSpec:
    """Everything needed to rebuild a GAN and know what it was trained on; stored in every checkpoint."""

    net: GANConfig = field(default_factory=GANConfig)
    loss: GANLossConfig = field(default_factory=GANLossConfig)
    dataset: Dataset = "emoji32"


@dataclass
class GANRun:
    """A preset: the GAN and how to train it (``genlab train gan --preset NAME key=value ...``)."""

    model: GANSpec = field(default_factory=GANSpec)
    train: TrainConfig = field(default_factory=TrainConfig)


def _train(**kw) -> TrainConfig:
    """StyleGAN2's optimiser settings: Adam betas (0, 0.99), constant learning rate, no clipping."""
    base = dict(lr=2.5e-3, beta1=0.0, beta2=0.99, grad_clip=0.0, warmup_steps=0, schedule="constant",
                ema_decay=0.999, weight_decay=0.0)
    return TrainConfig(**{**base, **kw})


ADA = ("xflip", "rotate90", "translation", "brightness", "saturation", "contrast", "cutout")

PRESETS: dict[str, GANRun] = {
    # The bundled emoji GAN (recipes/emoji32_gan.py): StyleGAN2 at 32 px on the ~3,900 OpenMoji training glyphs,
    # a small-data regime where ADA matters. Channels taper fast (the 32 px layers cost the most on a CPU).
    "emoji32-gan": GANRun(
        GANSpec(GANConfig(image_size=32, z_dim=128, w_dim=128, mapping_layers=2, g_channels=(256, 128, 64, 32),
                          d_channels=(256, 128, 64, 32)),
                GANLossConfig(r1_gamma=0.05, style_mixing=0.5, augment=ADA, ada_target=0.6), "emoji32"),
        _train(steps=15000, batch_size=32, ckpt_every=500, sample_every=1000, eval_every=500),
    ),
    # Class-conditional StyleGAN2 on Fashion-MNIST padded from 28 to 32 px (60,000 training images, 10 classes):
    # enough data that no augmentation is needed.
    "fashion-gan": GANRun(
        GANSpec(GANConfig(image_size=32, image_channels=1, num_classes=10, z_dim=128, w_dim=128,
                          g_channels=(256, 128, 64, 32), d_channels=(256, 128, 64, 32)),
                GANLossConfig(r1_gamma=0.05, mirror=False), "fashion32"),
        _train(steps=15000, batch_size=32, ckpt_every=500, sample_every=1000),
    ),
    # The DCGAN baseline on the same emoji (Radford et al. 2016's optimiser: Adam 2e-4, beta1 0.5).
    "emoji32-dcgan": GANRun(
        GANSpec(GANConfig(arch="dcgan", image_size=32, z_dim=100, g_channels=(256, 128, 64, 32),
                          d_channels=(256, 128, 64, 32), mbstd_group=0),
                GANLossConfig(r1_gamma=0.0), "emoji32"),
        _train(steps=20000, batch_size=64, lr=2e-4, beta1=0.5, beta2=0.999, ckpt_every=1000, sample_every=1000,
               eval_every=1000),
    ),
    # Mode collapse, measured (recipes/gan_collapse.py): a small StyleGAN2 on emoji at 16 px with every safeguard off
    # (no minibatch stddev, no R1, no augmentation), and the same network with them on.
    "emoji16-collapse": GANRun(
        GANSpec(GANConfig(image_size=16, z_dim=64, w_dim=64, mapping_layers=2, g_channels=(128, 64, 32),
                          d_channels=(128, 64, 32), mbstd_group=0),
                GANLossConfig(r1_gamma=0.0, mirror=False), "emoji16"),
        _train(steps=1000, batch_size=32, ckpt_every=250, sample_every=250, eval_every=100),
    ),
    "emoji16-fixed": GANRun(
        GANSpec(GANConfig(image_size=16, z_dim=64, w_dim=64, mapping_layers=2, g_channels=(128, 64, 32),
                          d_channels=(128, 64, 32), mbstd_group=4),
                GANLossConfig(r1_gamma=0.05, mirror=False, augment=ADA, ada_target=0.6, ada_kimg=20), "emoji16"),
        _train(steps=1000, batch_size=32, ckpt_every=250, sample_every=250, eval_every=100),
    ),
    # sklearn's digits at 16 px: a real-data GAN small enough for tests and a one-minute smoke run.
    "digits-gan": GANRun(
        GANSpec(GANConfig(image_size=16, image_channels=1, num_classes=10, z_dim=32, w_dim=32, mapping_layers=2,
                          g_channels=(64, 64, 32), d_channels=(64, 64, 32)),
                GANLossConfig(r1_gamma=0.01, r1_every=4, mirror=False, augment=("translation", "brightness"),
                              ada_target=0.6, ada_interval=2, ada_kimg=5), "digits16"),
        _train(steps=2000, batch_size=32, ckpt_every=500, sample_every=500),
    ),
    # For tests: every part switched on (style mixing, lazy R1, all augmentations under ADA) at toy size.
    "tiny": GANRun(
        GANSpec(GANConfig(image_size=16, image_channels=1, num_classes=10, z_dim=16, w_dim=16, mapping_layers=1,
                          g_channels=(16, 16, 8), d_channels=(16, 16, 8)),
                GANLossConfig(r1_gamma=1.0, r1_every=2, style_mixing=0.5, augment=ADA, augment_p=0.2,
                              ada_target=0.6, ada_interval=1, ada_kimg=0.1), "digits16"),
        _train(steps=6, batch_size=8, ckpt_every=0, ema_decay=0.9, threads=1, progress=False),
    ),
}


# ---------------------------------------------------------------------------------------------------------------
# Data


def load_data(dataset: str, split: str = "train"):
    """The labelled image set (``images`` uint8 ``(N, C, S, S)``, ``labels``, ``category_names``) of a dataset."""
    from ..data import emoji

    if dataset == "digits16":
        return emoji.load_digits_images(split, size=16)
    if dataset == "fashion32":
        from ..data.fashion_mnist import load_fashion_mnist

        return load_fashion_mnist(split, size=32)
    return emoji.load_emoji(size=int(dataset.removeprefix("emoji")), split=split)


def to_model_range(images_uint8: torch.Tensor) -> torch.Tensor:
    return images_uint8.float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


# ---------------------------------------------------------------------------------------------------------------
# Per-example random draws


def mix_seed(*values: int) -> int:
    """A 63-bit seed from integers, by SplitMix64 (Steele et al. 2014): nearby inputs give unrelated seeds."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (int(v) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h = (h ^ (h >> 27)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


@dataclass
class Draws:
    """One phase's random numbers for a batch, row ``i`` drawn from example ``i``'s own generator."""

    z: torch.Tensor  # (B, z_dim)
    z_mix: torch.Tensor  # (B, z_dim): the second latent of style mixing
    noise: list[torch.Tensor]  # per noise layer (B, 1, R, R)
    u: torch.Tensor  # (B, 2 * NUM_UNIFORMS + 3): augmentation of fakes, of reals, mixing, crossover, mirror


def draw(seeds: torch.Tensor, stream: int, z_dim: int, noise_shapes: list[tuple[int, int, int]]) -> Draws:
    """Draw a :class:`Draws` for examples with per-example ``seeds`` ``(B,)``; ``stream`` separates the phases."""
    sizes = [z_dim, z_dim] + [c * h * w for c, h, w in noise_shapes]
    n_normal, n_uniform = sum(sizes), 2 * NUM_UNIFORMS + 3
    normals, uniforms = torch.empty(len(seeds), n_normal), torch.empty(len(seeds), n_uniform)
    for i, seed in enumerate(seeds.tolist()):
        g = torch.Generator().manual_seed(mix_seed(seed, stream))
        normals[i] = torch.randn(n_normal, generator=g)
        uniforms[i] = torch.rand(n_uniform, generator=g)
    parts = normals.split(sizes, dim=1)
    noise = [p.reshape(-1, *shape) for p, shape in zip(parts[2:], noise_shapes)]  # (B, 1, R, R) each
    return Draws(parts[0], parts[1], noise, uniforms)


# ---------------------------------------------------------------------------------------------------------------


def _phases():
    """The trainer's phases: ``Phase`` objects where the trainer has them, else plain names (same settings from
    the run's TrainConfig)."""
    try:
        from ..train import Phase
    except ImportError:
        return ["D", "G"]
    return [Phase("D", betas=(0.0, 0.99), grad_clip=0.0), Phase("G", betas=(0.0, 0.99), grad_clip=0.0)]


class GANTask:
    """The GAN task handed to :class:`genlab.train.Trainer`."""

    kind = "gan"

    def __init__(self, spec: GANSpec, data=None, seed: int = 0, sample_grid: int = 16, monitor=None):
        self.spec, self.seed, self.sample_grid, self.monitor = spec, seed, sample_grid, monitor
        net, loss = spec.net, spec.loss
        self.model = GAN(net, loss.augment)
        self.model.augment.p.fill_(loss.augment_p)
        data = load_data(spec.dataset) if data is None else data
        self.images, self.labels = data.images, data.labels
        expected = (net.image_channels, net.image_size, net.image_size)
        if tuple(self.images.shape[1:]) != expected:
            raise ValueError(f"dataset images are {tuple(self.images.shape[1:])}, the GAN expects {expected}")
        if net.num_classes and net.num_classes != len(data.category_names):
            raise ValueError(f"the GAN has {net.num_classes} classes, the dataset {len(data.category_names)}")
        self.num_examples = len(self.images)
        self.phases = _phases()
        self.meta = {"dataset": spec.dataset, "num_examples": self.num_examples,
                     "data_attribution": getattr(data, "attribution", "")}

    # -- the trainer's interface -------------------------------------------------------------------------------

    def parameters(self, phase: str):
        return (self.model.D if _name(phase) == "D" else self.model.G).parameters()

    def ema_module(self):
        return self.model.G

    def checkpoint_config(self) -> dict:
        return to_dict(self.spec)

    def batch(self, indices: torch.Tensor) -> dict:
        """Real images, labels and per-example seeds for this step; advances the step count (and ADA's ``p``)."""
        step = int(self.model.step)
        loss = self.spec.loss
        if loss.ada_target > 0 and step > 0 and step % loss.ada_interval == 0:
            self._adjust_p()
        self.model.step += 1
        seeds = torch.tensor([mix_seed(self.seed, step, i) for i in indices.tolist()], dtype=torch.long)
        return {"real": to_model_range(self.images[indices]), "labels": self.labels[indices], "seeds": seeds,
                "r1": loss.r1_gamma > 0 and step % loss.r1_every == 0}

    def loss(self, batch: dict, phase: str) -> tuple[torch.Tensor, dict[str, float]]:
        return self._d_loss(batch) if _name(phase) == "D" else self._g_loss(batch)

    # -- the two phases ----------------------------------------------------------------------------------------

    def _labels(self, batch: dict) -> torch.Tensor | None:
        return batch["labels"] if self.spec.net.num_classes else None

    def _draws(self, batch: dict, stream: int) -> Draws:
        G = self.model.G
        d = draw(batch["seeds"].cpu(), stream, G.z_dim, G.noise_shapes())
        device = batch["real"].device
        return Draws(d.z.to(device), d.z_mix.to(device), [n.to(device) for n in d.noise], d.u.to(device))

    def _generate(self, d: Draws, c: torch.Tensor | None, update_w_avg: bool) -> torch.Tensor:
        """G with per-example style mixing: layers from a random crossover on take their w from a second latent."""
        G = self.model.G
        ws = G.mapping(d.z, c)  # (B, num_ws, w_dim)
        if update_w_avg:
            G.mapping.track_w_avg(_mean_over_ranks(ws[:, 0].detach().mean(0)))
        if self.spec.loss.style_mixing > 0 and G.num_ws > 1:
            ws_mix = G.mapping(d.z_mix, c)
            cutoff = 1 + (d.u[:, -2] * (G.num_ws - 1)).long()  # (B,) in [1, num_ws - 1]
            cutoff = torch.where(d.u[:, -3] < self.spec.loss.style_mixing, cutoff, G.num_ws)
            layer = torch.arange(G.num_ws, device=ws.device)[None, :, None]  # (1, num_ws, 1)
            ws = torch.where(layer < cutoff[:, None, None], ws, ws_mix)
        return G.synthesis(ws, noise=d.noise if d.noise else "none")

    def _d_loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        D, augment, spec = self.model.D, self.model.augment, self.spec.loss
        D.requires_grad_(True)
        c = self._labels(batch)
        d = self._draws(batch, stream=0)
        with torch.no_grad():
            fake = self._generate(d, c, update_w_avg=False)
        real = batch["real"]
        if spec.mirror:
            real = torch.where((d.u[:, -1] < 0.5)[:, None, None, None], real.flip(3), real)
        fake_logits = D(augment(fake, d.u[:, :NUM_UNIFORMS]), c)

        def judge(x):
            return D(augment(x, d.u[:, NUM_UNIFORMS : 2 * NUM_UNIFORMS]), c)

        metrics = {}
        if batch["r1"]:
            penalty, real_logits = r1_penalty(judge, real)
            reg = (spec.r1_gamma / 2) * spec.r1_every * penalty.mean()
            metrics["r1"] = penalty.mean().item()
        else:
            real_logits, reg = judge(real), 0.0
        loss = d_logistic_loss(real_logits, fake_logits)
        if spec.ada_target > 0:  # ADA's statistic, summed over all processes so every copy of p moves alike
            signs = torch.stack([real_logits.detach().sign().sum().double(),
                                 torch.tensor(float(len(real_logits)), dtype=torch.float64, device=real.device)])
            augment.signs += _sum_over_ranks(signs).to(augment.signs.device)
        metrics.update(loss=loss.item(), logit_real=real_logits.mean().item(), logit_fake=fake_logits.mean().item(),
                       augment_p=float(augment.p))
        return loss + reg, metrics

    def _g_loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        D = self.model.D
        D.requires_grad_(False)  # the G phase needs gradients through D, not for it
        try:
            c = self._labels(batch)
            d = self._draws(batch, stream=1)
            fake = self._generate(d, c, update_w_avg=True)
            loss = g_nonsaturating_loss(D(self.model.augment(fake, d.u[:, :NUM_UNIFORMS]), c))
        finally:
            D.requires_grad_(True)
        return loss, {"loss": loss.item()}

    def _adjust_p(self) -> None:
        """ADA: move ``p`` by the sign of ``r_t - target`` over the images seen since the last adjustment."""
        augment, spec = self.model.augment, self.spec.loss
        signs = augment.signs
        if signs[1] > 0:
            r_t = float(signs[0] / signs[1])
            augment.p.fill_(ada_adjust(float(augment.p), r_t, spec.ada_target, int(signs[1]), spec.ada_kimg))
        augment.signs.zero_()

    # -- hooks ---------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, out_dir: Path, step: int, ema_model) -> None:
        """A grid of the EMA generator's samples (seed 0, no truncation), for eyeballing progress."""
        from .pipeline import generate_images, save_grid

        images = generate_images(ema_model, self.spec, n=self.sample_grid, seed=0)
        save_grid(images, out_dir / f"step_{step:07d}.png", {"step": step, "seed": 0, "psi": 1.0})

    @torch.no_grad()
    def evaluate(self, step: int, ema_model) -> dict[str, float]:
        """Mode-collapse signals of the EMA generator (``monitor.py``); {} without a monitor."""
        if self.monitor is None:
            return {}
        return self.monitor.measure(ema_model, self.spec)


def _sum_over_ranks(x: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        x = x.clone()
        dist.all_reduce(x)
    return x


def _mean_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """The mean of ``x`` over all processes (each holds the mean of an equal share of the batch)."""
    if dist.is_available() and dist.is_initialized():
        return _sum_over_ranks(x) / dist.get_world_size()
    return x


def _name(phase) -> str:
    return phase if isinstance(phase, str) else phase.name
