"""The augmentation pipe against DiffAugment's reference code (Zhao et al. 2020, ``DiffAugment_pytorch.py``, with
its random draws passed in), applied per image with probability p, differentiable, and per-image independent."""

import pytest
import torch
import torch.nn.functional as F

from genlab.gan.augment import COLUMNS, NUM_UNIFORMS, AugmentPipe


def diffaugment_translation(x, shift_x, shift_y):
    """DiffAugment's rand_translation with the integer shifts given (its x is the row axis)."""
    b, _, h, w = x.shape
    grid_batch, grid_x, grid_y = torch.meshgrid(torch.arange(b), torch.arange(h), torch.arange(w), indexing="ij")
    grid_x = torch.clamp(grid_x + shift_x.view(b, 1, 1) + 1, 0, h + 1)
    grid_y = torch.clamp(grid_y + shift_y.view(b, 1, 1) + 1, 0, w + 1)
    x_pad = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return x_pad.permute(0, 2, 3, 1).contiguous()[grid_batch, grid_x, grid_y].permute(0, 3, 1, 2)


def diffaugment_cutout(x, offset_x, offset_y, ratio=0.5):
    b, _, h, w = x.shape
    size = int(h * ratio + 0.5), int(w * ratio + 0.5)
    grid_batch, grid_x, grid_y = torch.meshgrid(torch.arange(b), torch.arange(size[0]), torch.arange(size[1]),
                                                indexing="ij")
    grid_x = torch.clamp(grid_x + offset_x.view(b, 1, 1) - size[0] // 2, min=0, max=h - 1)
    grid_y = torch.clamp(grid_y + offset_y.view(b, 1, 1) - size[1] // 2, min=0, max=w - 1)
    mask = torch.ones(b, h, w, dtype=x.dtype)
    mask[grid_batch, grid_x, grid_y] = 0
    return x * mask.unsqueeze(1)


def _u(n, seed=0, **apply):
    """Uniforms with every op's apply-column set to 0 (apply) or 1 (skip)."""
    u = torch.rand(n, NUM_UNIFORMS, generator=torch.Generator().manual_seed(seed))
    for op, (col, _) in COLUMNS.items():
        u[:, col] = 0.0 if apply.get(op, False) else 1.0
    return u


def test_translation_and_cutout_match_diffaugment():
    torch.manual_seed(0)
    x = torch.randn(32, 3, 16, 16)
    u = _u(32, translation=True)
    s = int(16 * 0.125 + 0.5)
    shifts = [(u[:, c] * (2 * s + 1)).long() - s for c in COLUMNS["translation"][1]]
    ours = AugmentPipe(("translation",), p=1.0)(x, u)
    assert torch.equal(ours, diffaugment_translation(x, *shifts))
    assert {int(t) for t in shifts[0]} == set(range(-s, s + 1))  # every shift occurs
    u = _u(32, seed=1, cutout=True)
    offsets = [(u[:, c] * (16 + 1 - 8 % 2)).long() for c in COLUMNS["cutout"][1]]
    assert torch.equal(AugmentPipe(("cutout",), p=1.0)(x, u), diffaugment_cutout(x, *offsets))


def test_colour_ops_match_diffaugment_formulas():
    torch.manual_seed(1)
    x = torch.randn(8, 3, 8, 8)
    u = _u(8, brightness=True, saturation=True, contrast=True)
    b, s, c = (u[:, COLUMNS[op][1][0]].view(8, 1, 1, 1) for op in ("brightness", "saturation", "contrast"))
    ref = x + (b - 0.5)
    ref = (ref - ref.mean(1, keepdim=True)) * (s * 2) + ref.mean(1, keepdim=True)
    ref = (ref - ref.mean((1, 2, 3), keepdim=True)) * (c + 0.5) + ref.mean((1, 2, 3), keepdim=True)
    assert torch.allclose(AugmentPipe(("brightness", "saturation", "contrast"), p=1.0)(x, u), ref, atol=1e-6)


def test_flip_rotate_and_probability():
    x = torch.randn(4, 1, 6, 6)
    assert torch.equal(AugmentPipe(("xflip",), p=1.0)(x, _u(4, xflip=True)), x.flip(3))
    u = _u(4, rotate90=True)
    u[:, COLUMNS["rotate90"][1][0]] = torch.tensor([0.1, 0.5, 0.9, 0.2])  # 1, 2, 3, 1 quarter turns
    out = AugmentPipe(("rotate90",), p=1.0)(x, u)
    for i, k in enumerate([1, 2, 3, 1]):
        assert torch.equal(out[i], torch.rot90(x[i], k, dims=(1, 2)))
    pipe = AugmentPipe(("xflip", "cutout"), p=0.0)
    assert torch.equal(pipe(x, _u(4, xflip=True, cutout=True)), x)  # p = 0: nothing happens
    # With p = 0.3, each op hits about 30 % of images, each image on its own draw.
    x = torch.randn(4000, 1, 4, 4)
    u = torch.rand(4000, NUM_UNIFORMS, generator=torch.Generator().manual_seed(2))
    changed = (AugmentPipe(("xflip",), p=0.3)(x, u) != x).flatten(1).any(1).float().mean().item()
    assert changed == pytest.approx(0.3, abs=0.03)


def test_pipe_is_differentiable_and_per_image():
    ops = ("xflip", "rotate90", "translation", "brightness", "saturation", "contrast", "cutout")
    pipe = AugmentPipe(ops, p=0.7)
    x = torch.randn(4, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    u = torch.rand(4, NUM_UNIFORMS, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: pipe(t, u), (x,))
    whole = pipe(x, u)
    for i in range(4):  # an image's augmentation depends on its own row of u only (what DDP equivalence needs)
        assert torch.equal(whole[i : i + 1], pipe(x[i : i + 1], u[i : i + 1]))
    with pytest.raises(ValueError, match="unknown augmentation"):
        AugmentPipe(("blur",))
