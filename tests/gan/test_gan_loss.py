"""The GAN losses by hand: R1 and its gradient on a toy discriminator worked out analytically, the logistic losses,
ADA's controller."""

import pytest
import torch

from genlab.gan.loss import ada_adjust, d_logistic_loss, g_nonsaturating_loss, r1_penalty


def test_r1_penalty_and_its_weight_gradient_by_hand():
    """D(x) = tanh(v . x) + b. Then grad_x D = (1 - t^2) v with t = tanh(v . x), so R1 = (1 - t^2)^2 |v|^2, and
    d R1 / d v = 2 (1 - t^2)^2 v - 4 |v|^2 t (1 - t^2)^2 x (double backpropagation must give exactly this)."""
    torch.manual_seed(0)
    x = torch.randn(5, 2, 3, 3, dtype=torch.float64)
    v = torch.randn(18, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)

    def D(img):
        return torch.tanh(img.flatten(1) @ v) + b

    penalty, logits = r1_penalty(D, x)
    t = torch.tanh(x.flatten(1) @ v.detach())  # (5,)
    assert torch.allclose(logits, t + 0.3)
    assert torch.allclose(penalty, (1 - t**2) ** 2 * v.detach().square().sum())
    penalty.sum().backward()
    vv = v.detach()
    s2 = (1 - t**2) ** 2  # (5,)
    by_hand = (2 * s2)[:, None] * vv - (4 * vv.square().sum() * t * s2)[:, None] * x.flatten(1)
    assert torch.allclose(v.grad, by_hand.sum(0))
    assert b.grad is None or b.grad == 0  # a constant offset moves no gradient
    assert not x.requires_grad  # the caller's images are left alone


def test_r1_of_a_linear_discriminator_is_its_squared_weight_norm():
    w = torch.randn(3 * 4 * 4)
    penalty, _ = r1_penalty(lambda img: img.flatten(1) @ w, torch.randn(6, 3, 4, 4))
    assert torch.allclose(penalty, w.square().sum().expand(6))


def test_logistic_losses():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    sig = torch.sigmoid
    expected_d = -(torch.log(sig(real)).mean() + torch.log(1 - sig(fake)).mean())
    assert torch.allclose(d_logistic_loss(real, fake), expected_d)
    assert torch.allclose(g_nonsaturating_loss(fake), -torch.log(sig(fake)).mean())
    # Non-saturating: a confidently rejected sample still gets a strong gradient (about 1, not about 0).
    z = torch.tensor([-8.0], requires_grad=True)
    g_nonsaturating_loss(z).backward()
    assert z.grad.abs().item() > 0.99


def test_ada_controller():
    # Karras et al. 2020a: p moves by (images seen) / (ada_kimg * 1000) towards keeping r_t at the target.
    assert ada_adjust(0.2, r_t=0.9, target=0.6, images_seen=256, ada_kimg=100) == pytest.approx(0.2 + 256 / 100_000)
    assert ada_adjust(0.2, r_t=0.1, target=0.6, images_seen=256, ada_kimg=100) == pytest.approx(0.2 - 256 / 100_000)
    assert ada_adjust(0.0, r_t=0.0, target=0.6, images_seen=256, ada_kimg=100) == 0.0
    assert ada_adjust(0.999, r_t=1.0, target=0.6, images_seen=1000, ada_kimg=0.1) == 1.0
    assert ada_adjust(0.4, r_t=0.6, target=0.6, images_seen=64, ada_kimg=1) == 0.4
