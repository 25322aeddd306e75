"""Captioned OpenMoji at 64 px for text-to-image, with a held-out split of *unseen combinations of seen words*.

The images and captions are CLIP's (:func:`genlab.clip.data.load_source`, source ``openmoji``: OpenMoji, CC BY-SA
4.0, "All emojis designed by OpenMoji – the open-source emoji and icon project"; captions = the ``emoji`` package's
English names), rendered at 64 px. Three splits:

- ``test``: the emoji that CLIP's and the emoji set's split hold out (~15 %, every skin tone of a held-out emoji with
  it): unseen images, for the autoencoder's reconstruction and for FID;
- ``heldout``: compositional prompts. From the *training* emoji, one skin tone of every third toned object
  (``waving hand medium-dark skin tone`` held out while ``waving hand`` is seen in its other four tones and
  ``medium-dark skin tone`` on other objects), and one colour of every object drawn in three or more colours
  (``blue heart`` held out, ``heart`` seen in other colours, ``blue`` on other objects). Each choice is a hash of the
  object's words, so the split never changes, and a colour is only held out where it stays seen elsewhere;
- ``train``: the rest.

A text-to-image model trained on ``train`` has seen every word of a ``heldout`` caption, never the combination.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict

from ..clip.data import CaptionedImages, load_source
from ..errors import GenlabError

TONES = ("light", "medium-light", "medium", "medium-dark", "dark")
COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "brown", "black", "white", "pink", "grey")
TONE_EVERY = 3  # one toned object in three loses one tone to the held-out split
MIN_COLOURS = 3  # objects drawn in at least this many colours lose one
_TONED = re.compile(r"(.+?) (" + "|".join(sorted(TONES, key=len, reverse=True)) + r") skin tone")
SPLITS = ("train", "test", "heldout", "all")


def _hash(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def tone_combo(caption: str) -> tuple[str, str] | None:
    """(object, tone) of a caption with exactly one skin tone, else None."""
    match = _TONED.fullmatch(caption) if caption.count("skin tone") == 1 else None
    return (match.group(1), match.group(2)) if match else None


def colour_combo(caption: str) -> tuple[str, str] | None:
    """(object with ``_`` for its colour, colour) of a caption with exactly one colour word, else None."""
    words = caption.split()
    hits = [i for i, w in enumerate(words) if w in COLOURS]
    if len(hits) != 1 or "skin tone" in caption:
        return None
    i = hits[0]
    return " ".join(words[:i] + ["_"] + words[i + 1:]), words[i]


def held_out_combinations(captions: list[str]) -> set[str]:
    """The captions (among training captions) whose combination of object and tone or colour is held out."""
    held = set()
    tones: dict[str, set[str]] = defaultdict(set)
    colours: dict[str, set[str]] = defaultdict(set)
    for c in captions:
        if (combo := tone_combo(c)) is not None:
            tones[combo[0]].add(combo[1])
        if (combo := colour_combo(c)) is not None:
            colours[combo[0]].add(combo[1])
    for obj, seen in tones.items():
        if len(seen) == len(TONES) and _hash(obj) % TONE_EVERY == 0:
            held.add(f"{obj} {TONES[_hash('tone:' + obj) % len(TONES)]} skin tone")
    uses = defaultdict(int)  # how many objects each colour is drawn on
    for seen in colours.values():
        for colour in seen:
            uses[colour] += 1
    for obj, seen in sorted(colours.items()):
        candidates = sorted(c for c in seen if uses[c] >= 2)  # still seen on another object once held out
        if len(seen) >= MIN_COLOURS and candidates:
            colour = candidates[_hash("colour:" + obj) % len(candidates)]
            held.add(obj.replace("_", colour))
            uses[colour] -= 1
    return held


def load_captioned_emoji(size: int = 64, split: str = "train") -> CaptionedImages:
    """Captioned OpenMoji at ``size`` px, one split (``train``, ``test``, ``heldout`` or ``all``), uint8 images."""
    if split not in SPLITS:
        raise GenlabError(f"unknown split {split!r}: use {', '.join(SPLITS)}")
    data = load_source("openmoji", size)
    held = held_out_combinations([c for c, s in zip(data.captions, data.splits) if s == "train"])
    splits = ["heldout" if s == "train" and c in held else s for c, s in zip(data.captions, data.splits)]
    data = CaptionedImages(data.images, data.captions, data.categories, data.sources, data.keys, splits)
    return data if split == "all" else data.select([i for i, s in enumerate(splits) if s == split])
