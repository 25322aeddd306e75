"""Training Whisper on the speech corpus with the shared trainer: the loss falls, resume is exact, the active
vocabulary loss equals the full one."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import signal

import pytest
import torch

from genlab.errors import GenlabError, Interrupted

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("espeakng_loader") is None or importlib.util.find_spec("dataset_build") is None,
        reason="needs the genlab[speech] extra (espeakng-loader, dataset_build)",
    ),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from genlab.data import speech

    old = os.environ.get("GENLAB_CACHE")
    os.environ["GENLAB_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    try:
        yield speech.build(0, speech.CorpusSize(train=2, test_sentences=1, test_voices=0, test_accents=0),
                           progress=False)
    finally:
        if old is None:
            os.environ.pop("GENLAB_CACHE")
        else:
            os.environ["GENLAB_CACHE"] = old


def _tokenizer_or_skip():
    from genlab.asr.task import default_tokenizer_path

    try:
        return default_tokenizer_path()
    except GenlabError as e:
        pytest.skip(str(e))


def _cfg(steps: int = 8, **train):
    from genlab.asr.task import preset

    cfg = preset("tiny")
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=steps, threads=1, **train))


def test_tiny_model_loss_falls(corpus, tmp_path):
    from genlab.asr.task import ASRTask
    from genlab.train import Trainer

    _tokenizer_or_skip()
    torch.manual_seed(0)
    cfg = _cfg(steps=10, lr=1e-2, ckpt_every=0)
    task = ASRTask(cfg, corpus=corpus)
    fixed = task.batch(torch.arange(task.num_examples))
    before = float(task.loss(fixed)[0].detach())
    Trainer(task, cfg.train, tmp_path / "run").fit()
    after = float(task.loss(fixed)[0].detach())
    assert after < before - 0.3, (before, after)


def test_active_vocabulary_loss_is_the_full_cross_entropy(corpus):
    from genlab.asr.task import ASRTask

    _tokenizer_or_skip()
    task = ASRTask(_cfg(), corpus=corpus)
    batch = task.batch(torch.arange(2))
    active_loss = task.loss(batch)[0]
    active = task.active
    task.active = None  # the plain 51,865-way softmax over the same weights (inactive rows are zero)
    full_loss = task.loss(batch)[0]
    task.active = active
    torch.testing.assert_close(active_loss, full_loss, rtol=1e-5, atol=1e-5)
    emb = task.model.decoder.token_embedding.weight
    assert int((emb.abs().sum(1) > 0).sum()) == len(active) < emb.shape[0] // 4


def test_spelled_units_round_trip_and_shrink_the_alphabet(corpus):
    from genlab.asr.task import ASRTask, spelled
    from genlab.asr.tokenizer import get_tokenizer

    path = _tokenizer_or_skip()
    tok = get_tokenizer(path, multilingual=True)
    for text in (" Größe des Öls, naïve café", " ¿Qué pasó? 3 × 4", " l'hôpital"):
        ids = spelled(tok, text)
        assert tok.bpe.decode(ids) == text
        assert len(ids) >= len(text)  # one token per character at least: nothing merged
    cfg = _cfg()
    chars = ASRTask(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, units="chars")), corpus=corpus)
    bpe = ASRTask(cfg, corpus=corpus)
    assert len(chars.active) < len(bpe.active) // 2


def test_ctc_loss_is_finite_differentiable_and_decreases(corpus, tmp_path):
    from genlab.asr.task import ASRTask
    from genlab.train import Trainer

    _tokenizer_or_skip()
    torch.manual_seed(0)
    cfg = _cfg(steps=10, lr=1e-2, ckpt_every=0)
    cfg = dataclasses.replace(cfg, ctc_weight=0.5, data=dataclasses.replace(cfg.data, units="chars"))
    task = ASRTask(cfg, corpus=corpus)
    fixed = task.batch(torch.arange(task.num_examples))
    assert int(fixed["audio_frames"].max()) <= fixed["mel"].shape[-1] // 2
    loss, stats = task.loss(fixed)
    loss.backward()
    assert torch.isfinite(loss) and stats["ctc"] > 0
    assert task.model.encoder.blocks[0].attn.query.weight.grad.abs().sum() > 0  # CTC reaches the encoder
    task.model.zero_grad()
    before = stats["ctc"]
    Trainer(task, cfg.train, tmp_path / "run").fit()
    assert task.loss(fixed)[1]["ctc"] < before - 0.3
    with pytest.raises(GenlabError, match="ctc_weight"):
        ASRTask(dataclasses.replace(cfg, active_vocab=False), corpus=corpus)


def test_resume_after_a_kill_is_bit_exact(corpus, tmp_path):
    from genlab.asr.task import ASRTask
    from genlab.train import Trainer

    _tokenizer_or_skip()
    cfg = _cfg(steps=6, ckpt_every=0)

    torch.manual_seed(0)
    straight = ASRTask(cfg, corpus=corpus)
    t1 = Trainer(straight, cfg.train, tmp_path / "a")
    t1.fit()

    torch.manual_seed(0)
    killed = ASRTask(cfg, corpus=corpus)
    calls = {"n": 0}
    real_loss = killed.loss

    def loss_then_sigterm(batch, phase="main"):
        calls["n"] += 1
        if calls["n"] == 3:  # SIGTERM during step 3: the trainer finishes the step, saves and raises
            os.kill(os.getpid(), signal.SIGTERM)
        return real_loss(batch, phase)

    killed.loss = loss_then_sigterm
    t2 = Trainer(killed, cfg.train, tmp_path / "b")
    with pytest.raises(Interrupted):
        t2.fit()
    assert t2.step == 3

    torch.manual_seed(123)  # a fresh process would start from other RNG state: resume must restore it
    resumed = ASRTask(cfg, corpus=corpus)
    t3 = Trainer(resumed, cfg.train, tmp_path / "b")
    assert t3.step == 3
    t3.fit()
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    for a, b in zip(t1.ema.module.state_dict().values(), t3.ema.module.state_dict().values()):
        assert torch.equal(a, b)


def test_full_windows_are_mixed_in_deterministically(corpus):
    from genlab.asr.task import ASRTask

    _tokenizer_or_skip()
    cfg = _cfg()
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, full_window_every=2, group_size=2))
    task = ASRTask(cfg, corpus=corpus)
    full = 2 * task.model.config.n_audio_ctx
    shapes = [task.batch(torch.tensor([g]))["mel"].shape for g in range(task.num_examples)]
    assert any(s[-1] == full and s[0] == 1 for s in shapes)  # a quarter of the rows, whole 30 s window
    assert any(s[-1] < full for s in shapes)
    assert shapes == [task.batch(torch.tensor([g]))["mel"].shape for g in range(task.num_examples)]


def test_bad_overrides_are_one_line():
    from genlab.asr.task import preset
    from genlab.config import apply_overrides

    with pytest.raises(GenlabError, match="no field"):
        apply_overrides(preset("tiny"), ["data.nonsense=3"])
    with pytest.raises(GenlabError, match="unknown ASR training preset"):
        preset("huge")
