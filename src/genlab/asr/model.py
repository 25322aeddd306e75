"""Whisper's encoder-decoder transformer (Radford et al. 2022, "Robust Speech Recognition via Large-Scale Weak
Supervision", figure 1), built from genlab's shared blocks (:mod:`genlab.nn.attention`).

The encoder turns a 30 s log-mel window ``(B, n_mels, 3000)`` into ``(B, 1500, d)`` audio features with two
convolutions (the second halves time) and pre-norm transformer blocks over fixed sinusoidal positions. The
decoder is a causal transformer over text tokens with learned positions that cross-attends to those features;
its output is read through the transposed token embedding (tied weights).

Incremental decoding keeps the self-attention keys and values in an explicit :class:`~genlab.nn.attention.KVCache`
and the audio's keys and values (:meth:`Whisper.audio_kv`, computed once per window) beside it; both are passed in
by the caller. Without a cache the forward pass is plain and differentiable, ready for the shared trainer. The
CPU fast path for decoding (:mod:`genlab.asr.fast`) wraps this model; nothing here depends on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import pick_preset
from ..nn.attention import BlockConfig, KVCache, TransformerBlock
from ..nn.embeddings import sinusoids

AudioKV = list[tuple[torch.Tensor, torch.Tensor]]  # per decoder layer: the audio's (B, H, S, Dh) keys, values


@dataclass
class WhisperConfig:
    """Model dimensions, named as openai-whisper's ``ModelDimensions`` so its checkpoints map one to one."""

    n_mels: int = 80
    n_audio_ctx: int = 1500  # audio positions after the stride-2 conv: 30 s at 50 per second
    n_audio_state: int = 512
    n_audio_head: int = 8
    n_audio_layer: int = 6
    n_vocab: int = 51865
    n_text_ctx: int = 448
    n_text_state: int = 512
    n_text_head: int = 8
    n_text_layer: int = 6


def _dims(d: int, heads: int, layers: int, **kw) -> WhisperConfig:
    return WhisperConfig(
        n_audio_state=d, n_audio_head=heads, n_audio_layer=layers,
        n_text_state=d, n_text_head=heads, n_text_layer=layers, **kw,
    )


# The published shapes (tiny.en/base.en/small.en have one token fewer: 51864).
PRESETS: dict[str, WhisperConfig] = {
    "tiny": _dims(384, 6, 4),
    "base": _dims(512, 8, 6),
    "small": _dims(768, 12, 12),
    "medium": _dims(1024, 16, 24),
    "large-v3": _dims(1280, 20, 32, n_mels=128, n_vocab=51866),
}


def preset(name: str) -> WhisperConfig:
    return pick_preset(PRESETS, name, "Whisper preset")


def whisper_block(d: int, n_head: int) -> BlockConfig:
    """Whisper's block: LayerNorm, a 4x GELU MLP, biases everywhere but on the keys (it would cancel in the
    softmax)."""
    return BlockConfig(dim=d, n_head=n_head, activation="gelu", norm="layernorm", key_bias=False)


class AudioEncoder(nn.Module):
    def __init__(self, cfg: WhisperConfig):
        super().__init__()
        d = cfg.n_audio_state
        self.conv1 = nn.Conv1d(cfg.n_mels, d, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(d, d, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positional_embedding", sinusoids(cfg.n_audio_ctx, d), persistent=False)
        self.blocks = nn.ModuleList(
            TransformerBlock(whisper_block(d, cfg.n_audio_head)) for _ in range(cfg.n_audio_layer)
        )
        self.ln_post = nn.LayerNorm(d)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, 2 * T)`` log-mel -> ``(B, T, d)`` audio features (T = n_audio_ctx for a 30 s window)."""
        x = F.gelu(self.conv1(mel))  # (B, d, 2T)
        x = F.gelu(self.conv2(x))  # (B, d, T)
        x = x.transpose(1, 2)  # (B, T, d)
        if x.shape[1] > self.positional_embedding.shape[0]:
            raise ValueError(f"audio of {x.shape[1]} positions is longer than n_audio_ctx")
        x = x + self.positional_embedding[: x.shape[1]].to(x.dtype)
        for block in self.blocks:
            x = block(x)
        return self.ln_post(x)


class TextDecoder(nn.Module):
    def __init__(self, cfg: WhisperConfig):
        super().__init__()
        d = cfg.n_text_state
        self.token_embedding = nn.Embedding(cfg.n_vocab, d)
        self.positional_embedding = nn.Parameter(torch.zeros(cfg.n_text_ctx, d))
        self.blocks = nn.ModuleList(
            TransformerBlock(whisper_block(d, cfg.n_text_head), cross=True) for _ in range(cfg.n_text_layer)
        )
        self.ln = nn.LayerNorm(d)

    def embed(self, tokens: torch.Tensor, offset: int) -> torch.Tensor:
        """``(B, T)`` tokens at positions ``offset ..`` -> ``(B, T, d)``."""
        T = tokens.shape[1]
        if offset + T > self.positional_embedding.shape[0]:
            raise ValueError(f"{offset + T} tokens exceed n_text_ctx={self.positional_embedding.shape[0]}")
        return self.token_embedding(tokens) + self.positional_embedding[offset : offset + T]

    def hidden(
        self,
        tokens: torch.Tensor,  # (B, T) new tokens
        audio_features: torch.Tensor,  # (B', S, d); B' = B / g when g hypotheses share each window
        cache: KVCache | None = None,
        audio_kv: AudioKV | None = None,
        positions: list[int] | None = None,
    ) -> torch.Tensor:
        """The final-norm states ``(B, T, d)`` (``(B, len(positions), d)`` if given: decoding needs the next-token
        distribution only, and the vocabulary product dominates a step). With a ``cache`` the tokens continue the
        cached ones and the cache moves on."""
        offset = cache.length if cache is not None else 0
        x = self.embed(tokens, offset).to(audio_features.dtype)  # (B, T, d)
        for i, block in enumerate(self.blocks):
            kv = audio_kv[i] if audio_kv is not None else None
            x = block(x, audio_features, cache=cache, layer=i, causal=True, cross_kv=kv)
        if cache is not None:
            cache.advance(tokens.shape[1])
        if positions is not None:
            x = x[:, positions]
        return self.ln(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, d)`` final states -> ``(B, T, n_vocab)`` float32 logits, through the tied embedding."""
        return (x @ self.token_embedding.weight.to(x.dtype).T).float()

    def forward(self, tokens, audio_features, cache=None, audio_kv=None, positions=None) -> torch.Tensor:
        return self.logits(self.hidden(tokens, audio_features, cache, audio_kv, positions))

    def cross_attention_weights(
        self, tokens: torch.Tensor, audio_features: torch.Tensor, layers: list[bool], audio_kv: AudioKV | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
        """A teacher-forced pass that keeps the softmaxed cross-attention ``(B, H, T, S)`` of the ``layers`` marked
        True (None in the others, which keep SDPA): returns the final states ``(B, T, d)`` and the weights."""
        x = self.embed(tokens, 0).to(audio_features.dtype)
        weights = []
        for i, block in enumerate(self.blocks):
            kv = audio_kv[i] if audio_kv is not None else None
            x = x + block.attn(block.attn_ln(x), causal=True)
            if layers[i]:
                y, w = block.cross_attn.forward_with_weights(block.cross_attn_ln(x), audio_features, kv=kv)
            else:
                y, w = block.cross_attn(block.cross_attn_ln(x), audio_features, kv=kv), None
            x = x + y
            x = x + block.mlp(block.mlp_ln(x))
            weights.append(w)
        return self.ln(x), weights


class Whisper(nn.Module):
    """The encoder-decoder. ``forward(mel, tokens)`` gives teacher-forced logits ``(B, T, n_vocab)``."""

    def __init__(self, config: WhisperConfig):
        super().__init__()
        self.config = config
        self.encoder = AudioEncoder(config)
        self.decoder = TextDecoder(config)
        # Which cross-attention heads follow the spoken word (for DTW word timing); loaders set this from
        # the published alignment heads. Default: every head in the upper half of the decoder, as whisper does.
        heads = torch.zeros(config.n_text_layer, config.n_text_head, dtype=torch.bool)
        heads[config.n_text_layer // 2 :] = True
        self.register_buffer("alignment_heads", heads, persistent=False)

    def set_alignment_heads(self, pairs: list[tuple[int, int]]) -> None:
        heads = torch.zeros(self.config.n_text_layer, self.config.n_text_head, dtype=torch.bool)
        for layer, head in pairs:
            heads[layer, head] = True
        self.register_buffer("alignment_heads", heads, persistent=False)

    @property
    def is_multilingual(self) -> bool:
        return self.config.n_vocab >= 51865

    @property
    def num_languages(self) -> int:
        return self.config.n_vocab - 51765 - int(self.is_multilingual)

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, 3000)`` -> ``(B, 1500, d)``."""
        return self.encoder(mel)

    def audio_kv(self, audio_features: torch.Tensor) -> AudioKV:
        """Every decoder layer's cross-attention keys and values ``(B, H, S, Dh)`` for ``(B, S, d)`` audio
        features: they depend on the audio only, so a window's decoding, its temperature fallbacks and its word
        alignment share one computation."""
        # Contiguous per head: every step reads them all, and SDPA on strided keys copies them first.
        return [tuple(t.contiguous() for t in block.cross_attn.project_kv(audio_features))
                for block in self.decoder.blocks]

    def new_cache(self, rows: int, max_len: int | None = None, audio_kv: AudioKV | None = None) -> KVCache:
        """An empty self-attention cache for ``rows`` hypotheses of up to ``max_len`` tokens. (``audio_kv`` is
        for the fast path's cache, which lays the audio's keys out per step; this one does not need it.)"""
        cfg, p = self.config, self.decoder.token_embedding.weight
        return KVCache(cfg.n_text_layer, rows, cfg.n_text_head, cfg.n_text_state // cfg.n_text_head,
                       max_len or cfg.n_text_ctx, dtype=p.dtype, device=p.device)

    def logits(
        self, tokens: torch.Tensor, audio_features: torch.Tensor, cache: KVCache | None = None,
        positions: list[int] | None = None, audio_kv: AudioKV | None = None,
    ) -> torch.Tensor:
        """``(B, T)`` tokens -> ``(B, T, n_vocab)`` float32 logits (``(B, len(positions), n_vocab)`` if given).
        With a ``cache`` the tokens continue the cached ones and the cache is extended. ``audio_features`` may
        hold one row per group of ``B / B'`` hypotheses (beams of one window share its audio keys/values)."""
        return self.decoder(tokens, audio_features, cache, audio_kv, positions)

    def cross_attention_weights(
        self, tokens: torch.Tensor, audio_features: torch.Tensor, positions: list[int] | None = None,
        audio_kv: AudioKV | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
        """For teacher-forced ``tokens``: the logits at ``positions`` ``(B, len(positions), n_vocab)`` (none by
        default: timing needs only the attention) and, per decoder layer, the softmaxed cross-attention
        ``(B, H, T, S)`` in the layers that hold alignment heads (None in the others). One pass serves word
        timing and word probabilities."""
        layers = self.alignment_heads.any(dim=1).tolist()
        x, weights = self.decoder.cross_attention_weights(tokens, audio_features, layers, audio_kv)
        return self.decoder.logits(x[:, positions or []]), weights

    def forward(self, mel: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.logits(tokens, self.embed_audio(mel))
