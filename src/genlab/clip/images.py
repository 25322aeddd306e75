"""Image files into the image tower: open defensively, flatten to 8-bit RGB on white, square, normalise.

:func:`read_image` never raises on a bad file: it returns the image or the one-line reason the file was skipped
(unreadable, empty, not an image, truncated, too many pixels for a decompression bomb). Images that are fine but
unusual are converted and the conversion is reported as a note: CMYK to RGB, 16-bit grey to 8-bit, an animation
to its first frame, transparency composited on white. Callers print one warning line per skipped or converted file
and count them.

Squaring follows the model's ``resize_mode``: ``"crop"`` is OpenAI CLIP's (shortest side to the model's size with
a bicubic filter, then a centre crop); ``"pad"`` fits the whole image inside a white square (no part of a drawing is
cut off; the bundled ``emoji-clip`` was trained on padded drawings).
"""

from __future__ import annotations

import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .model import VisionConfig

MAX_PIXELS = 64_000_000  # refuse larger images before decoding them (a small file can claim a huge canvas)


@dataclass
class ReadResult:
    image: Image.Image | None  # 8-bit RGB, or None when skipped
    skipped: str = ""  # why the file was skipped
    note: str = ""  # what was converted


def read_image(path: str | os.PathLike) -> ReadResult:
    """Open ``path`` as 8-bit RGB on white, or say in a few words why not (never raises on file content)."""
    path = Path(path)
    try:
        if not path.is_file():
            return ReadResult(None, "not a regular file (a broken link?)")
        if path.stat().st_size == 0:
            return ReadResult(None, "empty file")
        with open(path, "rb") as f, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                im = Image.open(f)
            except Image.UnidentifiedImageError:
                return ReadResult(None, "not an image")
            w, h = im.size
            if w * h > MAX_PIXELS:
                return ReadResult(None, f"{w}x{h} pixels is more than {MAX_PIXELS:,} (decompression bomb?)")
            notes = []
            if getattr(im, "n_frames", 1) > 1:
                notes.append(f"animated ({im.n_frames} frames): first frame")
            im.load()
            return _to_rgb(im, notes)
    except PermissionError:
        return ReadResult(None, "permission denied")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return ReadResult(None, "too many pixels (decompression bomb)")
    except OSError as e:
        if e.filename is not None:  # from the file system, not from a decoder
            return ReadResult(None, f"cannot read ({e.strerror})")
        text = str(e)
        return ReadResult(None, "truncated" if "truncat" in text.lower() else f"cannot decode ({text[:80]})")
    except (ValueError, SyntaxError, IndexError, struct.error) as e:  # Pillow's plugins raise these on bad data
        return ReadResult(None, f"cannot decode ({str(e)[:80]})")


def _to_rgb(im: Image.Image, notes: list[str]) -> ReadResult:
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(im).astype(np.float64)
        top = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        notes.append(f"{'16' if top > 255 else '32'}-bit grey: scaled to 8-bit")
        im = Image.fromarray(np.clip(np.round(a * 255.0 / top), 0, 255).astype(np.uint8), "L")
    elif mode == "F":
        return ReadResult(None, "floating-point pixels are not supported")
    elif mode == "CMYK":
        notes.append("CMYK: converted to RGB")
    elif mode == "P" and "transparency" in im.info or mode in ("LA", "PA", "La"):
        im = im.convert("RGBA")
    if im.mode == "RGBA" or im.mode == "RGBa":
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im.convert("RGBA"))
    return ReadResult(im.convert("RGB"), note="; ".join(notes))


def to_square(im: Image.Image, size: int, mode: str = "crop") -> np.ndarray:
    """8-bit RGB PIL image -> uint8 ``(3, size, size)`` by ``"crop"`` (OpenAI's) or ``"pad"`` (whole image)."""
    w, h = im.size
    if mode == "pad":
        side = max(w, h)
        canvas = Image.new("RGB", (side, side), "white")
        canvas.paste(im, ((side - w) // 2, (side - h) // 2))
        im = canvas.resize((size, size), Image.Resampling.LANCZOS)
    else:
        scale = size / min(w, h)
        im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BICUBIC)
        left, top = (im.size[0] - size) // 2, (im.size[1] - size) // 2
        im = im.crop((left, top, left + size, top + size))
    return np.asarray(im).transpose(2, 0, 1).copy()  # (3, size, size)


def normalize(images: torch.Tensor, cfg: VisionConfig) -> torch.Tensor:
    """uint8 ``(B, C, H, W)`` -> the tower's input: ``(x / 255 - mean) / std`` per channel (grey repeated to RGB)."""
    x = images.float() / 255.0
    if x.shape[1] == 1 and cfg.channels == 3:
        x = x.expand(-1, 3, -1, -1)  # (B, 3, H, W)
    mean = torch.tensor(cfg.mean, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(cfg.std, device=x.device).view(1, -1, 1, 1)
    return (x - mean) / std
