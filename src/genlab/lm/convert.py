"""Published language-model weights -> genlab's :class:`TransformerLM`: HF GPT-2, HF Llama, GGUF (llama.cpp).

Each source is a config check plus a key map; nothing is approximated. A config genlab's model cannot express
(another activation, rope scaling, biases where Llama has none, ...) is refused in one line before any weight is
read, and :func:`genlab.checkpoint.load_weights_strict` refuses names or shapes that do not match.

- HF ``GPT2LMHeadModel``: its ``Conv1D`` layers store weights as ``(in, out)``, so every one is transposed, and
  the fused ``c_attn`` is split into query, key and value.
- HF ``LlamaForCausalLM``: a one-to-one rename.
- GGUF: llama.cpp's ``convert_hf_to_gguf.py`` permutes the rows of the query and key projections of every head
  from the half-split rotary layout (HF, genlab) to the interleaved one (pairs of adjacent channels);
  :func:`unpermute_rope` undoes it. The tokenizer (``tokenizer.ggml.*``) and chat template travel in the file's
  metadata and become a :class:`BPEText` and a string. :func:`gguf_int4_layers` reads the file's Q4_1 matrices
  as they are stored, as ``genlab.nn.int4`` layers for the 4-bit inference path (``pipeline.load(weights="int4")``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.alphabet import BPEText
from ..errors import GenlabError
from .model import LMConfig


def _refuse(source: Any, what: str) -> None:
    raise GenlabError(f"{source}: {what}; genlab's language model cannot hold these weights")


# -- HF GPT-2 ------------------------------------------------------------------------------------------------------


def gpt2_config(hf: dict[str, Any], source: Any = "GPT-2 config") -> LMConfig:
    """An HF ``GPT2Config`` (as a dict) -> :class:`LMConfig`, refusing what the model does not express."""
    act = hf.get("activation_function", "gelu_new")
    if act not in ("gelu_new", "gelu_pytorch_tanh"):
        _refuse(source, f"activation {act!r} (genlab's GPT-2 style uses GELU-tanh, 'gelu_new')")
    for key, ok in (("scale_attn_weights", True), ("scale_attn_by_inverse_layer_idx", False),
                    ("reorder_and_upcast_attn", False), ("add_cross_attention", False)):
        if hf.get(key, ok) != ok:
            _refuse(source, f"{key}={hf[key]}")
    return LMConfig(style="gpt2", vocab_size=hf["vocab_size"], context=hf["n_positions"], n_layer=hf["n_layer"],
                    dim=hf["n_embd"], n_head=hf["n_head"], mlp_hidden=hf.get("n_inner"),
                    norm_eps=hf.get("layer_norm_epsilon", 1e-5), tie_embeddings=hf.get("tie_word_embeddings", True))


def gpt2_state(hf: dict[str, torch.Tensor], cfg: LMConfig) -> dict[str, torch.Tensor]:
    """HF ``GPT2LMHeadModel`` state dict -> genlab names (``Conv1D`` weights transposed, ``c_attn`` split)."""
    hf = {k.removeprefix("transformer."): v for k, v in hf.items()}
    out = {"token_embedding.weight": hf["wte.weight"], "position_embedding.weight": hf["wpe.weight"],
           "ln_f.weight": hf["ln_f.weight"], "ln_f.bias": hf["ln_f.bias"]}
    for i in range(cfg.n_layer):
        h, b = f"h.{i}.", f"blocks.{i}."
        q, k, v = hf[h + "attn.c_attn.weight"].t().split(cfg.dim, dim=0)  # Conv1D (in, 3 out) -> 3 x (out, in)
        qb, kb, vb = hf[h + "attn.c_attn.bias"].split(cfg.dim)
        out |= {b + "attn.query.weight": q, b + "attn.key.weight": k, b + "attn.value.weight": v,
                b + "attn.query.bias": qb, b + "attn.key.bias": kb, b + "attn.value.bias": vb,
                b + "attn.out.weight": hf[h + "attn.c_proj.weight"].t(),
                b + "attn.out.bias": hf[h + "attn.c_proj.bias"],
                b + "mlp.0.weight": hf[h + "mlp.c_fc.weight"].t(), b + "mlp.0.bias": hf[h + "mlp.c_fc.bias"],
                b + "mlp.2.weight": hf[h + "mlp.c_proj.weight"].t(), b + "mlp.2.bias": hf[h + "mlp.c_proj.bias"]}
        for ln, ours in (("ln_1", "attn_ln"), ("ln_2", "mlp_ln")):
            out[b + ours + ".weight"], out[b + ours + ".bias"] = hf[h + ln + ".weight"], hf[h + ln + ".bias"]
    if not cfg.tie_embeddings:
        out["head.weight"] = hf["lm_head.weight"]
    return {k: v.contiguous() for k, v in out.items()}


# -- HF Llama ------------------------------------------------------------------------------------------------------


def _rope_theta(hf: dict[str, Any], source: Any) -> float:
    rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}  # transformers >= 5 / < 5
    kind = rope.get("rope_type", rope.get("type", "default"))
    if kind != "default":
        _refuse(source, f"rope scaling {kind!r} (genlab's rotary embedding is the plain one)")
    return float(rope.get("rope_theta", hf.get("rope_theta", 10000.0)))


def llama_config(hf: dict[str, Any], source: Any = "Llama config") -> LMConfig:
    """An HF ``LlamaConfig`` (as a dict) -> :class:`LMConfig`, refusing what the model does not express."""
    if hf.get("hidden_act", "silu") != "silu":
        _refuse(source, f"activation {hf['hidden_act']!r} (Llama style uses SwiGLU with SiLU)")
    if hf.get("attention_bias") or hf.get("mlp_bias"):
        _refuse(source, "attention or MLP biases (Llama style has none)")
    dim, n_head = hf["hidden_size"], hf["num_attention_heads"]
    if hf.get("head_dim") not in (None, dim // n_head):
        _refuse(source, f"head_dim={hf['head_dim']} is not hidden_size / num_attention_heads = {dim // n_head}")
    return LMConfig(style="llama", vocab_size=hf["vocab_size"], context=hf.get("max_position_embeddings", 2048),
                    n_layer=hf["num_hidden_layers"], dim=dim, n_head=n_head,
                    n_kv_head=hf.get("num_key_value_heads") or n_head, mlp_hidden=hf["intermediate_size"],
                    norm_eps=hf.get("rms_norm_eps", 1e-6), rope_theta=_rope_theta(hf, source),
                    tie_embeddings=bool(hf.get("tie_word_embeddings", False)))


_LLAMA_LAYER = {"self_attn.q_proj": "attn.query", "self_attn.k_proj": "attn.key", "self_attn.v_proj": "attn.value",
                "self_attn.o_proj": "attn.out", "mlp.gate_proj": "mlp.gate", "mlp.up_proj": "mlp.up",
                "mlp.down_proj": "mlp.down", "input_layernorm": "attn_ln", "post_attention_layernorm": "mlp_ln"}


def llama_state(hf: dict[str, torch.Tensor], cfg: LMConfig) -> dict[str, torch.Tensor]:
    """HF ``LlamaForCausalLM`` state dict -> genlab names (a rename)."""
    return {ours: hf[theirs] for ours, theirs in llama_hf_names(cfg).items()}


def llama_hf_names(cfg: LMConfig) -> dict[str, str]:
    """genlab name -> HF ``LlamaForCausalLM`` name (to hand genlab's weights to HF, e.g. for parity or speed runs)."""
    names = {"token_embedding.weight": "model.embed_tokens.weight", "ln_f.weight": "model.norm.weight"}
    for i in range(cfg.n_layer):
        names |= {f"blocks.{i}.{ours}.weight": f"model.layers.{i}.{theirs}.weight"
                  for theirs, ours in _LLAMA_LAYER.items()}
    if not cfg.tie_embeddings:
        names["head.weight"] = "lm_head.weight"
    return names


def read_hf(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """An HF model directory -> (config.json as a dict, state dict) from ``model.safetensors`` (never a pickle)."""
    from ..checkpoint import load_tensors

    path = Path(path)
    if not path.is_dir():
        raise GenlabError(f"{path}: not an HF model directory (expected config.json + model.safetensors)")
    try:
        hf_cfg = json.loads((path / "config.json").read_text())
    except FileNotFoundError:
        raise GenlabError(f"{path}: no config.json") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GenlabError(f"{path / 'config.json'}: corrupt JSON ({e})") from None
    if not (path / "model.safetensors").exists():
        raise GenlabError(f"{path}: no model.safetensors (sharded or pickled checkpoints are not read)")
    return hf_cfg, load_tensors(path / "model.safetensors")


def from_hf(path: str | os.PathLike, kind: str) -> tuple[LMConfig, dict[str, torch.Tensor], BPEText | None]:
    """Read an HF ``gpt2`` or ``llama`` directory: (config, genlab state dict, its ``tokenizer.json`` if present)."""
    hf_cfg, hf_state = read_hf(path)
    if hf_cfg.get("model_type") != kind:
        raise GenlabError(f"{path}: model_type is {hf_cfg.get('model_type')!r}, expected {kind!r}")
    to_config, to_state = (gpt2_config, gpt2_state) if kind == "gpt2" else (llama_config, llama_state)
    cfg = to_config(hf_cfg, path)
    try:
        state = to_state(hf_state, cfg)
    except KeyError as e:
        raise GenlabError(f"{path}: weights do not match its config.json (no {e.args[0]})") from None
    tok = Path(path) / "tokenizer.json"
    return cfg, state, BPEText.load(tok) if tok.exists() else None


# -- GGUF ----------------------------------------------------------------------------------------------------------


def unpermute_rope(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """Undo llama.cpp's query/key row permutation: within each head, rows ``(Dh/2, 2)`` interleaved -> ``(2, Dh/2)``
    half-split (``convert_hf_to_gguf.py`` applies ``reshape(n_head, 2, Dh/2, in).swapaxes(1, 2)``)."""
    out_dim, in_dim = w.shape
    return w.reshape(n_head, out_dim // n_head // 2, 2, in_dim).transpose(1, 2).reshape(out_dim, in_dim)


def gguf_config(meta: dict[str, Any], tensors: dict, source: Any) -> LMConfig:
    arch = meta.get("general.architecture")
    if arch != "llama":
        _refuse(source, f"GGUF architecture {arch!r} (genlab reads 'llama')")
    g = lambda key, default=None: meta.get(f"llama.{key}", default)  # noqa: E731
    if g("rope.scaling.type", "none") not in ("none", None):
        _refuse(source, f"rope scaling {g('rope.scaling.type')!r}")
    dim, n_head = g("embedding_length"), g("attention.head_count")
    if g("rope.dimension_count", dim // n_head) != dim // n_head:
        _refuse(source, f"partial rotary ({g('rope.dimension_count')} of {dim // n_head} channels)")
    return LMConfig(style="llama", vocab_size=tensors["token_embd.weight"].shape[0], context=g("context_length"),
                    n_layer=g("block_count"), dim=dim, n_head=n_head, n_kv_head=g("attention.head_count_kv", n_head),
                    mlp_hidden=g("feed_forward_length"), norm_eps=_f32(g("attention.layer_norm_rms_epsilon", 1e-5)),
                    rope_theta=_f32(g("rope.freq_base", 10000.0)), tie_embeddings="output.weight" not in tensors)


def _f32(x: float) -> float:
    """GGUF stores these as float32: the shortest decimal that rounds to it (9.9999997e-06 -> 1e-05)."""
    return float(str(np.float32(x)))


_GGUF_LAYER = {"attn_q": "attn.query", "attn_k": "attn.key", "attn_v": "attn.value", "attn_output": "attn.out",
               "ffn_gate": "mlp.gate", "ffn_up": "mlp.up", "ffn_down": "mlp.down", "attn_norm": "attn_ln",
               "ffn_norm": "mlp_ln"}


def gguf_names(cfg: LMConfig) -> dict[str, str]:
    """genlab name -> GGUF tensor name."""
    names = {"token_embedding.weight": "token_embd.weight", "ln_f.weight": "output_norm.weight"}
    for i in range(cfg.n_layer):
        names |= {f"blocks.{i}.{ours}.weight": f"blk.{i}.{theirs}.weight" for theirs, ours in _GGUF_LAYER.items()}
    if not cfg.tie_embeddings:
        names["head.weight"] = "output.weight"
    return names


def gguf_tokenizer(meta: dict[str, Any], source: Any) -> BPEText:
    """The byte-level BPE in ``tokenizer.ggml.*`` as a :class:`BPEText` (control tokens become special tokens)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    if meta.get("tokenizer.ggml.model") != "gpt2":
        _refuse(source, f"tokenizer {meta.get('tokenizer.ggml.model')!r} (genlab reads byte-level BPE, 'gpt2')")
    tokens, types = meta["tokenizer.ggml.tokens"], meta.get("tokenizer.ggml.token_type")
    merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    pre = meta.get("tokenizer.ggml.pre", "default")
    if pre == "smollm":  # llama.cpp splits every digit off first, then applies GPT-2's regex
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    elif pre in ("gpt2", "default"):
        tok.pre_tokenizer = byte_level
    else:
        _refuse(source, f"pre-tokenizer {pre!r} (genlab reads 'gpt2' and 'smollm')")
    tok.decoder = decoders.ByteLevel()
    if types is not None:  # 3 = control (<|im_start|>, ...), 4 = user-defined: never split
        tok.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False)
                                for i, t in enumerate(types) if t == 3])
        tok.add_tokens([AddedToken(tokens[i], normalized=False) for i, t in enumerate(types) if t == 4])
    return BPEText(tok)


def from_gguf(path: str | os.PathLike) -> tuple[LMConfig, dict[str, torch.Tensor], BPEText, dict[str, Any]]:
    """Read a Llama-architecture GGUF: (config, genlab float32 state dict, tokenizer, info).

    ``info`` holds ``chat_template``, ``bos_token``/``eos_token`` (strings), the tensor types, and the name.
    """
    from .gguf import GGUFFile

    f = GGUFFile(path)
    cfg = gguf_config(f.metadata, f.tensors, path)
    names = gguf_names(cfg)
    missing = [g for g in names.values() if g not in f.tensors]
    if missing:
        raise GenlabError(f"{path}: weights do not match its metadata ({len(missing)} missing, e.g. {missing[0]})")
    state = {}
    for ours, theirs in names.items():
        w = torch.from_numpy(f.tensor(theirs))
        if theirs.endswith("attn_q.weight"):
            w = unpermute_rope(w, cfg.n_head)
        elif theirs.endswith("attn_k.weight"):
            w = unpermute_rope(w, cfg.n_kv_head)
        state[ours] = w.contiguous()
    tokenizer = gguf_tokenizer(f.metadata, path)
    tokens = f.metadata["tokenizer.ggml.tokens"]
    special = lambda key: tokens[f.metadata[key]] if key in f.metadata else None  # noqa: E731
    info = {"name": f.metadata.get("general.name"), "license": f.metadata.get("general.license"),
            "chat_template": f.metadata.get("tokenizer.chat_template"),
            "bos_token": special("tokenizer.ggml.bos_token_id"), "eos_token": special("tokenizer.ggml.eos_token_id"),
            "tensor_types": sorted({f.type_name(t) for t in names.values()})}
    return cfg, state, tokenizer, info


def gguf_int4_layers(path: str | os.PathLike, cfg: LMConfig) -> tuple[dict[str, Any], dict[str, str]]:
    """Every Q4_1 weight matrix of a Llama GGUF as an :class:`~genlab.nn.int4.Int4Linear` named by the genlab module
    it replaces (``blocks.0.attn.query``, ...), with the rotary rows of queries and keys unpermuted like the float
    weights; and ``{genlab name: ggml type}`` of the matrices that stay float (other types, e.g. SmolLM2's Q8_0
    token embedding, which is also its tied output head: its lookup needs float rows)."""
    from ..nn.int4 import Int4Linear
    from .gguf import GGUFFile

    f = GGUFFile(path)
    layers, kept = {}, {}
    for ours, theirs in gguf_names(cfg).items():
        if len(f.tensors[theirs].shape) != 2:
            continue  # norms
        if ours == "token_embedding.weight" or f.type_name(theirs) != "Q4_1":
            kept[ours] = f.type_name(theirs)
            continue
        codes, d, m = (torch.from_numpy(a) for a in f.q4_1(theirs))  # (out, in), (out, in / 32) twice
        if theirs.endswith(("attn_q.weight", "attn_k.weight")):  # the rows move; the groups along a row do not
            heads = cfg.n_head if theirs.endswith("attn_q.weight") else cfg.n_kv_head
            codes, d, m = (unpermute_rope(t, heads) for t in (codes, d, m))
        layers[ours.removesuffix(".weight")] = Int4Linear.from_q4_1(codes.contiguous(), d.contiguous(),
                                                                    m.contiguous())
    return layers, kept


def gguf_int8_head(path: str | os.PathLike, cfg: LMConfig) -> tuple[Any, str] | None:
    """The output head of a GGUF stored as Q8_0 (SmolLM2's tied token embedding) as an
    :class:`~genlab.nn.int8.Int8Linear` (one scale per row instead of one per 32 weights), with the name of the
    tensor it came from; None for other types (the head then stays float)."""
    from ..nn.int8 import Int8Linear
    from .gguf import GGUFFile

    f = GGUFFile(path)
    name = gguf_names(cfg)["token_embedding.weight" if cfg.tie_embeddings else "head.weight"]
    if f.type_name(name) != "Q8_0":
        return None
    codes, d = (torch.from_numpy(a) for a in f.q8_0(name))
    return Int8Linear.from_q8_0(codes, d), name
