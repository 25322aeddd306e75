"""The corpus (KJV from Debian's bible-kjv), its alphabet and split, the evaluation (windows, n-gram baselines),
and a short real training run through the shared trainer."""

import math

import numpy as np
import pytest
import torch

from genlab.lm import data
from genlab.lm.evaluate import NGram, Score, model_nll, separated_stream, windows
from genlab.lm.model import LMConfig, TransformerLM

needs_kjv = pytest.mark.skipif(not data.available(), reason="needs Debian's bible-kjv (scripts/install.d/lm.sh)")


@pytest.fixture(scope="module")
def kjv_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("GENLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
    for f in (data.documents, data.alphabet):
        f.cache_clear()
    yield
    mp.undo()
    for f in (data.documents, data.alphabet):
        f.cache_clear()


@needs_kjv
def test_corpus_documents_and_fixed_split(kjv_cache):
    docs = data.documents()
    assert len(docs) == 1189 and docs[0].name == "Genesis 1" and docs[-1].name == "Revelation 22"
    assert docs[0].text.startswith("Genesis 1\n\nIn the beginning God created the heaven and the earth.\nAnd the")
    assert docs[-1].text.endswith("The grace of our Lord Jesus Christ be with you all. Amen.\n")
    train, held = data.split("train"), data.split("heldout")
    assert len(held) == 59 and held[0].name == docs[19].name and len(train) + len(held) == 1189
    assert not {d.name for d in train} & {d.name for d in held}
    manifest = __import__("json").loads((data.cache_dir("lm", "kjv") / "manifest.json").read_text())
    assert "public domain" in manifest["license"] and manifest["documents"] == 1189


@needs_kjv
def test_alphabet_round_trips_and_stream_separates_documents(kjv_cache):
    tok = data.alphabet(512)
    assert tok.vocab_size == 512
    held = data.split("heldout")
    assert tok.decode(tok.encode(held[0].text)) == held[0].text
    stream = data.token_stream("heldout", 512)
    eot = tok.token_id(data.EOT)
    assert (stream == eot).sum() == len(held) + 1 and stream[0] == eot and stream[-1] == eot
    assert tok.decode(stream[1 : list(stream[1:]).index(eot) + 1].tolist()) == held[0].text


@pytest.mark.parametrize("n, context, stride", [(2, 4, 2), (10, 4, 2), (10, 4, 4), (37, 8, 3), (5, 16, 8)])
def test_windows_score_every_target_once_with_enough_history(n, context, stride):
    scored = []
    for start, end, first in windows(n, context, stride):
        assert end - start <= context and start < first <= end + 1
        assert first == 1 or first - start >= context - stride  # each scored target saw >= context - stride tokens
        scored += range(first, end + 1)
    assert scored == list(range(1, n))


def test_windowed_nll_equals_one_pass_when_it_fits():
    torch.manual_seed(0)
    model = TransformerLM(LMConfig(style="llama", vocab_size=50, context=64, n_layer=1, dim=32, n_head=2)).eval()
    stream = torch.randint(0, 50, (40,))
    with torch.no_grad():
        direct = torch.nn.functional.cross_entropy(model(stream[None, :-1])[0], stream[1:], reduction="sum")
    nll, n = model_nll(model, stream, context=64)
    assert n == 39 and math.isclose(nll, float(direct), rel_tol=1e-5)
    nll_windows, n2 = model_nll(model, stream, context=16, stride=8, batch=3)  # shorter history: differs
    assert n2 == 39 and not math.isclose(nll_windows, nll, rel_tol=1e-4)


def test_ngram_baselines_are_distributions():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 12, 500) % 7  # tokens 7..11 never occur
    for order in (1, 2):
        lm = NGram(train, 12, order)
        for v in (0, 3, 9):  # 9: a context never seen
            p = lm.probabilities(np.stack([np.full(12, v), np.arange(12)], 1).reshape(-1))[::2]
            assert np.all(p > 0) and math.isclose(p.sum(), 1.0, rel_tol=1e-9)
    s = Score(nll=10 * math.log(2), tokens=5, chars=20)
    assert math.isclose(s.bits_per_char, 0.5) and math.isclose(s.perplexity, 4.0)


@needs_kjv
def test_a_short_training_run_beats_the_unigram_baseline(kjv_cache, tmp_path):
    from genlab.config import apply_overrides
    from genlab.lm.task import PRESETS, LMTask
    from genlab.train import Trainer, seed_everything

    run = apply_overrides(PRESETS["smoke"], ["train.steps=40", "train.eval_every=40", "data.eval_tokens=8192"])
    tok = data.alphabet(512)
    held = data.token_stream("heldout", 512)
    eot = tok.token_id(data.EOT)
    train = separated_stream(tok, [d.text for d in data.split("train")[:150]], eot)  # 150 of the 1,130 chapters
    seed_everything(0)
    task = LMTask(run, train_stream=train, heldout=held, alphabet=tok)
    before = task.evaluate(0, task.model)
    assert abs(before["heldout_loss"] - math.log(512)) < 0.1  # an untrained model is near uniform
    Trainer(task, run.train, tmp_path).fit()
    after = [__import__("json").loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()][-1]
    unigram = NGram(train, 512, 1).nll(held[:8192])
    assert after["heldout_loss"] < unigram[0] / unigram[1] < before["heldout_loss"]
    samples = sorted((tmp_path / "samples").glob("*.json"))
    assert samples and "And God said," in samples[-1].read_text()
