"""The autoencoder's losses and image-quality measures, all cheap enough for a CPU.

Rombach et al. 2022 (appendix G) train their KL autoencoder with L1 + LPIPS + a small KL weight and a patch
discriminator. LPIPS needs ImageNet VGG weights, which cannot be downloaded here, so genlab's perceptual terms are
multi-scale SSIM (Wang et al. 2003) — structure, not pixels — and, optionally, a distance in the feature space of
genlab's own emoji network (``genlab.eval.features``: the network FID is measured with, so a weight there trades
FID against honest measurement; off by default).

- :func:`ssim` / :func:`ms_ssim`: Wang et al. 2004 eq. 13 with an 11-tap Gaussian window (sigma 1.5), K1 = 0.01,
  K2 = 0.03, 'valid' filtering; MS-SSIM multiplies the contrast-structure term of the finer scales (each scale
  halves the image by 2x2 averaging) with the full SSIM of the coarsest, each raised to its weight (Wang et al. 2003
  eq. 7). Both agree with ``pytorch_msssim`` (tests/latent/test_loss.py).
- :func:`kl_divergence`: KL(N(mean, exp(logvar)) || N(0, I)) summed over latent elements (Kingma & Welling 2014,
  appendix B).
- Hinge losses and the adaptive weight of the adversarial term (Esser et al. 2021, "Taming Transformers", eq. 7).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, five scales


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """1-D Gaussian taps ``(size,)`` summing to 1."""
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filtering of every channel of ``(B, C, H, W)``."""
    C, n = x.shape[1], window.numel()
    w = window.to(x.dtype).to(x.device)
    x = F.conv2d(x, w.view(1, 1, 1, n).expand(C, 1, 1, n), groups=C)  # along W
    return F.conv2d(x, w.view(1, 1, n, 1).expand(C, 1, n, 1), groups=C)  # along H


def _ssim_terms(x: torch.Tensor, y: torch.Tensor, data_range: float, window: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image and channel ``(B, C)``: mean SSIM and mean contrast-structure term (Wang et al. 2004, eq. 13)."""
    if min(x.shape[-2:]) < window.numel():
        raise ValueError(f"SSIM: images of {tuple(x.shape[-2:])} px are smaller than the {window.numel()}-tap window")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = _filter(x, window), _filter(y, window)
    var_x = _filter(x * x, window) - mu_x**2
    var_y = _filter(y * y, window) - mu_y**2
    cov = _filter(x * y, window) - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return (luminance * cs).flatten(2).mean(-1), cs.flatten(2).mean(-1)


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window_size: int = 11,
         sigma: float = 1.5) -> torch.Tensor:
    """SSIM of each image pair ``(B,)`` (averaged over channels and positions)."""
    return _ssim_terms(x.float(), y.float(), data_range, gaussian_window(window_size, sigma))[0].mean(1)


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window_size: int = 11, sigma: float = 1.5,
            weights: tuple[float, ...] = MS_SSIM_WEIGHTS) -> torch.Tensor:
    """Multi-scale SSIM of each image pair ``(B,)``, one scale per weight (Wang et al. 2003, eq. 7)."""
    x, y, window = x.float(), y.float(), gaussian_window(window_size, sigma)
    factors = []
    for i, weight in enumerate(weights):
        full, cs = _ssim_terms(x, y, data_range, window)
        last = i == len(weights) - 1
        value = full if last else cs
        # relu(value) ** weight as in pytorch_msssim, without its infinite gradient at 0 (weights are < 1)
        factors.append(torch.where(value > 0, value.clamp_min(1e-12) ** weight, 0.0))  # (B, C)
        if not last:
            pad = [x.shape[-2] % 2, x.shape[-1] % 2]  # an odd side gets a zero border, as in pytorch_msssim
            x, y = F.avg_pool2d(x, 2, padding=pad), F.avg_pool2d(y, 2, padding=pad)
    return torch.stack(factors).prod(0).mean(1)


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio of each image pair ``(B,)`` in dB."""
    mse = (x.float() - y.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse.clamp_min(1e-12))


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) of each sample ``(B,)``, summed over its latent elements."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's hinge loss (Lim & Ye 2017), averaged over patches."""
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


def adaptive_weight(rec_loss: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor,
                    max_weight: float = 1e4) -> torch.Tensor:
    """Esser et al. 2021 eq. 7: the adversarial term scaled so its gradient at the decoder's last layer is as large
    as the reconstruction's, ``|grad rec| / (|grad g| + 1e-4)`` (detached, clamped to [0, max_weight])."""
    rec_grad = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    return (rec_grad.norm() / (g_grad.norm() + 1e-4)).clamp(0.0, max_weight).detach()


def feature_distance(net, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared distance ``(B,)`` between channel-normalised activations of every stage of genlab's emoji feature
    network (LPIPS' recipe, Zhang et al. 2018, without its learned weights), images in [-1, 1] resized to its
    input size."""
    size = net.cfg.image_size

    def stages(images: torch.Tensor) -> list[torch.Tensor]:
        h = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out = []
        for stage in net.stages:  # the network's preprocess maps [0, 1] to [-1, 1]: these already are
            h = stage(h)
            out.append(h / (h.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))  # unit vector per position
        return out

    return sum((a - b).pow(2).sum(1).flatten(1).mean(1) for a, b in zip(stages(x), stages(y)))


def latent_std(mean: torch.Tensor) -> float:
    """The standard deviation of a batch of latents: 1 / it is the scaling factor that gives them unit variance
    (how Stable Diffusion's 0.18215 was chosen, Rombach et al. 2022 appendix G)."""
    return float(mean.float().std()) if mean.numel() > 1 else math.nan
