"""Cross-modal search over a folder of images: embed it once, keep the embeddings, rank by cosine to a query.

The index lives in the user cache, one per model (``cache_dir("clip", "index", <weights hash>)``), keyed by the
SHA-256 of each file's *content*: a renamed or moved image is not embedded again, an edited one is. Files are read
one batch at a time (memory is bounded by the batch, not the folder) and the index is saved every few thousand new
images, so an interrupted run keeps most of its work. Every file that is not a usable image costs one warning line
and is counted (``clip/images.py`` says which files are skipped and which are converted).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import to_dict
from ..data.cache import cache_dir
from ..errors import GenlabError
from .images import read_image, to_square
from .model import VisionConfig
from .pipeline import LoadedClip, embed_images

SAVE_EVERY = 2048  # new embeddings between index saves


@dataclass
class Report:
    """What happened to each file: counted for the summary line."""

    files: int = 0
    embedded: int = 0  # newly embedded
    cached: int = 0  # found in the index
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    converted: list[tuple[str, str]] = field(default_factory=list)  # (path, what)

    def line(self) -> str:
        return (f"{self.files} files: {self.embedded} embedded, {self.cached} from the index, "
                f"{len(self.skipped)} skipped, {len(self.converted)} converted")


def list_files(paths: list[str | os.PathLike]) -> list[Path]:
    """Regular files under the given folders (recursive, hidden entries left out) and files, sorted per argument."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = []
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found += [Path(root, f) for f in files if not f.startswith(".")]
            out += sorted(found)
        elif p.exists():
            out.append(p)
        else:
            raise GenlabError(f"{p}: no such file or directory")
    return out


def content_hash(path: Path) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    except OSError:
        return None  # read_image names the problem
    return h.hexdigest()


class EmbeddingIndex:
    """Content hash -> unit embedding, for one model and its image preprocessing, saved as ``index.npz`` (written
    atomically)."""

    def __init__(self, weights_hash: str, vision: VisionConfig, dim: int, directory: Path | None = None):
        # The preprocessing (size, squaring, pixel statistics) is in the config, not the weights: both name the index.
        key = hashlib.sha256(json.dumps([weights_hash, to_dict(vision)], sort_keys=True).encode()).hexdigest()[:16]
        self.path = (directory or cache_dir("clip", "index", key)) / "index.npz"
        self.dim = dim
        self.rows: dict[str, np.ndarray] = {}
        if self.path.exists():
            try:
                with np.load(self.path) as f:
                    hashes, emb = f["hashes"], f["embeddings"]
                if emb.shape[1:] == (dim,):
                    self.rows = dict(zip(hashes.tolist(), emb))
            except (OSError, ValueError, KeyError):
                self.rows = {}  # a damaged index is rebuilt

    def save(self) -> None:
        hashes = np.array(list(self.rows), dtype="U64")
        emb = np.stack(list(self.rows.values())) if self.rows else np.zeros((0, self.dim), np.float32)
        tmp = self.path.with_name(f".index.tmp-{os.getpid()}.npz")
        np.savez(tmp, hashes=hashes, embeddings=emb.astype(np.float32))
        os.replace(tmp, self.path)


def warn(path: Path, message: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"genlab: warning: {path}: {message}", file=sys.stderr)


def embed_files(loaded: LoadedClip, files: list[Path], index: EmbeddingIndex, batch_size: int = 32,
                progress: bool = True, bf16: bool = False) -> tuple[list[Path], torch.Tensor, Report]:
    """Embed ``files`` (the index first, the model for the rest). Returns the usable files in order, their
    ``(N, D)`` embeddings and the report."""
    from tqdm import tqdm

    cfg, report = loaded.cfg.vision, Report(files=len(files))
    keys: dict[Path, str] = {}
    pending: list[tuple[Path, str, np.ndarray]] = []
    since_save = 0

    def flush():
        nonlocal since_save
        emb = embed_images(loaded.model, torch.from_numpy(np.stack([p[2] for p in pending])), bf16=bf16).numpy()
        for (_, key, _), e in zip(pending, emb):
            index.rows[key] = e
        report.embedded += len(pending)
        since_save += len(pending)
        pending.clear()
        if since_save >= SAVE_EVERY:
            index.save()
            since_save = 0

    for path in tqdm(files, desc="indexing images", unit="img", disable=not progress, file=sys.stderr):
        key = content_hash(path)
        if key is not None and key in index.rows:
            keys[path] = key
            report.cached += 1
            continue
        result = read_image(path)
        if result.image is None:
            warn(path, f"skipped: {result.skipped}")
            report.skipped.append((str(path), result.skipped))
            continue
        if result.note:
            warn(path, f"converted: {result.note}")
            report.converted.append((str(path), result.note))
        keys[path] = key
        pending.append((path, key, to_square(result.image, cfg.image_size, cfg.resize_mode)))
        if len(pending) == batch_size:
            flush()
    if pending:
        flush()
    if report.embedded:
        index.save()
    usable = [p for p in files if p in keys]
    emb = torch.from_numpy(np.stack([index.rows[keys[p]] for p in usable])) if usable else torch.zeros(0, index.dim)
    return usable, emb, report


def rank(query: torch.Tensor, emb: torch.Tensor, top: int) -> list[tuple[int, float]]:
    """The ``top`` rows of ``emb`` ``(N, D)`` nearest to the unit ``query`` ``(D,)``: (row, cosine), best first."""
    scores = emb @ query
    best = scores.topk(min(top, len(scores)))
    return list(zip(best.indices.tolist(), best.values.tolist()))
