"""sampling.py: each processor on a hand-computed case and equal to HF transformers' warper on random logits;
seeded sampling; greedy, sampled and beam-search decoding equal to HF ``generate`` on a tiny random GPT-2; the
KV-cache path equal to the full-sequence path on a genlab TransformerBlock model; classifier-free guidance."""

import math

import pytest
import torch
from torch import nn

from genlab import sampling as S
from genlab.errors import GenlabError
from genlab.nn.attention import BlockConfig, KVCache, TransformerBlock

transformers = pytest.importorskip("transformers")
from transformers import generation as G  # noqa: E402

INF = float("-inf")


def _log(probs):
    return torch.tensor([probs]).log()  # (1, V) logits whose softmax is ``probs``


# ----------------------------------------------------------------------------------------------------------------
# Processors: hand-computed cases
# ----------------------------------------------------------------------------------------------------------------

NO_TOKENS = torch.zeros(1, 0, dtype=torch.long)


def test_temperature_by_hand():
    out = S.temperature(2.0)(torch.tensor([[2.0, -4.0, 6.0]]), NO_TOKENS)
    assert torch.equal(out, torch.tensor([[1.0, -2.0, 3.0]]))
    greedy = S.temperature(0)(torch.tensor([[0.5, 3.0, 1.0], [7.0, 2.0, 7.0]]), torch.zeros(2, 0, dtype=torch.long))
    assert torch.equal(greedy, torch.tensor([[INF, 3.0, INF], [7.0, INF, INF]]))  # first of tied maxima


def test_top_k_by_hand():
    assert torch.equal(S.top_k(2)(torch.tensor([[1.0, 3.0, 2.0, 0.0]]), NO_TOKENS),
                       torch.tensor([[INF, 3.0, 2.0, INF]]))
    # ties with the k-th logit are kept; k above the vocabulary keeps everything
    assert torch.equal(S.top_k(2)(torch.tensor([[3.0, 2.0, 2.0, 0.0]]), NO_TOKENS),
                       torch.tensor([[3.0, 2.0, 2.0, INF]]))
    assert torch.equal(S.top_k(10)(torch.tensor([[1.0, 2.0]]), NO_TOKENS), torch.tensor([[1.0, 2.0]]))


def test_top_p_by_hand():
    logits = _log([0.3, 0.5, 0.05, 0.15])
    kept = lambda p: torch.isfinite(S.top_p(p)(logits, NO_TOKENS))[0].tolist()  # noqa: E731
    assert kept(0.4) == [False, True, False, False]  # 0.5 alone reaches 0.4
    assert kept(0.7) == [True, True, False, False]  # 0.5 + 0.3 = 0.8 is the smallest set reaching 0.7
    assert kept(0.9) == [True, True, False, True]  # 0.95
    assert kept(1.0) == [True, True, True, True]
    assert torch.equal(S.top_p(0.7)(logits, NO_TOKENS)[0, :2], logits[0, :2])  # survivors unchanged


def test_min_p_by_hand():
    logits = _log([0.3, 0.5, 0.05, 0.15])
    kept = lambda p: torch.isfinite(S.min_p(p)(logits, NO_TOKENS))[0].tolist()  # noqa: E731
    assert kept(0.2) == [True, True, False, True]  # threshold 0.1
    assert kept(0.5) == [True, True, False, False]  # threshold 0.25
    assert kept(1.0) == [False, True, False, False]
    assert kept(0.0) == [True, True, True, True]


def test_repetition_penalty_by_hand():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    out = S.repetition_penalty(2.0)(logits, torch.tensor([[0, 1, 1]]))
    assert torch.equal(out, torch.tensor([[1.0, -2.0, 0.5, 3.0]]))  # positive halved, negative doubled, once each
    assert torch.equal(logits, torch.tensor([[2.0, -1.0, 0.5, 3.0]]))  # input untouched


def test_suppress_and_allow_by_hand():
    logits = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert torch.equal(S.suppress_tokens([1, 3])(logits, NO_TOKENS), torch.tensor([[1.0, INF, 3.0, INF]]))
    assert torch.equal(S.allow_tokens([2, 0])(logits, NO_TOKENS), torch.tensor([[1.0, INF, 3.0, INF]]))
    with pytest.raises(GenlabError, match="outside the vocabulary"):
        S.allow_tokens([4])(logits, NO_TOKENS)


def test_apply_chains_in_order():
    logits, tokens = torch.tensor([[4.0, 2.0, 6.0, -2.0]]), torch.tensor([[2]])
    # 6 -> 2 (penalty), all doubled (t = 0.5), then the top 2 of (8, 4, 4, -4) keep the tied 4s
    out = S.apply([S.repetition_penalty(3.0), S.temperature(0.5), S.top_k(2)], logits, tokens)
    assert torch.equal(out, torch.tensor([[8.0, 4.0, 4.0, INF]]))
    # the other order: top 2 of (4, 2, 6, -2) first, then 6 -> 2
    out = S.apply([S.top_k(2), S.repetition_penalty(3.0)], logits, tokens)
    assert torch.equal(out, torch.tensor([[4.0, INF, 2.0, INF]]))
    assert torch.equal(S.apply([], logits, tokens), logits)


@pytest.mark.parametrize("bad", [
    lambda: S.temperature(-0.1), lambda: S.temperature(float("nan")), lambda: S.temperature("hot"),
    lambda: S.top_k(0), lambda: S.top_k(2.5), lambda: S.top_k(True),
    lambda: S.top_p(0), lambda: S.top_p(1.5), lambda: S.top_p(float("inf")),
    lambda: S.min_p(-0.1), lambda: S.min_p(1.01),
    lambda: S.repetition_penalty(0), lambda: S.repetition_penalty(-1.2),
    lambda: S.suppress_tokens([]), lambda: S.suppress_tokens([-1]), lambda: S.allow_tokens([]),
    lambda: S.guided(lambda t, c: t, float("nan")),
])
def test_bad_processor_arguments(bad):
    with pytest.raises(GenlabError):
        bad()


# ----------------------------------------------------------------------------------------------------------------
# Processors: equal to HF's warpers on random logits
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ours,theirs", [
    (S.temperature(0.7), G.TemperatureLogitsWarper(0.7)),
    (S.temperature(1.6), G.TemperatureLogitsWarper(1.6)),
    (S.top_k(1), G.TopKLogitsWarper(1)),
    (S.top_k(7), G.TopKLogitsWarper(7)),
    (S.top_p(0.3), G.TopPLogitsWarper(0.3)),
    (S.top_p(0.9), G.TopPLogitsWarper(0.9)),
    (S.top_p(1.0), G.TopPLogitsWarper(1.0)),
    (S.min_p(0.05), G.MinPLogitsWarper(0.05)),
    (S.min_p(0.4), G.MinPLogitsWarper(0.4)),
    (S.repetition_penalty(1.3), G.RepetitionPenaltyLogitsProcessor(1.3)),
    (S.repetition_penalty(0.8), G.RepetitionPenaltyLogitsProcessor(0.8)),
    (S.suppress_tokens([3, 5, 60]), G.SuppressTokensLogitsProcessor([3, 5, 60])),
])
def test_processors_equal_hf(ours, theirs):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 64, generator=g) * 3  # (B, V)
    logits[1, 10:20] = logits[1, 9]  # ties
    tokens = torch.randint(0, 64, (6, 9), generator=g)  # (B, T)
    expected = theirs(tokens, logits.clone())
    assert torch.equal(ours(logits, tokens), expected)
    assert torch.isfinite(expected).sum() > 0


# ----------------------------------------------------------------------------------------------------------------
# pick: greedy, and seeded multinomial
# ----------------------------------------------------------------------------------------------------------------


def test_pick_greedy_and_seeded_sampling():
    logits = torch.randn(16, 1000, generator=torch.Generator().manual_seed(1))
    assert torch.equal(S.pick(logits, False, None), logits.argmax(-1))
    draw = lambda seed: S.pick(logits, True, torch.Generator().manual_seed(seed))  # noqa: E731
    assert torch.equal(draw(7), draw(7))
    assert not torch.equal(draw(7), draw(8))


def test_pick_samples_the_softmax():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    g = torch.Generator().manual_seed(0)
    draws = S.pick(probs.log().expand(20000, 4), True, g)  # (20000,)
    freq = torch.bincount(draws, minlength=4).float() / draws.numel()
    stderr = (probs * (1 - probs) / draws.numel()).sqrt()
    assert ((freq - probs).abs() < 4 * stderr).all(), freq


# ----------------------------------------------------------------------------------------------------------------
# A tiny random GPT-2 (HF) seen through a step function
# ----------------------------------------------------------------------------------------------------------------

VOCAB = 12
# An end token this tiny model emits often: hypotheses finish, fill every beam and stop the search early, so every
# rule of HF's finished-hypothesis bookkeeping decides some token (test_beam_search_finishes_hypotheses checks).
EOS = 7


class HFCache:
    """HF past key values behind the ``reorder`` that beam search calls."""

    def __init__(self):
        self.past = transformers.DynamicCache()

    def reorder(self, index):
        self.past.reorder_cache(index)


def hf_step(model):
    """``step(tokens, cache)`` for an HF causal LM: with a cache it feeds only the new tokens, as HF generate does
    (and asks for the last position's logits only, as HF does, so the logits are bit-identical)."""

    @torch.no_grad()
    def step(tokens, cache):
        if cache is None:
            return model(tokens).logits[:, -1]
        return model(tokens, cache=cache.past, use_cache=True, logits_to_keep=1).logits[:, -1]  # cache grows in place
    return step


@pytest.fixture(scope="module")
def gpt2():
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                  initializer_range=0.3, bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(cfg).eval()


@pytest.fixture(scope="module")
def prompts():
    return torch.randint(1, VOCAB, (3, 5), generator=torch.Generator().manual_seed(3))  # (B, T)


def _hf_generate(model, prompt, **kw):
    with torch.no_grad():
        return model.generate(prompt, attention_mask=torch.ones_like(prompt), **kw)


@pytest.mark.parametrize("with_cache", [True, False])
def test_greedy_equals_hf(gpt2, prompts, with_cache):
    for eos in (None, EOS):
        expected = _hf_generate(gpt2, prompts, max_new_tokens=12, do_sample=False, eos_token_id=eos,
                                pad_token_id=EOS)
        ours = S.generate(hf_step(gpt2), prompts, max_new_tokens=12, eos_token_id=eos,
                          cache=HFCache() if with_cache else None)
        assert torch.equal(ours, expected), (eos, ours, expected)
    first_eos = [int((row == EOS).nonzero()[0, 0]) if (row == EOS).any() else None
                 for row in ours[:, prompts.shape[1]:]]
    assert len(set(first_eos)) > 1 and min(i for i in first_eos if i is not None) < 11, first_eos
    # rows finished at different steps: the early ones were padded while the others ran on


def test_sampling_equals_hf(gpt2, prompts):
    """HF draws from the global generator; ours from a generator seeded the same: same stream, same tokens."""
    kw = dict(temperature=0.9, top_k=8, top_p=0.95, repetition_penalty=1.2)
    torch.manual_seed(11)
    expected = _hf_generate(gpt2, prompts, max_new_tokens=12, do_sample=True, eos_token_id=EOS, pad_token_id=EOS,
                            **kw)
    procs = [S.repetition_penalty(1.2), S.temperature(0.9), S.top_k(8), S.top_p(0.95)]  # HF's order
    run = lambda seed: S.generate(hf_step(gpt2), prompts, max_new_tokens=12, processors=procs, sample=True,  # noqa: E731
                                  generator=torch.Generator().manual_seed(seed), eos_token_id=EOS, cache=HFCache())
    assert torch.equal(run(11), expected)
    assert torch.equal(run(11), run(11))
    assert not torch.equal(run(11), run(12))


def test_temperature_zero_sampling_is_greedy(gpt2, prompts):
    greedy = S.generate(hf_step(gpt2), prompts, max_new_tokens=8, cache=HFCache())
    sampled = S.generate(hf_step(gpt2), prompts, max_new_tokens=8, processors=[S.temperature(0)], sample=True,
                         generator=torch.Generator().manual_seed(0), cache=HFCache())
    assert torch.equal(greedy, sampled)


# (num_beams, length_penalty, early_stopping): each of HF's finished-hypothesis and stopping rules changes the
# result or the number of model calls in at least one of these cases (checked by mutating sampling.py).
BEAM_CASES = [(3, 1.0, False), (3, 0.5, True), (4, 1.0, True), (4, 0.5, False), (3, 1.0, "never"),
              (4, 2.0, "never"), (3, 2.0, False), (3, 0.0, True)]


def _counted(step):
    """``step`` that counts its calls in ``.calls``."""
    def counted(tokens, cache):
        counted.calls += 1
        return step(tokens, cache)
    counted.calls = 0
    return counted


@pytest.mark.parametrize("num_beams,length_penalty,early_stopping", BEAM_CASES)
def test_beam_search_equals_hf(gpt2, prompts, num_beams, length_penalty, early_stopping):
    """Same tokens, same scores and the same number of model calls (the stopping rules) as HF."""
    kw = dict(num_beams=num_beams, length_penalty=length_penalty, early_stopping=early_stopping, max_new_tokens=20)
    hf_calls = []
    hook = gpt2.register_forward_hook(lambda *_: hf_calls.append(1))
    try:
        ref = _hf_generate(gpt2, prompts, do_sample=False, eos_token_id=EOS, pad_token_id=EOS,
                           return_dict_in_generate=True, output_scores=True, **kw)
    finally:
        hook.remove()
    step = _counted(hf_step(gpt2))
    seqs, scores = S.beam_search(step, prompts, eos_token_id=EOS, cache=HFCache(), **kw)
    assert torch.equal(seqs, ref.sequences), (seqs, ref.sequences)
    assert torch.equal(scores, ref.sequences_scores)
    assert step.calls == len(hf_calls)
    # the end token took part: some of the num_beams finished hypotheses HF keeps end with it
    hypotheses = _hf_generate(gpt2, prompts, do_sample=False, eos_token_id=EOS, pad_token_id=EOS,
                              num_return_sequences=num_beams, **kw)
    assert (hypotheses[:, prompts.shape[1]:] == EOS).any()


def test_beam_search_without_eos_and_with_processors_equals_hf(gpt2, prompts):
    for hf_kw, procs in [({}, ()), ({"repetition_penalty": 1.3}, [S.repetition_penalty(1.3)])]:
        ref = _hf_generate(gpt2, prompts, max_new_tokens=7, num_beams=3, do_sample=False, eos_token_id=None,
                           pad_token_id=0, return_dict_in_generate=True, output_scores=True, **hf_kw)
        seqs, scores = S.beam_search(hf_step(gpt2), prompts, num_beams=3, max_new_tokens=7, processors=procs,
                                     cache=HFCache())
        assert torch.equal(seqs, ref.sequences) and torch.equal(scores, ref.sequences_scores)
        assert seqs.shape == (3, prompts.shape[1] + 7)


def test_beam_search_finishes_hypotheses(gpt2, prompts):
    """The end token the fixture chose ends some best hypotheses before the length limit, in step with HF."""
    T, n = prompts.shape[1], 10
    seqs, scores = S.beam_search(hf_step(gpt2), prompts, num_beams=3, max_new_tokens=n, eos_token_id=EOS,
                                 cache=HFCache())
    ended_early = [(row[T:] == EOS).any() and (row[T:] == EOS).nonzero()[0, 0] < n - 1 for row in seqs]
    assert any(ended_early), seqs
    # the score is the summed log-probability over the generated length (length_penalty 1): recompute it
    for row, score in zip(seqs, scores):
        gen = row[T:]
        length = int((gen == EOS).nonzero()[0, 0]) + 1 if (gen == EOS).any() else n
        with torch.no_grad():
            logp = gpt2(row[None, : T + length]).logits[0, T - 1 : T + length - 1].log_softmax(-1)
        total = logp.gather(1, row[T : T + length, None]).sum()
        assert math.isclose(float(score), float(total) / length, rel_tol=1e-4, abs_tol=1e-5)


def test_beam_search_without_cache_equals_hf_on_batch_of_one(gpt2, prompts):
    ref = _hf_generate(gpt2, prompts[:1], max_new_tokens=8, num_beams=3, do_sample=False, eos_token_id=EOS,
                       pad_token_id=EOS)
    seqs, _ = S.beam_search(hf_step(gpt2), prompts[:1], num_beams=3, max_new_tokens=8, eos_token_id=EOS)
    assert torch.equal(seqs, ref)


def test_generate_pads_finished_rows_and_stops():
    """A step that counts up: row 0 reaches eos (5) after 2 tokens, row 1 after 4; finished rows pad with 9."""

    def step(tokens, cache):
        return torch.nn.functional.one_hot((tokens[:, -1] + 1) % 10, 10).float()
    out = S.generate(step, torch.tensor([[3], [1]]), max_new_tokens=8, eos_token_id=5, pad_token_id=9)
    assert out.tolist() == [[3, 4, 5, 9, 9], [1, 2, 3, 4, 5]]
    assert S.generate(step, torch.tensor([[3]]), max_new_tokens=0).tolist() == [[3]]


@pytest.mark.parametrize("bad", [
    lambda s: S.generate(s, torch.tensor([1, 2]), max_new_tokens=3),
    lambda s: S.generate(s, torch.zeros(2, 0, dtype=torch.long), max_new_tokens=3),
    lambda s: S.generate(s, torch.ones(1, 2), max_new_tokens=3),
    lambda s: S.generate(s, torch.ones(1, 2, dtype=torch.long), max_new_tokens=-1),
    lambda s: S.beam_search(s, torch.ones(1, 2, dtype=torch.long), num_beams=0, max_new_tokens=3),
    lambda s: S.beam_search(s, torch.ones(1, 2, dtype=torch.long), num_beams=2, max_new_tokens=0),
    lambda s: S.beam_search(s, torch.ones(1, 2, dtype=torch.long), num_beams=2, max_new_tokens=3,
                            early_stopping="sometimes"),
    lambda s: S.beam_search(s, torch.ones(2, 2, dtype=torch.long), num_beams=2, max_new_tokens=3,
                            cache=KVCache(1, 2, 1, 4, 8)),
])
def test_bad_loop_arguments(bad):
    with pytest.raises(GenlabError):
        bad(lambda tokens, cache: torch.zeros(tokens.shape[0], 4))


# ----------------------------------------------------------------------------------------------------------------
# genlab's own blocks: the KV-cache step equals the full-sequence step
# ----------------------------------------------------------------------------------------------------------------


class TinyLM(nn.Module):
    """Token and learned position embeddings, causal TransformerBlocks, a final norm and a head; an optional
    per-row condition vector added to every position (for guidance)."""

    def __init__(self, vocab=40, dim=32, n_layer=2, max_len=48):
        super().__init__()
        self.cfg = BlockConfig(dim=dim, n_head=4)
        self.tok, self.pos = nn.Embedding(vocab, dim), nn.Embedding(max_len, dim)
        self.blocks = nn.ModuleList(TransformerBlock(self.cfg) for _ in range(n_layer))
        self.ln, self.head = nn.LayerNorm(dim), nn.Linear(dim, vocab)
        self.max_len = max_len
        with torch.no_grad():
            self.head.weight.mul_(8)  # peaked next-token distributions: no near-ties in the tests

    def cache(self, batch):
        return KVCache(len(self.blocks), batch, self.cfg.n_head, self.cfg.dim // self.cfg.n_head, self.max_len)

    @torch.no_grad()
    def step(self, tokens, cache, cond=None):
        offset = cache.length if cache is not None else 0
        x = self.tok(tokens) + self.pos(torch.arange(offset, offset + tokens.shape[1]))  # (B, t, C)
        if cond is not None:
            x = x + cond[:, None]  # (B, 1, C) broadcast over positions
        for i, block in enumerate(self.blocks):
            x = block(x, cache=cache, layer=i, causal=True)
        if cache is not None:
            cache.advance(tokens.shape[1])
        return self.head(self.ln(x[:, -1]))  # (B, V)


@pytest.fixture(scope="module")
def tiny_lm():
    torch.manual_seed(0)
    return TinyLM().eval()


def test_generate_with_kvcache_equals_without(tiny_lm):
    prompt = torch.randint(0, 40, (4, 6), generator=torch.Generator().manual_seed(5))
    full = S.generate(tiny_lm.step, prompt, max_new_tokens=20)
    cached = S.generate(tiny_lm.step, prompt, max_new_tokens=20, cache=tiny_lm.cache(4))
    assert torch.equal(full, cached) and full.shape == (4, 26)
    procs = [S.top_k(10), S.temperature(1.5)]
    sample = lambda cache: S.generate(tiny_lm.step, prompt, max_new_tokens=20, processors=procs, sample=True,  # noqa: E731
                                      generator=torch.Generator().manual_seed(2), cache=cache)
    assert torch.equal(sample(None), sample(tiny_lm.cache(4)))


def test_beam_search_with_kvcache_equals_without(tiny_lm):
    prompt = torch.randint(0, 40, (2, 4), generator=torch.Generator().manual_seed(6))
    eos = int(torch.mode(S.generate(tiny_lm.step, prompt, max_new_tokens=16)[:, 4:].flatten()).values)
    kw = dict(num_beams=4, max_new_tokens=16, eos_token_id=eos, length_penalty=0.8)
    full, full_scores = S.beam_search(tiny_lm.step, prompt, **kw)
    cached, cached_scores = S.beam_search(tiny_lm.step, prompt, cache=tiny_lm.cache(8), **kw)
    assert torch.equal(full, cached)
    torch.testing.assert_close(full_scores, cached_scores)


# ----------------------------------------------------------------------------------------------------------------
# Classifier-free guidance
# ----------------------------------------------------------------------------------------------------------------


def _conditioned_step(tiny_lm, cond):
    """A step over [cond rows; uncond rows]: the first B rows get their condition vector, the last B none."""
    layout = torch.cat([cond, torch.zeros_like(cond)])  # (2B, C)
    return lambda tokens, cache: tiny_lm.step(tokens, cache, cond=layout)


def test_guidance_scales(tiny_lm):
    B = 3
    cond = torch.randn(B, 32, generator=torch.Generator().manual_seed(1))
    tokens = torch.randint(0, 40, (B, 5), generator=torch.Generator().manual_seed(2))
    step = _conditioned_step(tiny_lm, cond)
    both = step(torch.cat([tokens, tokens]), None)  # (2B, V)
    c, u = both[:B], both[B:]
    assert not torch.allclose(c, u)
    torch.testing.assert_close(S.guided(step, 1.0)(tokens, None), c)
    torch.testing.assert_close(S.guided(step, 0.0)(tokens, None), u)
    torch.testing.assert_close(S.guided(step, 3.0)(tokens, None), 3 * c - 2 * u)
    # the conditional half is the model run on the conditional rows alone
    torch.testing.assert_close(c, tiny_lm.step(tokens, None, cond=cond))


def test_guided_generate_with_cache_equals_without(tiny_lm):
    B = 2
    cond = torch.randn(B, 32, generator=torch.Generator().manual_seed(4))
    prompt = torch.randint(0, 40, (B, 3), generator=torch.Generator().manual_seed(5))
    step = S.guided(_conditioned_step(tiny_lm, cond), 3.0)
    full = S.generate(step, prompt, max_new_tokens=12)
    cached = S.generate(step, prompt, max_new_tokens=12, cache=tiny_lm.cache(2 * B))  # both halves in one cache
    assert torch.equal(full, cached)
    assert not torch.equal(full, S.generate(S.guided(_conditioned_step(tiny_lm, cond), 0.0), prompt,
                                            max_new_tokens=12))


# A step over tokens 0 (end), 1 (a), 2 (b), 3 (the prompt), by the text after the prompt: next-token probabilities.
_ENDS = {(): [0.0067, 0.9048, 0.0821, 0.0064], (1,): [0.35, 0.6, 0.04, 0.01], (2,): [0.9, 0.05, 0.04, 0.01],
         (1, 1): [0.9, 0.05, 0.04, 0.01]}


def _table_step(tokens: torch.Tensor, cache) -> torch.Tensor:
    rows = [_ENDS.get(tuple(r[1:]), [0.25] * 4) for r in tokens.tolist()]
    return torch.tensor(rows).log()


@pytest.mark.parametrize("within", [False, True])
def test_patience_beam_search_ends_within_the_beam(within):
    """Two beams; at the second step the candidates rank a-a (live), a-end, b-end, a-b (live). openai-whisper's rule
    counts both ends (b-end ranks third, below the beam) and stops with the two short texts; CTranslate2's
    (``end_within_beam``) counts only a-end, runs on, and ends a-a, the best text per token."""
    found = S.patience_beam_search(_table_step, torch.tensor([[3], [3]]), num_beams=2, max_new_tokens=5,
                                   eos_token_id=0, end_within_beam=within)[0]
    got = {tuple(seq[1:]): round(lp, 3) for seq, lp in found}
    lp = {k: [math.log(p) for p in v] for k, v in _ENDS.items()}
    a_end = round(lp[()][1] + lp[(1,)][0], 3)
    if within:
        assert got == {(1, 0): a_end, (1, 1, 0): round(lp[()][1] + lp[(1,)][1] + lp[(1, 1)][0], 3)}
    else:
        assert got == {(1, 0): a_end, (2, 0): round(lp[()][2] + lp[(2,)][0], 3)}
