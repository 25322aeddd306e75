"""Offline sentences in many languages, for the speech corpus.

The text comes from the pip package ``dataset_build`` (BSD-2-Clause, part of the ``genlab[speech]`` extra): about
15,000 words of running prose per language in 37 languages, on ten broad subjects (science, medicine, arts,
folklore, hobbies, professional jargon, ...). Its author generated it with a large language model (Gemini 2.5 Pro,
the package README says so), so it is fluent, grammatical text, written by no person: good enough to give a
recogniser a real vocabulary and real word order in each language, and honest to say so.

The package's ``__init__`` does not import on Python < 3.12 (an f-string with nested quotes), so its data folder
is found with :func:`importlib.util.find_spec` and never imported.

Prose is cut into short utterances: sentences of 3-14 words, longer sentences split at clause punctuation and
re-joined greedily up to 14 words; pieces with digits, brackets, quotes or other symbols are dropped (a spoken
"1948" has no single right transcript), and markdown and the generator's preamble are removed.
"""

from __future__ import annotations

import importlib.util
import re
import unicodedata
from functools import cache
from pathlib import Path

from ..errors import GenlabError

# Whisper language code -> ISO 639-3 folder name in dataset_build/data/.
FOLDERS = {
    "en": "eng", "de": "deu", "fr": "fra", "es": "spa", "it": "ita", "pt": "por", "nl": "nld", "pl": "pol",
}

MIN_WORDS, MAX_WORDS = 3, 14
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CLAUSE = re.compile(r"(?<=[,;:])\s+")
# Letters (any script), marks, spaces and the punctuation a transcript keeps; anything else drops the piece.
_ALLOWED = re.compile(r"^[^\W\d_]+(?:[ '\-][^\W\d_]+|[,.!?;:]|\s)*[.!?]?$")


def data_folder() -> Path:
    spec = importlib.util.find_spec("dataset_build")
    if spec is None or not spec.submodule_search_locations:
        raise GenlabError("the speech corpus needs its text package: install genlab[speech] (dataset_build)")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _clean_line(line: str) -> str:
    line = unicodedata.normalize("NFC", line.strip())
    line = line.replace("**", "").replace("__", "").replace("’", "'").replace("–", "-").replace("—", "-")
    return re.sub(r"\s+", " ", line.strip("*_ "))


def _pieces(sentence: str) -> list[str]:
    """Split a sentence into utterance-sized pieces of MIN_WORDS..MAX_WORDS words."""
    if len(sentence.split()) <= MAX_WORDS:
        return [sentence]
    out, current = [], []
    for clause in _CLAUSE.split(sentence):
        words = clause.split()
        if current and len(current) + len(words) > MAX_WORDS:
            out.append(" ".join(current))
            current = []
        current.extend(words)
    if current:
        out.append(" ".join(current))
    return [p.rstrip(",;:") for p in out]


def split_utterances(text: str) -> list[str]:
    """Running prose -> short utterances (order kept, duplicates removed)."""
    seen, out = set(), []
    paragraphs = [_clean_line(p) for p in text.splitlines()]
    # The first paragraph is the generator's answer to its prompt ("Of course. Here is 30,000 words ...").
    for para in paragraphs[1:]:
        if not para or para[-1] not in ".!?" or para.startswith(("#", "---", "***", "|", ">", "-", "Section")):
            continue  # headings, rules, tables, lists: not prose
        for sentence in _SENTENCE_END.split(para):
            for piece in _pieces(sentence.strip()):
                n = len(piece.split())
                if MIN_WORDS <= n <= MAX_WORDS and _ALLOWED.match(piece) and piece not in seen:
                    seen.add(piece)
                    out.append(piece)
    return out


@cache
def load_sentences(language: str) -> tuple[str, ...]:
    """Utterance texts for a Whisper language code (``"en"``, ``"de"``, ...), in source order."""
    if language not in FOLDERS:
        raise GenlabError(f"no offline text for language {language!r}: choose one of {', '.join(sorted(FOLDERS))}")
    folder = data_folder() / FOLDERS[language]
    files = sorted(folder.glob("*.txt")) if language != "en" else [folder / "eng.txt", folder / "history.txt"]
    if not files or not all(f.exists() for f in files):
        raise GenlabError(f"{folder}: text files missing; reinstall genlab[speech] (dataset_build)")
    sentences: list[str] = []
    for f in files:
        sentences.extend(s for s in split_utterances(f.read_text(encoding="utf-8")) if s not in sentences)
    return tuple(sentences)
