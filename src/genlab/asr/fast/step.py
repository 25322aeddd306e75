"""Whisper decoding on CPU, fast: the model of :mod:`genlab.asr.model` wrapped, not changed.

An autoregressive step multiplies a handful of rows (one token, or one per beam) by every decoder weight, so it
is bound by how fast the weights stream from memory. :class:`FastWhisper` keeps what the plain model computes and
changes only how a step reads its weights (measurements: ``benchmarks/results/decoder_linear*.json``):

- a one-token step runs a flat path of products bound once per window (:func:`genlab.nn.linear.bound_linear`):
  copies of the weights in the layout that reads fastest at that row count, query/key/value as one product, and
  no module calls or checks between them;
- one row's cross-attention reads ``(Dh, S)`` copies of the audio keys/values as two products (faster than SDPA
  at one query);
- the tied output product reads its own copy of the token embedding;
- ``int8=True`` quantizes every linear layer dynamically (weights int8 with a scale per output row, activations on
  the fly, as CTranslate2's int8) into a copy of the model, plus the self-attention's query/key/value stacked as
  one layer and an untied quantized copy of the output projection.

Anything the flat path does not cover (several new tokens, bf16, CUDA, training) runs the plain model. Deleting
this file leaves a working (slower) Whisper: the pipeline then decodes with the plain model.
"""

from __future__ import annotations

import copy
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ...nn.attention import KVCache
from ...nn.linear import InferenceWeights, bound_linear, bound_product, fused_linear, inference_path
from ..model import AudioKV, Whisper


class StepCache(KVCache):
    """A :class:`KVCache` that also holds the window's audio keys/values as the flat step reads them, and the
    step's products bound for this many rows (``plan``; None where the flat step does not apply)."""

    def __init__(self, model: Whisper, rows: int, max_len: int, audio_kv: AudioKV, plan: list | None):
        cfg, p = model.config, model.decoder.token_embedding.weight
        super().__init__(cfg.n_text_layer, rows, cfg.n_text_head, cfg.n_text_state // cfg.n_text_head, max_len,
                         dtype=p.dtype, device=p.device)
        self.audio_kv, self.plan = audio_kv, plan
        # One query row (greedy decoding of one window): its cross-attention reads (Dh, S) copies of the audio
        # keys and values, two products along the audio positions.
        self.audio_kv_t = None
        if rows == 1 and plan is not None:
            self.audio_kv_t = [(k.transpose(-2, -1).contiguous(), v.transpose(-2, -1).contiguous())
                               for k, v in audio_kv]


class FastWhisper:
    """A :class:`Whisper` for decoding on CPU with the same interface the decoding loop uses (``config``,
    ``embed_audio``, ``audio_kv``, ``new_cache``, ``logits``, ``cross_attention_weights``)."""

    def __init__(self, model: Whisper, int8: bool = False):
        self.int8 = int8
        self.model = _quantized(model) if int8 else model
        self.config = model.config
        self.head = None  # the output product: the tied embedding's copies, or an untied int8 copy
        self._qkv = [None] * len(model.decoder.blocks)  # int8: query|key|value stacked as one quantized layer
        self._output_weights = InferenceWeights()
        if int8:
            self.head, self._qkv = _int8_head_and_qkv(model)

    # The decoding loop keeps every thread: oneDNN and int8 split even one row over them.
    steps_use_all_threads = True

    @property
    def is_multilingual(self) -> bool:
        return self.model.is_multilingual

    @property
    def num_languages(self) -> int:
        return self.model.num_languages

    def __call__(self, mel: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """:meth:`Whisper.forward`: teacher-forced logits ``(B, T, n_vocab)``."""
        return self.logits(tokens, self.embed_audio(mel))

    def parameters(self):
        return self.model.parameters()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    @property
    def encoder(self) -> nn.Module:
        return self.model.encoder

    @property
    def decoder(self) -> nn.Module:
        return self.model.decoder

    @property
    def alignment_heads(self) -> torch.Tensor:
        return self.model.alignment_heads

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        return self.model.embed_audio(mel)

    def audio_kv(self, audio_features: torch.Tensor) -> AudioKV:
        return self.model.audio_kv(audio_features)

    def new_cache(self, rows: int, max_len: int | None = None, audio_kv: AudioKV | None = None) -> KVCache:
        """A cache whose steps run the flat path when ``audio_kv`` is given and the weights allow it."""
        max_len = max_len or self.config.n_text_ctx
        if audio_kv is None:
            return self.model.new_cache(rows, max_len)
        return StepCache(self.model, rows, max_len, audio_kv, self._plan(rows, audio_kv[0][0]))

    def _plan(self, rows: int, probe: torch.Tensor) -> list | None:
        """Per layer, its layer norms and products bound for ``rows`` rows, and last the final norm and the
        output product; None where the flat step does not apply (bf16 or CUDA: those run the plain model)."""
        dec = self.model.decoder
        if not inference_path(probe, dec.token_embedding.weight):
            return None
        plan = []
        for i, block in enumerate(dec.blocks):
            attn, cross, mlp = block.attn, block.cross_attn, block.mlp
            qkv = self._qkv[i] or bound_linear((attn.query, attn.key, attn.value), rows)
            plan.append((
                block.attn_ln, qkv, bound_linear((attn.out,), rows),
                block.cross_attn_ln, bound_linear((cross.query,), rows), bound_linear((cross.out,), rows),
                block.mlp_ln, bound_linear((mlp[0],), rows), bound_linear((mlp[2],), rows),
            ))
        head = self.head or bound_product((dec.token_embedding.weight,), (None,), self._output_weights, rows)
        plan.append((dec.ln, head))
        return plan

    def _output(self, x: torch.Tensor) -> torch.Tensor:
        """The vocabulary product of final states ``(B, T, d)`` -> float32 logits."""
        if self.head is not None:
            return self.head(x).float()
        w = self.model.decoder.token_embedding.weight
        if inference_path(x, w):
            return fused_linear(x, (w,), (None,), self._output_weights).float()
        return self.model.decoder.logits(x)

    def logits(
        self, tokens: torch.Tensor, audio_features: torch.Tensor, cache: KVCache | None = None,
        positions: list[int] | None = None, audio_kv: AudioKV | None = None,
    ) -> torch.Tensor:
        """:meth:`Whisper.logits`; one new token per row with a :class:`StepCache` runs the flat step."""
        if tokens.shape[1] == 1 and positions == [-1] and isinstance(cache, StepCache) and cache.plan is not None:
            return self._step(tokens, cache)[:, None]
        x = self.model.decoder.hidden(tokens, audio_features, cache, audio_kv, positions)
        return self._output(x)

    def cross_attention_weights(self, tokens, audio_features, positions=None, audio_kv=None):
        layers = self.model.alignment_heads.any(dim=1).tolist()
        x, weights = self.model.decoder.cross_attention_weights(tokens, audio_features, layers, audio_kv)
        return self._output(x[:, positions or []]), weights

    def _step(self, tokens: torch.Tensor, cache: StepCache) -> torch.Tensor:
        """The decoder for one new token per row ``(N, 1)``, written flat: ``(N, n_vocab)`` logits of the next
        token. The same kernels on the same copies as the module forward would read, without the calls and checks
        between them (one row's cross-attention: two products over the (Dh, S) copies, equal to SDPA's up to
        fp32 rounding)."""
        dec = self.model.decoder
        N, pos = tokens.shape[0], cache.length
        H = dec.blocks[0].attn.n_head
        d = dec.token_embedding.weight.shape[1]
        Dh = d // H
        x = dec.token_embedding(tokens[:, 0]) + dec.positional_embedding[pos]  # (N, d)
        for i, (ln1, qkv, out, ln2, cross_q, cross_out, ln3, fc1, fc2) in enumerate(cache.plan[:-1]):
            q, k, v = qkv(ln1(x)).view(N, 3, H, 1, Dh).unbind(1)  # each (N, H, 1, Dh)
            keys, values = cache.update(i, k, v)  # (N, H, pos + 1, Dh)
            x = x + out(F.scaled_dot_product_attention(q, keys, values).view(N, d))
            x = x + cross_out(self._cross(cross_q(ln2(x)), cache, i, N, H, Dh))
            x = x + fc2(F.gelu(fc1(ln3(x))))
        cache.advance(1)
        ln, head = cache.plan[-1]
        return head(ln(x)).float()

    @staticmethod
    def _cross(q: torch.Tensor, cache: StepCache, i: int, N: int, H: int, Dh: int) -> torch.Tensor:
        """One step's cross-attention for ``(N, d)`` queries -> ``(N, d)``."""
        if cache.audio_kv_t is not None:  # one row: scores over the (Dh, S) keys, then the (Dh, S) values
            kt, vt = cache.audio_kv_t[i]
            p = ((q.view(H, 1, Dh) * Dh**-0.5) @ kt[0]).softmax(dim=-1)  # (H, 1, S)
            return (vt[0] @ p.transpose(1, 2)).view(1, H * Dh)  # (H, Dh, 1) -> (1, d)
        ck, cv = cache.audio_kv[i]
        g = N // ck.shape[0]  # g hypotheses per audio row share its keys/values: g query positions of that row
        y = F.scaled_dot_product_attention(q.view(ck.shape[0], g, H, Dh).transpose(1, 2), ck, cv)  # (B', H, g, Dh)
        return y.transpose(1, 2).reshape(N, H * Dh)


def _quantized(model: Whisper) -> Whisper:
    """A copy of ``model`` with every ``nn.Linear`` dynamically quantized to int8 (per output row)."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch.ao's deprecation notices; the API still works on torch 2.x
        warnings.simplefilter("ignore")
        return quantize_dynamic(copy.deepcopy(model), {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)


def _int8_head_and_qkv(model: Whisper) -> tuple[nn.Module, list[nn.Module]]:
    """The output projection as an untied quantized copy of the embedding (at one token a step it is the largest
    read of the step), and each self-attention's query, key and value stacked as one quantized layer: weights are
    quantized per output row and the input once per product, so the stacked layer computes what the three would."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    emb = model.decoder.token_embedding.weight.detach()
    layers = nn.ModuleList([nn.Linear(emb.shape[1], emb.shape[0], bias=False)])
    layers[0].weight = nn.Parameter(emb.clone())
    for block in model.decoder.blocks:
        a, d = block.attn, emb.shape[1]
        stacked = nn.Linear(d, 3 * d)
        stacked.weight = nn.Parameter(torch.cat([a.query.weight, a.key.weight, a.value.weight]).detach())
        stacked.bias = nn.Parameter(torch.cat([a.query.bias, torch.zeros(d), a.value.bias]).detach())
        layers.append(stacked)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = quantize_dynamic(layers, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    return q[0], list(q[1:])
