"""Latent diffusion steered by text (Rombach et al. 2022, "High-Resolution Image Synthesis with Latent Diffusion
Models", fig. 3): the three networks a text-to-image sample needs, in one module.

- ``vae``: the frozen KL autoencoder (:mod:`genlab.latent.vae`): images <-> latents;
- ``text``: a text tower, CLIP's (:class:`genlab.clip.model.TextTransformer`), read through :meth:`encode_text`:
  token ids ``(B, L)`` -> token states ``(B, L, D)`` and a pooled vector ``(B, E)``. It is either trained together
  with the UNet from scratch (the LDM paper's transformer text encoder, sec. 4.3.1) or a frozen CLIP checkpoint's
  (Stable Diffusion's choice);
- ``unet``: the diffusion UNet (:class:`genlab.diffusion.model.UNet`) over latents, with cross-attention to the
  token states in its attention stages (``UNetConfig.cross_attention_dim``).

Parameter names are those of the parts (``vae.encoder...``, ``text.blocks...``, ``unet.down_blocks...``), so a VAE
or CLIP checkpoint's own weights load into this module without renaming.
"""

from __future__ import annotations

import torch
from torch import nn

from ..clip.model import TextConfig, TextTransformer
from ..diffusion.model import UNet, UNetConfig
from .vae import AutoencoderKL, VAEConfig


class LatentDiffusion(nn.Module):
    """The denoiser, its autoencoder and its text tower; sampling lives in ``latent/pipeline.py``."""

    def __init__(self, unet: UNetConfig, vae: VAEConfig, text: TextConfig, text_embed_dim: int):
        super().__init__()
        self.unet = UNet(unet)
        self.vae = AutoencoderKL(vae)
        self.text = TextTransformer(text, text_embed_dim)

    def encode_text(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids ``(B, L)`` -> (token states ``(B, L, width)``, what the UNet cross-attends to; pooled vector
        ``(B, embed_dim)``, the state at each row's end-of-text token projected, CLIP's text embedding)."""
        states = self.text.hidden(tokens)  # (B, L, width)
        rows = torch.arange(tokens.shape[0], device=tokens.device)
        return states, self.text.proj(states[rows, self.text.end_positions(tokens)])  # (B, embed_dim)
