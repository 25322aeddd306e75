"""CLIP's towers: shapes, the causal mask and end-of-text pooling, the clamped temperature, preset sizes."""

import math

import pytest
import torch

from genlab.clip.model import CLIP, PRESETS, CLIPConfig, TextConfig, VisionConfig


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return CLIP(PRESETS["tiny"]).eval()


def test_shapes_and_unit_embeddings(tiny):
    pixels, tokens = torch.randn(3, 3, 16, 16), torch.tensor([[0, 5, 6, 1], [0, 7, 1, 1]])
    img, txt = tiny.encode_image(pixels), tiny.encode_text(tokens)
    assert img.shape == (3, 16) and txt.shape == (2, 16)
    assert torch.allclose(img.norm(dim=-1), torch.ones(3)) and torch.allclose(txt.norm(dim=-1), torch.ones(2))
    assert tiny(pixels, tokens).shape == (3, 2)
    assert tiny.text.hidden(tokens).shape == (2, 4, 32)


def test_text_embedding_ignores_everything_after_end_of_text(tiny):
    """Causal mask + pooling at the first end-of-text (id 1): what follows it cannot matter; what precedes it does."""
    a = torch.tensor([[0, 5, 6, 1, 1, 1]])
    b = torch.tensor([[0, 5, 6, 1, 9, 42]])
    c = torch.tensor([[0, 5, 7, 1, 1, 1]])
    with torch.no_grad():
        assert torch.allclose(tiny.encode_text(a), tiny.encode_text(b), atol=1e-6)
        assert not torch.allclose(tiny.encode_text(a), tiny.encode_text(c), atol=1e-3)
        assert torch.allclose(tiny.encode_text(a), tiny.encode_text(a[:, :4]), atol=1e-6)  # padding length


def test_hidden_is_causal_and_skip_last_drops_blocks(tiny):
    x = torch.tensor([[0, 5, 6, 7, 1]])
    y = torch.tensor([[0, 5, 6, 8, 1]])
    with torch.no_grad():
        hx, hy = tiny.text.hidden(x), tiny.text.hidden(y)
        assert torch.allclose(hx[:, :3], hy[:, :3], atol=1e-6) and not torch.allclose(hx[:, 3], hy[:, 3])
        assert not torch.allclose(tiny.text.hidden(x, skip_last=1), hx)


def test_argmax_pooling_reads_the_largest_id():
    cfg = CLIPConfig(embed_dim=8, vision=VisionConfig(image_size=8, patch_size=4, width=16, layers=1, heads=2),
                     text=TextConfig(vocab_size=50, context_length=8, width=16, layers=1, heads=2, pool="argmax"))
    model = CLIP(cfg)
    tokens = torch.tensor([[48, 3, 49, 0, 0], [48, 49, 0, 0, 0]])
    assert model.text.end_positions(tokens).tolist() == [2, 1]


def test_temperature_starts_at_1_over_0_07_and_is_clamped_at_100(tiny):
    assert abs(tiny.temperature().item() - 1 / 0.07) < 1e-4
    with torch.no_grad():
        tiny.logit_scale.fill_(10.0)
    assert abs(tiny.temperature().item() - 100.0) < 1e-3
    with torch.no_grad():
        tiny.logit_scale.fill_(math.log(1 / 0.07))


def test_preset_sizes():
    with torch.device("meta"):
        b32 = CLIP(PRESETS["vit-b-32"])
        emoji = CLIP(PRESETS["emoji-clip"])
    # OpenAI's ViT-B/32: 151,277,313 parameters (openai/CLIP's model card; HF CLIPModel gives the same count).
    assert sum(p.numel() for p in b32.parameters()) == 151_277_313
    assert 1e6 < sum(p.numel() for p in emoji.parameters()) < 2e6  # a few MB in fp32
