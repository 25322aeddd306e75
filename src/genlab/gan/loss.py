"""The GAN game's losses and the two regularisers that keep it stable.

- Non-saturating logistic loss (Goodfellow et al. 2014, sec. 3): the discriminator minimises
  ``softplus(D(fake)) + softplus(-D(real))`` (= ``-log(1 - sigmoid(D(fake))) - log sigmoid(D(real))``); the generator
  minimises ``softplus(-D(fake))`` rather than ``-softplus(D(fake))``, which saturates early in training when the
  discriminator rejects every sample with confidence.
- R1 (Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?", eq. 9):
  ``gamma / 2 * E_real |grad_x D(x)|^2``, the discriminator's gradient penalised on real data only. StyleGAN2
  (Karras et al. 2020, sec. 3.1) applies it *lazily*, every ``k`` = 16 discriminator steps, multiplied by ``k`` so
  its average strength is unchanged.
- ADA's heuristic (Karras et al. 2020a, sec. 3, eq. 1): ``r_t = E[sign(D(real))]`` measures how sure the
  discriminator is on the training images (0: it cannot tell them from fakes; 1: it has memorised them). Every
  few steps ``p`` moves up when ``r_t`` exceeds the target 0.6 and down otherwise, fast enough to go from 0 to 1 in
  ``ada_kimg`` thousand images.

Path-length regularisation (StyleGAN2 sec. 3.2) is left out: StyleGAN2-ADA's configuration for small images
("cifar") disables it too, and it is the costliest term of the four.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def d_logistic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's non-saturating loss, averaged over the batch."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's non-saturating loss ``E[-log sigmoid(D(G(z)))]``."""
    return F.softplus(-fake_logits).mean()


def r1_penalty(discriminator: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(|grad_x D(x)|^2`` per image ``(B,)``, the logits ``(B,)``) at the real images ``x``.

    ``discriminator`` maps images to logits (with any augmentation inside: the gradient is taken with respect to
    the clean image, as StyleGAN2-ADA does). The graph is kept (``create_graph``), so the penalty can be
    differentiated with respect to the discriminator's weights.
    """
    x = real.detach().requires_grad_(True)
    logits = discriminator(x)
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)  # (B, C, H, W)
    return grad.square().sum(dim=(1, 2, 3)), logits


def ada_adjust(p: float, r_t: float, target: float, images_seen: int, ada_kimg: float) -> float:
    """ADA's update of the augmentation probability after ``images_seen`` real images with mean sign ``r_t``."""
    step = images_seen / (ada_kimg * 1000)
    if r_t > target:
        return min(1.0, p + step)
    if r_t < target:
        return max(0.0, p - step)
    return p
