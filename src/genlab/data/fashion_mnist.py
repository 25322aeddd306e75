"""Fashion-MNIST (Xiao et al. 2017): 70,000 28x28 greyscale photos of clothing in 10 classes, a classic GAN and
classification benchmark, read from the Debian package ``dataset-fashion-mnist`` (MIT licence, Zalando SE).

The package installs the four original IDX files, gzip-compressed, in ``/usr/share/datasets/fashion-mnist/``
(``GENLAB_FASHION_MNIST`` points elsewhere). The ``train`` split is the original 60,000 images and ``test`` the
original held-out 10,000, so numbers compare with the literature. IDX is a tiny format: a big-endian magic number
(``0x00000803`` images, ``0x00000801`` labels), the dimensions as big-endian int32, then the raw uint8 values.

``size=32`` pads 2 black pixels on each side (the usual way to give 28 px digits a power-of-two size), so no pixel
is invented or resampled.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import GenlabError
from .emoji import EmojiSet, Split

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
LICENSE = "MIT (Expat), Copyright 2017 Zalando SE; Debian package dataset-fashion-mnist"
ATTRIBUTION = "Fashion-MNIST, Xiao, Rasul & Vollgraf 2017, Zalando Research (MIT licence)"
INSTALL_HINT = "install it with `apt-get install dataset-fashion-mnist` (scripts/install.d/gan.sh)"


def fashion_mnist_dir() -> Path:
    return Path(os.environ.get("GENLAB_FASHION_MNIST") or DEFAULT_DIR)


def available() -> bool:
    directory = fashion_mnist_dir()
    return all((directory / name).is_file() for pair in FILES.values() for name in pair)


def read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    """The uint8 array stored in a gzip-compressed IDX file, after checking its magic number and size."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise GenlabError(f"Fashion-MNIST file {path} is missing: {INSTALL_HINT}") from None
    except (OSError, EOFError) as e:
        raise GenlabError(f"{path}: not a readable gzip file ({e})") from None
    header = 4 + 4 * ndim
    if len(data) < header or int.from_bytes(data[:4], "big") != magic:
        raise GenlabError(f"{path}: not an IDX file with magic {magic:#010x}")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if len(data) != header + int(np.prod(dims)):
        raise GenlabError(f"{path}: holds {len(data) - header} values, its header says {dims}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def load_fashion_mnist(split: Split = "train", size: int = 28) -> EmojiSet:
    """Fashion-MNIST as uint8 ``(N, 1, size, size)``, white garments on black, with class labels 0-9."""
    if split not in ("train", "test", "all"):
        raise GenlabError(f"unknown Fashion-MNIST split {split!r}: use train, test or all")
    if size not in (28, 32):
        raise GenlabError(f"Fashion-MNIST size must be 28 (native) or 32 (padded), got {size}")
    directory = fashion_mnist_dir()
    if not available():
        raise GenlabError(f"Fashion-MNIST is not installed in {directory}: {INSTALL_HINT}")
    images, labels = [], []
    for part in ("train", "test") if split == "all" else (split,):
        image_file, label_file = FILES[part]
        x = read_idx(directory / image_file, 0x00000803, 3)  # (N, 28, 28)
        y = read_idx(directory / label_file, 0x00000801, 1)  # (N,)
        if len(x) != len(y):
            raise GenlabError(f"{directory}: {len(x)} {part} images but {len(y)} labels")
        images.append(x)
        labels.append(y)
    x = np.concatenate(images)[:, None]  # (N, 1, 28, 28)
    if size == 32:
        x = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))  # (N, 1, 32, 32), black border
    y = np.concatenate(labels).astype(np.int64)
    if y.max(initial=0) >= len(CLASSES):
        raise GenlabError(f"{directory}: label {int(y.max())} is out of range 0-9")
    names = [CLASSES[i] for i in y]
    return EmojiSet(
        images=torch.from_numpy(np.ascontiguousarray(x)),
        chars=names,
        captions=[f"a photo of a {n.lower()}" for n in names],
        categories=names,
        category_names=list(CLASSES),
        labels=torch.from_numpy(y),
        hexcodes=[f"{split}-{i}" for i in range(len(y))],
        attribution=ATTRIBUTION,
    )
