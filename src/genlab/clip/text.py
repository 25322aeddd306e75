"""Text into the text tower: clean, byte-pair encode, wrap in start/end-of-text, pad (OpenAI CLIP's ``tokenize``).

A CLIP checkpoint carries its tokenizer (a ``tokenizers`` JSON, the format of HF's ``tokenizer.json`` and of
genlab's :class:`~genlab.data.alphabet.BPEText`) in its ``config.json``. Text is cleaned as OpenAI's tokenizer
cleans it (Unicode NFC, whitespace collapsed, lower case), encoded without the tokenizer's own special tokens, and
wrapped as ``<start> ids <end>``; a text longer than the context keeps its first ``context_length - 2`` tokens and
its end-of-text token (OpenAI's ``truncate=True``). Rows are padded to the longest row of the batch: the text
tower's mask is causal, so what follows the end-of-text token never reaches the pooled state.

A CLIP whose text tower is the borrowed MiniLM (``clip/minilm.py``) reads BERT's WordPiece tokens instead
(:class:`WordPieceTokenizer`): the published ``tokenizer.json`` run by the ``tokenizers`` library as it is.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import torch

from ..data.alphabet import BPEText
from ..errors import GenlabError
from .minilm import MiniLMConfig
from .model import TextConfig

SPECIAL = ("<|startoftext|>", "<|endoftext|>")  # ids 0 and 1 of an alphabet trained by genlab


def clean(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip().lower()


class ClipTokenizer:
    """``encode(texts) -> (B, T)`` long token ids, ``T <= context_length``."""

    def __init__(self, alphabet: BPEText, cfg: TextConfig):
        self.alphabet, self.cfg = alphabet, cfg
        if alphabet.vocab_size > cfg.vocab_size:
            raise GenlabError(f"the tokenizer has {alphabet.vocab_size} tokens; the text tower has {cfg.vocab_size}")

    @classmethod
    def from_json(cls, tokenizer: dict[str, Any] | None, cfg: TextConfig) -> ClipTokenizer:
        """From the tokenizer JSON object a CLIP checkpoint stores (``None``: the checkpoint has none)."""
        if tokenizer is None:
            raise GenlabError("this CLIP checkpoint has no tokenizer (convert it with a tokenizer.json beside it)")
        from tokenizers import Tokenizer

        try:
            return cls(BPEText(Tokenizer.from_str(json.dumps(tokenizer))), cfg)
        except Exception as e:  # tokenizers raises its own Exception type
            raise GenlabError(f"the checkpoint's tokenizer does not load ({str(e).splitlines()[0][:100]})") from None

    def to_json(self) -> dict[str, Any]:
        return json.loads(self.alphabet.tokenizer.to_str())

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts")
        n = self.cfg.context_length - 2
        rows = [[self.cfg.bos_token_id, *self.alphabet.encode(clean(t))[:n], self.cfg.eos_token_id] for t in texts]
        T = max(len(r) for r in rows)
        out = torch.full((len(rows), T), self.cfg.pad_token_id, dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r)
        return out  # (B, T)


def train_alphabet(texts: Sequence[str], vocab_size: int) -> BPEText:
    """A byte-level BPE alphabet of ``vocab_size`` tokens over cleaned ``texts``; ``<|startoftext|>`` is id 0 and
    ``<|endoftext|>`` id 1 (the ``emoji-clip`` and ``tiny`` presets' bos/eos ids)."""
    alphabet = BPEText.train([clean(t) for t in texts], vocab_size, special=SPECIAL)
    if [alphabet.token_id(s) for s in SPECIAL] != [0, 1]:
        raise RuntimeError("tokenizers did not put the special tokens first")
    return alphabet


class WordPieceTokenizer:
    """BERT's tokenizer for the borrowed text tower: ``encode(texts) -> (B, T)`` long ids, ``[CLS] text [SEP]``
    padded with ``[PAD]`` to the longest row, ``T <= max_length``.

    The published ``tokenizer.json`` does the work as HF's ``BertTokenizerFast`` does (clean, lower-case, split on
    whitespace and punctuation, WordPiece with ``##`` continuations); a longer text keeps its first
    ``max_length - 2`` word pieces. The file's own fixed padding and truncation are replaced by these rules.
    """

    def __init__(self, tokenizer, cfg: MiniLMConfig):
        self.tokenizer, self.cfg = tokenizer, cfg
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=cfg.max_length)
        pad = tokenizer.token_to_id("[PAD]")
        if pad != cfg.pad_token_id or tokenizer.get_vocab_size() > cfg.vocab_size:
            raise GenlabError(f"the tokenizer ([PAD] = {pad}, {tokenizer.get_vocab_size()} tokens) does not fit the "
                              f"text encoder ([PAD] = {cfg.pad_token_id}, {cfg.vocab_size} tokens)")

    @classmethod
    def from_json(cls, tokenizer: dict[str, Any], cfg: MiniLMConfig) -> WordPieceTokenizer:
        from tokenizers import Tokenizer

        try:
            return cls(Tokenizer.from_str(json.dumps(tokenizer)), cfg)
        except GenlabError:
            raise
        except Exception as e:  # tokenizers raises its own Exception type
            raise GenlabError(f"the text encoder's tokenizer does not load ({str(e).splitlines()[0][:100]})") from None

    def to_json(self) -> dict[str, Any]:
        return json.loads(self.tokenizer.to_str())

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts")
        rows = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        out = torch.full((len(rows), max(len(r) for r in rows)), self.cfg.pad_token_id, dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r)
        return out  # (B, T)
