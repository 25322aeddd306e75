"""Published Whisper weights -> genlab's :class:`~genlab.asr.model.Whisper`, and genlab's checkpoint format.

Three sources, each mapped name by name onto genlab's parameter names (which follow openai-whisper's):
CTranslate2 directories (faster-whisper; read by :mod:`genlab.interop.ct2`), openai-whisper ``.pt`` files
(``torch.load(weights_only=True)``: tensors and plain dicts only) and Hugging Face
``WhisperForConditionalGeneration`` directories (safetensors). Every loader returns a :class:`WhisperWeights`;
:func:`build_model` checks its shapes against the config with ``load_weights_strict``.

A genlab Whisper checkpoint is kind ``"whisper"``: ``config.json`` holds the dimensions and the tokenizer facts
(``multilingual``, ``alignment_heads``), and the directory also holds ``tokenizer.json``.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..checkpoint import load_checkpoint, load_tensors, load_weights_strict, save_checkpoint
from ..config import from_dict
from ..errors import GenlabError

KIND = "whisper"
TOKENIZER_FILE = "tokenizer.json"


@dataclass
class WhisperWeights:
    config: object  # WhisperConfig
    state: dict[str, torch.Tensor]
    tokenizer_path: str | None = None
    alignment_heads: list[tuple[int, int]] | None = None
    source: str = ""
    extra: dict = field(default_factory=dict)


def _cfg(**dims):
    from ..asr.model import WhisperConfig

    return WhisperConfig(**{k: int(v) for k, v in dims.items()})


def _check_positions(name: str, stored: torch.Tensor, source: str) -> None:
    """The encoder's positions are fixed sinusoids in genlab; refuse weights that were trained otherwise."""
    from ..asr.model import sinusoids

    expected = sinusoids(*stored.shape)
    if not torch.allclose(stored.float(), expected, atol=2e-3):
        raise GenlabError(f"{source}: {name} are not Whisper's sinusoidal positions; cannot load")


# ---------------------------------------------------------------------------------------------------------------
# CTranslate2 (faster-whisper)


def _ct2_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if (path / "model.bin").exists():
        return [path / "model.bin"]
    parts = sorted(path.glob("model.bin.part*"))
    if parts:
        return parts
    raise GenlabError(f"{path}: no model.bin (or model.bin.part*) in this directory")


def from_ct2(
    files: list[Path] | Path, config_json: Path | None = None, tokenizer: Path | None = None
) -> WhisperWeights:
    """Map a CTranslate2 ``WhisperSpec`` onto genlab's names (fused q/k/v and k/v projections are split)."""
    from .ct2 import dequantize, read_ct2

    files = _ct2_files(Path(files)) if not isinstance(files, list) else files
    source = str(files[0])
    ct2 = read_ct2(files)
    if ct2.spec != "WhisperSpec":
        raise GenlabError(f"{source}: holds a CTranslate2 {ct2.spec}, not a Whisper model")
    v = {k: t for k, t in dequantize(ct2).items() if t.is_floating_point()}
    n_enc = sum(1 for k in v if k.startswith("encoder/layer_") and k.endswith("ffn/linear_0/weight"))
    n_dec = sum(1 for k in v if k.startswith("decoder/layer_") and k.endswith("ffn/linear_0/weight"))
    d_audio = v["encoder/conv1/weight"].shape[0]
    d_text = v["decoder/embeddings/weight"].shape[1]
    cfg = _cfg(
        n_mels=v["encoder/conv1/weight"].shape[1], n_audio_ctx=v["encoder/position_encodings/encodings"].shape[0],
        n_audio_state=d_audio, n_audio_head=ct2.variables["encoder/num_heads"].item(), n_audio_layer=n_enc,
        n_vocab=v["decoder/embeddings/weight"].shape[0], n_text_ctx=v["decoder/position_encodings/encodings"].shape[0],
        n_text_state=d_text, n_text_head=ct2.variables["decoder/num_heads"].item(), n_text_layer=n_dec,
    )
    _check_positions("encoder/position_encodings", v["encoder/position_encodings/encodings"], source)
    s: dict[str, torch.Tensor] = {}

    def ln(dst, src):
        s[dst + ".weight"], s[dst + ".bias"] = v[src + "/gamma"], v[src + "/beta"]

    def lin(dst, src, bias=True):
        s[dst + ".weight"] = v[src + "/weight"]
        if bias:
            s[dst + ".bias"] = v[src + "/bias"]

    def split(dst_names, src, d):
        w, b = v[src + "/weight"], v[src + "/bias"]
        for i, name in enumerate(dst_names):
            s[name + ".weight"] = w[i * d : (i + 1) * d]
            if not name.endswith("key"):  # the key projection has no bias (CT2 stores zeros)
                s[name + ".bias"] = b[i * d : (i + 1) * d]

    lin("encoder.conv1", "encoder/conv1")
    lin("encoder.conv2", "encoder/conv2")
    for i in range(n_enc):
        p, q = f"encoder.blocks.{i}", f"encoder/layer_{i}"
        ln(f"{p}.attn_ln", f"{q}/self_attention/layer_norm")
        split([f"{p}.attn.query", f"{p}.attn.key", f"{p}.attn.value"], f"{q}/self_attention/linear_0", d_audio)
        lin(f"{p}.attn.out", f"{q}/self_attention/linear_1")
        ln(f"{p}.mlp_ln", f"{q}/ffn/layer_norm")
        lin(f"{p}.mlp.0", f"{q}/ffn/linear_0")
        lin(f"{p}.mlp.2", f"{q}/ffn/linear_1")
    ln("encoder.ln_post", "encoder/layer_norm")
    s["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    s["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    for i in range(n_dec):
        p, q = f"decoder.blocks.{i}", f"decoder/layer_{i}"
        ln(f"{p}.attn_ln", f"{q}/self_attention/layer_norm")
        split([f"{p}.attn.query", f"{p}.attn.key", f"{p}.attn.value"], f"{q}/self_attention/linear_0", d_text)
        lin(f"{p}.attn.out", f"{q}/self_attention/linear_1")
        ln(f"{p}.cross_attn_ln", f"{q}/attention/layer_norm")
        lin(f"{p}.cross_attn.query", f"{q}/attention/linear_0")
        split([f"{p}.cross_attn.key", f"{p}.cross_attn.value"], f"{q}/attention/linear_1", d_text)
        lin(f"{p}.cross_attn.out", f"{q}/attention/linear_2")
        ln(f"{p}.mlp_ln", f"{q}/ffn/layer_norm")
        lin(f"{p}.mlp.0", f"{q}/ffn/linear_0")
        lin(f"{p}.mlp.2", f"{q}/ffn/linear_1")
    ln("decoder.ln", "decoder/layer_norm")

    folder = files[0].parent
    config_json = config_json or folder / "config.json"
    heads = None
    if config_json.exists():
        heads = [tuple(h) for h in json.loads(config_json.read_text()).get("alignment_heads") or []] or None
    tokenizer = tokenizer or (folder / TOKENIZER_FILE if (folder / TOKENIZER_FILE).exists() else None)
    return WhisperWeights(cfg, s, str(tokenizer) if tokenizer else None, heads, source)


# ---------------------------------------------------------------------------------------------------------------
# openai-whisper .pt


def from_openai(path: Path) -> WhisperWeights:
    source = str(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a file that is not a checkpoint
        reason = str(e).splitlines()[0][:100] if str(e) else type(e).__name__
        raise GenlabError(f"{path}: not a loadable openai-whisper checkpoint ({reason})") from None
    if not isinstance(ckpt, dict) or "dims" not in ckpt or "model_state_dict" not in ckpt:
        raise GenlabError(f"{path}: not an openai-whisper checkpoint (needs 'dims' and 'model_state_dict')")
    cfg = _cfg(**ckpt["dims"])
    state = dict(ckpt["model_state_dict"])
    if "encoder.positional_embedding" in state:
        _check_positions("encoder.positional_embedding", state.pop("encoder.positional_embedding"), source)
    heads = None
    if "alignment_heads" in ckpt:  # openai keeps them outside the file; some exports add them
        mask = ckpt["alignment_heads"]
        mask = mask.to_dense() if mask.is_sparse else mask
        heads = [tuple(x) for x in mask.nonzero().tolist()]
    tok = path.parent / TOKENIZER_FILE
    return WhisperWeights(cfg, state, str(tok) if tok.exists() else None, heads, source)


def to_openai(weights: WhisperWeights) -> dict:
    """The inverse, as openai-whisper's ``{"dims", "model_state_dict"}`` (for round trips and export)."""
    from ..asr.model import sinusoids

    state = dict(weights.state)
    cfg = weights.config
    state["encoder.positional_embedding"] = sinusoids(cfg.n_audio_ctx, cfg.n_audio_state)
    return {"dims": asdict(cfg), "model_state_dict": state}


# ---------------------------------------------------------------------------------------------------------------
# Hugging Face transformers


_HF_BLOCK = {
    "self_attn.q_proj": "attn.query", "self_attn.k_proj": "attn.key", "self_attn.v_proj": "attn.value",
    "self_attn.out_proj": "attn.out", "self_attn_layer_norm": "attn_ln",
    "encoder_attn.q_proj": "cross_attn.query", "encoder_attn.k_proj": "cross_attn.key",
    "encoder_attn.v_proj": "cross_attn.value", "encoder_attn.out_proj": "cross_attn.out",
    "encoder_attn_layer_norm": "cross_attn_ln", "fc1": "mlp.0", "fc2": "mlp.2", "final_layer_norm": "mlp_ln",
}


def hf_to_genlab_name(name: str) -> str | None:
    """``model.encoder.layers.3.fc1.weight`` -> ``encoder.blocks.3.mlp.0.weight`` (None for dropped names)."""
    name = name.removeprefix("model.")
    if name in ("proj_out.weight", "encoder.embed_positions.weight"):
        return None  # tied to the token embedding / fixed sinusoids
    fixed = {
        "encoder.layer_norm": "encoder.ln_post", "decoder.layer_norm": "decoder.ln",
        "decoder.embed_tokens": "decoder.token_embedding", "encoder.conv1": "encoder.conv1",
        "encoder.conv2": "encoder.conv2",
    }
    if name == "decoder.embed_positions.weight":
        return "decoder.positional_embedding"
    stem, _, leaf = name.rpartition(".")
    if stem in fixed:
        return f"{fixed[stem]}.{leaf}"
    part, _, rest = name.partition(".layers.")
    idx, _, inner = rest.partition(".")
    inner_stem, _, leaf = inner.rpartition(".")
    if part in ("encoder", "decoder") and inner_stem in _HF_BLOCK:
        return f"{part}.blocks.{idx}.{_HF_BLOCK[inner_stem]}.{leaf}"
    raise GenlabError(f"unexpected Hugging Face Whisper weight {name!r}")


def from_hf(folder: Path) -> WhisperWeights:
    source = str(folder)
    cfg_path = folder / "config.json"
    if not cfg_path.exists():
        raise GenlabError(f"{folder}: no config.json; not a Hugging Face model directory")
    hf = json.loads(cfg_path.read_text())
    if hf.get("model_type") != "whisper":
        raise GenlabError(f"{cfg_path}: model_type is {hf.get('model_type')!r}, not 'whisper'")
    cfg = _cfg(
        n_mels=hf["num_mel_bins"], n_audio_ctx=hf["max_source_positions"], n_audio_state=hf["d_model"],
        n_audio_head=hf["encoder_attention_heads"], n_audio_layer=hf["encoder_layers"], n_vocab=hf["vocab_size"],
        n_text_ctx=hf["max_target_positions"], n_text_state=hf["d_model"],
        n_text_head=hf["decoder_attention_heads"], n_text_layer=hf["decoder_layers"],
    )
    files = sorted(folder.glob("model*.safetensors"))
    if files:
        raw = {}
        for f in files:
            raw.update(load_tensors(f))
    elif (folder / "pytorch_model.bin").exists():
        raw = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise GenlabError(f"{folder}: no model.safetensors or pytorch_model.bin")
    state = {}
    for name, t in raw.items():
        if name == "model.encoder.embed_positions.weight":
            _check_positions(name, t, source)
        new = hf_to_genlab_name(name)
        if new is not None:
            state[new] = t
    heads = None
    gen = folder / "generation_config.json"
    if gen.exists():
        heads = [tuple(h) for h in json.loads(gen.read_text()).get("alignment_heads") or []] or None
    tok = folder / TOKENIZER_FILE
    return WhisperWeights(cfg, state, str(tok) if tok.exists() else None, heads, source)


# ---------------------------------------------------------------------------------------------------------------
# One entry point, building the model, and genlab's own checkpoint


def read_weights(source: str, path: str | os.PathLike) -> WhisperWeights:
    path = Path(path)
    if not path.exists():
        raise GenlabError(f"{path}: no such file or directory")
    if source == "ct2":
        return from_ct2(path)
    if source == "openai-whisper":
        if path.is_dir():
            raise GenlabError(f"{path}: is a directory; give the openai-whisper .pt file")
        return from_openai(path)
    if source == "hf":
        if not path.is_dir():
            raise GenlabError(f"{path}: give the Hugging Face model directory")
        return from_hf(path)
    raise GenlabError(f"unknown weight format {source!r}: choose ct2, openai-whisper or hf")


def detect_format(path: Path) -> str:
    """Guess the format of ``path``: genlab checkpoint, CT2 directory/file, openai .pt or HF directory."""
    if path.is_dir():
        if (path / "model.safetensors").exists() and (path / "meta.json").exists():
            return "genlab"
        if (path / "model.bin").exists() or list(path.glob("model.bin.part*")):
            return "ct2"
        if (path / "config.json").exists():
            return "genlab" if '"kind"' in (path / "config.json").read_text()[:200] else "hf"
    elif path.suffix == ".pt":
        return "openai-whisper"
    elif path.name.startswith("model.bin"):
        return "ct2"
    raise GenlabError(f"{path}: not a Whisper model I know (genlab checkpoint, CTranslate2, openai-whisper .pt, HF)")


def build_model(weights: WhisperWeights, dtype: torch.dtype = torch.float32):
    from ..asr.model import Whisper

    model = Whisper(weights.config)
    load_weights_strict(model, weights.state, weights.source)
    if weights.alignment_heads:
        model.set_alignment_heads(weights.alignment_heads)
    return model.to(dtype).eval()


def default_tokenizer(n_vocab: int) -> str | None:
    """The tokenizer.json of an installed weight package that fits ``n_vocab`` (same BPE across sizes)."""
    from ..asr.api import package_dir

    name = {51865: "base", 51864: "tiny.en"}.get(n_vocab)
    if name is None:
        return None
    folder = package_dir(name, required=False)
    return str(folder / TOKENIZER_FILE) if folder and (folder / TOKENIZER_FILE).exists() else None


def save_whisper(out: str | os.PathLike, weights: WhisperWeights) -> Path:
    tok = weights.tokenizer_path or default_tokenizer(weights.config.n_vocab)
    if tok is None:
        raise GenlabError(f"{weights.source}: no tokenizer.json beside the weights; put Whisper's tokenizer.json there")
    # Check shapes before writing anything.
    build_model(weights)
    config = asdict(weights.config)
    config["multilingual"] = weights.config.n_vocab >= 51865
    config["alignment_heads"] = [list(h) for h in weights.alignment_heads] if weights.alignment_heads else None
    path = save_checkpoint(
        out, kind=KIND, config=config, model={k: v.contiguous() for k, v in weights.state.items()},
        meta={"converted_from": weights.source},
    )
    shutil.copyfile(tok, path / TOKENIZER_FILE)
    return path


def load_whisper(path: str | os.PathLike) -> WhisperWeights:
    from ..asr.model import WhisperConfig

    ckpt = load_checkpoint(path, kind=KIND)
    extra = dict(ckpt.config)
    dims = {k: extra.pop(k) for k in list(extra) if k in WhisperConfig.__dataclass_fields__}
    cfg = from_dict(WhisperConfig, dims)
    heads = [tuple(h) for h in extra.get("alignment_heads") or []] or None
    tok = ckpt.path / TOKENIZER_FILE
    return WhisperWeights(cfg, ckpt.model, str(tok) if tok.exists() else None, heads, str(ckpt.path), extra)


def convert(source: str, input_path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """``genlab convert --from ct2|openai-whisper|hf IN --out DIR``: write a genlab checkpoint."""
    weights = read_weights(source, input_path)
    return save_whisper(out_dir, weights)
