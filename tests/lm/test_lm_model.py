"""The language model on its own: cache equals no cache, causality, tied heads, preset shapes against HF's."""

import pytest
import torch

from genlab.lm.model import PRESETS, LMConfig, TransformerLM

CONFIGS = {
    "gpt2": LMConfig(style="gpt2", vocab_size=61, context=32, n_layer=2, dim=32, n_head=4),
    "llama-gqa": LMConfig(style="llama", vocab_size=61, context=32, n_layer=2, dim=48, n_head=6, n_kv_head=2,
                          rope_theta=500.0, tie_embeddings=False),
}


@pytest.fixture(params=list(CONFIGS))
def model(request):
    torch.manual_seed(0)
    return TransformerLM(CONFIGS[request.param]).eval()


@torch.no_grad()
def test_cached_steps_equal_the_full_forward(model):
    x = torch.randint(0, 61, (3, 20), generator=torch.Generator().manual_seed(1))
    full = model(x)  # (3, 20, V)
    cache = model.new_cache(3, 20)
    pieces = [model.step(x[:, :7], cache)]  # a prompt, then one token at a time, then a chunk of three
    pieces += [model.step(x[:, t : t + 1], cache) for t in range(7, 16)]
    pieces.append(model.step(x[:, 16:19], cache))
    assert cache.length == 19
    torch.testing.assert_close(torch.stack(pieces[:-1], 1), full[:, 6:16], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pieces[-1], full[:, 18], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.step(x, None), full[:, -1], atol=1e-6, rtol=1e-6)


@torch.no_grad()
def test_no_position_sees_the_future(model):
    x = torch.randint(0, 61, (1, 16), generator=torch.Generator().manual_seed(2))
    y = x.clone()
    y[0, 10:] = (y[0, 10:] + 1) % 61
    torch.testing.assert_close(model(x)[:, :10], model(y)[:, :10])
    assert not torch.allclose(model(x)[:, 10:], model(y)[:, 10:])


def test_tied_head_is_the_embedding_and_untied_is_not():
    tied = TransformerLM(CONFIGS["gpt2"])
    assert tied.head is None and "head.weight" not in tied.state_dict()
    untied = TransformerLM(CONFIGS["llama-gqa"])
    assert untied.head.weight.shape == (61, 48)
    with torch.no_grad():
        tied.token_embedding.weight[5].zero_()
        assert (tied(torch.tensor([[1, 2]]))[..., 5] == 0).all()  # the head reads the (zeroed) embedding row


def test_gpt2_refuses_sequences_past_its_position_table():
    model = TransformerLM(CONFIGS["gpt2"])
    with pytest.raises(ValueError, match="longer than the context"):
        model(torch.zeros(1, 33, dtype=torch.long))


def test_published_presets_have_the_reference_parameter_counts():
    transformers = pytest.importorskip("transformers")
    from genlab.lm.convert import gpt2_config, llama_config

    smol = transformers.LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                                    num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                                    rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True)
    gpt2 = transformers.GPT2Config()
    for name, hf_cfg, cls, convert in (("smollm2-135m", smol, transformers.LlamaForCausalLM, llama_config),
                                       ("gpt2", gpt2, transformers.GPT2LMHeadModel, gpt2_config)):
        with torch.device("meta"):
            ours, theirs = TransformerLM(PRESETS[name]), cls(hf_cfg)
        assert convert(hf_cfg.to_dict()) == PRESETS[name]
        unique = {id(p): p.numel() for p in theirs.parameters()}  # HF ties lm_head to the embedding
        assert sum(p.numel() for p in ours.parameters()) == sum(unique.values())
