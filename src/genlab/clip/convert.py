"""Published CLIP weights -> genlab CLIP checkpoints: HF ``CLIPModel`` directories and open_clip / OpenAI state dicts.

Both formats hold the same network; only names and a few layouts differ:

==========================================  ==========================================  ===============================
genlab                                      HF ``CLIPModel``                            open_clip / OpenAI
==========================================  ==========================================  ===============================
visual.patch_embed.weight                   vision_model.embeddings.patch_embedding     visual.conv1.weight
visual.class_embedding                      vision_model.embeddings.class_embedding     visual.class_embedding
visual.positional_embedding                 ...embeddings.position_embedding.weight     visual.positional_embedding
visual.ln_pre / visual.ln_post              vision_model.pre_layrnorm / post_layernorm  visual.ln_pre / visual.ln_post
visual.proj.weight (E, W)                   visual_projection.weight (E, W)             visual.proj (W, E): transposed
{tower}.blocks.N.attn.query/key/value       ...layers.N.self_attn.q_proj/k_proj/v_proj  ...resblocks.N.attn.in_proj_*
                                                                                        (q, k, v stacked on rows)
{tower}.blocks.N.attn.out                   ...self_attn.out_proj                       ...attn.out_proj
{tower}.blocks.N.attn_ln / mlp_ln           ...layer_norm1 / layer_norm2                ...ln_1 / ln_2
{tower}.blocks.N.mlp.0 / mlp.2              ...mlp.fc1 / mlp.fc2                        ...mlp.c_fc / mlp.c_proj
text.token_embedding.weight                 text_model.embeddings.token_embedding       token_embedding.weight
text.positional_embedding                   ...embeddings.position_embedding.weight     positional_embedding
text.ln_final                               text_model.final_layer_norm                 ln_final
text.proj.weight (E, W)                     text_projection.weight (E, W)               text_projection (W, E)
logit_scale                                 logit_scale                                 logit_scale
==========================================  ==========================================  ===============================

What the weights cannot say is read from a config: HF's ``config.json`` (its defaults fill missing keys, as
``CLIPConfig`` does) and ``preprocessor_config.json``; open_clip's ``open_clip_config.json`` (``model_cfg``,
``preprocess_cfg``) beside the weights, or else OpenAI's rules (heads = width / 64, QuickGELU, argmax pooling), as
open_clip's ``build_model_from_openai_state_dict`` did. A ``tokenizer.json`` beside the weights travels into the
checkpoint. Anything genlab's CLIP cannot express is refused in one line.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import load_tensors, load_weights_strict, save_checkpoint, weights_hash
from ..config import to_dict
from ..errors import GenlabError
from .model import CLIP, OPENAI_MEAN, OPENAI_STD, CLIPConfig, TextConfig, VisionConfig

KIND = "clip"

# HF CLIPTextConfig / CLIPVisionConfig / CLIPConfig defaults (transformers 4.x-5.x), for keys a config.json omits.
_HF_TEXT = dict(vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                num_attention_heads=8, max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                bos_token_id=49406, eos_token_id=49407)
_HF_VISION = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                  num_channels=3, image_size=224, patch_size=32, hidden_act="quick_gelu", layer_norm_eps=1e-5)
_ACTIVATIONS = ("quick_gelu", "gelu")

_BLOCK_HF = {"self_attn.q_proj": "attn.query", "self_attn.k_proj": "attn.key", "self_attn.v_proj": "attn.value",
             "self_attn.out_proj": "attn.out", "layer_norm1": "attn_ln", "layer_norm2": "mlp_ln",
             "mlp.fc1": "mlp.0", "mlp.fc2": "mlp.2"}
_BLOCK_OPEN_CLIP = {"attn.out_proj": "attn.out", "ln_1": "attn_ln", "ln_2": "mlp_ln", "mlp.c_fc": "mlp.0",
                    "mlp.c_proj": "mlp.2"}


# ---------------------------------------------------------------------------------------------------------------
# Reading files


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file, a sharded safetensors index, or a pickled ``.bin``/``.pt`` read with ``weights_only``."""
    if path.name.endswith(".index.json"):
        index = _read_json(path)
        files = sorted(set((index.get("weight_map") or {}).values()))
        if not files:
            raise GenlabError(f"{path}: no weight_map")
        state: dict[str, torch.Tensor] = {}
        for name in files:
            state.update(load_tensors(path.parent / name))
        return state
    if path.suffix == ".safetensors":
        return load_tensors(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and torch errors alike: one line
        raise GenlabError(f"{path}: not a loadable weights file ({str(e).splitlines()[0][:120]})") from None
    for key in ("state_dict", "model"):  # training checkpoints wrap the weights
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise GenlabError(f"{path}: does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise GenlabError(f"cannot read {path}: {e.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GenlabError(f"{path}: not valid JSON ({e})") from None


def _find(directory: Path, names: tuple[str, ...], what: str) -> Path:
    for name in names:
        if (directory / name).is_file():
            return directory / name
    raise GenlabError(f"{directory}: no {what} ({', '.join(names)})")


def _activation(value: Any, source: Path) -> str:
    if value not in _ACTIVATIONS:
        raise GenlabError(f"{source}: activation {value!r} is not supported (supported: {', '.join(_ACTIVATIONS)})")
    return value


def _tokenizer_beside(directory: Path) -> dict | None:
    path = directory / "tokenizer.json"
    return _read_json(path) if path.is_file() else None


def _special_ids(tokenizer: dict | None, text: TextConfig) -> TextConfig:
    """Take the start/end-of-text ids from the tokenizer when it has CLIP's special tokens."""
    if tokenizer is None:
        return text
    ids = {t["content"]: t["id"] for t in tokenizer.get("added_tokens", [])}
    if "<|startoftext|>" in ids and "<|endoftext|>" in ids:
        text.bos_token_id, text.eos_token_id = ids["<|startoftext|>"], ids["<|endoftext|>"]
        text.pad_token_id = text.eos_token_id
    return text


# ---------------------------------------------------------------------------------------------------------------
# HF CLIPModel


def hf_config(cfg: dict, source: Path, preprocessor: dict | None = None) -> CLIPConfig:
    """A genlab :class:`CLIPConfig` from an HF ``CLIPModel`` ``config.json`` dict."""
    if cfg.get("model_type", "clip") != "clip":
        raise GenlabError(f"{source}: model_type {cfg.get('model_type')!r} is not an HF CLIPModel ('clip')")
    t = {**_HF_TEXT, **(cfg.get("text_config") or {})}
    v = {**_HF_VISION, **(cfg.get("vision_config") or {})}
    # HF's rule (CLIPTextTransformer): eos_token_id 2 marks configs from before transformers PR #24773, which pool at
    # the largest token id as OpenAI does; any other id pools at its first occurrence.
    pool = "argmax" if t["eos_token_id"] == 2 else "eos"
    text = TextConfig(vocab_size=t["vocab_size"], context_length=t["max_position_embeddings"], width=t["hidden_size"],
                      layers=t["num_hidden_layers"], heads=t["num_attention_heads"], mlp_hidden=t["intermediate_size"],
                      activation=_activation(t["hidden_act"], source), norm_eps=float(t["layer_norm_eps"]), pool=pool,
                      eos_token_id=49407 if pool == "argmax" else t["eos_token_id"],
                      bos_token_id=t["bos_token_id"], pad_token_id=49407 if pool == "argmax" else t["eos_token_id"])
    pre = preprocessor or {}
    vision = VisionConfig(image_size=_int_size(v["image_size"], source), patch_size=_int_size(v["patch_size"], source),
                          width=v["hidden_size"], layers=v["num_hidden_layers"], heads=v["num_attention_heads"],
                          mlp_hidden=v["intermediate_size"], activation=_activation(v["hidden_act"], source),
                          norm_eps=float(v["layer_norm_eps"]), channels=v["num_channels"],
                          mean=tuple(pre.get("image_mean", OPENAI_MEAN)), std=tuple(pre.get("image_std", OPENAI_STD)))
    return CLIPConfig(embed_dim=cfg.get("projection_dim", 512), vision=vision, text=text,
                      logit_scale_init=float(cfg.get("logit_scale_init_value", 2.6592)))


def _int_size(value: Any, source: Path) -> int:
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            raise GenlabError(f"{source}: non-square size {value} is not supported")
        value = value[0]
    return int(value)


def from_hf_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an HF ``CLIPModel`` state dict to genlab's names (``position_ids`` buffers dropped)."""
    fixed = {"text_model.embeddings.token_embedding.weight": "text.token_embedding.weight",
             "text_model.embeddings.position_embedding.weight": "text.positional_embedding",
             "text_model.final_layer_norm.weight": "text.ln_final.weight",
             "text_model.final_layer_norm.bias": "text.ln_final.bias",
             "text_projection.weight": "text.proj.weight",
             "vision_model.embeddings.class_embedding": "visual.class_embedding",
             "vision_model.embeddings.patch_embedding.weight": "visual.patch_embed.weight",
             "vision_model.embeddings.position_embedding.weight": "visual.positional_embedding",
             "vision_model.pre_layrnorm.weight": "visual.ln_pre.weight",
             "vision_model.pre_layrnorm.bias": "visual.ln_pre.bias",
             "vision_model.post_layernorm.weight": "visual.ln_post.weight",
             "vision_model.post_layernorm.bias": "visual.ln_post.bias",
             "visual_projection.weight": "visual.proj.weight",
             "logit_scale": "logit_scale"}
    block = re.compile(r"(text|vision)_model\.encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$")
    out = {}
    for key, value in state.items():
        if key.endswith("position_ids"):
            continue
        if key in fixed:
            out[fixed[key]] = value
        elif (m := block.match(key)) and m.group(3) in _BLOCK_HF:
            tower = "text" if m.group(1) == "text" else "visual"
            out[f"{tower}.blocks.{m.group(2)}.{_BLOCK_HF[m.group(3)]}.{m.group(4)}"] = value
        else:
            out[key] = value  # unknown: load_weights_strict names it
    return out


def load_hf(path: str | os.PathLike) -> tuple[CLIPConfig, dict[str, torch.Tensor], dict | None]:
    """(config, genlab state dict, tokenizer JSON or None) from an HF ``CLIPModel`` directory."""
    directory = Path(path)
    if not directory.is_dir():
        raise GenlabError(f"{directory}: not a directory (an HF CLIPModel directory holds config.json and weights)")
    raw = _read_json(_find(directory, ("config.json",), "config.json"))
    pre_path = directory / "preprocessor_config.json"
    tokenizer = _tokenizer_beside(directory)
    cfg = hf_config(raw, directory, _read_json(pre_path) if pre_path.is_file() else None)
    cfg.text = _special_ids(tokenizer, cfg.text)
    weights = _find(directory, ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"), "weights")
    return cfg, from_hf_state(read_state_dict(weights)), tokenizer


# ---------------------------------------------------------------------------------------------------------------
# open_clip / OpenAI


def open_clip_config(state: dict[str, torch.Tensor], model_cfg: dict | None, preprocess: dict | None,
                     source: Path) -> CLIPConfig:
    """Shapes from the weights; heads, activation and pooling from open_clip's ``model_cfg`` or OpenAI's rules."""
    mc = model_cfg or {}
    vc, tc = mc.get("vision_cfg") or {}, mc.get("text_cfg") or {}
    for key in ("timm_model_name", "hf_model_name"):
        if vc.get(key) or tc.get(key):
            raise GenlabError(f"{source}: a {key} tower is not a CLIP transformer genlab can load")
    if "visual.proj" not in state or "visual.conv1.weight" not in state:
        raise GenlabError(f"{source}: not a ViT CLIP state dict (no visual.conv1.weight / visual.proj)")
    if "logit_bias" in state:
        raise GenlabError(f"{source}: has a logit_bias (SigLIP); genlab's CLIP has none")
    if tc.get("pool_type", "argmax") not in ("argmax", "eos"):
        raise GenlabError(f"{source}: text pool_type {tc['pool_type']!r} is not supported (argmax, eos)")
    conv = state["visual.conv1.weight"]  # (width, C, P, P)
    v_width, patch = conv.shape[0], conv.shape[-1]
    v_layers = len({k.split(".")[3] for k in state if k.startswith("visual.transformer.resblocks.")})
    grid = round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    t_width = state["ln_final.weight"].shape[0]
    t_layers = len({k.split(".")[2] for k in state if k.startswith("transformer.resblocks.")})
    activation = "quick_gelu" if mc.get("quick_gelu", model_cfg is None) else "gelu"  # OpenAI's own: QuickGELU
    vision = VisionConfig(image_size=grid * patch, patch_size=patch, width=v_width, layers=v_layers,
                          heads=v_width // vc.get("head_width", 64), mlp_hidden=int(v_width * vc.get("mlp_ratio", 4.0)),
                          activation=activation, channels=conv.shape[1],
                          mean=tuple((preprocess or {}).get("mean", OPENAI_MEAN)),
                          std=tuple((preprocess or {}).get("std", OPENAI_STD)),
                          resize_mode="pad" if (preprocess or {}).get("resize_mode") == "longest" else "crop")
    pool = tc.get("pool_type", "argmax")
    text = TextConfig(vocab_size=state["token_embedding.weight"].shape[0],
                      context_length=state["positional_embedding"].shape[0], width=t_width, layers=t_layers,
                      heads=tc.get("heads", t_width // 64), mlp_hidden=int(t_width * tc.get("mlp_ratio", 4.0)),
                      activation=activation, pool=pool, eos_token_id=tc.get("eos_id") or 49407,
                      pad_token_id=tc.get("pad_id", 0))
    if pool == "eos" and tc.get("eos_id") is None:
        raise GenlabError(f"{source}: text pool_type 'eos' needs text_cfg.eos_id")
    return CLIPConfig(embed_dim=state["text_projection"].shape[1], vision=vision, text=text,
                      logit_scale_init=float(state["logit_scale"].reshape(()).item()))


def from_open_clip_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename (and split or transpose where the layout differs) an open_clip / OpenAI state dict."""
    fixed = {"visual.conv1.weight": "visual.patch_embed.weight",
             "token_embedding.weight": "text.token_embedding.weight",
             "positional_embedding": "text.positional_embedding", "ln_final.weight": "text.ln_final.weight",
             "ln_final.bias": "text.ln_final.bias"}
    for name in ("class_embedding", "positional_embedding", "ln_pre.weight", "ln_pre.bias", "ln_post.weight",
                 "ln_post.bias"):
        fixed[f"visual.{name}"] = f"visual.{name}"
    block = re.compile(r"(visual\.)?transformer\.resblocks\.(\d+)\.(.+)\.(weight|bias|in_proj_weight|in_proj_bias)$")
    out = {}
    for key, value in state.items():
        if key in ("input_resolution", "context_length", "vocab_size", "attn_mask"):  # OpenAI's extras
            continue
        if key in fixed:
            out[fixed[key]] = value
        elif key == "visual.proj":
            out["visual.proj.weight"] = value.t().contiguous()  # (W, E) -> (E, W)
        elif key == "text_projection":
            out["text.proj.weight"] = value.t().contiguous()
        elif key == "logit_scale":
            out["logit_scale"] = value.reshape(())  # open_clip may keep it as (1,)
        elif m := block.match(key):
            prefix = f"{'visual' if m.group(1) else 'text'}.blocks.{m.group(2)}"
            if m.group(4).startswith("in_proj"):
                kind = "weight" if m.group(4) == "in_proj_weight" else "bias"
                for name, part in zip(("query", "key", "value"), value.chunk(3, dim=0)):  # rows: q, k, v
                    out[f"{prefix}.attn.{name}.{kind}"] = part.contiguous()
            elif m.group(3) in _BLOCK_OPEN_CLIP:
                out[f"{prefix}.{_BLOCK_OPEN_CLIP[m.group(3)]}.{m.group(4)}"] = value
            else:
                out[key] = value
        else:
            out[key] = value  # unknown: load_weights_strict names it
    return out


def load_open_clip(path: str | os.PathLike) -> tuple[CLIPConfig, dict[str, torch.Tensor], dict | None]:
    """(config, genlab state dict, tokenizer JSON or None) from an open_clip / OpenAI weights file or directory."""
    path = Path(path)
    if path.is_dir():
        weights = _find(path, ("open_clip_model.safetensors", "open_clip_pytorch_model.bin", "model.safetensors",
                               "pytorch_model.bin"), "open_clip weights")
        directory = path
    elif path.is_file():
        weights, directory = path, path.parent
    else:
        raise GenlabError(f"{path}: no such file or directory")
    state = read_state_dict(weights)
    config_path = directory / "open_clip_config.json"
    full = _read_json(config_path) if config_path.is_file() else {}
    model_cfg = full.get("model_cfg", full) if full else None
    tokenizer = _tokenizer_beside(directory)
    cfg = open_clip_config(state, model_cfg, full.get("preprocess_cfg"), weights)
    if cfg.text.pool == "argmax":
        cfg.text = _special_ids(tokenizer, cfg.text)
    return cfg, from_open_clip_state(state), tokenizer


# ---------------------------------------------------------------------------------------------------------------


def build(cfg: CLIPConfig, state: dict[str, torch.Tensor], source: str | os.PathLike) -> CLIP:
    """The genlab model with ``state`` loaded strictly (a name or shape that does not fit is one error line)."""
    heads = (cfg.vision.width, cfg.vision.heads), (cfg.text.width, cfg.text.heads)
    if any(h < 1 or w % h for w, h in heads):
        raise GenlabError(f"{source}: widths {cfg.vision.width}/{cfg.text.width} do not split into "
                          f"{cfg.vision.heads}/{cfg.text.heads} heads")
    model = CLIP(cfg)
    load_weights_strict(model, state, source)
    return model.eval()


def write_checkpoint(cfg: CLIPConfig, state: dict[str, torch.Tensor], tokenizer: dict | None, out: str | os.PathLike,
                     source: str, fmt: str) -> Path:
    model = build(cfg, state, source)  # refuse before writing anything
    weights = {k: v.float() for k, v in model.state_dict().items()}
    meta = {"converted_from": str(Path(source).resolve()), "format": fmt, "source_weights_hash": weights_hash(state)}
    return save_checkpoint(out, kind=KIND, config={"model": to_dict(cfg), "tokenizer": tokenizer}, model=weights,
                           meta=meta)


def convert_hf(src: str, out: str, args=None) -> None:
    cfg, state, tokenizer = load_hf(src)
    path = write_checkpoint(cfg, state, tokenizer, out, src, "hf-clip")
    print(f"wrote genlab CLIP checkpoint {path}" + ("" if tokenizer else " (no tokenizer.json: image side only)"))


def convert_open_clip(src: str, out: str, args=None) -> None:
    cfg, state, tokenizer = load_open_clip(src)
    path = write_checkpoint(cfg, state, tokenizer, out, src, "open_clip")
    print(f"wrote genlab CLIP checkpoint {path} ({cfg.vision.heads}/{cfg.text.heads} heads, {cfg.text.activation})"
          + ("" if tokenizer else " (no tokenizer.json: image side only)"))


# ---------------------------------------------------------------------------------------------------------------
# HF BertModel -> the borrowed text tower (clip/minilm.py)

_BERT_FIXED = {"embeddings.word_embeddings.weight": "embeddings.token.weight",
               "embeddings.position_embeddings.weight": "embeddings.position.weight",
               "embeddings.token_type_embeddings.weight": "embeddings.token_type.weight",
               "embeddings.LayerNorm.weight": "embeddings.ln.weight",
               "embeddings.LayerNorm.bias": "embeddings.ln.bias"}
_BLOCK_BERT = {"attention.self.query": "attn.query", "attention.self.key": "attn.key",
               "attention.self.value": "attn.value", "attention.output.dense": "attn.out",
               "attention.output.LayerNorm": "attn_ln", "intermediate.dense": "mlp.0", "output.dense": "mlp.2",
               "output.LayerNorm": "mlp_ln"}


def from_hf_bert_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an HF ``BertModel`` state dict (a sentence-transformers model's ``model.safetensors``) to
    :class:`~genlab.clip.minilm.MiniLM`'s names. The pooler (a tanh layer over [CLS] that mean pooling never reads)
    and the ``position_ids`` buffer are dropped; a ``bert.`` prefix is accepted."""
    block = re.compile(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$")
    out = {}
    for key, value in state.items():
        key = key.removeprefix("bert.")
        if key.startswith("pooler.") or key.endswith("position_ids"):
            continue
        if key in _BERT_FIXED:
            out[_BERT_FIXED[key]] = value
        elif (m := block.match(key)) and m.group(2) in _BLOCK_BERT:
            out[f"blocks.{m.group(1)}.{_BLOCK_BERT[m.group(2)]}.{m.group(3)}"] = value
        else:
            out[key] = value  # unknown: load_weights_strict names it
    return out
