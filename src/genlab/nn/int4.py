"""Weight-only 4-bit linear layers for inference on CPU, and the swap that puts them into a loaded model.

A decoding step at batch 1 multiplies one row by every weight matrix, so it is bound by how many bytes of weights
it reads. :class:`Int4Linear` holds a weight ``W`` ``(out, in)`` as 4-bit codes ``q`` with a scale ``s`` and a zero
``z`` (bfloat16) for each group of 32 consecutive inputs of a row,

    W[n, k] = (q[n, k] - 8) * s[n, k // 32] + z[n, k // 32],

which is the form torch's CPU int4 kernel (``aten._weight_int4pack_mm_for_cpu``) computes with, and it multiplies
by it without making ``W``. llama.cpp's Q4_1 blocks (32 weights, float16 ``d`` and ``m``, ``w = d * q + m``) are
this form with ``s = d`` and ``z = m + 8 d``; the only change is that ``s`` and ``z`` round to bfloat16, the
kernel's type (:meth:`Int4Linear.from_q4_1`). The activations the kernel reads and writes are bfloat16 too.

Where the kernel is missing (older torch, other builds: :data:`KERNEL`, from a probe at import) or the input has
many rows (a prompt: the kernel's time grows with every row, a dequantised product's hardly), the layer makes
``W`` in the input's dtype and calls ``F.linear``: slower, the same numbers up to rounding.

This file is the speed path only: models are built with ``nn.Linear`` and read like the paper; :func:`swap_linears`
replaces some of their layers after loading, and deleting this file leaves them working in float.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

GROUP = 32  # inputs per (scale, zero) pair: Q4_1's block and the kernel's group size
ROW_MULTIPLE = 16  # the kernel packs output rows by sixteens
# Up to this many input rows the kernel, more: dequantise and F.linear (the crossover is measured by
# benchmarks/lm_speed.py --int4, "crossover" in benchmarks/results/lm_speed_int4.json).
KERNEL_ROWS = 64


def _pack_for_kernel(codes: torch.Tensor) -> torch.Tensor:
    """``(out, in)`` codes in 0..15 -> the kernel's packed uint8 layout ``(out, in / 2)`` (inner k-tiles: 1)."""
    return torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes.to(torch.int32).contiguous(), 1)


def _kernel(x: torch.Tensor, packed: torch.Tensor, scales_and_zeros: torch.Tensor) -> torch.Tensor:
    """``(rows, in)`` bf16 -> ``(rows, out)`` bf16, ``x @ W.T``."""
    return torch.ops.aten._weight_int4pack_mm_for_cpu(x, packed, GROUP, scales_and_zeros)


def _kernel_available() -> bool:
    """Whether this torch build has the CPU int4 kernel with the signature used here, and it computes ``x @ W.T`` on
    a probe whose every value is exact in bfloat16 (a wrong layout or sign convention would fail it)."""
    try:
        out, cols = ROW_MULTIPLE, 2 * GROUP
        codes = (torch.arange(out * cols) * 7 % 16).view(out, cols)  # (out, in), no symmetry to hide a layout
        scale = (torch.arange(out * 2) % 3 + 1).view(2, out).float() / 4  # (groups, out)
        zero = (torch.arange(out * 2) % 5 - 2).view(2, out).float()  # (groups, out)
        x = (torch.arange(3 * cols) % 5 - 2).view(3, cols).to(torch.bfloat16)  # (rows, in)
        y = _kernel(x, _pack_for_kernel(codes), torch.stack([scale, zero], -1).to(torch.bfloat16))
        w = (codes.float() - 8).view(out, 2, GROUP) * scale.T[..., None] + zero.T[..., None]  # (out, groups, 32)
        return bool(torch.allclose(y.float(), x.float() @ w.view(out, cols).T, rtol=1e-2, atol=1e-2))
    except (AttributeError, RuntimeError, TypeError, NotImplementedError):
        return False


KERNEL = _kernel_available()


class Int4Linear(nn.Module):
    """``(..., in) -> (..., out)``, ``x @ W.T (+ bias)`` with ``W`` held in 4 bits (see the module docstring).

    ``codes`` ``(out, in)`` integers in 0..15; ``scale``, ``zero`` ``(out, in / 32)``. Kept: ``codes`` two to a
    byte ``(out, in / 2)`` and ``scales_and_zeros`` ``(in / 32, out, 2)`` bf16 (the kernel's layout), plus, where
    the kernel exists, the kernel's own packing of the codes (made here, not saved).
    """

    def __init__(self, codes: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        out, cols = codes.shape
        if cols % GROUP:
            raise ValueError(f"Int4Linear: in_features={cols} is not a multiple of the group size {GROUP}")
        if out % ROW_MULTIPLE:
            raise ValueError(f"Int4Linear: out_features={out} is not a multiple of {ROW_MULTIPLE} (the int4 kernel "
                             f"packs output rows by {ROW_MULTIPLE})")
        if scale.shape != (out, cols // GROUP) or zero.shape != scale.shape:
            raise ValueError(f"Int4Linear: scale {tuple(scale.shape)} and zero {tuple(zero.shape)} must be "
                             f"(out, in / {GROUP}) = {(out, cols // GROUP)}")
        if codes.dtype.is_floating_point or codes.min() < 0 or codes.max() > 15:
            raise ValueError("Int4Linear: codes must be integers in 0..15")
        self.in_features, self.out_features = cols, out
        codes = codes.to(torch.uint8)
        self.register_buffer("codes", codes[:, 0::2] | (codes[:, 1::2] << 4))  # (out, in / 2): even | odd << 4
        sz = torch.stack([scale, zero], dim=-1).transpose(0, 1)  # (in / 32, out, 2)
        self.register_buffer("scales_and_zeros", sz.to(torch.bfloat16).contiguous())
        self.register_buffer("packed", _pack_for_kernel(codes) if KERNEL else None, persistent=False)
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    @classmethod
    def from_q4_1(cls, codes: torch.Tensor, d: torch.Tensor, m: torch.Tensor, bias: torch.Tensor | None = None):
        """From Q4_1 blocks, ``w = d * q + m`` (``d``, ``m`` ``(out, in / 32)``): ``s = d``, ``z = m + 8 d``."""
        d, m = d.float(), m.float()
        return cls(codes, d, m + 8 * d, bias)

    @classmethod
    def from_float(cls, weight: torch.Tensor, bias: torch.Tensor | None = None) -> Int4Linear:
        """Quantise a float ``(out, in)`` weight as llama.cpp quantises to Q4_1 (``quantize_row_q4_1_ref``): per
        group, ``m`` = the least weight, ``d`` = (greatest - least) / 15, ``q = round((w - m) / d)`` in 0..15."""
        out, cols = weight.shape
        if cols % GROUP:
            raise ValueError(f"Int4Linear: in_features={cols} is not a multiple of the group size {GROUP}")
        w = weight.detach().float().view(out, cols // GROUP, GROUP)  # (out, groups, 32)
        m, top = w.amin(dim=-1), w.amax(dim=-1)  # (out, groups)
        d = (top - m) / 15
        inv = torch.where(d > 0, 1 / d, torch.zeros_like(d))
        codes = ((w - m[..., None]) * inv[..., None]).round().clamp(0, 15).to(torch.uint8).view(out, cols)
        return cls.from_q4_1(codes, d, m, bias)

    def unpacked_codes(self) -> torch.Tensor:
        """``(out, in)`` uint8 codes in 0..15."""
        return torch.stack([self.codes & 15, self.codes >> 4], dim=-1).view(self.out_features, self.in_features)

    def dequantized(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``W`` ``(out, in)`` in ``dtype`` (computed in float32)."""
        q = self.unpacked_codes().view(self.out_features, -1, GROUP).float()  # (out, groups, 32)
        sz = self.scales_and_zeros.float().transpose(0, 1)  # (out, groups, 2)
        scale, zero = sz[..., 0:1], sz[..., 1:2]  # (out, groups, 1)
        return ((q - 8) * scale + zero).view(self.out_features, self.in_features).to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // self.in_features
        if self.packed is not None and x.device.type == "cpu" and rows <= KERNEL_ROWS:
            sz = self.scales_and_zeros.to(torch.bfloat16)  # a no-op unless the model was cast since
            y = _kernel(x.reshape(rows, self.in_features).to(torch.bfloat16), self.packed, sz)  # (rows, out)
            y = y.view(*x.shape[:-1], self.out_features).to(x.dtype)
        else:
            y = F.linear(x, self.dequantized(x.dtype))
        return y if self.bias is None else y + self.bias.to(y.dtype)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, group={GROUP}, "
                f"bias={self.bias is not None}, kernel={self.packed is not None}")


def swap_linears(model: nn.Module, layers: dict[str, Int4Linear]) -> nn.Module:
    """Put each ``layers[name]`` in place of ``model``'s ``nn.Linear`` called ``name`` (as in ``named_modules``),
    refusing a name that is not an ``nn.Linear`` of the same shape and bias. Returns ``model``."""
    for name, new in layers.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        old = getattr(parent, child, None)
        if not isinstance(old, nn.Linear):
            raise ValueError(f"swap_linears: {name} is {type(old).__name__}, not an nn.Linear")
        if tuple(old.weight.shape) != (new.out_features, new.in_features) or (old.bias is None) != (new.bias is None):
            raise ValueError(f"swap_linears: {name} is {tuple(old.weight.shape)} (bias {old.bias is not None}), "
                             f"the int4 layer {(new.out_features, new.in_features)} (bias {new.bias is not None})")
        setattr(parent, child, new.to(old.weight.device))
    return model


def quantize_linears(model: nn.Module) -> dict[str, Int4Linear]:
    """:meth:`Int4Linear.from_float` of every ``nn.Linear`` in ``model``, by name (for :func:`swap_linears`)."""
    return {name: Int4Linear.from_float(m.weight, m.bias) for name, m in model.named_modules()
            if isinstance(m, nn.Linear)}
