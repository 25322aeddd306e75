"""Every sampler of pixel diffusion works on clips (B, C, F, H, W): the same trajectory as on the same numbers laid
out as images (B, C * F, H, W), with a denoiser that is exact for Gaussian data."""

import pytest
import torch

from genlab.diffusion.samplers import SAMPLERS, make_sampler, sample_loop
from genlab.diffusion.schedule import NoiseSchedule, make_prediction


def _gaussian_denoiser(schedule, prediction_type, mean=0.3, std=0.5):
    """The exact model output for data ~ N(mean, std^2) per element, at any shape."""

    def fn(x_t, t):
        sigma_vp = torch.as_tensor(schedule.t_to_sigma(t.double().numpy()), dtype=x_t.dtype)
        abar = (1 / (1 + sigma_vp**2)).view(-1, *([1] * (x_t.ndim - 1)))
        a, s = abar.sqrt(), (1 - abar).sqrt()
        x0 = mean + a * std**2 / (a**2 * std**2 + s**2) * (x_t - a * mean)  # E[x0 | x_t]
        return make_prediction(x0, (x_t - a * x0) / s, a, s, prediction_type)

    return fn


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_samplers_are_shape_agnostic(name):
    schedule = NoiseSchedule("cosine", 100)
    fn = _gaussian_denoiser(schedule, "v_prediction")
    runs = []
    for shape in [(2, 3, 4, 5, 5), (2, 12, 5, 5)]:
        sampler = make_sampler(name, schedule, prediction_type="v_prediction")
        sampler.set_timesteps(8)
        runs.append(sample_loop(fn, sampler, shape, torch.Generator().manual_seed(0)))
    assert runs[0].shape == (2, 3, 4, 5, 5)
    assert torch.allclose(runs[0].reshape(2, 12, 5, 5), runs[1], atol=1e-5)
    assert abs(runs[0].mean() - 0.3) < 0.2  # and it is a sample of the data, not noise
