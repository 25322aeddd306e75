"""Where genlab's speech leaves the library: every sample is watermarked on its way out, and the file says who made
it (DESIGN 3.5).

:class:`MarkedWriter` is the one way the TTS family writes audio. It streams: each chunk is marked
(:mod:`genlab.provenance.watermark`, continuing the key's pattern from where the previous chunk stopped) and appended
to a 16-bit WAV whose LIST/INFO chunk (``ICMT``) holds the provenance record as compact JSON: genlab version, model
and its weights hash, a hash of the text, the seed, the time, the voice (built-in, or a hash of the reference and
the consent statement) and the watermark's key id. The record is written before the first sample, so a stream cut
short still carries it. libsndfile keeps at most ~2,000 characters in ``ICMT``: long fields (the text, the consent)
are cut to a preview there and kept whole, with their hashes, in a sidecar ``OUT.wav.json``.

:func:`read_record` reads the record back (from the file, else the sidecar) for ``genlab verify``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import GenlabError, check_writable
from .watermark import Watermark, default

MAX_COMMENT = 1900  # characters libsndfile keeps in a WAV ICMT (measured: 2,000 kept, 4,000 dropped)
PREVIEW = 160


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def provenance_record(kind: str, **fields: Any) -> dict[str, Any]:
    """A record with the common fields (genlab version, UTC time) and the caller's (model, model_hash, seed, ...).
    A ``text`` or ``consent`` field is kept whole and also hashed (``text_sha256``)."""
    record: dict[str, Any] = {"genlab": __version__, "kind": kind,
                              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for name, value in fields.items():
        record[name] = value
        if name in ("text", "consent") and isinstance(value, str):
            record[f"{name}_sha256"] = sha256_text(value)
    return record


def _compact(record: dict[str, Any]) -> str:
    """The record as JSON short enough for ICMT: long strings become previews (their hashes stay)."""
    short = {k: (v[:PREVIEW] + "..." if isinstance(v, str) and len(v) > PREVIEW else v) for k, v in record.items()}
    text = json.dumps(short, ensure_ascii=False, separators=(",", ":"))
    if len(text) > MAX_COMMENT:
        raise GenlabError(f"the provenance record is too long for a WAV comment ({len(text)} characters)")
    return text


class MarkedWriter:
    """A 16-bit WAV written chunk by chunk, every chunk watermarked first: ``with MarkedWriter(...) as w:
    w.write(chunk)``. There is no switch to leave the mark out."""

    def __init__(self, path: str | os.PathLike, sample_rate: int, record: dict[str, Any],
                 watermark: Watermark | None = None):
        self.path = Path(path)
        if self.path.suffix.lower() != ".wav":
            raise GenlabError(f"{self.path}: speech is written as .wav (it carries its provenance in the file)")
        check_writable(self.path)
        self.sample_rate = sample_rate
        self.watermark = watermark or default()
        self.record = dict(record, watermark={"key_id": self.watermark.key_id, "scheme": "genlab-ss-v1"},
                           sample_rate=sample_rate)
        self.samples = 0
        self._file = None

    def __enter__(self) -> MarkedWriter:
        import soundfile

        self.path.parent.mkdir(parents=True, exist_ok=True)
        comment = _compact(self.record)
        self._file = soundfile.SoundFile(self.path, "w", self.sample_rate, 1, subtype="PCM_16", format="WAV")
        self._file.comment = comment  # before any sample: libsndfile writes LIST/INFO ahead of the data
        self._file.software = f"genlab {__version__}"
        self._file.title = "genlab synthetic speech (watermarked)"
        return self

    def write(self, chunk: np.ndarray) -> None:
        """Mark and append float ``(n,)`` mono audio."""
        if self._file is None:
            raise RuntimeError("MarkedWriter.write outside its with-block")
        marked = self.watermark.embed(np.asarray(chunk, np.float32), self.sample_rate, self.samples)
        self._file.write(marked)
        self.samples += len(marked)

    def __exit__(self, *exc) -> None:
        self._file.close()
        self._file = None
        self.record["seconds"] = round(self.samples / self.sample_rate, 3)
        sidecar = self.path.with_name(self.path.name + ".json")
        tmp = sidecar.with_name(sidecar.name + ".tmp")
        tmp.write_text(json.dumps(self.record, ensure_ascii=False, indent=1))
        os.replace(tmp, sidecar)


def write_marked(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, record: dict[str, Any]) -> Path:
    """Mark ``audio`` and write it with its record (one chunk of :class:`MarkedWriter`)."""
    with MarkedWriter(path, sample_rate, record) as w:
        w.write(audio)
    return Path(path)


def read_record(path: str | os.PathLike) -> dict[str, Any] | None:
    """The provenance record of a genlab WAV: the compact one in the file's ICMT, completed by the sidecar JSON when
    the sidecar agrees with it (same text hash, model hash and seed); None if the file holds none."""
    import soundfile

    try:
        with soundfile.SoundFile(path) as f:
            comment = f.comment
    except (soundfile.LibsndfileError, RuntimeError):
        return None
    try:
        record = json.loads(comment) if comment else None
    except ValueError:
        return None
    if not isinstance(record, dict) or "genlab" not in record:
        return None
    sidecar = Path(str(path) + ".json")
    try:
        full = json.loads(sidecar.read_text()) if sidecar.is_file() else None
    except (OSError, ValueError):
        full = None
    same = ("text_sha256", "model_hash", "seed", "time")
    if isinstance(full, dict) and all(full.get(k) == record.get(k) for k in same):
        return full
    return record
