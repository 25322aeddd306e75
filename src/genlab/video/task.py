"""Training video diffusion with the shared trainer: configs, presets, and the task.

The loss is Ho et al. 2020's Algorithm 1 applied to a whole clip (Ho et al. 2022, sec. 3): one timestep ``t`` and
one noise tensor per clip, x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps over all ``F`` frames at once, and a mean
squared error on eps (or on v, Salimans & Ho 2022) over the whole clip. Denoising the frames *jointly* at one
noise level is what lets temporal attention make them agree; the frame-by-frame baseline is the same loss with
``model.unet.temporal=false``.

Clip lengths: every training step renders ``batch_size`` clips of the longest length ``unet.frames`` and may cut
them into shorter clips of a length from ``clip_lengths`` (chosen by the step's first index, so resume is exact),
which keeps the frames per step — and the step's cost — constant while the model sees every length it will be
asked to sample.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from ..config import to_dict
from ..diffusion.schedule import NoiseSchedule
from ..errors import GenlabError
from ..train import TrainConfig
from .data import SpriteClipConfig, load_bank, render_clips, stack_videos
from .model import VideoUNet, VideoUNetConfig


@dataclass
class VideoConfig:
    """Everything needed to rebuild a video diffusion model, its data and its sampler; stored in every checkpoint."""

    unet: VideoUNetConfig = field(default_factory=VideoUNetConfig)
    data: SpriteClipConfig = field(default_factory=SpriteClipConfig)
    clip_lengths: tuple[int, ...] = (8, 16, 32)  # lengths mixed in training; each divides unet.frames
    schedule: Literal["linear", "cosine"] = "cosine"
    num_train_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    prediction_type: Literal["epsilon", "v_prediction"] = "v_prediction"
    data_seed: int = 0  # the training clip stream; evaluation clips use the held-out sprites and their own seed

    def noise_schedule(self) -> NoiseSchedule:
        return NoiseSchedule(self.schedule, self.num_train_timesteps, self.beta_start, self.beta_end)

    def check(self) -> None:
        self.data.check()
        u = self.unet
        if u.frames != self.data.frames:
            raise GenlabError(f"unet.frames={u.frames} differs from data.frames={self.data.frames}")
        if u.image_size != self.data.size or u.in_channels != 3 or u.out_channels != 3:
            raise GenlabError(f"the UNet expects {u.in_channels}x{u.image_size}px frames; the clips are "
                              f"3x{self.data.size}px")
        bad = [n for n in self.clip_lengths if n < 1 or u.frames % n]
        if bad or not self.clip_lengths:
            raise GenlabError(f"clip_lengths {list(self.clip_lengths)}: each must divide unet.frames={u.frames}")


@dataclass
class VideoRun:
    """A preset: the model and how to train it (``genlab train video --preset NAME key=value ...``)."""

    model: VideoConfig = field(default_factory=VideoConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _sprites_video(temporal: bool) -> VideoRun:
    unet = VideoUNetConfig(frames=32, channels=(32, 64, 128), attention=(False, False, True),
                           temporal_attention=(True, True, True), temporal=temporal, head_dim=16, norm_groups=8)
    return VideoRun(
        VideoConfig(unet, SpriteClipConfig(frames=32)),
        # 8 clips of 32 frames a step (or 32 of 8, 16 of 16): 256 frames at 8 to 32 noise levels; why these and
        # not the first run's 2 clips and 16 channels: recipes/sprites_video.py. Trained on a GPU
        # (scripts/gpu/train_video.sh); on one CPU core a step takes over 10 s (fp32: bf16 convolutions are slow there).
        TrainConfig(steps=4000, batch_size=8, lr=1e-3, warmup_steps=100, ema_decay=0.995, ckpt_every=250,
                    sample_every=0, threads=1),
    )


PRESETS: dict[str, VideoRun] = {
    # The bundled model (recipes/sprites_video.py): two OpenMoji sprites and a bar, 32 frames of 32 px.
    "sprites-video": _sprites_video(temporal=True),
    # The same UNet without temporal attention: every frame denoised on its own (the baseline of the benchmark).
    "sprites-video-frames": _sprites_video(temporal=False),
    # Tests: a 4-frame, 2-stage UNet on a 16-emoji bank.
    "tiny": VideoRun(
        VideoConfig(
            VideoUNetConfig(frames=4, channels=(8, 16), attention=(False, True), temporal_attention=(True, True),
                            head_dim=8, norm_groups=4),
            SpriteClipConfig(frames=4, sprites=4, held_out=2, emoji_limit=400),
            clip_lengths=(2, 4), num_train_timesteps=100,
        ),
        TrainConfig(steps=3, batch_size=2, warmup_steps=1, ckpt_every=0, threads=1, progress=False),
    ),
}


def build_model(cfg: VideoConfig) -> VideoUNet:
    return VideoUNet(cfg.unet)


def to_model_range(video_uint8: torch.Tensor) -> torch.Tensor:
    return video_uint8.float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def step_length(indices: torch.Tensor, lengths: tuple[int, ...]) -> int:
    """The clip length of the step whose batch is ``indices``: a pure function of its first index."""
    digest = hashlib.sha256(str(int(indices[0])).encode()).digest()
    return lengths[digest[0] % len(lengths)]


class VideoTask:
    """The video diffusion task handed to :class:`genlab.train.Trainer`; clips are rendered on the fly."""

    kind = "video"

    def __init__(self, cfg: VideoConfig, num_examples: int = 100_000):
        cfg.check()
        self.cfg = cfg
        self.model = build_model(cfg)
        self.schedule = cfg.noise_schedule()
        self.bank = load_bank(cfg.data)
        self.num_examples = num_examples  # clip indices of the training stream (the stream itself is endless)
        self.meta = {"dataset": "openmoji-sprite-clips", "sprites": self.bank.hexcodes[: self.bank.n_train],
                     "held_out_sprites": self.bank.hexcodes[self.bank.n_train :],
                     "license": self.bank.license, "attribution": self.bank.attribution}

    def batch(self, indices: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B * F / L, 3, L, H, W)`` clips for this step's length ``L`` (uint8 until :meth:`loss`, which
        runs on the training device: a quarter of the bytes to move, and no float pass on the CPU)."""
        video = stack_videos(render_clips(self.bank, self.cfg.data, self.cfg.data_seed, indices))
        B, C, frames, H, W = video.shape
        L = step_length(indices, self.cfg.clip_lengths)
        # (B, C, F, H, W) -> (B, C, F/L, L, H, W) -> (B * F/L, C, L, H, W): consecutive pieces of each clip.
        return video.view(B, C, frames // L, L, H, W).transpose(1, 2).reshape(B * frames // L, C, L, H, W)

    def loss(self, clips: torch.Tensor, phase: str) -> tuple[torch.Tensor, dict[str, float]]:
        x0 = to_model_range(clips)  # (N, 3, L, H, W) in [-1, 1]
        loss = self.schedule.loss(self.model, x0, self.cfg.prediction_type)  # one t per clip
        return loss, {"loss": loss.item()}

    def checkpoint_config(self) -> dict:
        return to_dict(self.cfg)

    @torch.no_grad()
    def sample(self, out_dir: Path, step: int, ema_model) -> None:
        """Four clips of the EMA model (DDIM, 20 steps) as one GIF, for eyeballing progress."""
        from .pipeline import generate, save_clips

        video = generate(ema_model, self.cfg, n=4, frames=self.cfg.unet.frames, sampler="ddim", steps=20, seed=0)
        save_clips(video, out_dir / f"step_{step:07d}.gif", {"step": step, "sampler": "ddim", "steps": 20, "seed": 0},
                   fps=self.cfg.unet.fps)
