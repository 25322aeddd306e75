"""The sampling pipeline: x0 clipping around the model, and exact recovery with an oracle denoiser."""

import pytest
import torch

from genlab.diffusion.pipeline import clip_denoised, generate
from genlab.diffusion.schedule import NoiseSchedule
from genlab.diffusion.task import DiffusionConfig


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_clip_denoised_clamps_only_out_of_range_x0(prediction_type):
    schedule = NoiseSchedule("linear")
    t = torch.tensor([10, 500, 990])
    x0 = torch.tensor([0.5, -0.9, 3.0]).view(3, 1, 1, 1).expand(3, 1, 2, 2)
    noise = torch.randn(3, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    x_t = schedule.add_noise(x0, noise, t)
    target = schedule.target(x0, noise, t, prediction_type)
    out = clip_denoised(lambda x, t: target, schedule, prediction_type)(x_t, t)
    implied = schedule.pred_x0(out, x_t, t, prediction_type)
    assert torch.allclose(implied[:2], x0[:2], atol=1e-4)  # in range: untouched
    assert torch.allclose(implied[2], torch.ones_like(implied[2]), atol=1e-3)  # 3.0 clamped to 1.0


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpmpp-2m", "euler", "heun"])
def test_oracle_denoiser_recovers_its_image(sampler):
    """A model that knows the one training image: every sampler must land on it exactly."""
    cfg = DiffusionConfig()
    cfg.unet.image_size = 4
    schedule = cfg.noise_schedule()
    x0 = torch.linspace(-1, 1, 3 * 16).view(1, 3, 4, 4)

    class Oracle(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x, t):
            sigma = torch.as_tensor(schedule.t_to_sigma(t.double().numpy()), dtype=x.dtype).view(-1, 1, 1, 1)
            abar = 1 / (1 + sigma**2)
            return (x - abar.sqrt() * x0) / (1 - abar).sqrt()

    out = generate(Oracle(), cfg, n=2, sampler=sampler, steps=10, seed=0)
    assert torch.equal(out, ((x0.expand(2, -1, -1, -1) + 1) * 127.5).round().to(torch.uint8))
