"""CLIP: an image tower and a text tower that map into one space (Radford et al. 2021, "Learning Transferable Visual
Models From Natural Language Supervision", section 2.4 and figure 3).

The image tower is a Vision Transformer (Dosovitskiy et al. 2021): the image cut into P x P patches by one strided
convolution, a learned class token in front, learned positions, a LayerNorm *before* the transformer (``ln_pre``,
CLIP's addition), pre-norm blocks, a LayerNorm on the class token (``ln_post``) and a linear projection into the
joint space. The text tower is a causal transformer over byte-pair tokens (GPT-2 shaped, Radford et al. 2019) with
learned positions; its output at the end-of-text token, after a final LayerNorm, is projected into the same space.
Both towers are built from :class:`genlab.nn.attention.TransformerBlock`; the text tower is what latent diffusion
conditions on (:meth:`TextTransformer.hidden` gives its per-token states). Instead of a text tower trained here, a
CLIP may borrow a pretrained sentence encoder, kept frozen, and learn only a linear map from its sentence
embeddings into the joint space (:class:`BorrowedText`, ``CLIPConfig.minilm``). LiT (Zhai et al. 2022) locks a
pretrained image tower and trains the text side; this is the mirror image.

The similarity of an image and a text is the cosine of their embeddings times a learned temperature
``exp(logit_scale)``, initialised to 1 / 0.07 and clamped at 100 (section 2.5).

Weight names are genlab's own; ``clip/convert.py`` maps HF ``CLIPModel`` and open_clip / OpenAI state dicts onto
them. Reading order: configs, presets, image tower, text towers, the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.attention import BlockConfig, TransformerBlock
from .minilm import MiniLM, MiniLMConfig

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)  # the pixel statistics OpenAI's CLIP was trained with
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class VisionConfig:
    image_size: int = 224
    patch_size: int = 32
    width: int = 768
    layers: int = 12
    heads: int = 12
    mlp_hidden: int | None = None  # None: 4 * width
    activation: Literal["quick_gelu", "gelu"] = "quick_gelu"
    norm_eps: float = 1e-5
    channels: int = 3
    mean: tuple[float, ...] = OPENAI_MEAN  # per-channel pixel normalisation of inputs in [0, 1]
    std: tuple[float, ...] = OPENAI_STD
    resize_mode: Literal["crop", "pad"] = "crop"  # how a non-square image is squared (clip/images.py)


@dataclass
class TextConfig:
    vocab_size: int = 49408
    context_length: int = 77
    width: int = 512
    layers: int = 12
    heads: int = 8
    mlp_hidden: int | None = None  # None: 4 * width
    activation: Literal["quick_gelu", "gelu"] = "quick_gelu"
    norm_eps: float = 1e-5
    # Which position's state is the text's: "argmax" = the largest token id (OpenAI's rule: its end-of-text token
    # has the largest id), "eos" = the first ``eos_token_id`` (HF's rule when a config's eos_token_id is not 2).
    pool: Literal["argmax", "eos"] = "argmax"
    eos_token_id: int = 49407
    bos_token_id: int = 49406
    pad_token_id: int = 49407  # what fills a row after its end-of-text (never read: the mask is causal)


@dataclass
class CLIPConfig:
    """Both towers and the joint space; stored in every CLIP checkpoint."""

    embed_dim: int = 512
    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    logit_scale_init: float = math.log(1 / 0.07)
    logit_scale_max: float = 100.0  # the temperature is clamped at this (section 2.5)
    # None: the text tower is ``text``'s transformer, trained here. Else this frozen sentence encoder with a trained
    # projection (``text`` is then unused); its weights are a checkpoint component, never copied into the model file.
    minilm: MiniLMConfig | None = None


PRESETS: dict[str, CLIPConfig] = {
    # The shapes of OpenAI's ViT-B/32 (151M parameters).
    "vit-b-32": CLIPConfig(),
    # The bundled model (recipes/emoji_clip.py): 32 px emoji and clip art, a few MB. The text tower's vocabulary
    # is the BPE alphabet trained on the captions; its special tokens come first, so it pools at "eos".
    "emoji-clip": CLIPConfig(
        embed_dim=128,
        vision=VisionConfig(image_size=32, patch_size=4, width=128, layers=4, heads=4, activation="gelu",
                            mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), resize_mode="pad"),
        text=TextConfig(vocab_size=2048, context_length=32, width=128, layers=3, heads=4, activation="gelu",
                        pool="eos", bos_token_id=0, eos_token_id=1, pad_token_id=1),
    ),
    # The same image tower and joint space, the frozen all-MiniLM-L6-v2 as the text tower: does borrowed language
    # help? (benchmarks/clip_eval.py compares the two.)
    "emoji-clip-minilm": CLIPConfig(
        embed_dim=128,
        vision=VisionConfig(image_size=32, patch_size=4, width=128, layers=4, heads=4, activation="gelu",
                            mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), resize_mode="pad"),
        minilm=MiniLMConfig(),
    ),
    # A few thousand parameters, for tests.
    "tiny": CLIPConfig(
        embed_dim=16,
        vision=VisionConfig(image_size=16, patch_size=4, width=32, layers=2, heads=2, mean=(0.5, 0.5, 0.5),
                            std=(0.5, 0.5, 0.5)),
        text=TextConfig(vocab_size=300, context_length=16, width=32, layers=2, heads=2, pool="eos",
                        bos_token_id=0, eos_token_id=1, pad_token_id=1),
    ),
}


def block_config(width: int, heads: int, mlp_hidden: int | None, activation: str, eps: float) -> BlockConfig:
    return BlockConfig(dim=width, n_head=heads, mlp_hidden=mlp_hidden, activation=activation, norm_eps=eps)


class VisionTransformer(nn.Module):
    """Image ``(B, C, H, W)``, normalised pixels -> embedding ``(B, embed_dim)`` (not unit length)."""

    def __init__(self, cfg: VisionConfig, embed_dim: int):
        super().__init__()
        if cfg.image_size % cfg.patch_size:
            raise ValueError(f"image_size {cfg.image_size} is not a multiple of patch_size {cfg.patch_size}")
        self.cfg = cfg
        grid = cfg.image_size // cfg.patch_size
        scale = cfg.width**-0.5
        self.patch_embed = nn.Conv2d(cfg.channels, cfg.width, cfg.patch_size, stride=cfg.patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(cfg.width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, cfg.width))
        self.ln_pre = nn.LayerNorm(cfg.width, eps=cfg.norm_eps)
        block = block_config(cfg.width, cfg.heads, cfg.mlp_hidden, cfg.activation, cfg.norm_eps)
        self.blocks = nn.ModuleList(TransformerBlock(block) for _ in range(cfg.layers))
        self.ln_post = nn.LayerNorm(cfg.width, eps=cfg.norm_eps)
        self.proj = nn.Linear(cfg.width, embed_dim, bias=False)

    def tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """The transformer's output at every position ``(B, 1 + grid**2, width)``; position 0 is the class token."""
        x = self.patch_embed(pixels.to(self.patch_embed.weight.dtype))  # (B, width, grid, grid)
        x = x.flatten(2).transpose(1, 2)  # (B, grid**2, width)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)  # (B, 1, width)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)  # (B, 1 + grid**2, width)
        x = self.ln_pre(x)
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.proj(self.ln_post(self.tokens(pixels)[:, 0]))  # (B, embed_dim)


class TextTransformer(nn.Module):
    """Token ids ``(B, T)`` (start, text, end-of-text, padding) -> embedding ``(B, embed_dim)`` (not unit length)."""

    def __init__(self, cfg: TextConfig, embed_dim: int):
        super().__init__()
        self.cfg = cfg
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.width)
        self.positional_embedding = nn.Parameter(torch.empty(cfg.context_length, cfg.width))
        block = block_config(cfg.width, cfg.heads, cfg.mlp_hidden, cfg.activation, cfg.norm_eps)
        self.blocks = nn.ModuleList(TransformerBlock(block) for _ in range(cfg.layers))
        self.ln_final = nn.LayerNorm(cfg.width, eps=cfg.norm_eps)
        self.proj = nn.Linear(cfg.width, embed_dim, bias=False)
        self.init_weights()

    def init_weights(self) -> None:
        """OpenAI CLIP's text-tower initialisation (``initialize_parameters`` in its ``model.py``): residual-branch
        outputs scaled down with depth, embeddings at std 0.02 and 0.01."""
        w, L = self.cfg.width, self.cfg.layers
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        proj_std, attn_std, fc_std = w**-0.5 * (2 * L) ** -0.5, w**-0.5, (2 * w) ** -0.5
        for block in self.blocks:
            for lin in (block.attn.query, block.attn.key, block.attn.value):
                nn.init.normal_(lin.weight, std=attn_std)
            nn.init.normal_(block.attn.out.weight, std=proj_std)
            nn.init.normal_(block.mlp[0].weight, std=fc_std)
            nn.init.normal_(block.mlp[2].weight, std=proj_std)
        nn.init.normal_(self.proj.weight, std=w**-0.5)

    def hidden(self, tokens: torch.Tensor, skip_last: int = 0) -> torch.Tensor:
        """Per-token states after ``ln_final`` ``(B, T, width)``: what a text-conditioned denoiser cross-attends to.
        ``skip_last`` leaves out the last blocks (Stable Diffusion 2 reads the penultimate layer)."""
        T = tokens.shape[1]
        if T > self.cfg.context_length:
            raise ValueError(f"{T} tokens exceed the context length {self.cfg.context_length}")
        x = self.token_embedding(tokens) + self.positional_embedding[:T]  # (B, T, width)
        for block in self.blocks[: len(self.blocks) - skip_last]:
            x = block(x, causal=True)
        return self.ln_final(x)

    def end_positions(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B,)`` index of each row's end-of-text token: the pooled position."""
        if self.cfg.pool == "argmax":
            return tokens.argmax(dim=-1)
        return (tokens == self.cfg.eos_token_id).int().argmax(dim=-1)  # the first end-of-text

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.hidden(tokens)  # (B, T, width)
        pooled = x[torch.arange(x.shape[0], device=x.device), self.end_positions(tokens)]  # (B, width)
        return self.proj(pooled)  # (B, embed_dim)


class BorrowedText(nn.Module):
    """Token ids ``(B, T)`` -> embedding ``(B, embed_dim)``: a frozen sentence encoder's unit sentence embedding
    (``encoder``, clip/minilm.py), then the trained linear map ``proj`` into the joint space."""

    def __init__(self, cfg: MiniLMConfig, embed_dim: int):
        super().__init__()
        self.encoder = MiniLM(cfg)
        self.proj = nn.Linear(cfg.width, embed_dim, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.proj(self.encoder.embed(tokens))  # (B, embed_dim)


class CLIP(nn.Module):
    """Both towers and the learned temperature. ``forward`` gives the ``(B_img, B_txt)`` logits of figure 3."""

    def __init__(self, cfg: CLIPConfig):
        super().__init__()
        self.cfg = cfg
        self.visual = VisionTransformer(cfg.vision, cfg.embed_dim)
        if cfg.minilm is None:
            self.text: TextTransformer | BorrowedText = TextTransformer(cfg.text, cfg.embed_dim)
        else:
            self.text = BorrowedText(cfg.minilm, cfg.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(float(cfg.logit_scale_init)))

    def encode_image(self, pixels: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        x = self.visual(pixels)  # (B, embed_dim)
        return F.normalize(x, dim=-1) if normalize else x

    def encode_text(self, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        x = self.text(tokens)  # (B, embed_dim)
        return F.normalize(x, dim=-1) if normalize else x

    def temperature(self) -> torch.Tensor:
        """``exp(logit_scale)``, clamped at ``logit_scale_max``."""
        return self.logit_scale.clamp(max=math.log(self.cfg.logit_scale_max)).exp()

    def forward(self, pixels: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Scaled cosine similarities, ``(B_img, B_txt)``; the transpose is the text-to-image logits."""
        return self.temperature() * self.encode_image(pixels) @ self.encode_text(tokens).t()
