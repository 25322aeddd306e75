"""Image grids and PNG files that carry their provenance.

Every PNG genlab writes goes through :func:`save_png`, which stores where the image came from (model hash, config,
sampler, steps, seed, prompt, ...) in PNG ``tEXt`` chunks: key ``genlab`` holds the provenance as compact JSON
(machine-readable, read back by :func:`read_png_provenance`), key ``parameters`` the same as one human-readable
line (the key other image tools show). The file is written to a temporary name beside the target and renamed, so
a crash never leaves half a PNG.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, PngImagePlugin

from ..errors import GenlabError


def make_grid(images: torch.Tensor | np.ndarray, nrow: int = 8, pad: int = 2, pad_value: int = 255) -> Image.Image:
    """Tile ``images`` uint8 ``(N, C, H, W)`` (C = 1 or 3) into one RGB image, ``nrow`` images per row.

    Like ``torchvision.utils.make_grid``, ``pad`` pixels of ``pad_value`` surround every cell.
    """
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if x.ndim != 4 or x.shape[1] not in (1, 3) or len(x) == 0:
        raise ValueError(f"make_grid wants a non-empty (N, 1|3, H, W) array, got shape {tuple(x.shape)}")
    if x.dtype != np.uint8:
        raise ValueError(f"make_grid wants uint8 images, got {x.dtype}")
    if x.shape[1] == 1:
        x = np.repeat(x, 3, axis=1)  # (N, 3, H, W)
    n, _, h, w = x.shape
    ncol = min(nrow, n)
    nrows = -(-n // ncol)
    grid = np.full((pad + nrows * (h + pad), pad + ncol * (w + pad), 3), pad_value, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, ncol)
        y0, x0 = pad + r * (h + pad), pad + c * (w + pad)
        grid[y0 : y0 + h, x0 : x0 + w] = x[i].transpose(1, 2, 0)  # (H, W, 3)
    return Image.fromarray(grid)


def _parameters_line(provenance: dict[str, Any]) -> str:
    parts = []
    for key, value in provenance.items():
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        parts.append(f"{key}: {text}")
    return ", ".join(parts)


def save_png(img: Image.Image | np.ndarray, path: str | os.PathLike, provenance: dict[str, Any]) -> Path:
    """Write ``img`` (PIL image or uint8 ``(H, W[, 3])`` array) to ``path`` with ``provenance`` in tEXt chunks.

    Written atomically (temp file + ``os.replace``); parent directories are created. An unwritable path raises a
    :class:`GenlabError` with one line.
    """
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    path = Path(path)
    info = PngImagePlugin.PngInfo()
    info.add_text("genlab", json.dumps(provenance, separators=(",", ":"), sort_keys=True, default=str))
    info.add_text("parameters", _parameters_line(provenance))
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(tmp, format="PNG", pnginfo=info)
        os.replace(tmp, path)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise GenlabError(f"cannot write PNG {path}: {e.strerror or e}") from None
    return path


def read_png_provenance(path: str | os.PathLike) -> dict[str, Any]:
    """The provenance dict that :func:`save_png` stored in ``path`` ({} when the PNG has none)."""
    try:
        with Image.open(path) as im:
            im.load()  # tEXt chunks after the image data are only read with the pixels
            text = getattr(im, "text", {}).get("genlab")
    except (OSError, Image.UnidentifiedImageError) as e:
        raise GenlabError(f"cannot read PNG {path}: {getattr(e, 'strerror', None) or e}") from None
    if text is None:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise GenlabError(f"{path}: the genlab provenance chunk is not valid JSON") from None
