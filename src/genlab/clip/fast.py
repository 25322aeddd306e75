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
- QuickGELU writes into its input (one new tensor instead of three, the same numbers).

Anything else (training, CUDA, fp16, a borrowed text tower) runs the plain model. Deleting this file and its two
calls in :mod:`genlab.clip.pipeline` (``model.encode_*`` instead) leaves working, slower embeddings.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.attention import QuickGELU, TransformerBlock
from ..nn.linear import InferenceWeights, bound_linear, bound_product, inference_path
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


def _block(block: TransformerBlock, x: torch.Tensor, dtype: torch.dtype, causal: bool,
           pooled: torch.Tensor | None = None) -> torch.Tensor:
    """``block(x, causal=causal)`` ``(B, T, C)``; with ``pooled`` ``(B,)``, only those positions' outputs
    ``(B, C)``."""
    B, T, C = x.shape
    attn, H = block.attn, block.attn.n_head
    qkv = bound_linear((attn.query, attn.key, attn.value), B * T, dtype, True)(block.attn_ln(x).view(B * T, C))
    q, k, v = qkv.view(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)  # (B, H, T, Dh) each
    mask = None
    if pooled is not None:
        rows = torch.arange(B, device=x.device)
        q, x = q[rows, :, pooled].unsqueeze(2), x[rows, pooled].unsqueeze(1)  # (B, H, 1, Dh), (B, 1, C)
        if causal:  # the pooled query sees the positions up to its own
            mask = (torch.arange(T, device=x.device) <= pooled[:, None])[:, None, None, :]  # (B, 1, 1, T)
            causal = False
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)  # (B, H, T', Dh)
    Tq = y.shape[2]
    y = y.transpose(1, 2).reshape(B * Tq, C)  # (B * T', C)
    x = x + bound_linear((attn.out,), B * Tq, dtype, True)(y).view(B, Tq, C)
    fc1, act, fc2 = block.mlp
    h = _activation(act, bound_linear((fc1,), B * Tq, dtype, True)(block.mlp_ln(x).view(B * Tq, C)))  # (B T', hid)
    x += bound_linear((fc2,), B * Tq, dtype, True)(h).view(B, Tq, C)
    return x if pooled is None else x[:, 0]


def _activation(act: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """``act(h)``; QuickGELU's ``h * sigmoid(1.702 h)`` with one new tensor, not three (the same numbers)."""
    if type(act) is not QuickGELU:
        return act(h)
    return h.mul_(torch.mul(h, 1.702).sigmoid_())


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
        x = _block(block, x, dtype, causal=False)
    x = _block(visual.blocks[-1], x, dtype, causal=False, pooled=x.new_zeros(x.shape[0], dtype=torch.long))
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
    for block in text.blocks[:-1]:
        x = _block(block, x, dtype, causal=True)
    x = _block(text.blocks[-1], x, dtype, causal=True, pooled=pooled)  # (B, width)
    return text.proj(text.ln_final(x))  # (B, embed_dim)


def encode_image(model: CLIP, pixels: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """:meth:`CLIP.encode_image`."""
    x = image_features(model.visual, pixels)  # (B, embed_dim)
    return F.normalize(x, dim=-1) if normalize else x


def encode_text(model: CLIP, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """:meth:`CLIP.encode_text`."""
    x = text_features(model.text, tokens)  # (B, embed_dim)
    return F.normalize(x, dim=-1) if normalize else x
