"""The noise schedule against diffusers' numbers, and its conversions between views (eps, x0, v, sigma)."""

import numpy as np
import pytest
import torch

from genlab.diffusion.schedule import NoiseSchedule, betas_for, make_prediction, split_prediction
from genlab.errors import GenlabError

diffusers = pytest.importorskip("diffusers")

DIFFUSERS_NAME = {"linear": "linear", "cosine": "squaredcos_cap_v2"}


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_betas_and_abar_match_diffusers(name):
    ours = NoiseSchedule(name)
    ref = diffusers.DDPMScheduler(beta_schedule=DIFFUSERS_NAME[name])
    torch.testing.assert_close(ours.betas, ref.betas, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.alphas_cumprod, ref.alphas_cumprod, rtol=0, atol=1e-6)
    assert bool((ours.betas <= 0.999).all()) and bool((ours.betas > 0).all())
    # Ho et al. 2020's endpoints, and a strictly decreasing abar that ends near pure noise.
    if name == "linear":
        assert ours.betas[0].item() == pytest.approx(1e-4) and ours.betas[-1].item() == pytest.approx(0.02)
    assert bool((ours.alphas_cumprod[1:] < ours.alphas_cumprod[:-1]).all())
    assert ours.alphas_cumprod[-1].item() < 1e-3


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_add_noise_and_velocity_match_diffusers(name):
    ours = NoiseSchedule(name)
    ref = diffusers.DDPMScheduler(beta_schedule=DIFFUSERS_NAME[name])
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(6, 3, 4, 4, generator=g), torch.randn(6, 3, 4, 4, generator=g)
    t = torch.tensor([0, 1, 250, 500, 998, 999])
    torch.testing.assert_close(ours.add_noise(x0, noise, t), ref.add_noise(x0, noise, t), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ours.velocity(x0, noise, t), ref.get_velocity(x0, noise, t), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ours.target(x0, noise, t, "v_prediction"), ours.velocity(x0, noise, t))
    torch.testing.assert_close(ours.target(x0, noise, t, "epsilon"), noise)


def test_conversions_round_trip():
    s = NoiseSchedule("cosine")
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(5, 2, 3, generator=g), torch.randn(5, 2, 3, generator=g)
    t = torch.tensor([3, 100, 400, 700, 990])
    x_t = s.add_noise(x0, eps, t)
    v = s.velocity(x0, eps, t)
    torch.testing.assert_close(s.pred_x0(eps, x_t, t, "epsilon"), x0, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(s.pred_x0(v, x_t, t, "v_prediction"), x0, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(s.pred_eps(v, x_t, t, "v_prediction"), eps, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(s.eps_to_v(eps, x_t, t), v, rtol=1e-4, atol=1e-4)
    # The free functions on scalars: x0, eps -> v -> x0, eps.
    a, sg = 0.6, 0.8
    out = make_prediction(x0, eps, a, sg, "v_prediction")
    back = split_prediction(out, a * x0 + sg * eps, a, sg, "v_prediction")
    torch.testing.assert_close(back[0], x0)
    torch.testing.assert_close(back[1], eps)


def test_sigma_views():
    s = NoiseSchedule("linear")
    abar = s.alphas_cumprod.double()
    torch.testing.assert_close(s.sigmas.double(), ((1 - abar) / abar).sqrt(), rtol=1e-6, atol=0)
    # sigma_to_t inverts t_to_sigma on the grid and between grid points.
    t = np.array([0.0, 1.0, 10.5, 500.25, 998.9, 999.0])
    np.testing.assert_allclose(s.sigma_to_t(s.t_to_sigma(t)), t, atol=1e-6)
    np.testing.assert_allclose(s.t_to_sigma(np.arange(1000)), s.sigmas.numpy(), rtol=1e-6)
    # Out of range sigmas clamp to the ends.
    assert s.sigma_to_t(1e-6) == 0 and s.sigma_to_t(1e6) == 999
    k = s.karras_sigmas(10)
    assert k[0] == pytest.approx(s.sigmas[-1].item()) and k[-1] == pytest.approx(s.sigmas[0].item())
    assert (np.diff(k) < 0).all()


def test_bad_names():
    with pytest.raises(GenlabError, match="unknown noise schedule 'quadratic'"):
        betas_for("quadratic")
    with pytest.raises(GenlabError, match="prediction_type"):
        NoiseSchedule().target(torch.zeros(1), torch.zeros(1), torch.tensor([0]), "sample")
