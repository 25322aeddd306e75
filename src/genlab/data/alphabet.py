"""Alphabets: what turns a modality into tokens and back (DESIGN 3.1).

The chapter's one idea is that the machine stays the same and only the alphabet changes. An alphabet is anything
with ``encode``, ``decode`` and ``vocab_size``, plus how densely it tokenises: ``tokens_per_second`` for audio
(a codec: frames per second times codebooks) or ``tokens_per_item`` for a fixed-size item (an image's VQ grid).
Text has neither (its density depends on the text); it reports ``None`` for both. Every alphabet has a round-trip
test: ``decode(encode(x))`` gives ``x`` back exactly (text) or within the alphabet's stated distortion (codecs).

:class:`BPEText` is the text alphabet on the ``tokenizers`` library: byte-level BPE (Sennrich et al. 2016;
GPT-2's byte-level variant, Radford et al. 2019), so any Unicode string round-trips exactly.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..errors import GenlabError


@runtime_checkable
class Alphabet(Protocol):
    """``encode(x) -> list[int]`` (or a ``(codebooks, frames)`` array for a multi-codebook codec), ``decode``
    inverts it; ``vocab_size`` bounds every token id (ids are ``0 .. vocab_size - 1``)."""

    vocab_size: int
    tokens_per_second: float | None
    tokens_per_item: int | None

    def encode(self, x: Any) -> Any: ...

    def decode(self, tokens: Any) -> Any: ...


class BPEText:
    """Byte-level BPE text alphabet: ``encode(str) -> list[int]``, ``decode(list[int]) -> str``, exact round trip.

    Load a ``tokenizer.json`` (``BPEText.load(path)``), or train one on a corpus with :meth:`train`. ``special``
    tokens (``<|endoftext|>``, ``<|image|>``, ...) are added after the merges and never split.
    """

    tokens_per_second = None
    tokens_per_item = None

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    @classmethod
    def load(cls, path: str | os.PathLike) -> BPEText:
        from tokenizers import Tokenizer

        try:
            return cls(Tokenizer.from_file(str(path)))
        except Exception as e:  # tokenizers raises its own Exception type for a bad file
            raise GenlabError(f"{path}: not a readable tokenizer.json ({str(e).splitlines()[0][:100]})") from None

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, special: tuple[str, ...] = ("<|endoftext|>",),
              min_frequency: int = 2) -> BPEText:
        """Learn ``vocab_size`` tokens (256 bytes + merges + ``special``) from ``texts``."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(special),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
        )
        tok.train_from_iterator(texts, trainer=trainer)
        return cls(tok)

    def save(self, path: str | os.PathLike) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(path))

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def token_id(self, token: str) -> int:
        """The id of a special token; one line naming it if the alphabet has none."""
        i = self.tokenizer.token_to_id(token)
        if i is None:
            raise GenlabError(f"the text alphabet has no token {token!r}")
        return i

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, tokens: Iterable[int]) -> str:
        return self.tokenizer.decode(list(tokens), skip_special_tokens=False)
