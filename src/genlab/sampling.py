"""The autoregressive loop of every token model: logit processors, greedy and sampled decoding, beam search and
classifier-free guidance, all over one narrow interface.

A model is seen only through a *step*: ``step(tokens, cache) -> logits (B, V)``, the scores of the next token of
each row. With ``cache=None``, ``tokens`` is the whole sequence so far ``(B, T + i)``. With a cache (an object the
step owns, such as :class:`genlab.nn.attention.KVCache`), the first call gets the whole prompt ``(B, T)`` and every
later call only the token just chosen ``(B, 1)``; the step appends them to the cache and advances it.

A *logit processor* is a function ``(logits (B, V) float, tokens (B, T) long) -> logits (B, V)`` that sees the
scores and the sequence so far; :func:`apply` chains them in the order given. They follow the semantics of HF
transformers' warpers exactly (ties kept, ``-inf`` for removed tokens, at least one token kept), and the tests hold
them equal to those warpers. Typical use::

    out = generate(step, prompt, max_new_tokens=64, processors=[temperature(0.8), top_p(0.95)], sample=True,
                   generator=torch.Generator().manual_seed(0))

The loops (:func:`generate`, :func:`beam_search`) are written out in a few lines each, like nanoGPT's
``generate`` and whisper's ``decoding.py``. Beam search reproduces the tokens and scores of HF transformers'
``generate(num_beams=...)`` (v5 beam search: top ``2 * num_beams`` candidates, finished hypotheses ranked by
``sum log p / length ** length_penalty``, the same early-stopping rules).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F

from .errors import GenlabError

Processor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Step = Callable[[torch.Tensor, Any], torch.Tensor]

NEG = -1.0e9  # beam search's "impossible" score (HF's constant: finished/absent beams are pushed below all others)


# ---------------------------------------------------------------------------------------------------------------
# Logit processors
# ---------------------------------------------------------------------------------------------------------------


def _number(name: str, x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise GenlabError(f"{name} must be a finite number, got {x!r}")
    return float(x)


def _token_ids(name: str, ids: Iterable[int]) -> torch.Tensor:
    ids = list(ids)
    if not ids or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in ids):
        raise GenlabError(f"{name} needs a non-empty list of token ids >= 0, got {ids!r}")
    return torch.tensor(ids, dtype=torch.long)


def _mask_ids(ids: torch.Tensor, logits: torch.Tensor, name: str) -> torch.Tensor:
    """``(V,)`` bool, True at ``ids``."""
    V = logits.shape[-1]
    if int(ids.max()) >= V:
        raise GenlabError(f"{name}: token id {int(ids.max())} is outside the vocabulary of {V}")
    return torch.zeros(V, dtype=torch.bool, device=logits.device).index_fill_(0, ids.to(logits.device), True)


def temperature(t: float) -> Processor:
    """Divide the logits by ``t``: ``p_i ∝ exp(z_i / t)`` (Ackley, Hinton & Sejnowski 1985; sharper for t < 1).

    ``t = 0`` is the limit: only the argmax keeps a finite logit, so sampling becomes greedy decoding.
    """
    t = _number("temperature", t)
    if t < 0:
        raise GenlabError(f"temperature must be >= 0, got {t}")
    if t == 0:
        def argmax_only(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
            keep = F.one_hot(logits.argmax(-1), logits.shape[-1]).bool()  # (B, V)
            return logits.masked_fill(~keep, float("-inf"))
        return argmax_only
    return lambda logits, tokens: logits / t


def top_k(k: int) -> Processor:
    """Keep the ``k`` highest logits (ties with the k-th are kept), ``-inf`` elsewhere (Fan et al. 2018,
    "Hierarchical Neural Story Generation")."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise GenlabError(f"top_k needs an integer k >= 1, got {k!r}")

    def keep_top_k(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        kth = logits.topk(min(k, logits.shape[-1])).values[..., -1:]  # (B, 1)
        return logits.masked_fill(logits < kth, float("-inf"))
    return keep_top_k


def top_p(p: float) -> Processor:
    """Nucleus sampling (Holtzman et al. 2019, "The Curious Case of Neural Text Degeneration"): keep the smallest
    set of most likely tokens whose probability sums to at least ``p``; ``-inf`` elsewhere."""
    p = _number("top_p", p)
    if not 0 < p <= 1:
        raise GenlabError(f"top_p must be in (0, 1], got {p}")

    def nucleus(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        sorted_logits, order = logits.sort(dim=-1)  # ascending, (B, V)
        tail = sorted_logits.softmax(-1).cumsum(-1) <= 1 - p  # the unlikely tail whose mass is at most 1 - p
        tail[..., -1:] = False  # the most likely token always stays
        return logits.masked_fill(tail.scatter(1, order, tail), float("-inf"))
    return nucleus


def min_p(p: float) -> Processor:
    """Min-p sampling (Nguyen et al. 2024, "Turning Up the Heat"): drop tokens whose probability is below ``p``
    times the most likely token's; ``-inf`` there."""
    p = _number("min_p", p)
    if not 0 <= p <= 1:
        raise GenlabError(f"min_p must be in [0, 1], got {p}")

    def keep_above(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        probs = logits.softmax(-1)  # (B, V)
        drop = probs < p * probs.amax(-1, keepdim=True)
        drop.scatter_(-1, probs.argmax(-1, keepdim=True), False)  # the most likely token always stays
        return logits.masked_fill(drop, float("-inf"))
    return keep_above


def repetition_penalty(penalty: float) -> Processor:
    """Penalise every token already in ``tokens`` (Keskar et al. 2019, "CTRL", eq. 2): its logit is divided by
    ``penalty`` when positive and, as in HF transformers, multiplied by it when negative, so ``penalty > 1``
    always makes a repeat less likely. Token ids must be below the vocabulary size."""
    penalty = _number("repetition_penalty", penalty)
    if penalty <= 0:
        raise GenlabError(f"repetition_penalty must be > 0, got {penalty}")

    def penalise(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        seen = logits.gather(1, tokens)  # (B, T)
        return logits.scatter(1, tokens, torch.where(seen < 0, seen * penalty, seen / penalty))
    return penalise


def suppress_tokens(ids: Iterable[int]) -> Processor:
    """Never emit ``ids``: their logits become ``-inf`` (Whisper's suppressed tokens; HF ``suppress_tokens``)."""
    ids = _token_ids("suppress_tokens", ids)
    return lambda logits, tokens: logits.masked_fill(_mask_ids(ids, logits, "suppress_tokens"), float("-inf"))


def allow_tokens(ids: Iterable[int]) -> Processor:
    """Emit only ``ids``: every other logit becomes ``-inf`` (a constrained alphabet, e.g. one modality's tokens)."""
    ids = _token_ids("allow_tokens", ids)
    return lambda logits, tokens: logits.masked_fill(~_mask_ids(ids, logits, "allow_tokens"), float("-inf"))


def apply(processors: Sequence[Processor], logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Run ``processors`` in order on ``logits (B, V)`` given the sequences so far ``tokens (B, T)``."""
    for process in processors:
        logits = process(logits, tokens)
    return logits


# ---------------------------------------------------------------------------------------------------------------
# Greedy and sampled decoding
# ---------------------------------------------------------------------------------------------------------------


def pick(logits: torch.Tensor, sample: bool, generator: torch.Generator | None = None) -> torch.Tensor:
    """The next token of each row, ``(B,)``: the argmax of ``logits (B, V)``, or (``sample``) a draw from their
    softmax with ``generator`` (the same seed gives the same tokens)."""
    if not sample:
        return logits.argmax(-1)
    return torch.multinomial(logits.float().softmax(-1), 1, generator=generator).squeeze(1)  # (B,)


def _check_prompt(prompt: torch.Tensor, max_new_tokens: int, least: int = 0) -> None:
    if not isinstance(prompt, torch.Tensor) or prompt.dim() != 2 or prompt.shape[1] < 1 or prompt.is_floating_point():
        raise GenlabError(f"the prompt must be a (batch, length >= 1) tensor of token ids, got "
                          f"{getattr(prompt, 'shape', type(prompt).__name__)}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < least:
        raise GenlabError(f"max_new_tokens must be an integer >= {least}, got {max_new_tokens!r}")


def generate(step: Step, prompt: torch.Tensor, *, max_new_tokens: int, processors: Sequence[Processor] = (),
             warpers: Sequence[Processor] = (), sample: bool = False, generator: torch.Generator | None = None,
             eos_token_id: int | None = None, pad_token_id: int | None = None, cache: Any = None,
             return_logprobs: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Extend ``prompt (B, T)`` by up to ``max_new_tokens``, one token a step; returns ``(B, T + n)``.

    Each step processes the logits of the next token (``processors``, then ``warpers``, in order) and picks the
    argmax, or samples (``sample``) with ``generator``. A row that has emitted ``eos_token_id`` is finished: it keeps
    emitting ``pad_token_id`` (default: the eos id), as HF transformers does, and the loop stops early once every row
    is finished. Greedy decoding equals HF ``generate(do_sample=False)``; sampling with a generator seeded ``s``
    equals HF ``generate(do_sample=True)`` after ``torch.manual_seed(s)`` with the same warpers.

    ``warpers`` (temperature, top-k, top-p) shape only what is sampled; ``return_logprobs`` also returns ``(B,)``
    the summed log-probabilities of each row's tokens (up to and with its eos) under the processed distribution
    before the warpers, as HF's processor/warper split and openai-whisper's ``avg_logprob`` have it.
    """
    _check_prompt(prompt, max_new_tokens)
    pad = eos_token_id if pad_token_id is None else pad_token_id
    tokens, new = prompt, prompt  # the sequences so far (B, T + i), and what the step has not seen yet
    running = torch.ones(prompt.shape[0], dtype=torch.bool, device=prompt.device)  # (B,)
    sum_logprobs = torch.zeros(prompt.shape[0], device=prompt.device)  # (B,)
    for _ in range(max_new_tokens):
        logits = apply(processors, step(tokens if cache is None else new, cache).float(), tokens)  # (B, V)
        next_token = pick(apply(warpers, logits, tokens), sample, generator)  # (B,)
        if return_logprobs:
            chosen = F.log_softmax(logits, dim=-1).gather(1, next_token[:, None])[:, 0]  # (B,)
            sum_logprobs += torch.where(running, chosen, torch.zeros_like(chosen))
        if eos_token_id is not None:
            next_token = torch.where(running, next_token, pad)  # finished rows only pad
            running = running & (next_token != eos_token_id)
        new = next_token[:, None]  # (B, 1)
        tokens = torch.cat([tokens, new], dim=1)  # (B, T + i + 1)
        if not running.any():
            break
    return (tokens, sum_logprobs) if return_logprobs else tokens


# ---------------------------------------------------------------------------------------------------------------
# Beam search
# ---------------------------------------------------------------------------------------------------------------


def _gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows ``index (B, k)`` of ``x (B, n, ...)`` along dim 1 -> ``(B, k, ...)``."""
    return x.gather(1, index.view(*index.shape, *[1] * (x.dim() - 2)).expand(*index.shape, *x.shape[2:]))


def _check_beam_args(prompt, num_beams, max_new_tokens, early_stopping, cache) -> None:
    _check_prompt(prompt, max_new_tokens, least=1)
    if isinstance(num_beams, bool) or not isinstance(num_beams, int) or num_beams < 1:
        raise GenlabError(f"num_beams must be an integer >= 1, got {num_beams!r}")
    if early_stopping not in (True, False, "never"):
        raise GenlabError(f"early_stopping must be True, False or 'never', got {early_stopping!r}")
    rows = prompt.shape[0] * num_beams
    if cache is not None and getattr(cache, "batch", rows) != rows:
        raise GenlabError(f"beam search needs a cache of batch * num_beams = {rows} rows, got {cache.batch}")


def _finish(done, cand, cand_scores, ends, n, T, num_beams, length_penalty, early_stopping, can_improve):
    """Merge the candidates that just ended into the ``num_beams`` best finished hypotheses (HF
    ``_update_finished_beams``). Only candidates ranked among the top ``num_beams`` count; a hypothesis scores
    ``sum log p / length ** length_penalty`` over its generated length."""
    seqs, scores, lengths, is_done = done
    K = num_beams
    just_ended = ends.clone()
    just_ended[:, K:] = False  # (B, 2K)
    s = cand_scores / (n + 1 - T) ** length_penalty
    s = s + (is_done.all(-1, keepdim=True) & (early_stopping is True)).float() * NEG  # full, and stopping early
    s = s + (~can_improve).float() * NEG  # no candidate can beat the finished ones any more
    s = s + (~just_ended).float() * NEG  # still running: not a finished hypothesis
    merged_scores = torch.cat([scores, s], dim=1)  # (B, 3K)
    best = merged_scores.topk(K).indices  # (B, K)
    new_lengths = torch.full_like(ends, n + 1 - T, dtype=torch.long)
    return (_gather(torch.cat([seqs, cand], 1), best), _gather(merged_scores, best),
            _gather(torch.cat([lengths, new_lengths], 1), best), _gather(torch.cat([is_done, just_ended], 1), best))


def _can_improve(can_improve, scores, done, n, T, max_len, length_penalty, early_stopping) -> torch.Tensor:
    """``(B, 1)``: can the best running beam still beat the worst finished one (HF ``_check_early_stop_heuristic``)?
    Its best length is taken as the current one (``early_stopping=False``), or the maximum (``"never"`` with
    ``length_penalty > 0``)."""
    _, done_scores, _, is_done = done
    length = max_len - T if early_stopping == "never" and length_penalty > 0 else n - T
    best_running = scores[:, :1] / length ** length_penalty  # (B, 1)
    worst_done = torch.where(is_done, done_scores.min(1, keepdim=True).values, NEG)  # (B, K)
    return can_improve & (best_running > worst_done).any(-1, keepdim=True)


def beam_search(step: Step, prompt: torch.Tensor, *, num_beams: int, max_new_tokens: int,
                eos_token_id: int | None = None, length_penalty: float = 1.0,
                early_stopping: bool | Literal["never"] = False, cache: Any = None,
                processors: Sequence[Processor] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """Beam search (Graves 2012; the HF transformers algorithm): the best hypothesis of each prompt ``(B, T + n)``
    and its score ``(B,)``, ``sum log p / generated_length ** length_penalty``.

    Each prompt keeps ``num_beams`` (K) running hypotheses. A step scores every (beam, token) pair by its summed
    log-probability (``processors`` act on the log-softmax), takes the best 2K; candidates that end (eos, or the
    length limit) among the first K join the K best finished hypotheses, and the best K that do not end run on.
    ``early_stopping``: True stops a prompt once K hypotheses finished; False once the best running beam,
    at its current length, cannot beat the worst finished one; "never" as False but at the longest length. Rows
    shorter than the longest returned one are filled with the eos id.

    Rows are laid out prompt-major: row ``b * K + j`` is beam ``j`` of prompt ``b``. A ``cache`` must hold ``B * K``
    rows (the first step feeds the prompt repeated K times) and offer ``reorder(index (B * K,))``, which keeps row
    ``index[i]`` as row ``i`` (:class:`genlab.nn.attention.KVCache`).
    """
    _check_beam_args(prompt, num_beams, max_new_tokens, early_stopping, cache)
    (B, T), K, max_len = prompt.shape, num_beams, prompt.shape[1] + max_new_tokens
    fill = 0 if eos_token_id is None else eos_token_id
    seqs = torch.full((B, K, max_len), fill, dtype=torch.long, device=prompt.device)  # running hypotheses
    seqs[:, :, :T] = prompt[:, None]
    scores = torch.full((B, K), NEG, device=prompt.device)
    scores[:, 0] = 0.0  # only the first beam is live at the start: the K copies of the prompt are one hypothesis
    done = (seqs.clone(), torch.full((B, K), NEG, device=prompt.device),  # finished: tokens, scores,
            torch.zeros(B, K, dtype=torch.long, device=prompt.device),  # generated lengths,
            torch.zeros(B, K, dtype=torch.bool, device=prompt.device))  # and whether the slot holds one at all
    can_improve = torch.ones(B, 1, dtype=torch.bool, device=prompt.device)
    offset = torch.arange(B, device=prompt.device)[:, None] * K  # (B, 1) first row of each prompt
    for n in range(T, max_len):  # n: the length of the running hypotheses
        flat = seqs[:, :, :n].reshape(B * K, n)  # (B K, n)
        logits = step(flat if cache is None or n == T else flat[:, -1:], cache).float()  # (B K, V)
        logp = apply(processors, logits.log_softmax(-1), flat)  # (B K, V)
        V = logp.shape[-1]
        total = (logp.view(B, K, V) + scores[:, :, None]).view(B, K * V)  # (B, K V) summed log-probabilities
        cand_scores, index = total.topk(2 * K)  # (B, 2K)
        source, token = index // V, index % V  # beam and next token of each candidate
        cand = _gather(seqs, source)  # (B, 2K, max_len)
        cand[:, :, n] = token
        ends = (token == eos_token_id) if eos_token_id is not None else torch.zeros_like(token, dtype=torch.bool)
        ends = ends | (n + 1 >= max_len)  # (B, 2K)
        live = cand_scores + ends.float() * NEG  # ended candidates cannot run on
        keep = live.topk(K).indices  # (B, K)
        seqs, scores = _gather(cand, keep), _gather(live, keep)
        done = _finish(done, cand, cand_scores, ends, n, T, K, length_penalty, early_stopping, can_improve)
        if cache is not None:
            cache.reorder((_gather(source, keep) + offset).view(B * K))  # (B K,) the rows the survivors came from
        can_improve = _can_improve(can_improve, scores, done, n + 1, T, max_len, length_penalty, early_stopping)
        all_full = bool(done[3].all()) and early_stopping is True
        if not can_improve.any() or all_full or ends.all():
            break
    best, best_scores, lengths, _ = done
    return best[:, 0, : T + int(lengths[:, 0].max())], best_scores[:, 0]


# ---------------------------------------------------------------------------------------------------------------
# Classifier-free guidance
# ---------------------------------------------------------------------------------------------------------------


def patience_beam_search(step: Step, prompt: torch.Tensor, *, num_beams: int, max_new_tokens: int,
                         eos_token_id: int, patience: float = 1.0, processors: Sequence[Processor] = (),
                         cache: Any = None, end_within_beam: bool = False) -> list[list[tuple[list[int], float]]]:
    """Beam search with controlled patience (Kasai et al. 2022, "Beam Decoding with Controlled Patience"), as
    openai-whisper's ``BeamSearchDecoder``: each step every live hypothesis proposes its ``num_beams + 1`` most likely
    next tokens and the ``num_beams`` best continuations that do not end live on; a prompt is done once
    ``round(num_beams * patience)`` of its hypotheses have ended. ``prompt (B * num_beams, T)`` holds each prompt
    ``num_beams`` times in consecutive rows (all alike, so the first step expands only the first of each group);
    a cache, if given, holds those rows and is reordered with ``cache.reorder``. Returns per prompt the ended
    hypotheses (the live ones too where fewer than ``num_beams`` ended) as ``(tokens, summed log-probability)``,
    for the caller to rank.

    ``end_within_beam``: a hypothesis ends only where its end ranks among the step's ``num_beams`` best candidates
    (every such end counts), as in CTranslate2's beam search (faster-whisper's) and HF's. openai-whisper's rule
    (False) also counts ends ranked below them, down to the last continuation kept, until the patience is full:
    ends the beam itself would not keep can fill the finished set and stop the search before a longer text ends.
    """
    _check_prompt(prompt, max_new_tokens)
    tokens, new, K = prompt, prompt, num_beams
    B = tokens.shape[0] // K
    max_finished = round(K * patience)
    sum_logprobs = [0.0] * tokens.shape[0]
    finished: list[dict[tuple, float]] = [{} for _ in range(B)]
    for i in range(max_new_tokens):
        logits = apply(processors, step(tokens if cache is None else new, cache).float(), tokens)
        top_lp, top_tok = F.log_softmax(logits, dim=-1).topk(K + 1, dim=-1)  # (B * K, K + 1)
        top_lp, top_tok = top_lp.tolist(), top_tok.tolist()
        sources, next_tok, next_lp = [], [], []
        for b in range(B):
            parents = [b * K] if i == 0 else range(b * K, (b + 1) * K)
            candidates = [(sum_logprobs[j] + lp, j, t) for j in parents for lp, t in zip(top_lp[j], top_tok[j])]
            kept = 0
            for rank, (score, j, t) in enumerate(sorted(candidates, key=lambda c: c[0], reverse=True)):  # stable
                if t == eos_token_id:
                    counts = rank < K if end_within_beam else len(finished[b]) < max_finished
                    if counts:
                        finished[b].setdefault((*tokens[j].tolist(), t), score)
                    continue
                # At the first step every row holds the same tokens and cache: each keeps its own.
                sources.append(b * K + kept if i == 0 else j)
                next_tok.append(t)
                next_lp.append(score)
                kept += 1
                if kept == K:
                    break
        index = torch.tensor(sources, device=tokens.device)
        if cache is not None:
            cache.reorder(index)
        sum_logprobs, new = next_lp, torch.tensor(next_tok, device=tokens.device)[:, None]  # (B * K, 1)
        tokens = torch.cat([tokens[index], new], dim=1)
        if all(len(f) >= max_finished for f in finished):
            break
    out = []
    for b in range(B):
        cands = dict(finished[b])
        for j in range(b * K, (b + 1) * K):  # the search ran out of steps: the live hypotheses count too
            if len(cands) >= K:
                break
            cands.setdefault((*tokens[j].tolist(), eos_token_id), sum_logprobs[j])
        out.append([(list(seq), lp) for seq, lp in cands.items()])
    return out


def guided(step: Step, scale: float) -> Step:
    """Classifier-free guidance for token models (Ho & Salimans 2022; as in MusicGen, Copet et al. 2023, and
    Chameleon/LlamaGen): ``logits = uncond + scale * (cond - uncond)``; scale 1 is the conditional model, 0 the
    unconditional one, > 1 follows the condition harder.

    The returned step takes the ``B`` rows the loop sees, ``tokens (B, t)``, and calls ``step`` once on ``2B`` rows,
    ``torch.cat([tokens, tokens])``: rows ``0 .. B-1`` are the conditional ones and rows ``B .. 2B-1`` the
    unconditional ones, in the same order. ``step`` is where the condition enters and where it is dropped for
    rows ``B ..`` (a cross-attention context laid out ``[cond; null]``, as MusicGen; or prompt tokens it replaces by
    null tokens in rows ``B ..``). A cache, if any, holds all ``2B`` rows in that layout and ``step`` advances
    both halves together, so :func:`generate` works with or without one. (:func:`beam_search` reorders ``B * K``
    cache rows, so guidance with beams needs ``cache=None``.)
    """
    scale = _number("guidance scale", scale)

    def guided_step(tokens: torch.Tensor, cache: Any) -> torch.Tensor:
        logits = step(torch.cat([tokens, tokens]), cache).float()  # (2B, V)
        cond, uncond = logits.chunk(2)  # (B, V) each
        return uncond + scale * (cond - uncond)
    return guided_step
