"""The next-token machine: a decoder-only transformer language model.

Tokens in, a distribution over the next token out (Radford et al. 2018/2019, "Language Models are Unsupervised
Multitask Learners"; Vaswani et al. 2017). One model with a config switch between the two lineages every later
family reuses:

- ``style="gpt2"``: learned absolute positions, LayerNorm, GELU (tanh approximation), biases, tied embeddings
  (GPT-2, nanoGPT);
- ``style="llama"``: rotary positions (Su et al. 2021), RMSNorm (Zhang & Sennrich 2019), SwiGLU (Shazeer 2020),
  grouped-query attention (Ainslie et al. 2023), no biases, tied or untied head (Llama, SmolLM2).

Everything inside a block is ``genlab.nn.attention``'s :class:`TransformerBlock`; this file adds only the
embeddings, the final norm and the head. Incremental decoding keeps keys and values in an explicit
:class:`KVCache` made by :meth:`TransformerLM.new_cache`; :meth:`TransformerLM.step` is the ``step(tokens, cache)``
that ``genlab.sampling`` drives. HF ``GPT2LMHeadModel`` / ``LlamaForCausalLM`` and GGUF weights load through
``lm/convert.py``.

Reading order: config and presets, the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.attention import BlockConfig, KVCache, RotaryEmbedding, TransformerBlock, norm


@dataclass
class LMConfig:
    """The shape of a language model; stored in every checkpoint, the model is rebuilt from it."""

    style: Literal["gpt2", "llama"] = "gpt2"
    vocab_size: int = 4096
    context: int = 256  # longest sequence (gpt2: the size of the position table; llama: the trained length)
    n_layer: int = 4
    dim: int = 256
    n_head: int = 4
    n_kv_head: int | None = None  # grouped-query attention (llama); None: as many as n_head
    mlp_hidden: int | None = None  # None: 4 * dim (gpt2) or the Llama rule 8/3 * dim rounded up to 64
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0  # rotary base (llama only)
    tie_embeddings: bool = True  # the head reads the token embedding matrix
    dropout: float = 0.0  # on embeddings (training only)

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_head

    def block(self) -> BlockConfig:
        """The shared transformer block this style asks for."""
        if self.style == "gpt2":
            return BlockConfig(dim=self.dim, n_head=self.n_head, n_kv_head=self.n_kv_head,
                               mlp_hidden=self.mlp_hidden or 4 * self.dim, activation="gelu_tanh",
                               norm="layernorm", norm_eps=self.norm_eps, bias=True)
        hidden = self.mlp_hidden or 64 * -(-int(8 * self.dim / 3) // 64)
        return BlockConfig(dim=self.dim, n_head=self.n_head, n_kv_head=self.n_kv_head, mlp_hidden=hidden,
                           activation="swiglu", norm="rmsnorm", norm_eps=self.norm_eps, bias=False)


PRESETS: dict[str, LMConfig] = {
    # Tiny and real: the bundled text-lm's shape (4.0M parameters with its 4k alphabet; recipes/text_lm.py).
    "tiny": LMConfig(style="llama", vocab_size=4096, context=256, n_layer=4, dim=256, n_head=4, n_kv_head=2,
                     rope_theta=10000.0, tie_embeddings=True),
    "tiny-gpt2": LMConfig(style="gpt2", vocab_size=4096, context=256, n_layer=4, dim=256, n_head=4),
    # Published shapes (weights load through lm/convert.py).
    "smollm2-135m": LMConfig(style="llama", vocab_size=49152, context=8192, n_layer=30, dim=576, n_head=9,
                             n_kv_head=3, mlp_hidden=1536, rope_theta=100000.0, tie_embeddings=True),
    "gpt2": LMConfig(style="gpt2", vocab_size=50257, context=1024, n_layer=12, dim=768, n_head=12),
}


class TransformerLM(nn.Module):
    """``(B, T)`` token ids -> ``(B, T, vocab_size)`` next-token logits.

    ``forward(tokens, cache)``: with a cache, ``tokens`` continue the cached sequence and the cache advances by
    ``T``; without one, ``tokens`` is the whole sequence (causal attention over it).
    """

    def __init__(self, cfg: LMConfig):
        super().__init__()
        if cfg.dim % cfg.n_head:
            raise ValueError(f"dim={cfg.dim} is not a multiple of n_head={cfg.n_head}")
        self.cfg = cfg
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.dim)
        gpt2 = cfg.style == "gpt2"
        self.position_embedding = nn.Embedding(cfg.context, cfg.dim) if gpt2 else None
        self.rope = None if gpt2 else RotaryEmbedding(cfg.head_dim, cfg.rope_theta)
        self.drop = nn.Dropout(cfg.dropout)
        block = cfg.block()
        self.blocks = nn.ModuleList(TransformerBlock(block) for _ in range(cfg.n_layer))
        self.ln_f = norm(block.norm, cfg.dim, cfg.norm_eps, block.bias)
        # Tied: the head *is* the embedding matrix (read in :meth:`logits`), so no second name holds it.
        self.head = None if cfg.tie_embeddings else nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        """GPT-2's initialisation: N(0, 0.02) weights, zero biases (Radford et al. 2019, as in nanoGPT)."""
        if any(p.is_meta for p in module.parameters(recurse=False)):
            return  # built to be loaded (lm/pipeline.py): nothing to draw
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def new_cache(self, batch: int, max_len: int | None = None, dtype: torch.dtype | None = None,
                  device: torch.device | str | None = None) -> KVCache:
        """An empty :class:`KVCache` for ``batch`` sequences of up to ``max_len`` positions (default: context)."""
        weight = self.token_embedding.weight
        return KVCache(self.cfg.n_layer, batch, self.cfg.n_kv_head or self.cfg.n_head, self.cfg.head_dim,
                       max_len or self.cfg.context, dtype or weight.dtype, device or weight.device)

    def hidden(self, tokens: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """``(B, T)`` ids -> ``(B, T, dim)`` final hidden states (after the last norm); advances ``cache``."""
        offset = cache.length if cache is not None else 0
        T = tokens.shape[1]
        if self.position_embedding is not None and offset + T > self.cfg.context:
            raise ValueError(f"sequence of {offset + T} tokens is longer than the context ({self.cfg.context})")
        x = self.token_embedding(tokens)  # (B, T, dim)
        if self.position_embedding is not None:
            x = x + self.position_embedding(torch.arange(offset, offset + T, device=tokens.device))  # (T, dim)
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, cache=cache, layer=i, causal=True, rope=self.rope)
        if cache is not None:
            cache.advance(T)
        return self.ln_f(x)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """``(..., dim)`` hidden states -> ``(..., vocab_size)`` logits."""
        return F.linear(h, self.token_embedding.weight) if self.head is None else self.head(h)

    def forward(self, tokens: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        return self.logits(self.hidden(tokens, cache))  # (B, T, V)

    def step(self, tokens: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """``genlab.sampling``'s step: ``(B, T)`` new ids (all of them when ``cache`` is None) -> ``(B, V)`` logits
        of the token after the last one. Only the last position goes through the head."""
        return self.logits(self.hidden(tokens, cache)[:, -1])
