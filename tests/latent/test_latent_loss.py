"""The autoencoder's losses: SSIM and MS-SSIM against pytorch_msssim, KL and PSNR against closed forms, the
adversarial pieces by their definitions."""

import math

import pytest
import torch

from genlab.latent.loss import adaptive_weight, hinge_d_loss, kl_divergence, ms_ssim, psnr, ssim


def _pair(shape, noise, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g)
    return x, (x + noise * torch.randn(shape, generator=g)).clamp(0, 1)


def test_ssim_and_ms_ssim_match_pytorch_msssim():
    reference = pytest.importorskip("pytorch_msssim")
    x, y = _pair((3, 3, 64, 64), 0.1)
    assert torch.allclose(ssim(x, y), reference.ssim(x, y, data_range=1.0, size_average=False), atol=1e-5)
    weights = (0.2, 0.3, 0.5)
    expected = reference.ms_ssim(x, y, data_range=1.0, size_average=False, win_size=3, weights=list(weights))
    assert torch.allclose(ms_ssim(x, y, window_size=3, weights=weights), expected, atol=1e-5)
    x, y = _pair((2, 3, 181, 170), 0.2)  # five scales need > 160 px; odd sides get pytorch_msssim's zero border
    assert torch.allclose(ms_ssim(x, y), reference.ms_ssim(x, y, data_range=1.0, size_average=False), atol=1e-5)


def test_ssim_closed_forms():
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-6)
    # Two flat images a and b: no variance, so SSIM is the luminance term (2ab + C1) / (a^2 + b^2 + C1).
    a, b, c1 = 0.3, 0.7, 0.01**2
    flat_a, flat_b = torch.full((1, 3, 16, 16), a), torch.full((1, 3, 16, 16), b)
    assert ssim(flat_a, flat_b).item() == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-5)
    with pytest.raises(ValueError, match="smaller than"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_kl_and_psnr_closed_forms():
    mean, logvar = torch.randn(4, 2, 3, 3), torch.randn(4, 2, 3, 3)
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))
    assert torch.allclose(kl_divergence(mean, logvar), torch.distributions.kl_divergence(q, p).flatten(1).sum(1),
                          atol=1e-5)
    assert torch.equal(kl_divergence(torch.zeros(1, 4), torch.zeros(1, 4)), torch.zeros(1))
    x = torch.zeros(1, 3, 4, 4)
    assert psnr(x, x + 0.1).item() == pytest.approx(20.0, abs=1e-4)  # 10 log10(1 / 0.01)


def test_hinge_and_adaptive_weight():
    assert hinge_d_loss(torch.full((2, 1, 3, 3), 2.0), torch.full((2, 1, 3, 3), -2.0)).item() == 0.0
    assert hinge_d_loss(torch.zeros(1), torch.zeros(1)).item() == 1.0
    w = torch.randn(5, requires_grad=True)
    rec, g = (3 * w).sum(), (w * 0.5).sum()  # gradients 3 and 0.5 per entry: ratio 6
    assert adaptive_weight(rec, g, w).item() == pytest.approx(3 * math.sqrt(5) / (0.5 * math.sqrt(5) + 1e-4))


def test_ms_ssim_of_anti_correlated_images_is_zero_with_a_finite_gradient():
    x = torch.rand(1, 3, 16, 16)
    y = (1 - x).requires_grad_()  # anti-correlated: negative contrast-structure terms
    value = ms_ssim(x, y, window_size=3, weights=(0.5, 0.5))
    value.sum().backward()
    assert value.item() == 0.0 and torch.isfinite(y.grad).all()
