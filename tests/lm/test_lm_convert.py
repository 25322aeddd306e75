"""Published formats into genlab's model: HF GPT-2 and Llama (parity of logits and of greedy tokens with HF
transformers), GGUF (a file written here the way llama.cpp writes one, quantised), and refusals in one line."""

import numpy as np
import pytest
import torch

from genlab import sampling
from genlab.checkpoint import load_weights_strict
from genlab.errors import GenlabError
from genlab.lm import convert
from genlab.lm.model import TransformerLM
from genlab.lm.pipeline import build

transformers = pytest.importorskip("transformers")

PROMPTS = [[5], [17, 3, 99], [1, 2, 3, 4, 5, 6, 7], [120, 64, 8, 8, 8], [42, 0, 42, 0]]


def hf_gpt2():
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=128, n_positions=96, n_embd=64, n_layer=2, n_head=4,
                                  bos_token_id=None, eos_token_id=None)
    return transformers.GPT2LMHeadModel(cfg).eval()


def hf_llama(tied: bool = False):
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=96,
                                   rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=tied,
                                   bos_token_id=None, eos_token_id=None, pad_token_id=None)
    model = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # HF's init leaves the norm gains at one: make them matter
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    return model


def ours(hf, kind):
    to_config, to_state = (convert.gpt2_config, convert.gpt2_state) if kind == "gpt2" else \
        (convert.llama_config, convert.llama_state)
    cfg = to_config(hf.config.to_dict())
    return build(cfg, to_state(hf.state_dict(), cfg), "test")


CASES = {"gpt2": (hf_gpt2, "gpt2"), "llama": (hf_llama, "llama"), "llama-tied": (lambda: hf_llama(True), "llama")}


@pytest.mark.parametrize("case", list(CASES))
@torch.no_grad()
def test_logits_match_hf(case):
    make, kind = CASES[case]
    hf = make()
    model = ours(hf, kind)
    x = torch.randint(0, 128, (2, 40), generator=torch.Generator().manual_seed(3))
    ref = hf(x).logits
    assert (model(x) - ref).abs().max() < 1e-4
    cache = model.new_cache(2, 40)  # and step by step through the cache
    steps = [model.step(x[:, :30], cache)] + [model.step(x[:, t : t + 1], cache) for t in range(30, 39)]
    assert (torch.stack(steps, 1) - ref[:, 29:39]).abs().max() < 1e-4


@pytest.mark.parametrize("case", ["gpt2", "llama"])
@torch.no_grad()
def test_greedy_tokens_match_hf_generate(case):
    make, kind = CASES[case]
    hf = make()
    model = ours(hf, kind)
    for prompt in PROMPTS:
        x = torch.tensor([prompt])
        ref = hf.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=64, do_sample=False)
        got = sampling.generate(model.step, x, max_new_tokens=64, cache=model.new_cache(1, x.shape[1] + 64))
        assert torch.equal(got, ref)


def test_configs_genlab_cannot_express_are_refused():
    gpt2 = hf_gpt2().config.to_dict()
    with pytest.raises(GenlabError, match="activation 'relu'"):
        convert.gpt2_config({**gpt2, "activation_function": "relu"}, "m")
    llama = hf_llama().config.to_dict()
    with pytest.raises(GenlabError, match="biases"):
        convert.llama_config({**llama, "attention_bias": True}, "m")
    with pytest.raises(GenlabError, match="rope scaling 'linear'"):
        convert.llama_config({**llama, "rope_parameters": {"rope_type": "linear", "factor": 2.0}}, "m")


def test_weights_that_do_not_fit_the_config_are_refused():
    hf = hf_llama()
    cfg = convert.llama_config(hf.config.to_dict())
    state = convert.llama_state(hf.state_dict(), cfg)
    state["blocks.0.attn.key.weight"] = state["blocks.0.attn.key.weight"][:16]
    with pytest.raises(GenlabError, match="shape mismatches"):
        load_weights_strict(TransformerLM(cfg), state, "m")


def test_hf_directory_round_trip(tmp_path):
    hf = hf_gpt2()
    hf.save_pretrained(tmp_path)
    cfg, state, tok = convert.from_hf(tmp_path, "gpt2")
    assert tok is None and cfg == convert.gpt2_config(hf.config.to_dict())
    x = torch.tensor([PROMPTS[2]])
    with torch.no_grad():
        assert (build(cfg, state, tmp_path)(x) - hf(x).logits).abs().max() < 1e-4
    with pytest.raises(GenlabError, match="model_type is 'gpt2', expected 'llama'"):
        convert.from_hf(tmp_path, "llama")


# -- GGUF ---------------------------------------------------------------------------------------------------------

gguf = pytest.importorskip("gguf")


def llama_cpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf.py ``LlamaModel.permute`` (HF half-split rows -> interleaved pairs)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(path, hf, tokenizer, *, quant=gguf.GGMLQuantizationType.Q8_0, truncate=0):
    """Write ``hf`` (a Llama) as llama.cpp does: metadata, permuted query/key rows, 2-D weights quantised."""
    c = hf.config
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(c.num_hidden_layers)
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_rope_dimension_count(c.hidden_size // c.num_attention_heads)
    vocab = tokenizer.tokenizer.get_vocab()
    tokens = sorted(vocab, key=vocab.get)
    model = __import__("json").loads(tokenizer.tokenizer.to_str())["model"]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt2")  # the pre-tokenizer BPEText.train uses
    w.add_token_list(tokens + [f"<pad{i}>" for i in range(c.vocab_size - len(tokens))])
    w.add_token_types([3 if t == "<|endoftext|>" else 1 for t in tokens] + [5] * (c.vocab_size - len(tokens)))
    w.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in model["merges"]])
    w.add_eos_token_id(vocab["<|endoftext|>"])
    w.add_chat_template("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}")
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    layer = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    for name, t in hf.state_dict().items():
        a = t.numpy().astype(np.float32)
        if name.startswith("model.layers."):
            i, rest = name.removeprefix("model.layers.").split(".", 1)
            theirs = f"blk.{i}.{layer[rest.removesuffix('.weight')]}.weight"
        else:
            theirs = names[name]
        if theirs.endswith("attn_q.weight"):
            a = llama_cpp_permute(a, c.num_attention_heads)
        elif theirs.endswith("attn_k.weight"):
            a = llama_cpp_permute(a, c.num_key_value_heads)
        if a.ndim == 2:
            w.add_tensor(theirs, gguf.quants.quantize(a, quant), raw_dtype=quant)
        else:
            w.add_tensor(theirs, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if truncate:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) - truncate])


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    from genlab.data.alphabet import BPEText

    text = ["In the beginning God created the heaven and the earth.", "And the earth was without form, and void.",
            "Numbers 1234 and 56 split into digits."] * 20
    tok = BPEText.train(text, vocab_size=300, special=("<|endoftext|>",))
    hf = hf_llama()
    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    write_gguf(path, hf, tok)
    return path, hf, tok


@torch.no_grad()
def test_gguf_loads_with_llama_cpp_layout_undone(tiny_gguf):
    path, hf, tok = tiny_gguf
    cfg, state, tokenizer, info = convert.from_gguf(path)
    assert cfg == convert.llama_config(hf.config.to_dict())
    assert info["tensor_types"] == ["F32", "Q8_0"] and info["eos_token"] == "<|endoftext|>"
    original = hf.state_dict()
    hf_name = {ours: next(k for k, t in original.items() if t is v)  # genlab name -> HF name (untied: 1 to 1)
               for ours, v in convert.llama_state(original, cfg).items()}
    step = max((state[k] - original[hf_name[k]]).abs().max() for k in state)
    assert 0 < step < 2e-3  # quantised for real (Q8_0), and nothing permuted wrongly
    other = transformers.LlamaForCausalLM(hf.config).eval()  # HF gets the same dequantised weights
    other.load_state_dict({hf_name[k]: v for k, v in state.items()})
    x = torch.tensor([PROMPTS[2] + PROMPTS[3]])
    assert (build(cfg, state, path)(x) - other(x).logits).abs().max() < 1e-4
    for text in ("In the beginning God created", "Numbers 1234 and 56", "<|endoftext|>void."):
        assert tokenizer.encode(text) == tok.encode(text)
        assert tokenizer.decode(tokenizer.encode(text)) == text


def test_smollm_pre_tokenizer_splits_every_digit(tiny_gguf):
    from genlab.lm.gguf import GGUFFile

    path, hf, tok = tiny_gguf
    meta = {**GGUFFile(path).metadata, "tokenizer.ggml.pre": "smollm"}
    pieces = convert.gguf_tokenizer(meta, path).tokenizer.pre_tokenizer.pre_tokenize_str("in 1234 days")
    assert [p for p, _ in pieces] == ["in", "Ġ", "1", "2", "3", "4", "Ġdays"]
    with pytest.raises(GenlabError, match="pre-tokenizer 'llama-bpe'"):
        convert.gguf_tokenizer({**meta, "tokenizer.ggml.pre": "llama-bpe"}, path)


def test_unpermute_inverts_llama_cpp():
    w = np.random.default_rng(0).standard_normal((48, 7)).astype(np.float32)
    for heads in (1, 2, 3, 6):
        back = convert.unpermute_rope(torch.from_numpy(llama_cpp_permute(w, heads)), heads)
        assert torch.equal(back, torch.from_numpy(w))


def test_truncated_and_foreign_gguf_are_refused(tiny_gguf, tmp_path):
    path, hf, tok = tiny_gguf
    data = path.read_bytes()
    for cut, message in ((len(data) - 100, "truncated GGUF \\(tensor"), (200, "truncated GGUF \\(the header"),
                         (0, "cannot read")):
        bad = tmp_path / f"cut{cut}.gguf"
        bad.write_bytes(data[:cut])
        with pytest.raises(GenlabError, match=message):
            convert.from_gguf(bad)
    (tmp_path / "x.gguf").write_bytes(b"GGML" + data[4:])
    with pytest.raises(GenlabError, match="no GGUF magic"):
        convert.from_gguf(tmp_path / "x.gguf")
    with pytest.raises(GenlabError, match="architecture 'gpt2'"):
        convert.gguf_config({"general.architecture": "gpt2"}, {}, "m")
