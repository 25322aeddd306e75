"""Image grids and image files that carry their provenance.

Every image genlab writes goes through :func:`save_image`, which writes the format its suffix names and stores where
the image came from (model hash, config, sampler, steps, seed, prompt, ...) inside the file:

- ``.png``: PNG ``tEXt`` chunks (:func:`save_png`): key ``genlab`` holds the provenance as compact JSON, key
  ``parameters`` the same as one human-readable line (the key other image tools show), or the text a caller gives
  (text-to-image writes AUTOMATIC1111's layout there: prompt, ``Negative prompt:``, ``Steps: .., CFG scale: ..``);
- ``.jpg`` / ``.jpeg`` (quality 95) and ``.webp`` (lossless): the EXIF ``ImageDescription`` tag (0x010E) holds
  ``genlab:`` followed by the same JSON (ASCII, as EXIF requires), which ``exiftool`` and image viewers show.

:func:`read_image_provenance` reads either back; any other suffix is refused (:func:`check_image_path`, before any
work). Files are written to a temporary name beside the target and renamed, so a crash never leaves half an image.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, PngImagePlugin

from ..errors import GenlabError, check_writable

IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
EXIF_DESCRIPTION = 0x010E
EXIF_PREFIX = "genlab:"


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


def save_png(img: Image.Image | np.ndarray, path: str | os.PathLike, provenance: dict[str, Any],
             parameters: str | None = None) -> Path:
    """Write ``img`` (PIL image or uint8 ``(H, W[, 3])`` array) to ``path`` with ``provenance`` in tEXt chunks
    (``parameters``, if given, is the text of the ``parameters`` chunk instead of the one-line provenance).

    Written atomically (temp file + ``os.replace``); parent directories are created. An unwritable path raises a
    :class:`GenlabError` with one line.
    """
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    path = Path(path)
    info = PngImagePlugin.PngInfo()
    info.add_text("genlab", json.dumps(provenance, separators=(",", ":"), sort_keys=True, default=str))
    info.add_text("parameters", _parameters_line(provenance) if parameters is None else parameters)
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


def check_image_path(path: str | os.PathLike) -> Path:
    """Refuse, before any work, an image path whose suffix names no format genlab writes, or that is not writable."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_FORMATS:
        raise GenlabError(f"cannot write image {path}: unknown suffix {path.suffix!r}, use one of "
                          f"{', '.join(IMAGE_FORMATS)}")
    return check_writable(path)


def save_image(img: Image.Image | np.ndarray, path: str | os.PathLike, provenance: dict[str, Any],
               parameters: str | None = None) -> Path:
    """Write ``img`` in the format that ``path``'s suffix names, with ``provenance`` inside (module docstring);
    ``parameters`` replaces a PNG's ``parameters`` chunk (see :func:`save_png`)."""
    path = check_image_path(path)
    fmt = IMAGE_FORMATS[path.suffix.lower()]
    if fmt == "PNG":
        return save_png(img, path, provenance, parameters)
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    exif = Image.Exif()
    exif[EXIF_DESCRIPTION] = EXIF_PREFIX + json.dumps(provenance, separators=(",", ":"), sort_keys=True, default=str)
    options = {"quality": 95} if fmt == "JPEG" else {"lossless": True}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        img.convert("RGB").save(tmp, format=fmt, exif=exif, **options)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise GenlabError(f"cannot write {fmt} {path}: {e.strerror or e}") from None
    return path


def read_image_provenance(path: str | os.PathLike) -> dict[str, Any]:
    """The provenance dict that :func:`save_image` stored in a PNG, JPEG or WebP file ({} when it has none)."""
    try:
        with Image.open(path) as im:
            if im.format == "PNG":
                return read_png_provenance(path)
            text = im.getexif().get(EXIF_DESCRIPTION)
    except (OSError, Image.UnidentifiedImageError) as e:
        raise GenlabError(f"cannot read image {path}: {getattr(e, 'strerror', None) or e}") from None
    if not isinstance(text, str) or not text.startswith(EXIF_PREFIX):
        return {}
    try:
        return json.loads(text[len(EXIF_PREFIX):])
    except json.JSONDecodeError:
        raise GenlabError(f"{path}: the genlab provenance in EXIF ImageDescription is not valid JSON") from None
