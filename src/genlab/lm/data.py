"""Real text for the language model, offline: the King James Version of the Bible, from Debian's ``bible-kjv``.

The text is written by people (the 1611 translation, in the 1769 Oxford standardisation that Debian ships), public
domain, ~4.3 MB of English in 1,189 chapters. Debian's ``bible-kjv-text`` stores it compressed in
``/usr/lib/bible.data``; the ``bible`` program of ``bible-kjv`` (same source package) prints any range of it, and
``bible -l 9999 Gen1:1-Rev22:21`` prints all of it, one verse a line, in 0.2 s. ``scripts/install.d/lm.sh``
installs both (root only; tests skip without them).

A *document* is one chapter: its heading (``Genesis 1``) and its verses, one a line, verse numbers dropped. The
held-out split is fixed and by document: every 20th chapter in canonical order (``index % 20 == 19``, 59 chapters
from 27 books). The split, the text and the trained alphabet are cached under ``genlab``'s user cache with a
manifest (source, licence, checksums).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from ..data.alphabet import BPEText
from ..data.cache import cache_dir, read_manifest, write_manifest
from ..errors import GenlabError

EOT = "<|endoftext|>"
HELDOUT_EVERY = 20
DATA_FILE = Path("/usr/lib/bible.data")
SOURCE = {
    "name": "King James Version of the Bible (Debian bible-kjv-text 4.38, read with bible-kjv's `bible`)",
    "license": "public domain (the translation's copyright has expired; Debian's copyright file says so)",
    "written_by": "people (the 1611 translators; 1769 Oxford standardisation)",
    "command": "bible -l 9999 Gen1:1-Rev22:21",
}
_HEADING = re.compile(r"^([1-3]?\s?[A-Za-z ]+?) (\d+)$")
_VERSE = re.compile(r"^\s+\d+ (.*)$")


@dataclass(frozen=True)
class Document:
    name: str  # "Genesis 1"
    text: str  # "Genesis 1\n\nIn the beginning God created the heaven and the earth.\n..."


def available() -> bool:
    return DATA_FILE.exists() and shutil.which("bible") is not None


def parse(printed: str) -> list[Document]:
    """``bible``'s output (a heading line per chapter, then ``  N verse`` lines) -> one document per chapter."""
    docs: list[Document] = []
    name, verses = None, []
    for line in printed.splitlines():
        if (m := _VERSE.match(line)) and name is not None:
            verses.append(m.group(1).strip())
        elif (m := _HEADING.match(line.strip())) and line.strip():
            if name is not None:
                docs.append(Document(name, f"{name}\n\n" + "\n".join(verses) + "\n"))
            name, verses = line.strip(), []
    if name is not None:
        docs.append(Document(name, f"{name}\n\n" + "\n".join(verses) + "\n"))
    return docs


def _read_bible() -> str:
    if not available():
        raise GenlabError("the text corpus needs Debian's bible-kjv (apt-get install bible-kjv; "
                          "scripts/install.d/lm.sh does it)")
    out = subprocess.run(["bible", "-l", "9999", "Gen1:1-Rev22:21"], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise GenlabError(f"`bible` failed reading {DATA_FILE}: {out.stderr.strip()[:200]}")
    return out.stdout


@cache
def documents() -> tuple[Document, ...]:
    """Every chapter, in canonical order (cached as ``kjv.json`` with a manifest)."""
    folder = cache_dir("lm", "kjv")
    if read_manifest(folder) is None:
        docs = parse(_read_bible())
        if len(docs) != 1189:
            raise GenlabError(f"{DATA_FILE}: expected the 1,189 chapters of the KJV, `bible` printed {len(docs)}")
        (folder / "kjv.json").write_text(json.dumps([[d.name, d.text] for d in docs]))
        write_manifest(folder, ["kjv.json"], {**SOURCE, "documents": len(docs),
                                              "heldout": f"chapter index % {HELDOUT_EVERY} == {HELDOUT_EVERY - 1}"})
    return tuple(Document(n, t) for n, t in json.loads((folder / "kjv.json").read_text()))


def split(name: str) -> tuple[Document, ...]:
    """``"train"`` or ``"heldout"`` (every 20th chapter), fixed."""
    if name not in ("train", "heldout"):
        raise GenlabError(f"unknown split {name!r}: choose train or heldout")
    held = name == "heldout"
    return tuple(d for i, d in enumerate(documents()) if (i % HELDOUT_EVERY == HELDOUT_EVERY - 1) == held)


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:12]


@cache
def alphabet(vocab_size: int = 4096) -> BPEText:
    """A byte-level BPE with ``vocab_size`` tokens (including ``<|endoftext|>``) trained on the training split only
    (cached; training takes a few seconds)."""
    folder = cache_dir("lm", f"kjv-bpe-{vocab_size}")
    if read_manifest(folder) is None:
        tok = BPEText.train((d.text for d in split("train")), vocab_size, special=(EOT,))
        tok.save(folder / "tokenizer.json")
        write_manifest(folder, ["tokenizer.json"], {**SOURCE, "trained_on": "train split", "vocab_size": vocab_size})
    return BPEText.load(folder / "tokenizer.json")


def token_stream(name: str, vocab_size: int = 4096) -> np.ndarray:
    """The split as one ``uint16`` array: ``<|endoftext|>`` then each document's tokens, for every document."""
    tok = alphabet(vocab_size)
    folder = cache_dir("lm", f"kjv-bpe-{vocab_size}")
    path = folder / f"{name}.npy"
    key = _fingerprint(tok.tokenizer.to_str(), [d.name for d in split(name)])
    stamp = folder / f"{name}.key"
    if not path.exists() or not stamp.exists() or stamp.read_text() != key:
        eot = tok.token_id(EOT)
        ids = [eot]
        for encoding in tok.tokenizer.encode_batch([d.text for d in split(name)], add_special_tokens=False):
            ids.extend(encoding.ids)
            ids.append(eot)
        np.save(path, np.asarray(ids, dtype=np.uint16))
        stamp.write_text(key)
    return np.load(path)
