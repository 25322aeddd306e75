"""Linear layers for token-by-token inference on CPU.

An autoregressive decoder multiplies a handful of rows (one token, or one per beam) by every weight matrix at
every step, so a step is bound by how its weights are read, not by arithmetic. PyTorch's default fp32 GEMM is
slow at a few rows: on the 2-core AMD EPYC (AVX-512) of genlab's CI, Whisper base's six decoder layers take
12.0 ms per step at 5 rows, almost as long as 5 one-row products (1 thread). oneDNN on a copy of the weight
repacked once into its blocked layout takes 5.3 ms (``python benchmarks/decoder_linear.py``, written to
``benchmarks/results/decoder_linear.json``). At one row on one thread the default kernel is as fast inside the
decoder, so that case keeps it (and needs no copy); on two threads oneDNN splits even one row over them and the
default kernel does not (the six layers: 5.1 ms against 7.8; ``decoder_linear_2threads.json``).

:func:`packed_linear` is ``layer(x)`` with that repacked copy, made on first use and kept until the weight
changes. It is used only where it is exact up to fp32 rounding and needs no autograd: fp32 weights and inputs on
CPU, no autocast, no gradient, and two rows or two threads (:func:`packing_pays`). Anything else (training, bf16,
CUDA, int8-quantized modules) runs ``layer(x)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PACK_ROWS = 64  # oneDNN's layout hint; at 1, 5 and 1500 rows it is within 5% of a copy packed for that count


def _onednn_available() -> bool:
    """Whether this torch build has oneDNN's (internal) linear ops and they agree with ``F.linear`` on a probe:
    builds without them, or with another signature, use the default kernels everywhere."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        weight, bias, x = torch.randn(8, 16), torch.randn(8), torch.randn(3, 16)
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, batch_size=PACK_ROWS)
        y = torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
        return bool(torch.allclose(y, F.linear(x, weight, bias), atol=1e-5))
    except (AttributeError, RuntimeError, TypeError):
        return False


ONEDNN = _onednn_available()


def packing_pays(rows: int) -> bool:
    """Whether the repacked weight beats the default kernel: at two rows or more, and at one row when torch has
    two threads or more (oneDNN splits a one-row product over the threads; the default kernel runs it on one)."""
    return rows > 1 or torch.get_num_threads() > 1


def can_pack(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return (
        ONEDNN
        and packing_pays(x.numel() // max(1, x.shape[-1]))
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and not (torch.is_grad_enabled() and (weight.requires_grad or x.requires_grad))
    )


def onednn_layout(weight: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._reorder_linear_weight(weight, batch_size=PACK_ROWS)


def contiguous_transpose(weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``(out, in)`` -> contiguous ``(in, out)``: a one-row product streams it faster than the transposed view."""
    return weight.to(dtype).T.contiguous()


class PackedWeight:
    """A copy of a weight in the layout a kernel reads fastest, made by ``make(weight, *args)`` (by default
    oneDNN's blocked layout) and remade when the weight's storage or version, or ``args``, change (a load or an
    update). A cache, not a parameter or buffer: a copied model starts without it and nothing of it is saved."""

    def __init__(self, make=onednn_layout):
        self._make = make
        self._key: tuple | None = None
        self._packed: torch.Tensor | None = None

    def __deepcopy__(self, memo) -> PackedWeight:
        return PackedWeight(self._make)  # a copied model (an EMA, say) makes its own copies when it needs them

    def __getstate__(self) -> dict:
        return {"_make": self._make, "_key": None, "_packed": None}

    def get(self, weight: torch.Tensor, *args) -> torch.Tensor:
        key = (weight.data_ptr(), -1 if weight.is_inference() else weight._version, *args)  # inference: no version
        if self._key != key:
            self._packed = self._make(weight.detach(), *args)
            self._key = key
        return self._packed


def linear_packed(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, packed: PackedWeight):
    """``F.linear(x, weight, bias)`` through ``packed`` when :func:`can_pack` allows it."""
    if not can_pack(x, weight):
        return F.linear(x, weight, bias)
    return torch.ops.mkldnn._linear_pointwise(x, packed.get(weight), bias, "none", [], "")


def packed_linear(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)``, through a repacked copy of the weight when ``layer`` is a plain ``nn.Linear`` and
    :func:`can_pack` allows it."""
    if type(layer) is not nn.Linear:  # e.g. a dynamically quantized int8 linear: it has its own kernels
        return layer(x)
    packed = layer.__dict__.get("_packed_weight")
    if packed is None:
        packed = layer.__dict__["_packed_weight"] = PackedWeight()  # a cache, not a parameter or buffer
    return linear_packed(x, layer.weight, layer.bias, packed)
