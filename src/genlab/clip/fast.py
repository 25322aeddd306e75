"""CLIP embeddings on CPU, fast: the towers of :mod:`genlab.clip.model` read, not changed.

:func:`encode_image` and :func:`encode_text` compute what :meth:`CLIP.encode_image` and :meth:`CLIP.encode_text`
compute, in fp32 or under CPU bf16 autocast, with less work around the same arithmetic (oneDNN's fp32 products sum
in another order than the default kernel: the embeddings differ from the model's by about 1e-6 of their size;
``python benchmarks/clip_speed.py``, ``benchmarks/results/clip_speed.json``):

- every product reads a copy of its weights laid out for oneDNN, or packed by MKL for its row count once that
  count repeats (:func:`genlab.nn.linear.bound_linear`), and under bf16 autocast a bf16 copy, not one cast anew
  at every call; query, key and value are one product; the pooled row's products read the one-row copy;
- the patch embedding, a convolution whose stride is its kernel, is one product over the unfolded patches;
- only the pooled position leaves the last block: its attention has one query row (the class token; the text's
  end-of-text token, seeing up to itself), and its output projection and MLP run on that row alone;
- texts are cut after the batch's last end-of-text token: under the causal mask nothing after it is read;
- QuickGELU, ``h * sigmoid(1.702 h)``, is ``silu(1.702 h) / 1.702``: the first MLP product reads its weights and
  bias times 1.702 and the second its weights over 1.702, so the activation is one in-place SiLU (copies made once
  per weight version; the same function, summed in another order);
- causal self-attention is written out (scores, an additive mask, softmax, values) where PyTorch's fused CPU kernel
  is slower for it; non-causal attention, where the fused kernel is faster, keeps it.

Anything else (training, CUDA, fp16, a borrowed text tower) runs the plain model. Deleting this file and its two
calls in :mod:`genlab.clip.pipeline` (``model.encode_*`` instead) leaves working, slower embeddings.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.attention import QuickGELU, TransformerBlock
from ..nn.linear import InferenceWeights, bound_linear, bound_product, inference_path, version_key
from .model import CLIP, TextTransformer, VisionTransformer


def _precision(x: torch.Tensor, weight: torch.Tensor) -> torch.dtype | None:
    """The products' dtype: fp32 where :func:`inference_path` holds, bf16 under CPU bf16 autocast of fp32 weights
    without gradient; None where this path does not apply."""
    if inference_path(x, weight):
        return torch.float32
    cpu_bf16 = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    if cpu_bf16 and x.device.type == "cpu" and weight.dtype == torch.float32 and not torch.is_grad_enabled():
        return torch.bfloat16
    return None


def _plain_blocks(blocks: nn.ModuleList) -> bool:
    """Whether every block is the pre-norm self-attention block this path reads."""
    return all(type(b) is TransformerBlock and b.cross_attn is None and not b.post_norm
               and b.attn.n_kv_head == b.attn.n_head and isinstance(b.mlp, nn.Sequential) for b in blocks)


def _block(block: TransformerBlock, x: torch.Tensor, dtype: torch.dtype, causal: torch.Tensor | None,
           pooled: torch.Tensor | None = None) -> torch.Tensor:
    """``block(x, causal=causal is not None)`` ``(B, T, C)``, ``causal`` the additive ``(T, T)`` mask of
    :func:`_causal_mask`; with ``pooled`` ``(B,)``, only those positions' outputs ``(B, C)``."""
    B, T, C = x.shape
    attn, H = block.attn, block.attn.n_head
    qkv = bound_linear((attn.query, attn.key, attn.value), B * T, dtype, True)(block.attn_ln(x).view(B * T, C))
    q, k, v = qkv.view(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)  # (B, H, T, Dh) each
    if pooled is None:
        y = F.scaled_dot_product_attention(q, k, v) if causal is None else _causal_attention(q, k, v, causal)
    else:
        rows = torch.arange(B, device=x.device)
        q, x = q[rows, :, pooled].unsqueeze(2), x[rows, pooled].unsqueeze(1)  # (B, H, 1, Dh), (B, 1, C)
        # the pooled query sees the positions up to its own under the causal mask
        mask = None if causal is None else (torch.arange(T, device=x.device) <= pooled[:, None])[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, 1, Dh)
    Tq = y.shape[2]
    y = y.transpose(1, 2).reshape(B * Tq, C)  # (B * T', C)
    x = x + bound_linear((attn.out,), B * Tq, dtype, True)(y).view(B, Tq, C)
    x += _mlp(block.mlp, block.mlp_ln(x).view(B * Tq, C), dtype).view(B, Tq, C)
    return x if pooled is None else x[:, 0]


def _causal_mask(T: int, like: torch.Tensor) -> torch.Tensor:
    """``(T, T)``: 0 where a query may see a key (at or before its position), -inf after it."""
    return torch.full((T, T), float("-inf"), dtype=like.dtype, device=like.device).triu_(1)


def _causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``F.scaled_dot_product_attention(q, k, v, is_causal=True)`` for ``(B, H, T, Dh)`` inputs, written out
    (``mask`` from :func:`_causal_mask`)."""
    B, H, T, Dh = q.shape
    scores = torch.baddbmm(mask, q.reshape(B * H, T, Dh), k.reshape(B * H, T, Dh).transpose(1, 2),
                           alpha=Dh**-0.5)  # (B H, T, T)
    return torch.bmm(scores.softmax(-1), v.reshape(B * H, T, Dh)).view(B, H, T, Dh)


QUICK_GELU = 1.702  # QuickGELU(h) = h * sigmoid(1.702 h) = silu(1.702 h) / 1.702


def _mlp(mlp: nn.Sequential, h: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``mlp(h)`` for ``(rows, C)`` inputs; a QuickGELU MLP as SiLU between products with its factor folded in."""
    fc1, act, fc2 = mlp
    rows = h.shape[0]
    if type(act) is not QuickGELU:
        return bound_linear((fc2,), rows, dtype, True)(act(bound_linear((fc1,), rows, dtype, True)(h)))
    (w1, b1, w2), copies = _folded(mlp)
    h = bound_product((w1,), (b1,), copies[0], rows, dtype, exact_rows=True)(h)  # (rows, hidden): 1.702 fc1(h)
    return bound_product((w2,), (fc2.bias,), copies[1], rows, dtype, exact_rows=True)(F.silu(h, inplace=True))


def _folded(mlp: nn.Sequential) -> tuple[tuple[torch.Tensor, ...], tuple[InferenceWeights, InferenceWeights]]:
    """fc1's weight and bias times :data:`QUICK_GELU` and fc2's weight over it, with the kernels' copies of them;
    made again (copies and all) when any of those parameters changes. A cache on the module, not a parameter."""
    fc1, _, fc2 = mlp
    sources = (fc1.weight, fc1.bias, fc2.weight)
    key = version_key(sources)
    cached = mlp.__dict__.get("_quick_gelu_folded")
    if cached is None or cached[0] != key:
        w1, b1, w2 = (t.detach() if t is not None else None for t in sources)
        folded = (w1 * QUICK_GELU, b1 * QUICK_GELU if b1 is not None else None, w2 / QUICK_GELU)
        cached = mlp.__dict__["_quick_gelu_folded"] = (key, folded, (InferenceWeights(), InferenceWeights()))
    return cached[1], cached[2]


def _patches(visual: VisionTransformer, pixels: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The patch embedding ``(B, grid**2, width)``: each patch's pixels times the convolution's kernel."""
    B, C, S, _ = pixels.shape
    P, g = visual.cfg.patch_size, S // visual.cfg.patch_size
    patches = pixels.view(B, C, g, P, g, P).permute(0, 2, 4, 1, 3, 5).reshape(B * g * g, C * P * P)  # (B g g, C P P)
    weight = visual.patch_embed.weight.view(visual.cfg.width, C * P * P)  # the kernel as an (out, in) linear
    copies = visual.__dict__.setdefault("_patch_weights", InferenceWeights())  # a cache, not a parameter
    product = bound_product((weight,), (None,), copies, B * g * g, dtype, exact_rows=True)
    return product(patches).view(B, g * g, -1)  # (B, g*g, width)


def image_features(visual: VisionTransformer, pixels: torch.Tensor) -> torch.Tensor:
    """``visual(pixels)``: ``(B, C, H, W)`` normalised pixels -> ``(B, embed_dim)``."""
    dtype = _precision(pixels, visual.proj.weight)
    if dtype is None or not _plain_blocks(visual.blocks) or visual.patch_embed.bias is not None:
        return visual(pixels)
    x = _patches(visual, pixels.float(), dtype)  # (B, grid**2, width)
    cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)  # (B, 1, width)
    x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)  # (B, 1 + grid**2, width)
    x = visual.ln_pre(x)
    for block in visual.blocks[:-1]:
        x = _block(block, x, dtype, causal=None)
    x = _block(visual.blocks[-1], x, dtype, causal=None, pooled=x.new_zeros(x.shape[0], dtype=torch.long))
    return visual.proj(visual.ln_post(x))  # (B, embed_dim)


def text_features(text: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """``text(tokens)``: ``(B, T)`` token ids -> ``(B, embed_dim)``."""
    dtype = _precision(text.proj.weight, text.proj.weight) if isinstance(text, TextTransformer) else None
    if dtype is None or not _plain_blocks(text.blocks) or not 0 < tokens.shape[1] <= text.cfg.context_length \
            or tokens.shape[0] == 0:
        return text(tokens)
    pooled = text.end_positions(tokens)  # (B,)
    tokens = tokens[:, : int(pooled.max()) + 1]  # (B, T'): the causal mask never reads what follows
    x = text.token_embedding(tokens) + text.positional_embedding[: tokens.shape[1]]  # (B, T', width)
    mask = _causal_mask(tokens.shape[1], x)  # (T', T')
    for block in text.blocks[:-1]:
        x = _block(block, x, dtype, causal=mask)
    x = _block(text.blocks[-1], x, dtype, causal=mask, pooled=pooled)  # (B, width)
    return text.proj(text.ln_final(x))  # (B, embed_dim)


def encode_image(model: CLIP, pixels: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """:meth:`CLIP.encode_image`."""
    x = image_features(model.visual, pixels)  # (B, embed_dim)
    return F.normalize(x, dim=-1) if normalize else x


def encode_text(model: CLIP, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """:meth:`CLIP.encode_text`."""
    x = text_features(model.text, tokens)  # (B, embed_dim)
    return F.normalize(x, dim=-1) if normalize else x
