"""Prompts into token ids of a fixed length, for the text tower of latent diffusion.

CLIP's tokenizer (:class:`genlab.clip.text.ClipTokenizer`: clean, byte-pair encode, ``<start> ids <end>``, keep the
first ``context_length - 2`` tokens) pads each batch to its longest row. The UNet cross-attends to *every*
position, padding included (as Stable Diffusion does), so here every row is padded to the full context length: a
prompt then gets the same token states whatever else is in its batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..clip.text import ClipTokenizer, clean


def tokenize(tokenizer: ClipTokenizer, texts: Sequence[str]) -> torch.Tensor:
    """Texts -> token ids ``(B, context_length)``; longer texts are cut (see :func:`truncated`)."""
    tokens = tokenizer.encode(list(texts))  # (B, T <= context_length)
    cfg = tokenizer.cfg
    out = torch.full((len(texts), cfg.context_length), cfg.pad_token_id, dtype=torch.long)
    out[:, : tokens.shape[1]] = tokens
    return out


def token_count(tokenizer: ClipTokenizer, text: str) -> int:
    """How many tokens ``text`` has before the start/end tokens are added (and before any cut)."""
    return len(tokenizer.alphabet.encode(clean(text)))


def truncated(tokenizer: ClipTokenizer, text: str) -> int:
    """How many of ``text``'s tokens the text tower never sees (0 when it fits)."""
    return max(0, token_count(tokenizer, text) - (tokenizer.cfg.context_length - 2))
