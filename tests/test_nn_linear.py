"""genlab.nn.linear: a linear layer through cached weight copies (contiguous transposed for one or two rows,
oneDNN-repacked for more) gives F.linear's numbers, stacked products give each layer's own, the copies follow the
weights when they change, and the path stays out of the way of autograd, autocast and copies."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genlab.nn import linear as packing

needs_onednn = pytest.mark.skipif(not packing.ONEDNN, reason="this torch build has no oneDNN linear ops")


def copies(layer, stacked=1):
    name = "_inference_weights" if stacked == 1 else f"_inference_weights_{stacked}"
    return layer.__dict__[name]._copies


@needs_onednn
@pytest.mark.parametrize("shape", [(1, 64), (1, 1, 64), (2, 64), (5, 64), (2, 3, 64), (300, 64)])
def test_packed_equals_f_linear(shape):
    torch.manual_seed(0)
    layer = nn.Linear(64, 96)
    x = torch.randn(*shape)
    with torch.no_grad():
        got = packing.packed_linear(layer, x)
        torch.testing.assert_close(got, F.linear(x, layer.weight, layer.bias), atol=1e-5, rtol=1e-5)
        rows = x.numel() // 64
        assert set(copies(layer)) == {"stream" if rows <= packing.STREAM_ROWS else "onednn"}


@needs_onednn
@pytest.mark.parametrize("rows", [1, 7])
def test_stacked_products_equal_each_layer(rows):
    torch.manual_seed(0)
    q, k, v = nn.Linear(32, 32), nn.Linear(32, 32, bias=False), nn.Linear(32, 16)  # Whisper: no key bias
    x = torch.randn(rows, 32)
    with torch.no_grad():
        got = packing.packed_linears((q, k, v), x)
        for layer, y in zip((q, k, v), got):
            torch.testing.assert_close(y, layer(x), atol=1e-5, rtol=1e-5)
        k.weight.mul_(0.5)  # any one of the stacked weights changing remakes the copy
        torch.testing.assert_close(packing.packed_linears((q, k, v), x)[1], k(x), atol=1e-5, rtol=1e-5)
    y = packing.packed_linears((q, k, v), x.requires_grad_())  # training: each layer's own product
    sum(t.sum() for t in y).backward()
    assert q.weight.grad is not None and k.weight.grad is not None


@needs_onednn
def test_repacks_when_the_weight_changes():
    layer, x = nn.Linear(32, 16), torch.randn(4, 32)
    with torch.no_grad():
        packing.packed_linear(layer, x)
        layer.weight.mul_(2.0)  # an optimizer step or a load writes in place
        torch.testing.assert_close(packing.packed_linear(layer, x), layer(x), atol=1e-5, rtol=1e-5)
        layer.weight = nn.Parameter(torch.randn(16, 32))  # a new tensor
        torch.testing.assert_close(packing.packed_linear(layer, x), layer(x), atol=1e-5, rtol=1e-5)


def test_training_bf16_and_quantized_layers_use_their_own_forward():
    layer, x = nn.Linear(32, 16), torch.randn(4, 32, requires_grad=True)
    y = packing.packed_linear(layer, x)
    y.sum().backward()  # gradients flow: the plain F.linear ran
    assert layer.weight.grad is not None and "_inference_weights" not in layer.__dict__
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert packing.packed_linear(layer, x).dtype == torch.bfloat16  # autocast still applies
    assert not packing.inference_path(x.detach().bfloat16(), layer.weight.bfloat16())


@needs_onednn
def test_copies_pack_their_own_weights():
    model = nn.Sequential(nn.Linear(32, 32))
    with torch.no_grad():
        packing.packed_linear(model[0], torch.randn(3, 32))
    twin = copy.deepcopy(model)  # an EMA copy, say
    assert copies(twin[0]) == {}
    with torch.no_grad():
        twin[0].weight.add_(1.0)
        x = torch.randn(3, 32)
        torch.testing.assert_close(packing.packed_linear(twin[0], x), twin[0](x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(packing.packed_linear(model[0], x), model[0](x), atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(not packing.MKL, reason="this torch build has no MKL packed product")
def test_exact_rows_pack_on_the_second_sighting_and_keep_two_row_counts():
    torch.manual_seed(0)
    layers = (nn.Linear(64, 32), nn.Linear(64, 48))
    def kept():
        return packing._copies_of(layers[0], 2)._copies

    with torch.no_grad():
        for rows, packed in ((40, []), (40, ["mkl-40"]), (40, ["mkl-40"]), (50, ["mkl-40"]), (40, ["mkl-40"]),
                             (50, ["mkl-40"]), (50, ["mkl-40", "mkl-50"]), (60, ["mkl-40", "mkl-50"]),
                             (60, ["mkl-50", "mkl-60"])):
            x = torch.randn(rows, 64)
            y = packing.bound_linear(layers, rows, exact_rows=True)(x)
            want = torch.cat([F.linear(x, la.weight, la.bias) for la in layers], dim=-1)
            torch.testing.assert_close(y, want, atol=1e-5, rtol=1e-5)
            assert sorted(k for k in kept() if k.startswith("mkl-")) == packed, rows
        # Below MKL_ROWS, or without exact_rows, nothing is packed by MKL; a changed weight drops the copies.
        packing.bound_linear(layers, 8, exact_rows=True)(torch.randn(8, 64))
        packing.bound_linear(layers, 8, exact_rows=True)(torch.randn(8, 64))
        assert "mkl-8" not in kept()
        layers[0].weight.add_(1.0)
        x = torch.randn(60, 64)
        y = packing.bound_linear(layers, 60, exact_rows=True)(x)
        torch.testing.assert_close(y[:, :32], F.linear(x, layers[0].weight, layers[0].bias), atol=1e-5, rtol=1e-5)
        assert not [k for k in kept() if k.startswith("mkl-")]
