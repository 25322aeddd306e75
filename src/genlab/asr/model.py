"""Whisper's encoder-decoder transformer (Radford et al. 2022, "Robust Speech Recognition via Large-Scale Weak
Supervision", figure 1).

The encoder turns a 30 s log-mel window ``(B, n_mels, 3000)`` into ``(B, 1500, d)`` audio features with two
convolutions (the second halves time) and pre-norm transformer blocks over fixed sinusoidal positions. The
decoder is a causal transformer over text tokens with learned positions that cross-attends to those features;
its output is read through the transposed token embedding (tied weights).

Attention is ``F.scaled_dot_product_attention``. Incremental decoding keeps keys and values in an explicit
:class:`KVCache` passed to :meth:`Whisper.logits` (no forward hooks, no hidden state). Without a cache the
forward pass is plain and differentiable, ready for the shared trainer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import pick_preset
from ..nn.linear import (
    InferenceWeights,
    bound_linear,
    bound_product,
    fused_linear,
    inference_path,
    packed_linear,
    packed_linears,
)


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


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> torch.Tensor:
    """Sinusoidal positions ``(length, channels)``: sin in the first half of the channels, cos in the second."""
    assert channels % 2 == 0
    log_inc = math.log(max_timescale) / (channels // 2 - 1)
    inv = torch.exp(-log_inc * torch.arange(channels // 2, dtype=torch.float32))
    t = torch.arange(length, dtype=torch.float32)[:, None] * inv[None, :]  # (length, channels/2)
    return torch.cat([t.sin(), t.cos()], dim=1)


class KVCache:
    """Keys and values of every decoder layer, kept between decoding steps.

    Self-attention keys/values are written into tensors preallocated for ``max_len`` positions, so a step costs
    no concatenation; ``length`` positions are filled. Cross-attention keys/values depend only on the audio and
    are computed once. Beam search reorders the batch with :meth:`reorder`.
    """

    def __init__(
        self, model: Whisper, audio_features: torch.Tensor, max_len: int | None = None, group: int = 1,
        audio_kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ):
        """``group`` hypotheses (beams or samples) per audio row: the self-attention cache has
        ``B * group`` rows, the audio keys/values stay at ``B`` rows and every hypothesis of a window reads the
        same ones (a beam step then reads each window's keys/values once, not once per beam). ``audio_kv``:
        those keys/values if already computed (:meth:`Whisper.audio_kv`)."""
        cfg = model.config
        B = audio_features.shape[0] * group
        H, Dh = cfg.n_text_head, cfg.n_text_state // cfg.n_text_head
        self.max_len = max_len or cfg.n_text_ctx
        dtype, device = audio_features.dtype, audio_features.device
        self.self_k = [torch.zeros(B, H, self.max_len, Dh, dtype=dtype, device=device) for _ in model.decoder.blocks]
        self.self_v = [torch.zeros_like(k) for k in self.self_k]
        self.cross_kv = audio_kv if audio_kv is not None else model.audio_kv(audio_features)
        self.length = 0
        # One-token steps run through products bound once here (the weights do not change while decoding).
        self.step_plan = model.decoder.step_plan(B, audio_features)
        # One query row a step (greedy decoding of one window): its cross-attention reads copies of the audio keys and
        # values laid out (Dh, S), as two products along the audio positions, faster than SDPA reads them (Whisper
        # base, one thread of an AMD EPYC: 0.66 against 0.85 ms a layer, 6 MB each; a step 22.4 against 24.0 ms). Beams
        # and batches keep SDPA (five rows on two threads were slower this way in an earlier measurement).
        self.cross_kv_t = None
        if B == 1 and self.step_plan is not None:
            self.cross_kv_t = [(k.transpose(-2, -1).contiguous(), v.transpose(-2, -1).contiguous())
                               for k, v in self.cross_kv]

    def reorder(self, index: torch.Tensor) -> None:
        """Keep hypotheses ``index`` (beam search picks which survive). The index must keep each hypothesis
        within its window's group of rows, so the audio keys/values need no reordering; only the rows that change
        are copied, and only their filled positions of the self-attention cache."""
        changed = (index != torch.arange(index.numel(), device=index.device)).nonzero()[:, 0]
        if changed.numel() == 0:
            return
        source, n = index[changed], self.length
        for t in self.self_k + self.self_v:
            t[changed, :, :n] = t[source, :, :n]  # the right side is a copy: rows may swap


class MultiHeadAttention(nn.Module):
    def __init__(self, d: int, n_head: int, pack: bool = False):
        super().__init__()
        self.n_head = n_head
        self.pack = pack  # inference through repacked weights (genlab.nn.linear), for the decoder's few rows
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d, bias=False)  # Whisper has no key bias (it would cancel in the softmax)
        self.value = nn.Linear(d, d)
        self.out = nn.Linear(d, d)
        # int8 quantization (genlab.asr.api.quantize_int8) sets a quantized copy of query|key|value stacked: one
        # product per step instead of three (fp32 stacks them in its weight copies, genlab.nn.linear).
        self.stacked_qkv: nn.Module | None = None

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        return x.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, Dh)

    def _linear(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return packed_linear(layer, x) if self.pack else layer(x)

    def _linears(self, layers: tuple[nn.Module, ...], x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return packed_linears(layers, x) if self.pack else tuple(layer(x) for layer in layers)

    def project_kv(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self._linears((self.key, self.value), source)
        return self._heads(k), self._heads(v)

    def forward(
        self,
        x: torch.Tensor,  # (B, T, C)
        kv: tuple[torch.Tensor, torch.Tensor] | None = None,  # precomputed (B, H, S, Dh) keys and values
        source: torch.Tensor | None = None,  # (B, S, C) what to attend to when kv is None (default: x)
        causal: bool = False,
        mask: torch.Tensor | None = None,  # (T, S) bool, True = may attend
        return_weights: bool = False,
        cache: tuple[torch.Tensor, torch.Tensor, int] | None = None,  # self-attention key/value buffers, offset
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, T, C = x.shape
        if kv is None and source is None:
            # Self-attention: queries, keys and values in one product (a decoding step reads one matrix).
            if self.stacked_qkv is not None:
                qkv = self.stacked_qkv(x).split(C, dim=-1)
            else:
                qkv = self._linears((self.query, self.key, self.value), x)
            q, k, v = (self._heads(t) for t in qkv)
            if cache is not None:
                # Append the new keys/values to the preallocated buffers; attend to every filled position.
                k_buf, v_buf, offset = cache
                k_buf[:, :, offset : offset + T] = k
                v_buf[:, :, offset : offset + T] = v
                k, v = k_buf[:, :, : offset + T], v_buf[:, :, : offset + T]
        else:
            q = self._heads(self._linear(self.query, x))  # (B, H, T, Dh)
            k, v = kv if kv is not None else self.project_kv(source)
        weights = None
        if return_weights:
            # Word timing reads the attention pattern itself, which SDPA does not return.
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (B, H, T, S)
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            elif causal:
                scores = scores.masked_fill(torch.ones(T, k.shape[2], dtype=torch.bool).triu(1), float("-inf"))
            weights = scores.float().softmax(dim=-1)
            y = weights.to(v.dtype) @ v
        elif k.shape[0] < B:
            # g hypotheses share each row of keys/values (cache of a beam search): their queries become g * T
            # query positions of that row, so the keys are read once. (Cross-attention only: no mask.)
            g = B // k.shape[0]
            qg = q.view(k.shape[0], g, self.n_head, T, -1).transpose(1, 2).reshape(k.shape[0], self.n_head, g * T, -1)
            y = F.scaled_dot_product_attention(qg, k, v)  # (B / g, H, g * T, Dh)
            y = y.view(k.shape[0], self.n_head, g, T, -1).transpose(1, 2).reshape(B, self.n_head, T, -1)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and mask is None)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self._linear(self.out, y), weights


class ResidualAttentionBlock(nn.Module):
    """Pre-norm block: self-attention, (decoder only) cross-attention to the audio, then a 4x GELU MLP."""

    def __init__(self, d: int, n_head: int, cross_attention: bool = False):
        super().__init__()
        # The decoder (the blocks with cross-attention) runs a few rows per step: its linears read copies of the
        # weights laid out for that at inference (genlab.nn.linear). The encoder's 1500-row products gain nothing
        # measurable from a repacked copy (base, 2 threads of an Intel Xeon: 0.59 s a window either way), so it
        # keeps the plain weights and no second copy.
        self.pack = cross_attention
        self.attn = MultiHeadAttention(d, n_head, pack=cross_attention)
        self.attn_ln = nn.LayerNorm(d)
        self.cross_attn = MultiHeadAttention(d, n_head, pack=cross_attention) if cross_attention else None
        self.cross_attn_ln = nn.LayerNorm(d) if cross_attention else None
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.mlp_ln = nn.LayerNorm(d)

    def forward(
        self,
        x: torch.Tensor,  # (B, T, C)
        audio: torch.Tensor | None = None,  # (B, S, C) encoder output, decoder only
        self_cache: tuple[torch.Tensor, torch.Tensor, int] | None = None,  # key/value buffers and offset
        cross_kv: tuple[torch.Tensor, torch.Tensor] | None = None,
        causal: bool = False,
        mask: torch.Tensor | None = None,
        return_cross_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = x + self.attn(self.attn_ln(x), causal=causal, mask=mask, cache=self_cache)[0]
        weights = None
        if self.cross_attn is not None:
            y, weights = self.cross_attn(
                self.cross_attn_ln(x), kv=cross_kv, source=audio, return_weights=return_cross_weights
            )
            x = x + y
        if self.pack:
            fc1, gelu, fc2 = self.mlp
            x = x + packed_linear(fc2, gelu(packed_linear(fc1, self.mlp_ln(x))))
        else:
            x = x + self.mlp(self.mlp_ln(x))
        return x, weights


class AudioEncoder(nn.Module):
    def __init__(self, cfg: WhisperConfig):
        super().__init__()
        d = cfg.n_audio_state
        self.conv1 = nn.Conv1d(cfg.n_mels, d, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(d, d, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positional_embedding", sinusoids(cfg.n_audio_ctx, d), persistent=False)
        self.blocks = nn.ModuleList(ResidualAttentionBlock(d, cfg.n_audio_head) for _ in range(cfg.n_audio_layer))
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
            x = block(x)[0]
        return self.ln_post(x)


class TextDecoder(nn.Module):
    def __init__(self, cfg: WhisperConfig):
        super().__init__()
        d = cfg.n_text_state
        self.token_embedding = nn.Embedding(cfg.n_vocab, d)
        self.positional_embedding = nn.Parameter(torch.zeros(cfg.n_text_ctx, d))
        self.blocks = nn.ModuleList(
            ResidualAttentionBlock(d, cfg.n_text_head, cross_attention=True) for _ in range(cfg.n_text_layer)
        )
        self.ln = nn.LayerNorm(d)
        # The output projection is the transposed token embedding. int8 quantization sets ``head`` to an untied
        # quantized copy: at one token per step the (d, 51865) product is the largest read of the step.
        self.head: nn.Module | None = None
        self._output_weights = InferenceWeights()  # copies of the embedding for the tied output product

    def forward(
        self,
        tokens: torch.Tensor,  # (B, T) new tokens
        audio_features: torch.Tensor,  # (B, S, d)
        cache: KVCache | None = None,
        positions: list[int] | None = None,
        return_cross_weights: bool | list[bool] = False,  # for every layer, or per layer
        audio_kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None,  # the cross-attention's, if computed
    ) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
        B, T = tokens.shape
        offset = cache.length if cache is not None else 0
        if offset + T > self.positional_embedding.shape[0]:
            raise ValueError(f"{offset + T} tokens exceed n_text_ctx={self.positional_embedding.shape[0]}")
        if T == 1 and cache is not None and cache.step_plan is not None and positions == [-1]:
            return self._step(tokens, cache)[:, None], []
        x = self.token_embedding(tokens) + self.positional_embedding[offset : offset + T]  # (B, T, d)
        x = x.to(audio_features.dtype)
        mask = None
        if cache is not None and offset > 0 and T > 1:
            # New tokens see every cached position and the new ones up to themselves.
            mask = torch.ones(T, offset + T, dtype=torch.bool, device=x.device).tril(offset)
        cross_weights = []
        if isinstance(return_cross_weights, bool):
            return_cross_weights = [return_cross_weights] * len(self.blocks)
        for i, block in enumerate(self.blocks):
            self_cache, cross_kv = None, audio_kv[i] if audio_kv is not None else None
            if cache is not None:
                self_cache, cross_kv = (cache.self_k[i], cache.self_v[i], offset), cache.cross_kv[i]
            x, w = block(
                x, audio_features, self_cache=self_cache, cross_kv=cross_kv,
                causal=cache is None or offset == 0, mask=mask, return_cross_weights=return_cross_weights[i],
            )
            cross_weights.append(w)
        if cache is not None:
            cache.length = offset + T
        if positions is not None:
            # Decoding needs the next-token distribution only (and no-speech at <|startoftranscript|>): the
            # (T, d) x (d, 51865) vocabulary product dominates a step, so skip it for the other positions.
            x = x[:, positions]
        x = self.ln(x)
        if self.head is not None:
            logits = self.head(x)  # (B, T, n_vocab)
        elif inference_path(x, self.token_embedding.weight):
            logits = fused_linear(x, (self.token_embedding.weight,), (None,), self._output_weights)  # tied weights
        else:
            logits = x @ self.token_embedding.weight.to(x.dtype).T
        return logits.float(), cross_weights

    def step_plan(self, rows: int, audio_features: torch.Tensor) -> list | None:
        """Per layer, its layer norms and products bound for ``rows`` rows (:func:`genlab.nn.linear.bound_linear`),
        and last the final norm and the output product; None where the one-token path does not apply (training,
        bf16 or CUDA: those steps run :meth:`forward`)."""
        if not inference_path(audio_features, self.token_embedding.weight):
            return None
        plan = []
        for block in self.blocks:
            attn, cross = block.attn, block.cross_attn
            qkv = attn.stacked_qkv if attn.stacked_qkv is not None else bound_linear(
                (attn.query, attn.key, attn.value), rows
            )
            plan.append((
                block.attn_ln, qkv,
                bound_linear((attn.out,), rows),
                block.cross_attn_ln, bound_linear((cross.query,), rows), bound_linear((cross.out,), rows),
                block.mlp_ln, bound_linear((block.mlp[0],), rows), bound_linear((block.mlp[2],), rows),
            ))
        head = self.head
        if head is None:  # the tied output product, through the decoder's copies of the embedding
            head = bound_product((self.token_embedding.weight,), (None,), self._output_weights, rows)
        plan.append((self.ln, head))
        return plan

    def _step(self, tokens: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """:meth:`forward` for one new token per row ``(N, 1)`` with a cache, written flat: ``(N, n_vocab)`` logits
        of the next token. The same kernels on the same copies, so the same numbers, without the calls and checks
        between them (but for one row's cross-attention: two products over the (Dh, S) copies of
        :class:`KVCache`, equal to SDPA's up to fp32 rounding). Whisper base, 2 threads, 17.0 against 19.1 ms per
        greedy token, 26.7 against 28.0 at beam 5 (``decoder_linear_2threads.json``)."""
        N, pos = tokens.shape[0], cache.length
        H = self.blocks[0].attn.n_head
        d = self.token_embedding.weight.shape[1]
        x = self.token_embedding(tokens[:, 0]) + self.positional_embedding[pos]  # (N, d)
        for i, (ln1, qkv, out, ln2, cross_q, cross_out, ln3, fc1, fc2) in enumerate(cache.step_plan[:-1]):
            q, k, v = qkv(ln1(x)).view(N, 3, H, 1, d // H).unbind(1)  # each (N, H, 1, Dh)
            cache.self_k[i][:, :, pos : pos + 1] = k
            cache.self_v[i][:, :, pos : pos + 1] = v
            y = F.scaled_dot_product_attention(q, cache.self_k[i][:, :, : pos + 1], cache.self_v[i][:, :, : pos + 1])
            x = x + out(y.view(N, d))
            ck, cv = cache.cross_kv[i]
            q = cross_q(ln2(x))
            if cache.cross_kv_t is not None:  # one row: scores over the (Dh, S) keys, then the (Dh, S) values
                kt, vt = cache.cross_kv_t[i]
                p = ((q.view(H, 1, d // H) * (d // H) ** -0.5) @ kt[0]).softmax(dim=-1)  # (H, 1, S)
                y = (vt[0] @ p.transpose(1, 2)).view(1, d)  # (H, Dh, 1) -> (1, d)
            elif ck.shape[0] < N:  # g hypotheses per audio row share its keys/values: g query positions of that row
                g = N // ck.shape[0]
                y = F.scaled_dot_product_attention(q.view(ck.shape[0], g, H, d // H).transpose(1, 2), ck, cv)
                y = y.transpose(1, 2).reshape(N, d)
            else:
                y = F.scaled_dot_product_attention(q.view(N, H, 1, d // H), ck, cv).view(N, d)
            x = x + cross_out(y)
            x = x + fc2(F.gelu(fc1(ln3(x))))
        cache.length = pos + 1
        ln, head = cache.step_plan[-1]
        return head(ln(x)).float()


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

    def logits(
        self,
        tokens: torch.Tensor,
        audio_features: torch.Tensor,
        cache: KVCache | None = None,
        positions: list[int] | None = None,
    ) -> torch.Tensor:
        """``(B, T)`` tokens -> ``(B, T, n_vocab)`` float32 logits (``(B, len(positions), n_vocab)`` if given).

        With a ``cache`` the tokens continue the cached ones and the cache is extended.
        """
        return self.decoder(tokens, audio_features, cache=cache, positions=positions)[0]

    def cross_attention_weights(
        self, tokens: torch.Tensor, audio_features: torch.Tensor, positions: list[int] | None = None,
        audio_kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """For teacher-forced ``tokens``: the logits at ``positions`` ``(B, len(positions), n_vocab)`` (none by
        default: timing needs only the attention) and, per decoder layer, the softmaxed cross-attention
        ``(B, H, T, S)`` in the layers that hold alignment heads (None in the others, which keep the fused
        attention kernel). One pass serves word timing and word probabilities. ``audio_kv``: the audio's
        keys/values if the decoding already computed them (:meth:`audio_kv`)."""
        layers = self.alignment_heads.any(dim=1).tolist()
        return self.decoder(
            tokens, audio_features, positions=positions or [], return_cross_weights=layers, audio_kv=audio_kv
        )

    def audio_kv(self, audio_features: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Every decoder layer's cross-attention keys and values ``(B, H, S, Dh)`` for ``(B, S, d)`` audio
        features: they depend on the audio only, so a window's decoding, its temperature fallbacks and its word
        alignment share one computation (base: 4.7 GFLOP per window)."""
        # Contiguous per head: every step reads them all, and SDPA on strided keys copies them first (~3x slower).
        return [
            tuple(t.contiguous() for t in block.cross_attn.project_kv(audio_features)) for block in self.decoder.blocks
        ]

    def new_cache(self, audio_features: torch.Tensor, max_len: int | None = None, group: int = 1) -> KVCache:
        return KVCache(self, audio_features, max_len, group)

    def forward(self, mel: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.logits(tokens, self.embed_audio(mel))
