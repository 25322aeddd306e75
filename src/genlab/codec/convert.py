"""Load Hugging Face ``EncodecModel`` weights into genlab's :class:`~genlab.codec.model.Codec`.

``genlab convert --from encodec DIR --out OUT`` reads a Hugging Face EnCodec directory (``config.json`` and
``model.safetensors``, e.g. a copy of ``facebook/encodec_24khz``) and writes a genlab codec checkpoint. The two
models compute the same thing layer for layer; only the names differ. Hugging Face keeps EnCodec's flat
``layers`` list (activations included, so indices skip them); genlab names the stages. The 48 kHz model
(``normalize`` with overlapping chunks) is a different inference procedure and is refused with a line saying so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..checkpoint import save_checkpoint, weights_hash
from ..config import to_dict
from ..errors import GenlabError
from .model import Codec, CodecConfig


def config_from_hf(hf: dict) -> CodecConfig:
    """A :class:`CodecConfig` from an ``EncodecConfig`` (its ``to_dict()`` or ``config.json``)."""
    if hf.get("normalize") or hf.get("chunk_length_s") is not None:
        raise GenlabError("this EnCodec normalises overlapping chunks (the 48 kHz model); only the 24 kHz-style "
                          "models (normalize=false, no chunking) load")
    hidden = hf.get("hidden_size", 128)
    if hf.get("codebook_dim") not in (None, hidden):
        raise GenlabError(f"EnCodec codebook_dim {hf['codebook_dim']} differs from hidden_size {hidden}")
    ratios = tuple(hf.get("upsampling_ratios", (8, 5, 4, 2)))
    sr, codebook = hf.get("sampling_rate", 24000), hf.get("codebook_size", 1024)
    frame_rate = -(-sr // int(torch.tensor(ratios).prod()))  # ceil, as EncodecConfig.frame_rate
    bits = (codebook - 1).bit_length()  # EncodecConfig.codebook_nbits
    n_q = int(1000 * max(hf.get("target_bandwidths", (1.5, 3.0, 6.0, 12.0, 24.0))) // (frame_rate * bits))
    if n_q < 1:
        raise GenlabError("this EnCodec config has no codebooks at its highest bandwidth")
    return CodecConfig(
        sample_rate=sr, channels=hf.get("audio_channels", 1), n_filters=hf.get("num_filters", 32), ratios=ratios,
        dimension=hidden, n_residual_layers=hf.get("num_residual_layers", 1), kernel_size=hf.get("kernel_size", 7),
        last_kernel_size=hf.get("last_kernel_size", 7), residual_kernel_size=hf.get("residual_kernel_size", 3),
        dilation_base=hf.get("dilation_growth_rate", 2), compress=hf.get("compress", 2),
        lstm_layers=hf.get("num_lstm_layers", 2), causal=hf.get("use_causal_conv", True),
        pad_mode=hf.get("pad_mode", "reflect"), trim_right_ratio=float(hf.get("trim_right_ratio", 1.0)),
        norm=hf.get("norm_type", "weight_norm"), true_skip=not hf.get("use_conv_shortcut", True),
        codebook_size=codebook, n_q=n_q, quantizer_dropout=False,
    )


def _prefix_map(cfg: CodecConfig) -> list[tuple[str, str]]:
    """(Hugging Face prefix, genlab prefix) pairs, in the order of EnCodec's flat layer lists."""
    pairs = []

    def unit(hf: str, ours: str) -> None:
        pairs.extend([(f"{hf}.block.1.", f"{ours}.conv1."), (f"{hf}.block.3.", f"{ours}.conv2."),
                      (f"{hf}.shortcut.", f"{ours}.shortcut.")])

    n_res, n_blocks = cfg.n_residual_layers, len(cfg.ratios)
    pairs.append(("encoder.layers.0.", "encoder.stem."))
    for b in range(n_blocks):  # residual units, ELU, strided conv
        base = 1 + b * (n_res + 2)
        for j in range(n_res):
            unit(f"encoder.layers.{base + j}", f"encoder.blocks.{b}.residuals.{j}")
        pairs.append((f"encoder.layers.{base + n_res + 1}.", f"encoder.blocks.{b}.down."))
    last = 1 + n_blocks * (n_res + 2)
    pairs += [(f"encoder.layers.{last}.lstm.", "encoder.lstm.lstm."), (f"encoder.layers.{last + 2}.", "encoder.head.")]
    pairs += [("decoder.layers.0.", "decoder.stem."), ("decoder.layers.1.lstm.", "decoder.lstm.lstm.")]
    for b in range(n_blocks):  # ELU, transposed conv, residual units
        base = 2 + b * (n_res + 2)
        pairs.append((f"decoder.layers.{base + 1}.", f"decoder.blocks.{b}.up."))
        for j in range(n_res):
            unit(f"decoder.layers.{base + 2 + j}", f"decoder.blocks.{b}.residuals.{j}")
    pairs.append((f"decoder.layers.{2 + n_blocks * (n_res + 2) + 1}.", "decoder.head."))
    pairs += [(f"quantizer.layers.{i}.codebook.", f"quantizer.layers.{i}.") for i in range(cfg.n_q)]
    return pairs


def state_from_hf(hf_state: dict[str, torch.Tensor], cfg: CodecConfig) -> dict[str, torch.Tensor]:
    """Rename an ``EncodecModel`` state dict to genlab's names; every tensor must find its place."""
    pairs = _prefix_map(cfg)
    out = {}
    for key, value in hf_state.items():
        match = next(((hf, ours) for hf, ours in pairs if key.startswith(hf)), None)
        if match is None:
            raise GenlabError(f"EnCodec weight {key!r} has no place in a genlab codec of this config")
        out[match[1] + key[len(match[0]):]] = value
    return out


def codec_from_hf(hf_config: dict, hf_state: dict[str, torch.Tensor]) -> Codec:
    """A genlab :class:`Codec` holding an EnCodec's weights (strict: no tensor missing, none left over)."""
    cfg = config_from_hf(hf_config)
    codec = Codec(cfg)
    state = state_from_hf(hf_state, cfg)
    missing, unexpected = codec.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise GenlabError(f"EnCodec weights do not fit: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return codec.eval()


def convert_dir(src: str | os.PathLike, out: str | os.PathLike) -> Path:
    """``config.json`` + ``model.safetensors`` of a Hugging Face EnCodec -> a genlab codec checkpoint."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    src = Path(src)
    try:
        hf_config = json.loads((src / "config.json").read_text())
        hf_state = load_file(str(src / "model.safetensors"))
    except FileNotFoundError as e:
        raise GenlabError(f"{src}: not a Hugging Face EnCodec directory ({Path(e.filename).name} is missing)") from None
    except (json.JSONDecodeError, SafetensorError, OSError) as e:
        raise GenlabError(f"{src}: unreadable EnCodec files ({str(e).splitlines()[0][:100]})") from None
    if hf_config.get("model_type") != "encodec":
        raise GenlabError(f"{src}: config.json is a {hf_config.get('model_type')!r} model, not encodec")
    codec = codec_from_hf(hf_config, hf_state)
    state = {f"codec.{k}": v for k, v in codec.state_dict().items()}
    return save_checkpoint(out, kind="codec", config={"codec": to_dict(codec.cfg)}, model=state,
                           meta={"converted_from": str(src), "source_format": "hf-encodec",
                                 "weights_hash": weights_hash(codec.state_dict())})
