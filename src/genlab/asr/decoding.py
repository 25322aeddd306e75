"""Decoding one 30 s window: the prompt, logit filters, greedy or beam search, language identification.

Follows the procedure of Radford et al. 2022 (section 4.5 and appendix): suppress blanks and non-speech
symbols, enforce the timestamp grammar, pick greedily or by beam search, and report the average log-probability,
the compression ratio and the no-speech probability that the long-form loop (:mod:`genlab.asr.transcribe`)
uses to accept a window or fall back to sampling at a higher temperature.

What is Whisper's lives here: the prompt layout, the logit filters (functions over ``(B, V)`` logits), the
no-speech probability, language identification and the ranking of candidates. The token loops are genlab's one
autoregressive loop (:mod:`genlab.sampling`): ``generate`` for greedy decoding and sampling, and
``patience_beam_search`` (openai-whisper's beam search; by default a hypothesis ends as in faster-whisper's, see
``DecodingOptions.end_within_beam``) over a step that runs the model with its cache.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch

from .. import sampling
from .model import Whisper
from .tokenizer import WhisperTokenizer


@dataclass(frozen=True)
class DecodingOptions:
    task: str = "transcribe"  # or "translate" (to English)
    language: str | None = None  # None: detect it from the audio
    temperature: float = 0.0
    sample_len: int | None = None  # most tokens to generate (default: half the text context)
    best_of: int | None = None  # independent samples at temperature > 0; the best is kept
    beam_size: int | None = None  # None or 1: greedy
    patience: float = 1.0  # beam search stops after round(beam_size * patience) finished hypotheses
    # Beam search: a hypothesis ends only where its <|endoftext|> ranks among the beam_size best candidates of the
    # step, as in faster-whisper (CTranslate2); False: openai-whisper's rule (genlab.sampling.patience_beam_search).
    end_within_beam: bool = True
    length_penalty: float | None = None  # None: rank by log-prob / length
    prompt: list[int] | str | None = None  # previous text, after <|startofprev|>
    suppress_tokens: str | list[int] | None = "-1"  # -1: the non-speech symbols
    suppress_blank: bool = True
    without_timestamps: bool = False
    max_initial_timestamp: float | None = 1.0
    # Per window of the batch: no <|endoftext|> before a timestamp at or after this many seconds (None: any time).
    # The long-form loop sets it for windows that pack several utterances (see genlab.asr.transcribe).
    end_not_before: tuple[float | None, ...] | None = None
    seed: int = 0  # for sampling at temperature > 0


@dataclass
class DecodingResult:
    tokens: list[int]  # sampled tokens, without the prompt and the final <|endoftext|>
    text: str
    language: str
    language_probs: dict[str, float] | None = None
    avg_logprob: float = float("nan")
    sum_logprob: float = float("nan")
    no_speech_prob: float = float("nan")
    temperature: float = 0.0
    compression_ratio: float = float("nan")
    extra: dict = field(default_factory=dict)


def compression_ratio(text: str) -> float:
    """Bytes over zlib-compressed bytes: repetition loops compress well, so a high ratio flags them."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


# ---------------------------------------------------------------------------------------------------------------
# Language identification


@torch.no_grad()
def detect_language(
    model: Whisper, audio_features: torch.Tensor, tokenizer: WhisperTokenizer
) -> tuple[list[str], list[dict[str, float]]]:
    """One decoder step after ``<|startoftranscript|>``: the distribution over the language tokens.

    ``audio_features``: ``(B, 1500, d)``. Returns the most likely code and all probabilities per item.
    """
    if not tokenizer.language_tokens or not model.is_multilingual:
        return ["en"] * audio_features.shape[0], [{"en": 1.0}] * audio_features.shape[0]
    B = audio_features.shape[0]
    sot = torch.full((B, 1), tokenizer.sot, dtype=torch.long, device=audio_features.device)
    logits = model.logits(sot, audio_features)[:, 0]  # (B, V)
    lang = torch.tensor(tokenizer.language_tokens[: model.num_languages], device=logits.device)
    probs = logits[:, lang].float().softmax(dim=-1)  # (B, n_languages)
    codes = tokenizer.language_codes[: len(lang)]
    best = [codes[i] for i in probs.argmax(dim=-1).tolist()]
    return best, [dict(zip(codes, p)) for p in probs.tolist()]


# ---------------------------------------------------------------------------------------------------------------
# Logit filters: each takes (B, V) logits and the (B, T) tokens so far, and masks what may not come next.


def suppress_blank(logits: torch.Tensor, tokens: torch.Tensor, sample_begin: int, tok: WhisperTokenizer) -> None:
    """A transcript may not start with a space or end immediately."""
    if tokens.shape[1] == sample_begin:
        logits[:, tok.encode(" ") + [tok.eot]] = -float("inf")


def suppress_early_end(
    logits: torch.Tensor, tokens: torch.Tensor, sample_begin: int, tok: WhisperTokenizer, steps: torch.Tensor
) -> None:
    """No <|endoftext|> in row ``k`` until a timestamp of at least ``steps[k]`` (20 ms steps; negative: no such
    rule for that row) has been sampled."""
    seq = tokens[:, sample_begin:]  # (N, L)
    latest = seq.max(dim=1).values - tok.timestamp_begin if seq.shape[1] else torch.full_like(steps, -1)
    logits[:, tok.eot].masked_fill_((steps >= 0) & (latest < steps), -float("inf"))


def apply_timestamp_rules(
    logits: torch.Tensor, tokens: torch.Tensor, sample_begin: int, tok: WhisperTokenizer, max_initial: int | None
) -> None:
    """Whisper's timestamp grammar: timestamps come in pairs around text, never go backwards, the first one is
    at most ``max_initial`` steps in, and a timestamp is forced when timestamps together outweigh any text token.

    Written over all rows at once (a few tensor operations whatever the number of beams or windows), with the same
    masks as openai-whisper's per-row ``ApplyTimestampRules``."""
    tb = tok.timestamp_begin
    logits[:, tok.no_timestamps] = -float("inf")
    seq = tokens[:, sample_begin:]  # (N, L) sampled so far
    if seq.shape[1] == 0:
        logits[:, :tb] = -float("inf")  # the text starts with a timestamp
        if max_initial is not None:
            logits[:, tb + max_initial + 1 :] = -float("inf")
    else:
        is_ts = seq >= tb  # (N, L)
        last_ts = is_ts[:, -1]
        penultimate_ts = is_ts[:, -2] if seq.shape[1] >= 2 else torch.ones_like(last_ts)
        opening = last_ts & ~penultimate_ts  # a timestamp after text ends it: another timestamp or the end
        _mask_rows(logits[:, tb:], last_ts & penultimate_ts)  # a pair was just closed (or it is the first): text
        _mask_rows(logits[:, : tok.eot], opening)
        # Never backwards; after a closing timestamp the next segment starts strictly later.
        positions = torch.arange(seq.shape[1], device=seq.device).expand_as(seq)
        last_at = torch.where(is_ts, positions, -1).max(dim=1).values  # (N,) position of the latest timestamp
        latest = seq.gather(1, last_at.clamp_min(0)[:, None])[:, 0] - tb  # (N,) in 20 ms steps
        floor = torch.where(last_at >= 0, latest + (~opening).long(), 0)  # first timestamp step allowed
        steps = torch.arange(logits.shape[1] - tb, device=logits.device)
        logits[:, tb:].masked_fill_(steps[None] < floor[:, None], -float("inf"))
    # Timestamps' total probability against the best text token's: log-softmax shifts both by the same
    # normaliser, so the logits compare as the log-probabilities do.
    ts_mass = logits[:, tb:].float().logsumexp(dim=-1)  # (N,)
    text_best = logits[:, :tb].float().amax(dim=-1)
    _mask_rows(logits[:, :tb], ts_mass > text_best)


def _mask_rows(logits: torch.Tensor, rows: torch.Tensor) -> None:
    """``logits[rows] = -inf`` for a boolean ``rows``, writing only the rows it selects: a boolean index or a
    masked fill goes through every row of the vocabulary slice, which cost more than the rest of the rules."""
    picked = rows.nonzero()[:, 0]
    if picked.numel():
        logits.index_fill_(0, picked, -float("inf"))


def suppress_token_list(opts: DecodingOptions, tok: WhisperTokenizer) -> list[int]:
    sup = opts.suppress_tokens
    if isinstance(sup, str):
        sup = [int(t) for t in sup.split(",") if t.strip()]
    sup = list(sup or [])
    if -1 in sup:
        sup = [t for t in sup if t >= 0] + list(tok.non_speech_tokens)
    sup += [tok.transcribe, tok.translate, tok.sot, tok.sot_prev, tok.sot_lm, tok.no_speech]
    return sorted(set(sup))


# ---------------------------------------------------------------------------------------------------------------
# The decoding loop


def _prompt_tokens(opts: DecodingOptions, tok: WhisperTokenizer, n_ctx: int) -> tuple[list[int], int]:
    """``[<|startofprev|> prompt...] <|sot|> <|lang|> <|task|> [<|notimestamps|>]`` and the index of sot."""
    seq = list(tok.sot_sequence)
    if opts.without_timestamps:
        seq.append(tok.no_timestamps)
    prefix: list[int] = []
    if opts.prompt:
        prompt = tok.encode(" " + opts.prompt.strip()) if isinstance(opts.prompt, str) else list(opts.prompt)
        prefix = [tok.sot_prev] + prompt[-(n_ctx // 2 - 1) :]
    return prefix + seq, len(prefix)


@torch.no_grad()
def decode(
    model: Whisper,
    mel: torch.Tensor | None,
    tokenizer: WhisperTokenizer,
    options: DecodingOptions = DecodingOptions(),
    audio_features: torch.Tensor | None = None,
    audio_kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
    on_step: Callable[[], None] | None = None,
) -> list[DecodingResult]:
    """Decode a batch of 30 s windows. ``mel``: ``(B, n_mels, 3000)`` (or pass ``audio_features``, and if already
    computed their cross-attention keys/values ``audio_kv``, :meth:`Whisper.audio_kv`). ``on_step`` is called
    before each token (the long-form loop uses it to take back threads lent to its encoder)."""
    opts = options
    if audio_features is None:
        audio_features = model.embed_audio(mel)  # (B, 1500, d)
    B = audio_features.shape[0]
    language_probs = None
    languages = [opts.language] * B
    if opts.language is None and model.is_multilingual:
        languages, language_probs = detect_language(model, audio_features, tokenizer)
    elif not model.is_multilingual:
        languages = ["en"] * B

    results = []
    # Windows in a batch may have detected different languages: group them by their sot sequence.
    for lang in dict.fromkeys(languages):
        rows = [i for i in range(B) if languages[i] == lang]
        tok = tokenizer.with_options(language=lang if model.is_multilingual else None, task=opts.task)
        kv = None if audio_kv is None else [(k[rows], v[rows]) for k, v in audio_kv] if len(rows) < B else audio_kv
        group_opts = opts
        if opts.end_not_before is not None and len(rows) < B:
            group_opts = replace(opts, end_not_before=tuple(opts.end_not_before[i] for i in rows))
        group = _decode_group(model, audio_features[rows], tok, group_opts, kv, on_step)
        for i, r in zip(rows, group):
            r.language = lang
            r.language_probs = language_probs[i] if language_probs else None
        results.extend(zip(rows, group))
    return [r for _, r in sorted(results, key=lambda x: x[0])]


def _decode_group(
    model: Whisper, features: torch.Tensor, tok: WhisperTokenizer, opts: DecodingOptions, audio_kv, on_step
):
    n_ctx = model.config.n_text_ctx
    sample_len = opts.sample_len or n_ctx // 2
    initial, sot_index = _prompt_tokens(opts, tok, n_ctx)
    sample_begin = len(initial)
    if sample_begin + sample_len > n_ctx:
        sample_len = n_ctx - sample_begin
    beam = opts.beam_size if (opts.beam_size or 1) > 1 and opts.temperature == 0 else None
    n_group = beam or (opts.best_of if opts.temperature > 0 and opts.best_of else 1)
    B = features.shape[0]
    device = features.device
    max_initial = None
    if opts.max_initial_timestamp is not None:
        max_initial = round(opts.max_initial_timestamp / 0.02)  # in 20 ms timestamp steps
    suppress = torch.tensor(suppress_token_list(opts, tok), device=device)
    end_not_before = None
    if opts.end_not_before is not None and not opts.without_timestamps:
        steps = [-1 if t is None else round(t / 0.02) for t in opts.end_not_before for _ in range(n_group)]
        end_not_before = torch.tensor(steps, device=device) if max(steps) >= 0 else None

    def filter_logits(logits: torch.Tensor, tokens: torch.Tensor) -> None:
        if opts.suppress_blank:
            suppress_blank(logits, tokens, sample_begin, tok)
        logits[:, suppress] = -float("inf")
        if end_not_before is not None:
            suppress_early_end(logits, tokens, sample_begin, tok, end_not_before)
        if not opts.without_timestamps:
            apply_timestamp_rules(logits, tokens, sample_begin, tok, max_initial)

    # Each window has n_group hypotheses (beams or samples), in consecutive rows; the audio keys/values are
    # computed and kept once per window and shared by its hypotheses.
    if audio_kv is None:
        audio_kv = model.audio_kv(features)
    cache = model.new_cache(B * n_group, max_len=sample_begin + sample_len + 1, audio_kv=audio_kv)
    tokens = torch.tensor([initial] * (B * n_group), dtype=torch.long, device=device)  # (B*n, T0)
    no_speech: list[float] = []

    def step(new: torch.Tensor, cache) -> torch.Tensor:
        """genlab.sampling's step: (N, t) new tokens -> (N, V) next-token logits. The first call (the prompt)
        also keeps the no-speech probability, read at <|startoftranscript|>; ``on_step`` runs before the others."""
        if not no_speech:
            logits = model.logits(new, features, cache, positions=[sot_index, -1], audio_kv=audio_kv)  # (N, 2, V)
            no_speech.extend(logits[::n_group, 0].float().softmax(dim=-1)[:, tok.no_speech].tolist())
            return logits[:, -1]
        if on_step is not None:
            on_step()
        return model.logits(new, features, cache, positions=[-1], audio_kv=audio_kv)[:, -1]

    def rules(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:  # Whisper's logit filters
        filter_logits(logits, tokens)
        return logits

    with decode_threads(model, device):
        if beam:
            found = sampling.patience_beam_search(step, tokens, num_beams=beam, max_new_tokens=sample_len,
                                                  eos_token_id=tok.eot, patience=opts.patience, processors=[rules],
                                                  cache=cache, end_within_beam=opts.end_within_beam)
            seqs, sum_lp = [[c[0] for c in window] for window in found], [[c[1] for c in window] for window in found]
        else:
            hot = opts.temperature > 0
            gen = torch.Generator(device=device).manual_seed(opts.seed) if hot else None
            out, lps = sampling.generate(
                step, tokens, max_new_tokens=sample_len, processors=[rules],
                warpers=[sampling.temperature(opts.temperature)] if hot else [], sample=hot, generator=gen,
                eos_token_id=tok.eot, cache=cache, return_logprobs=True,
            )
            seqs = [out[b * n_group : (b + 1) * n_group].tolist() for b in range(B)]
            sum_lp = [lps[b * n_group : (b + 1) * n_group].tolist() for b in range(B)]

    return [_best(seqs[b], sum_lp[b], sample_begin, no_speech[b], tok, opts) for b in range(B)]


def _best(seqs: list[list[int]], sum_lp: list[float], sample_begin: int, no_speech: float, tok: WhisperTokenizer,
          opts: DecodingOptions) -> DecodingResult:
    """A window's candidates (prompt + sampled tokens, and their summed log-probabilities) ranked by
    :func:`_rank_score`: the best one as the window's result."""
    cand_tokens = [c[sample_begin:] for c in seqs]
    cand_tokens = [t[: t.index(tok.eot)] if tok.eot in t else t for t in cand_tokens]
    scores = [_rank_score(lp, len(t), opts.length_penalty) for t, lp in zip(cand_tokens, sum_lp)]
    best = max(range(len(scores)), key=lambda i: scores[i])
    text = tok.decode(cand_tokens[best]).strip()
    return DecodingResult(
        tokens=cand_tokens[best], text=text, language=tok.language or "en",
        avg_logprob=sum_lp[best] / (len(cand_tokens[best]) + 1), sum_logprob=sum_lp[best],
        no_speech_prob=no_speech, temperature=opts.temperature, compression_ratio=compression_ratio(text),
    )


def decode_threads(model, device: torch.device):
    """How many threads the token loop uses. A decoding step is a chain of small matrix-vector products.
    PyTorch's default fp32 kernels run a one-row product on one thread, so with them the loop runs on one (the
    encoder, one big batched pass, keeps them all). A model that says its steps use every thread keeps them
    (:class:`genlab.asr.fast.FastWhisper`: oneDNN on repacked fp32 weights and int8 split even one row over them;
    ``benchmarks/decoder_linear.py``)."""
    return contextlib.nullcontext() if getattr(model, "steps_use_all_threads", False) else few_threads(device)


@contextlib.contextmanager
def few_threads(device: torch.device):
    """Run a chain of small operations on one thread: on CPU, synchronising a thread pool for each costs more
    than it saves (and far more when other processes share the cores)."""
    n = torch.get_num_threads()
    if device.type == "cpu" and n > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _rank_score(logprob: float, length: int, length_penalty: float | None) -> float:
    # Wu et al. 2016 length penalty ((5 + L) / 6) ** alpha; without one, the mean log-prob per token.
    penalty = length if length_penalty is None else ((5 + length) / 6) ** length_penalty
    return logprob / max(penalty, 1e-9)


def with_temperature(opts: DecodingOptions, t: float) -> DecodingOptions:
    return replace(opts, temperature=t)
