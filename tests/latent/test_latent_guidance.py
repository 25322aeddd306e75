"""Classifier-free guidance as a denoiser: one batch [cond; uncond], the paper's combination, every sampler."""

import pytest
import torch

from genlab.diffusion.model import UNet, UNetConfig
from genlab.diffusion.samplers import SAMPLERS, guided, make_sampler, sample_loop
from genlab.diffusion.schedule import NoiseSchedule
from genlab.errors import GenlabError


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    cfg = UNetConfig(image_size=8, in_channels=2, out_channels=2, channels=(16, 32), attention=(False, True),
                     layers_per_block=1, norm_groups=8, head_dim=8, cross_attention_dim=12)
    return UNet(cfg).eval()


def test_one_batch_equals_two_evaluations(unet):
    calls = []

    def model(x, t, c):
        calls.append(len(x))
        return unet(x, t, c)

    x, t = torch.randn(3, 2, 8, 8), torch.tensor([10, 500, 900])
    cond, uncond = torch.randn(3, 5, 12), torch.randn(3, 5, 12)
    with torch.no_grad():
        out_c, out_u = unet(x, t, cond), unet(x, t, uncond)
        got = guided(model, cond, uncond, 4.0)(x, t)
        assert calls == [6]  # both halves in one batch
        assert torch.allclose(got, out_u + 4.0 * (out_c - out_u), atol=1e-5)
        assert torch.equal(guided(model, cond, uncond, 1.0)(x, t), out_c)
        assert torch.equal(guided(model, cond, uncond, 0.0)(x, t), out_u)
    assert calls[1:] == [3, 3]  # scale 1 and 0 run one half only
    with pytest.raises(GenlabError, match="must be >= 0"):
        guided(model, cond, uncond, -0.5)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_guides(unet, name):
    cond, uncond = torch.randn(2, 5, 12), torch.randn(2, 5, 12)
    schedule = NoiseSchedule()

    def run(scale, c=cond):
        sampler = make_sampler(name, schedule)
        sampler.set_timesteps(4)
        with torch.no_grad():
            return sample_loop(guided(unet, c, uncond, scale), sampler, (2, 2, 8, 8), torch.Generator().manual_seed(3))

    a = run(3.0)
    assert torch.isfinite(a).all() and torch.equal(a, run(3.0))
    assert not torch.equal(a, run(3.0, torch.randn(2, 5, 12)))  # the prompt steers every sampler
    assert torch.equal(run(0.0), run(0.0, torch.randn(2, 5, 12)))  # scale 0: the prompt is never read
