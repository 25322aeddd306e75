"""The user cache: where built datasets live, with a manifest and checksums so a damaged cache is rebuilt.

``GENLAB_CACHE`` overrides the location (tests point it at a temporary directory); otherwise
``$XDG_CACHE_HOME/genlab`` or ``~/.cache/genlab``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..errors import GenlabError


def cache_dir(*parts: str) -> Path:
    root = os.environ.get("GENLAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "genlab"
    )
    path = Path(root, *parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GenlabError(f"cannot create cache directory {path}: {e.strerror}") from None
    return path


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def write_manifest(directory: Path, files: list[str], info: dict[str, Any]) -> Path:
    """Write ``manifest.json`` (info + sha256 of each file) atomically; it is written last, so it marks completion."""
    manifest = {**info, "files": {name: sha256_file(directory / name) for name in files}}
    tmp = directory / f".manifest.json.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, directory / "manifest.json")
    return directory / "manifest.json"


def read_manifest(directory: Path, verify: bool = True) -> dict[str, Any] | None:
    """The manifest if the cache entry is complete (and, with ``verify``, every checksum matches); else None."""
    path = directory / "manifest.json"
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, OSError):
        return None
    for name, digest in manifest.get("files", {}).items():
        if not (directory / name).exists() or (verify and sha256_file(directory / name) != digest):
            return None
    return manifest
