"""The ``.tokens`` file: a codec's codes and how to read them back.

A safetensors file with one tensor, ``codes`` ``(n_q, frames)`` (int16: codebooks hold at most 32,768 codes), and a
JSON header in the safetensors metadata (key ``genlab``) that says everything decoding needs and where the codes
came from: the format version, the codec (its name and the hash of its weights), sample rate, frame rate,
codebooks, kbps, the number of samples to keep, and the source file (name, rate, channels, duration).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .. import __version__
from ..errors import GenlabError

FORMAT = "genlab-codec-tokens"
VERSION = 1
_REQUIRED = ("model", "model_hash", "sample_rate", "frame_rate", "hop_length", "n_q", "codebook_size", "n_samples")


def write_tokens(path: str | os.PathLike, codes: torch.Tensor, header: dict) -> Path:
    """Write ``codes`` ``(n_q, frames)`` and ``header`` atomically (a temporary file renamed into place)."""
    from safetensors.torch import save_file

    path = Path(path)
    if header["codebook_size"] > 32768:
        raise GenlabError(f"codebooks of {header['codebook_size']} codes do not fit the int16 token file")
    full = {"format": FORMAT, "version": VERSION, "genlab_version": __version__, **header}
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    save_file({"codes": codes.to(torch.int16).contiguous()}, str(tmp), metadata={"genlab": json.dumps(full)})
    os.replace(tmp, path)
    return path


def read_tokens(path: str | os.PathLike) -> tuple[torch.Tensor, dict]:
    """``(codes (n_q, frames) long, header)``; one line naming the file for anything wrong with it."""
    from safetensors import SafetensorError, safe_open

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise GenlabError(f"{path}: no such token file")
    try:
        with safe_open(path, "pt") as f:
            meta = f.metadata() or {}
            if "codes" not in f.keys():
                raise GenlabError(f"{path}: not a genlab token file (no codes tensor)")
            codes = f.get_tensor("codes")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise GenlabError(f"{path}: not a readable token file ({str(e).splitlines()[0][:100]})") from None
    try:
        header = json.loads(meta["genlab"])
    except (KeyError, json.JSONDecodeError):
        raise GenlabError(f"{path}: not a genlab token file (no genlab header)") from None
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise GenlabError(f"{path}: token format {header.get('format')!r} v{header.get('version')} is not {FORMAT} "
                          f"v{VERSION}")
    missing = [k for k in _REQUIRED if k not in header]
    if missing:
        raise GenlabError(f"{path}: token header lacks {', '.join(missing)}")
    if codes.dtype not in (torch.int16, torch.int32, torch.int64) or codes.ndim != 2:
        raise GenlabError(f"{path}: codes must be a 2-D integer tensor, got {codes.dtype} {tuple(codes.shape)}")
    if codes.shape[0] != header["n_q"]:
        raise GenlabError(f"{path}: header says {header['n_q']} codebooks, the codes have {codes.shape[0]}")
    if not 0 < header["n_samples"] <= codes.shape[1] * header["hop_length"]:
        raise GenlabError(f"{path}: header's n_samples {header['n_samples']} does not fit {codes.shape[1]} frames")
    return codes.long(), header
