"""Attention and the transformer block that every family shares (Vaswani et al. 2017, "Attention Is All You Need").

One :class:`Attention` serves self- and cross-attention, causal or not, with multi-, grouped- (Ainslie et al.
2023) or single-query heads and optional rotary positions (Su et al. 2021). It runs on
``F.scaled_dot_product_attention``. Incremental decoding keeps keys and values in an explicit :class:`KVCache`
passed in by the caller (no hooks, no hidden state). :class:`TransformerBlock` is the pre-norm block of GPT-2,
Whisper, CLIP and Llama: self-attention, optional cross-attention, an MLP, each behind a norm and a residual (or,
with ``post_norm``, BERT's block: each residual sum followed by its norm).

Parameter names follow openai-whisper's (``attn.query``, ``attn_ln``, ``cross_attn``, ``mlp.0``, ``mlp_ln``), so
its checkpoints map one to one; other published formats are renamed by ``genlab.interop``.

Reading order: cache, rotary positions, attention, MLPs, the block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


class KVCache:
    """Self-attention keys and values of every layer, kept between decoding steps.

    Buffers are preallocated for ``max_len`` positions, ``(B, H_kv, max_len, Dh)`` per layer, so a step costs no
    concatenation; the first ``length`` positions are filled. A decoding step writes through :meth:`update` in
    every layer, then :meth:`advance` moves ``length`` on. Beam search keeps hypotheses with :meth:`reorder`.
    """

    def __init__(self, n_layer: int, batch: int, n_kv_head: int, head_dim: int, max_len: int,
                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"):
        self.max_len = max_len
        self.k = [torch.zeros(batch, n_kv_head, max_len, head_dim, dtype=dtype, device=device) for _ in range(n_layer)]
        self.v = [torch.zeros_like(k) for k in self.k]
        self.length = 0

    @property
    def batch(self) -> int:
        return self.k[0].shape[0]

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write ``(B, H_kv, T, Dh)`` new keys/values after the filled positions; return every filled one plus
        them, ``(B, H_kv, length + T, Dh)`` (``length`` moves on only at :meth:`advance`)."""
        n, T = self.length, k.shape[2]
        if n + T > self.max_len:
            raise ValueError(f"KVCache holds {self.max_len} positions; {n + T} asked")
        self.k[layer][:, :, n : n + T] = k
        self.v[layer][:, :, n : n + T] = v
        return self.k[layer][:, :, : n + T], self.v[layer][:, :, : n + T]

    def advance(self, T: int) -> None:
        self.length += T

    def reorder(self, index: torch.Tensor) -> None:
        """Keep rows ``index`` ``(B,)`` (beam search picks which hypotheses survive); only the rows that change are
        copied, and only their filled positions."""
        changed = (index != torch.arange(index.numel(), device=index.device)).nonzero()[:, 0]
        if changed.numel() == 0:
            return
        source, n = index[changed], self.length
        for t in self.k + self.v:
            t[changed, :, :n] = t[source, :, :n]  # the right side is a copy: rows may swap


class RotaryEmbedding(nn.Module):
    """Rotary positions (Su et al. 2021, "RoFormer"), in the half-split layout of GPT-NeoX and HF Llama: the
    first and second halves of each head's channels form the rotated pairs."""

    def __init__(self, head_dim: int, base: float = 10000.0):
        super().__init__()
        inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)  # (Dh/2,)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self._last: tuple = (None, None, None)  # every layer's queries and keys of one step share the angles

    def angles(self, offset: int, T: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
        """``cos`` and ``sin`` ``(T, Dh/2)`` of positions ``offset .. offset + T - 1``; at inference kept for the
        next call (the other layers of the same step), in training and under ``torch.compile`` made each time."""
        key = (offset, T, dtype, device)
        if self._last[0] == key:
            return self._last[1], self._last[2]
        pos = torch.arange(offset, offset + T, dtype=torch.float32, device=device)
        angles = pos[:, None] * self.inv_freq[None, :]  # (T, Dh/2)
        cos, sin = angles.cos().to(dtype), angles.sin().to(dtype)
        if not torch.is_grad_enabled() and not torch.compiler.is_compiling():
            self._last = (key, cos, sin)
        return cos, sin

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Rotate ``(B, H, T, Dh)`` queries or keys standing at positions ``offset .. offset + T - 1``."""
        cos, sin = self.angles(offset, x.shape[2], x.dtype, x.device)
        x1, x2 = x.chunk(2, dim=-1)  # (B, H, T, Dh/2) each
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Attention(nn.Module):
    """Multi-head attention: ``query``, ``key``, ``value`` and ``out`` projections around SDPA.

    ``n_kv_head < n_head`` shares each key/value head among ``n_head / n_kv_head`` query heads (grouped-query).
    ``kv_dim`` is the width of what cross-attention reads (default: ``dim``).
    """

    def __init__(self, dim: int, n_head: int, *, n_kv_head: int | None = None, kv_dim: int | None = None,
                 bias: bool = True, key_bias: bool | None = None, out_bias: bool | None = None,
                 head_dim: int | None = None):
        super().__init__()
        self.n_head, self.n_kv_head = n_head, n_kv_head or n_head
        if n_head % self.n_kv_head:
            raise ValueError(f"n_head={n_head} is not a multiple of n_kv_head={self.n_kv_head}")
        self.head_dim = head_dim or dim // n_head
        inner, kv_inner, kv_dim = n_head * self.head_dim, self.n_kv_head * self.head_dim, kv_dim or dim
        self.query = nn.Linear(dim, inner, bias=bias)
        self.key = nn.Linear(kv_dim, kv_inner, bias=bias if key_bias is None else key_bias)
        self.value = nn.Linear(kv_dim, kv_inner, bias=bias)
        self.out = nn.Linear(inner, dim, bias=bias if out_bias is None else out_bias)

    def heads(self, x: torch.Tensor, n: int) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, n, self.head_dim).transpose(1, 2)  # (B, n, T, Dh)

    def project_kv(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, S, kv_dim)`` -> keys and values ``(B, H_kv, S, Dh)`` (cross-attention computes them once)."""
        return self.heads(self.key(source), self.n_kv_head), self.heads(self.value(source), self.n_kv_head)

    def _qkv(self, x, context, kv, cache, layer, rope):
        q = self.heads(self.query(x), self.n_head)  # (B, H, T, Dh)
        if kv is None:
            k, v = self.project_kv(x if context is None else context)  # (B, H_kv, S, Dh)
        else:
            k, v = kv
        if rope is not None:
            offset = cache.length if cache is not None else 0
            q, k = rope(q, offset), rope(k, offset)
        if cache is not None:
            k, v = cache.update(layer, k, v)
        if self.n_kv_head != self.n_head:  # grouped-query: every key/value head serves a group of query heads
            k = k.repeat_interleave(self.n_head // self.n_kv_head, dim=1)
            v = v.repeat_interleave(self.n_head // self.n_kv_head, dim=1)
        return q, k, v

    def _merge(self, y: torch.Tensor) -> torch.Tensor:
        B, H, T, Dh = y.shape
        return self.out(y.transpose(1, 2).reshape(B, T, H * Dh))  # (B, T, dim)

    def forward(
        self,
        x: torch.Tensor,  # (B, T, dim)
        context: torch.Tensor | None = None,  # (B, S, kv_dim) what cross-attention reads; None: self-attention
        *,
        kv: tuple[torch.Tensor, torch.Tensor] | None = None,  # precomputed (B', H_kv, S, Dh) keys/values
        cache: KVCache | None = None,  # self-attention: append to and attend over the cached positions
        layer: int = 0,  # this layer's index in the cache
        causal: bool = False,
        mask: torch.Tensor | None = None,  # (T, S) or (B, 1, T, S) bool, True = may attend; or additive float
        rope: RotaryEmbedding | None = None,
    ) -> torch.Tensor:
        q, k, v = self._qkv(x, context, kv, cache, layer, rope)
        B, T = q.shape[0], q.shape[2]
        if k.shape[0] < B:
            # g rows share each row of keys/values (beams over one audio window): their queries become g * T query
            # positions of that row, so the keys are read once. Cross-attention only: no mask.
            g, H = B // k.shape[0], self.n_head
            qg = q.view(k.shape[0], g, H, T, -1).transpose(1, 2).reshape(k.shape[0], H, g * T, -1)
            y = F.scaled_dot_product_attention(qg, k, v)  # (B / g, H, g * T, Dh)
            y = y.view(k.shape[0], H, g, T, -1).transpose(1, 2).reshape(B, H, T, -1)  # (B, H, T, Dh)
            return self._merge(y)
        if causal and mask is None and k.shape[2] != T:
            # New queries after cached positions: one query sees them all; several see up to themselves.
            mask = causal_mask(T, k.shape[2], x.device) if T > 1 else None
            causal = False
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and mask is None)
        return self._merge(y)

    def forward_with_weights(self, x, context=None, *, kv=None, mask=None, causal=False):
        """:meth:`forward` that also returns the softmaxed attention ``(B, H, T, S)`` in float32 (SDPA does not
        return it; Whisper's word timing reads it). No cache, no rotary: a teacher-forced pass."""
        q, k, v = self._qkv(x, context, kv, None, 0, None)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)  # (B, H, T, S)
        if causal and mask is None:
            mask = causal_mask(q.shape[2], k.shape[2], x.device)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
        weights = scores.float().softmax(dim=-1)
        return self._merge(weights.to(v.dtype) @ v), weights


def causal_mask(T: int, S: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(T, S)`` bool, True = may attend: the last ``T`` of ``S`` positions each see every position up to their own."""
    return torch.ones(T, S, dtype=torch.bool, device=device).tril(S - T)


class QuickGELU(nn.Module):
    """CLIP's GELU approximation, ``x * sigmoid(1.702 x)`` (Radford et al. 2021)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


Activation = Literal["gelu", "gelu_tanh", "quick_gelu", "swiglu", "geglu"]


def mlp(dim: int, hidden: int, activation: Activation = "gelu", bias: bool = True) -> nn.Module:
    """The feed-forward half of a block: ``Linear, act, Linear`` (keys ``0`` and ``2``), or :class:`SwiGLU` /
    :class:`GEGLU`."""
    if activation == "swiglu":
        return SwiGLU(dim, hidden, bias=bias)
    if activation == "geglu":
        return GEGLU(dim, hidden, bias=bias)
    act = {"gelu": nn.GELU(), "gelu_tanh": nn.GELU(approximate="tanh"), "quick_gelu": QuickGELU()}[activation]
    return nn.Sequential(nn.Linear(dim, hidden, bias=bias), act, nn.Linear(hidden, dim, bias=bias))


class SwiGLU(nn.Module):
    """``down(silu(gate(x)) * up(x))`` (Shazeer 2020, "GLU Variants Improve Transformer"), as in Llama."""

    def __init__(self, dim: int, hidden: int, bias: bool = False):
        super().__init__()
        self.gate = nn.Linear(dim, hidden, bias=bias)
        self.up = nn.Linear(dim, hidden, bias=bias)
        self.down = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class GEGLU(SwiGLU):
    """``down(gelu(gate(x)) * up(x))`` (Shazeer 2020), the feed-forward of Stable Diffusion's transformer blocks."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.gate(x)) * self.up(x))


def norm(kind: Literal["layernorm", "rmsnorm"], dim: int, eps: float, bias: bool = True) -> nn.Module:
    if kind == "rmsnorm":
        return nn.RMSNorm(dim, eps=eps)
    return nn.LayerNorm(dim, eps=eps, bias=bias)


@dataclass
class BlockConfig:
    """The shape of one pre-norm transformer block; a family's config holds one (or builds it)."""

    dim: int = 256
    n_head: int = 4
    n_kv_head: int | None = None  # None: as many as n_head
    mlp_hidden: int | None = None  # None: 4 * dim
    activation: Activation = "gelu"
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    norm_eps: float = 1e-5
    bias: bool = True  # on every linear and norm
    key_bias: bool | None = None  # Whisper has none on its keys (it would cancel in the softmax)
    qkv_bias: bool | None = None  # on the query/key/value projections (None: bias); Stable Diffusion has none there
    cross_dim: int | None = None  # width of what cross-attention reads (None: dim)
    post_norm: bool = False  # True: the norm after each residual sum, x = ln(x + f(x)) (Vaswani 2017, BERT)


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + attn(ln(x))``, then (``cross=True``) ``x + cross_attn(ln(x), context)``, then
    ``x + mlp(ln(x))``. With ``cfg.post_norm`` each norm comes after its residual sum instead, ``ln(x + attn(x))``
    and so on: the original transformer's and BERT's layout (Devlin et al. 2019); the parameters are the same."""

    def __init__(self, cfg: BlockConfig, cross: bool = False):
        super().__init__()
        qkv_bias = cfg.bias if cfg.qkv_bias is None else cfg.qkv_bias
        attn = dict(n_kv_head=cfg.n_kv_head, bias=qkv_bias, key_bias=cfg.key_bias, out_bias=cfg.bias)
        self.attn = Attention(cfg.dim, cfg.n_head, **attn)
        self.attn_ln = norm(cfg.norm, cfg.dim, cfg.norm_eps, cfg.bias)
        self.cross_attn = Attention(cfg.dim, cfg.n_head, kv_dim=cfg.cross_dim, **attn) if cross else None
        self.cross_attn_ln = norm(cfg.norm, cfg.dim, cfg.norm_eps, cfg.bias) if cross else None
        self.mlp = mlp(cfg.dim, cfg.mlp_hidden or 4 * cfg.dim, cfg.activation, cfg.bias)
        self.mlp_ln = norm(cfg.norm, cfg.dim, cfg.norm_eps, cfg.bias)
        self.post_norm = cfg.post_norm

    def forward(
        self,
        x: torch.Tensor,  # (B, T, dim)
        context: torch.Tensor | None = None,  # (B, S, cross_dim) what cross-attention reads
        *,
        cache: KVCache | None = None,
        layer: int = 0,
        causal: bool = False,
        mask: torch.Tensor | None = None,
        rope: RotaryEmbedding | None = None,
        cross_kv: tuple[torch.Tensor, torch.Tensor] | None = None,  # cross-attention keys/values, if computed
    ) -> torch.Tensor:
        if self.post_norm:
            x = self.attn_ln(x + self.attn(x, cache=cache, layer=layer, causal=causal, mask=mask, rope=rope))
            if self.cross_attn is not None:
                x = self.cross_attn_ln(x + self.cross_attn(x, context, kv=cross_kv))
            return self.mlp_ln(x + self.mlp(x))
        x = x + self.attn(self.attn_ln(x), cache=cache, layer=layer, causal=causal, mask=mask, rope=rope)
        if self.cross_attn is not None:
            x = x + self.cross_attn(self.cross_attn_ln(x), context, kv=cross_kv)
        return x + self.mlp(self.mlp_ln(x))
