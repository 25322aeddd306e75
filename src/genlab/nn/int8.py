"""A weight-only 8-bit linear layer for inference on CPU: one int8 code per weight and one scale per output row.

:class:`Int8Linear` holds ``W`` ``(out, in)`` as ``W[n, k] = q[n, k] * s[n]`` with ``q`` in -127..127 and
multiplies by it with torch's CPU kernel (``aten._weight_int8pack_mm``), bfloat16 activations, without making
``W``. It serves the one matrix of a language model that is read in full at every step and is not 4-bit in
llama.cpp's files: the output head (SmolLM2's tied token embedding is Q8_0). Q8_0 keeps a float16 scale per block of
32 weights; one scale per row cannot hold that exactly, so :meth:`Int8Linear.from_q8_0` quantises the dequantised
row again (round to nearest, ``s = max |w| / 127``). What that costs is measured, not assumed
(``benchmarks/lm_int4.py``: held-out bits per character and agreement with the float reference).

Where the kernel is missing (:data:`KERNEL`, a probe at import) the layer dequantises and calls ``F.linear``. Like
``genlab.nn.int4``, this file is the speed path only: deleting it leaves every model working in float.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _kernel(x: torch.Tensor, codes: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``(rows, in)`` bf16 -> ``(rows, out)`` bf16, ``x @ (codes * scale[:, None]).T``."""
    return torch.ops.aten._weight_int8pack_mm(x, codes, scale)


def _kernel_available() -> bool:
    """Whether this build has the kernel with this signature and it computes ``x @ W.T`` on a probe whose values
    are exact in bfloat16."""
    try:
        codes = ((torch.arange(16 * 64) * 7 % 31) - 15).view(16, 64).to(torch.int8)  # (out, in)
        scale = (torch.arange(16) % 3 + 1).float() / 4  # (out,)
        x = (torch.arange(3 * 64) % 5 - 2).view(3, 64).to(torch.bfloat16)  # (rows, in)
        y = _kernel(x, codes, scale.to(torch.bfloat16))
        return bool(torch.allclose(y.float(), x.float() @ (codes.float() * scale[:, None]).T, rtol=1e-2, atol=1e-2))
    except (AttributeError, RuntimeError, TypeError, NotImplementedError):
        return False


KERNEL = _kernel_available()


class Int8Linear(nn.Module):
    """``(..., in) -> (..., out)``, ``x @ W.T`` with ``W = codes * scale[:, None]`` (codes int8 ``(out, in)``,
    ``scale`` ``(out,)``, kept in bfloat16, the kernel's type)."""

    def __init__(self, codes: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        if codes.dtype != torch.int8 or codes.dim() != 2:
            raise ValueError(f"Int8Linear: codes must be a 2-d int8 tensor, got {codes.dtype} {tuple(codes.shape)}")
        if scale.shape != codes.shape[:1]:
            raise ValueError(f"Int8Linear: scale {tuple(scale.shape)} must be (out,) = {tuple(codes.shape[:1])}")
        self.out_features, self.in_features = codes.shape
        self.register_buffer("codes", codes.contiguous())
        self.register_buffer("scale", scale.to(torch.bfloat16).contiguous())

    @classmethod
    def from_float(cls, weight: torch.Tensor) -> Int8Linear:
        """Per-row symmetric quantisation: ``s = max |w| / 127``, ``q = round(w / s)``."""
        w = weight.detach().float()
        scale = w.abs().amax(dim=1) / 127  # (out,)
        inv = torch.where(scale > 0, 1 / scale, torch.zeros_like(scale))
        return cls((w * inv[:, None]).round().clamp(-127, 127).to(torch.int8), scale)

    @classmethod
    def from_q8_0(cls, codes: torch.Tensor, d: torch.Tensor) -> Int8Linear:
        """From Q8_0 blocks (``w = d * q`` per 32 weights; ``codes`` ``(out, in)``, ``d`` ``(out, in / 32)``): the
        row dequantised, then quantised again with one scale (exact where a row's blocks share one ``d``)."""
        out, cols = codes.shape
        w = codes.float().view(out, -1, 32) * d.float()[..., None]  # (out, blocks, 32)
        return cls.from_float(w.view(out, cols))

    def dequantized(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return (self.codes.float() * self.scale.float()[:, None]).to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not KERNEL or x.device.type != "cpu":
            return F.linear(x, self.dequantized(x.dtype))
        rows = x.numel() // self.in_features
        y = _kernel(x.reshape(rows, self.in_features).to(torch.bfloat16), self.codes, self.scale)  # (rows, out)
        return y.view(*x.shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, kernel={KERNEL}"
