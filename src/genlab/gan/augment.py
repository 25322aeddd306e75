"""Differentiable augmentation for training a GAN on little data, with ADA's adaptive probability.

A discriminator that sees the same few thousand images for long memorises them and its feedback to the generator
turns to noise. Augmenting *every* image the discriminator sees — real and generated alike, and differentiably, so
the generator's gradient flows through the augmentation — keeps it honest without teaching the generator to draw
augmented images (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"; Karras et al.
2020a, "Training Generative Adversarial Networks with Limited Data", "ADA").

The operations are DiffAugment's ``color`` (brightness, saturation, contrast), ``translation`` (up to 1/8 of the
image, zero padded) and ``cutout`` (a square half the image's size), with ADA's ``xflip`` and ``rotate90``. Each is
applied to each image independently with probability ``p`` (ADA sec. 2.2): as long as ``p`` stays below about 0.8
the generator cannot learn the augmentations ("leaking"), since the clean image stays the most likely one. ``p``
is a buffer, trained by the ADA heuristic in :func:`genlab.gan.loss.ada_adjust`.

The random numbers come in as ``u`` ``(B, NUM_UNIFORMS)`` uniforms, one row per image, so an image's augmentation
depends on its own draws only (the task draws them per example; see ``task.py``).
"""

from __future__ import annotations

import torch
from torch import nn

OPS = ("xflip", "rotate90", "translation", "brightness", "saturation", "contrast", "cutout")
# Columns of u: op -> (its "apply?" column, its parameter columns). Fixed, so enabling an op moves no other draw.
COLUMNS = {
    "xflip": (0, ()),
    "rotate90": (1, (2,)),
    "translation": (3, (4, 5)),
    "brightness": (6, (7,)),
    "saturation": (8, (9,)),
    "contrast": (10, (11,)),
    "cutout": (12, (13, 14)),
}
NUM_UNIFORMS = 16


class AugmentPipe(nn.Module):
    """``forward(x, u)``: augment images ``(B, C, H, W)`` in [-1, 1] with per-image uniforms ``u`` ``(B, 16)``."""

    def __init__(self, ops: tuple[str, ...] = (), p: float = 0.0, translation_ratio: float = 0.125,
                 cutout_ratio: float = 0.5):
        super().__init__()
        unknown = [op for op in ops if op not in OPS]
        if unknown:
            raise ValueError(f"unknown augmentation {unknown[0]!r}: choose from {', '.join(OPS)}")
        self.ops = tuple(op for op in OPS if op in ops)  # always applied in OPS order
        self.translation_ratio, self.cutout_ratio = translation_ratio, cutout_ratio
        self.register_buffer("p", torch.full((1,), float(p)))
        # ADA's running statistic: the sum of sign(D(real)) and its count since the last adjustment of p.
        self.register_buffer("signs", torch.zeros(2, dtype=torch.float64))

    def forward(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        if not self.ops or float(self.p) <= 0:
            return x
        u = u.to(x.device)
        for op in self.ops:
            apply_col, params = COLUMNS[op]
            mask = (u[:, apply_col] < self.p)[:, None, None, None]  # (B, 1, 1, 1)
            x = torch.where(mask, getattr(self, f"_{op}")(x, u[:, list(params)]), x)
        return x

    # Each op transforms the whole batch with its parameter columns ``v`` (B, k); forward picks per image.

    def _xflip(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return x.flip(3)

    def _rotate90(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        k = (v[:, 0] * 3).long() + 1  # 1, 2 or 3 quarter turns
        out = x
        for turns in (1, 2, 3):
            out = torch.where((k == turns)[:, None, None, None], torch.rot90(x, turns, dims=(2, 3)), out)
        return out

    def _translation(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """DiffAugment's ``rand_translation``: shift by whole pixels, zeros flow in."""
        b, c, h, w = x.shape
        sy, sx = int(h * self.translation_ratio + 0.5), int(w * self.translation_ratio + 0.5)
        ty = (v[:, 0] * (2 * sy + 1)).long().clamp(max=2 * sy) - sy  # (B,) in [-sy, sy]
        tx = (v[:, 1] * (2 * sx + 1)).long().clamp(max=2 * sx) - sx
        rows = (torch.arange(h, device=x.device)[None, :] + ty[:, None] + 1).clamp(0, h + 1)  # (B, H)
        cols = (torch.arange(w, device=x.device)[None, :] + tx[:, None] + 1).clamp(0, w + 1)  # (B, W)
        padded = nn.functional.pad(x, [1, 1, 1, 1])  # (B, C, H + 2, W + 2): a zero border to clamp into
        idx = rows[:, :, None] * (w + 2) + cols[:, None, :]  # (B, H, W) flat index into the padded image
        flat = padded.reshape(b, c, -1)  # (B, C, (H + 2)(W + 2))
        return flat.gather(2, idx.reshape(b, 1, -1).expand(b, c, -1)).reshape(b, c, h, w)

    def _brightness(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return x + (v[:, 0] - 0.5)[:, None, None, None]

    def _saturation(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)  # (B, 1, H, W): grey
        return (x - mean) * (v[:, 0] * 2)[:, None, None, None] + mean

    def _contrast(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
        return (x - mean) * (v[:, 0] + 0.5)[:, None, None, None] + mean

    def _cutout(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """DiffAugment's ``rand_cutout``: zero a square of ``cutout_ratio`` of the size (clipped at the border)."""
        b, _, h, w = x.shape
        ch, cw = int(h * self.cutout_ratio + 0.5), int(w * self.cutout_ratio + 0.5)
        cy = (v[:, 0] * (h + 1 - ch % 2)).long()  # (B,) centre, as DiffAugment draws it
        cx = (v[:, 1] * (w + 1 - cw % 2)).long()
        ys = torch.arange(h, device=x.device)[None, :] - (cy[:, None] - ch // 2)  # (B, H): row offset in the square
        xs = torch.arange(w, device=x.device)[None, :] - (cx[:, None] - cw // 2)
        inside = ((ys >= 0) & (ys < ch))[:, :, None] & ((xs >= 0) & (xs < cw))[:, None, :]  # (B, H, W)
        return x * (~inside)[:, None].to(x.dtype)
