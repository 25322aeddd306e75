"""Linear layers for token-by-token inference on CPU.

An autoregressive decoder multiplies a handful of rows (one token, or one per beam) by every weight matrix at
every step, so a step is bound by how fast its weights stream from memory, not by arithmetic. How fast a kernel
reads a weight depends on the weight's layout and on the number of rows, so inference keeps copies of the weights
in the layout that reads fastest (``python benchmarks/decoder_linear.py``, ``benchmarks/results/decoder_linear*``):

- one or two rows (greedy decoding): a contiguous ``(in, out)`` copy through ``addmm``. Whisper base's six decoder
  layers at one row on 2 threads of an Intel Xeon (AMX): 4.2 ms against 6.8 ms through oneDNN's blocked copy and
  4.9 ms through ``F.linear`` on the ``(out, in)`` parameter; its vocabulary product 3.7 ms against 4.9 and 4.8
  (``decoder_linear_2threads.json``). Two rows (the first step of a window also reads the no-speech position)
  stay on it too, so that greedy decoding holds one copy of the 106 MB vocabulary, not two. A layer with more inputs
  than outputs (an MLP's second layer) reads the parameter itself through ``F.linear`` instead, dot products along
  its long rows: Whisper base's (2048 -> 512) layer on one thread of an AMD EPYC, 0.30 ms against 0.41 ms, its
  whole greedy step 23.2 against 24.2 ms;
- more rows (beams, prompts, batches): a copy repacked into oneDNN's blocked layout. Five rows on that Xeon: the
  six layers 7.6 ms against 8.1 ms, the vocabulary 6.1 ms against 9.5 ms. On the AMD EPYC of earlier sessions,
  where PyTorch's default GEMM is slow at a few rows, the vocabulary took 3.0 ms against 15.3 ms (the same file as
  of commit 31f50ea).

:func:`fused_linear` is ``F.linear(x, cat(weights), cat(biases))``: several products of one input (a query, key
and value projection) read as one. It takes the copies only where they are exact up to fp32 rounding and need no
autograd (:func:`inference_path`: fp32 weights and inputs on CPU, no autocast, no gradient); anything else
(training, bf16, CUDA) computes the plain product. :func:`packed_linear` is the same for one ``nn.Linear`` and
leaves other modules (int8-quantized ones have their own kernels) to their own forward.

A product whose row count repeats (a vision tower's patches, a batch of one size) may instead read MKL's copy packed
for exactly that row count (``bound_product(..., exact_rows=True)``): CLIP ViT-B/32's image tower at batch 1 on one
thread of that Xeon, 81 ms against 88 ms through oneDNN's copy (``clip_speed.json``). Packing takes as long as
several products (8 ms for a 3072 x 768 matrix), so a row count is packed only the second time it is seen in a row
(until then oneDNN's copy serves), and at most :data:`MKL_COPIES` row counts are kept per weight.

Under CPU bf16 autocast each call casts every weight to bf16 anew (the cast cache lives only as long as the autocast
context); :func:`bound_linear` with ``dtype=torch.bfloat16`` reads a bf16 copy instead, packed for oneDNN where it
has bf16 kernels: the product autocast computes (bf16 inputs, weights and bias, a bf16 result), without the cast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STREAM_ROWS = 2  # up to this many rows the contiguous (in, out) copy; more: oneDNN's blocked copy
PACK_ROWS = 64  # oneDNN's layout hint; at 1, 5 and 1500 rows it is within 5% of a copy packed for that count


def _onednn_available() -> bool:
    """Whether this torch build has oneDNN's (internal) linear ops and they agree with ``F.linear`` on a probe:
    builds without them, or with another signature, use the default kernels for more than two rows."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        weight, bias, x = torch.randn(8, 16), torch.randn(8), torch.randn(3, 16)
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, batch_size=PACK_ROWS)
        y = torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
        return bool(torch.allclose(y, F.linear(x, weight, bias), atol=1e-5))
    except (AttributeError, RuntimeError, TypeError):
        return False


def _mkl_available() -> bool:
    """Whether this torch build has MKL's (internal) packed product and it agrees with ``F.linear`` on a probe."""
    try:
        weight, bias, x = torch.randn(8, 16), torch.randn(8), torch.randn(3, 16)
        packed = torch.ops.mkl._mkl_reorder_linear_weight(weight, 3)
        y = torch.ops.mkl._mkl_linear(x, packed, weight, bias, 3)
        return bool(torch.allclose(y, F.linear(x, weight, bias), atol=1e-5))
    except (AttributeError, RuntimeError, TypeError):
        return False


ONEDNN = _onednn_available()
MKL = _mkl_available()
MKL_ROWS = 32  # from this many rows on, an exact_rows product may read MKL's copy packed for its row count
MKL_COPIES = 2  # row counts kept packed per weight
ONEDNN_BF16 = ONEDNN and bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)())


def inference_path(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether ``x @ weight.T`` may read a cached copy of ``weight``: fp32 on CPU, no autocast, no gradient."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and not (torch.is_grad_enabled() and (weight.requires_grad or x.requires_grad))
    )


def _stack(
    weights: tuple[torch.Tensor, ...], biases: tuple[torch.Tensor | None, ...]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The weights stacked along their outputs and their biases, zeros standing in for a missing bias (Whisper's
    key projection has none); no bias at all if none has one."""
    weight = weights[0] if len(weights) == 1 else torch.cat(weights)
    if all(b is None for b in biases):
        return weight, None
    ref = next(b for b in biases if b is not None)
    parts = [b if b is not None else ref.new_zeros(w.shape[0]) for w, b in zip(weights, biases)]
    return weight, parts[0] if len(parts) == 1 else torch.cat(parts)


def _detached_stack(
    weights: tuple[torch.Tensor, ...], biases: tuple[torch.Tensor | None, ...]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`_stack` of the weights and biases detached from autograd: what every cached copy is made from."""
    return _stack(tuple(w.detach() for w in weights), tuple(b.detach() if b is not None else None for b in biases))


def version_key(tensors: tuple[torch.Tensor | None, ...]) -> tuple:
    """Each tensor's storage and version (None for a missing one): a key that changes when any of them is replaced
    (a load) or updated in place (an optimiser step). Inference tensors have no version."""
    return tuple((t.data_ptr(), -1 if t.is_inference() else t._version) if t is not None else None for t in tensors)


class InferenceWeights:
    """Copies of a weight, or of several stacked along their outputs, with their bias, in the layouts the kernels
    read fastest: made on first use of a layout, dropped when any weight's storage or version changes (a load or
    an update). A cache, not a parameter or buffer: a copied model starts without it and nothing of it is saved."""

    def __init__(self):
        self._key: tuple | None = None
        self._copies: dict[str, tuple[torch.Tensor, ...]] = {}
        self._last_rows: int | None = None  # the row count of the last exact_rows request (see :meth:`mkl`)

    def __deepcopy__(self, memo) -> InferenceWeights:
        return InferenceWeights()  # a copied model (an EMA, say) makes its own copies when it needs them

    def __getstate__(self) -> dict:
        return {"_key": None, "_copies": {}, "_last_rows": None}

    def _check(self, weights: tuple[torch.Tensor, ...], biases: tuple[torch.Tensor | None, ...]) -> None:
        """Drop every copy (and the row count seen last) when a weight's storage or version changed since."""
        key = version_key((*weights, *biases))
        if self._key != key:
            self._copies, self._key, self._last_rows = {}, key, None

    def mkl(self, weights: tuple[torch.Tensor, ...], biases: tuple[torch.Tensor | None, ...], rows: int):
        """``(packed, weight, bias)`` for MKL's product of exactly ``rows`` rows, or None where no copy for that
        row count exists yet and this is its first request in a row (packing costs several products)."""
        self._check(weights, biases)
        layout, seen, self._last_rows = f"mkl-{rows}", self._last_rows == rows, rows
        if layout not in self._copies:
            if not seen:
                return None
            packed = [k for k in self._copies if k.startswith("mkl-")]
            for old in packed[: max(0, len(packed) - MKL_COPIES + 1)] + ["onednn"]:  # the oldest row counts make
                self._copies.pop(old, None)  # room, and oneDNN's copy is made again only if another count needs it
            weight, bias = _detached_stack(weights, biases)
            self._copies[layout] = (torch.ops.mkl._mkl_reorder_linear_weight(weight, rows), weight, bias)
        return self._copies[layout]

    def get(self, layout: str, weights: tuple[torch.Tensor, ...], biases: tuple[torch.Tensor | None, ...]):
        self._check(weights, biases)
        if layout not in self._copies:
            weight, bias = _detached_stack(weights, biases)
            if layout == "stream":
                self._copies[layout] = (weight.T.contiguous(), bias)
            elif layout in ("bf16", "onednn-bf16"):
                weight, bias = weight.to(torch.bfloat16), bias.to(torch.bfloat16) if bias is not None else None
                if layout == "onednn-bf16":
                    weight = torch.ops.mkldnn._reorder_linear_weight(weight, batch_size=PACK_ROWS)
                self._copies[layout] = (weight, bias)
            else:
                self._copies[layout] = (torch.ops.mkldnn._reorder_linear_weight(weight, batch_size=PACK_ROWS), bias)
        return self._copies[layout]


def fused_linear(
    x: torch.Tensor,
    weights: tuple[torch.Tensor, ...],
    biases: tuple[torch.Tensor | None, ...],
    copies: InferenceWeights,
) -> torch.Tensor:
    """``F.linear(x, cat(weights), cat(biases))``, through ``copies`` where :func:`inference_path` allows it."""
    if not inference_path(x, weights[0]):
        return F.linear(x, *_stack(weights, biases))
    rows = x.numel() // max(1, x.shape[-1])
    y = bound_product(weights, biases, copies, rows)(x.reshape(rows, x.shape[-1]))
    return y.view(*x.shape[:-1], y.shape[-1])


def _copies_of(layer: nn.Module, stacked: int = 1) -> InferenceWeights:
    """The copies kept on ``layer`` for its weight alone, or stacked with the next ``stacked - 1`` layers'."""
    name = "_inference_weights" if stacked == 1 else f"_inference_weights_{stacked}"
    copies = layer.__dict__.get(name)
    if copies is None:
        copies = layer.__dict__[name] = InferenceWeights()  # a cache, not a parameter or buffer
    return copies


def packed_linear(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)``, through the cached copies of its weight when ``layer`` is a plain ``nn.Linear``."""
    if type(layer) is not nn.Linear or not inference_path(x, layer.weight):  # int8 layers have their own kernels
        return layer(x)
    return fused_linear(x, (layer.weight,), (layer.bias,), _copies_of(layer))


def packed_linears(layers: tuple[nn.Module, ...], x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``tuple(layer(x) for layer in layers)`` as one product over their stacked weights, when they are all plain
    ``nn.Linear`` on the inference path (a decoding step then reads one matrix, not three)."""
    if not all(type(layer) is nn.Linear for layer in layers) or not inference_path(x, layers[0].weight):
        return tuple(layer(x) for layer in layers)
    weights, biases = tuple(la.weight for la in layers), tuple(la.bias for la in layers)
    y = fused_linear(x, weights, biases, _copies_of(layers[0], len(layers)))
    return y.split([la.weight.shape[0] for la in layers], dim=-1)


def bound_linear(layers: tuple[nn.Module, ...], rows: int, dtype: torch.dtype = torch.float32,
                 exact_rows: bool = False):
    """A function ``(rows, in) -> (rows, sum of outs)`` computing :func:`packed_linears` of ``layers`` (stacked)
    with the same kernel, bound once to the copies for that row count, so that a decoding loop whose weights do not
    change pays no check per call (Whisper base decodes a greedy token in 17.0 ms this way against 19.1 ms through
    the modules, ``decoder_linear_2threads.json``). Call it only where :func:`inference_path` holds, or, with
    ``dtype=torch.bfloat16``, under CPU bf16 autocast without gradient (the product then takes any input dtype and
    gives bf16). Modules that are not plain ``nn.Linear`` (int8) run their own forward. ``exact_rows``: the
    function will be called with exactly ``rows`` rows (MKL's packed copy may serve it, see the module's notes)."""
    if not all(type(layer) is nn.Linear for layer in layers):
        if len(layers) == 1:
            return layers[0]
        return lambda x: torch.cat([layer(x) for layer in layers], dim=-1)
    weights, biases = tuple(la.weight for la in layers), tuple(la.bias for la in layers)
    return bound_product(weights, biases, _copies_of(layers[0], len(layers)), rows, dtype, exact_rows)


def bound_product(
    weights: tuple[torch.Tensor, ...], biases: tuple[torch.Tensor | None, ...], copies: InferenceWeights, rows: int,
    dtype: torch.dtype = torch.float32, exact_rows: bool = False,
):
    """:func:`bound_linear` for weights and biases given as tensors, with the copies kept in ``copies``."""
    if exact_rows and MKL and dtype == torch.float32 and rows >= MKL_ROWS:
        copy = copies.mkl(weights, biases, rows)
        if copy is not None:
            packed, weight, bias = copy
            return lambda x: torch.ops.mkl._mkl_linear(x, packed, weight, bias, rows)
    if dtype == torch.bfloat16:
        weight, bias = copies.get("onednn-bf16" if ONEDNN_BF16 else "bf16", weights, biases)
        if ONEDNN_BF16:
            return lambda x: torch.ops.mkldnn._linear_pointwise(x.to(dtype), weight, bias, "none", [], "")
        return lambda x: F.linear(x.to(dtype), weight, bias)
    if rows > STREAM_ROWS and not ONEDNN:  # no oneDNN in this torch build: the default kernel
        weight, bias = _stack(weights, biases)
        return lambda x: F.linear(x, weight, bias)
    if rows <= STREAM_ROWS and weights[0].shape[1] > sum(w.shape[0] for w in weights):
        # More inputs than outputs (an MLP's second layer): dot products along the parameter's own long rows read
        # faster than the (in, out) copy's short ones, and no copy is kept.
        weight, bias = _stack(weights, biases)
        return lambda x: F.linear(x, weight, bias)
    if rows <= STREAM_ROWS:
        weight_t, bias = copies.get("stream", weights, biases)
        return (lambda x: torch.addmm(bias, x, weight_t)) if bias is not None else (lambda x: torch.mm(x, weight_t))
    packed, bias = copies.get("onednn", weights, biases)
    return lambda x: torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
