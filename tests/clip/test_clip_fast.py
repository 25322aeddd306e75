"""clip/fast.py computes the model's embeddings: fp32 to rounding, bf16 as autocast does, every pooling rule and
activation, rows ending at different places; the plain model wherever the path does not apply."""

import dataclasses

import pytest
import torch

from genlab.clip import fast
from genlab.clip.minilm import MiniLMConfig
from genlab.clip.model import CLIP, PRESETS, CLIPConfig, TextConfig, VisionConfig


def model(pool="eos", activation="quick_gelu", seed=0):
    cfg = CLIPConfig(embed_dim=24,
                     vision=VisionConfig(image_size=16, patch_size=4, width=32, layers=2, heads=4, mlp_hidden=37,
                                         activation=activation),
                     text=TextConfig(vocab_size=99, context_length=20, width=32, layers=2, heads=4, mlp_hidden=37,
                                     activation=activation, pool=pool, eos_token_id=50, bos_token_id=97))
    torch.manual_seed(seed)
    m = CLIP(cfg).eval()
    with torch.no_grad():  # LayerNorms and biases that are not 1 and 0
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return m


def inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randn(3, 3, 16, 16, generator=g)
    ids = torch.randint(2, 99, (4, 12), generator=g)
    ids[ids == 50] = 3
    ids[:, 0] = 97
    for row, end in enumerate((11, 5, 8, 2)):  # end-of-text at different places, then padding
        ids[row, end] = 50
        ids[row, end + 1 :] = 50
    return pixels, ids


@pytest.mark.parametrize("pool,activation", [("eos", "quick_gelu"), ("argmax", "gelu")])
@pytest.mark.parametrize("batch", [1, 4])
def test_fp32_matches_the_model(pool, activation, batch):
    m = model(pool, activation)
    pixels, ids = inputs()
    pixels, ids = pixels[:batch], ids[:batch]
    with torch.no_grad():
        assert (fast.encode_image(m, pixels, False) - m.encode_image(pixels, False)).abs().max() < 1e-5
        assert (fast.encode_text(m, ids, False) - m.encode_text(ids, False)).abs().max() < 1e-5
        assert torch.allclose(fast.encode_image(m, pixels).norm(dim=-1), torch.ones(len(pixels)))
    assert "_patch_weights" in m.visual.__dict__  # the fast path ran, not the model


def test_bf16_matches_autocast():
    m = model()
    pixels, ids = inputs()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for ours, ref in ((fast.encode_image(m, pixels, False), m.encode_image(pixels, False)),
                          (fast.encode_text(m, ids, False), m.encode_text(ids, False))):
            assert ours.dtype == ref.dtype == torch.bfloat16
            assert (ours.float() - ref.float()).abs().max() < 0.03 * ref.float().abs().max()


def test_copies_follow_weight_updates():
    m = model()
    pixels, ids = inputs()
    with torch.no_grad():
        fast.encode_image(m, pixels), fast.encode_text(m, ids)  # copies made
        for p in m.parameters():
            p.mul_(0.9)
        assert (fast.encode_image(m, pixels, False) - m.encode_image(pixels, False)).abs().max() < 1e-5
        assert (fast.encode_text(m, ids, False) - m.encode_text(ids, False)).abs().max() < 1e-5


def test_with_gradient_it_is_the_model():
    m = model()
    pixels, ids = inputs()
    out = fast.encode_image(m, pixels) @ fast.encode_text(m, ids).T
    out.sum().backward()
    assert m.visual.patch_embed.weight.grad is not None and m.text.token_embedding.weight.grad is not None


def test_borrowed_text_tower_runs_its_own_forward():
    small = MiniLMConfig(vocab_size=200, width=32, layers=1, heads=2, mlp_hidden=64)
    m = CLIP(dataclasses.replace(PRESETS["tiny"], minilm=small)).eval()
    tokens = torch.tensor([[101, 150, 102]])
    with torch.no_grad():
        assert torch.equal(fast.encode_text(m, tokens), m.encode_text(tokens))
