"""The codec's data and training task on real recordings (codec2's example clips, from Debian's codec2-examples):
splits held out by speaker with licences in the manifest, and an end-to-end smoke run of the tiny preset through
the shared trainer (both phases, checkpoint, evaluation, loading the result as an alphabet)."""

import copy
import dataclasses
import glob

import numpy as np
import pytest
import torch

from genlab.codec.api import CodecAlphabet, load
from genlab.codec.data import SOURCES, build
from genlab.codec.task import PRESETS, CodecTask
from genlab.errors import GenlabError
from genlab.train import Trainer

CODEC2 = tuple(s for s in SOURCES if s.name == "codec2")
HELD_OUT = frozenset({"codec2-vk5qi", "codec2-mmt1"})

pytestmark = pytest.mark.skipif(not glob.glob(CODEC2[0].pattern), reason="codec2-examples is not installed")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("GENLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield build(16000, progress=False, sources=CODEC2, test_speakers=HELD_OUT)
    mp.undo()


def test_corpus_holds_out_speakers_and_records_licences(corpus):
    m = corpus.manifest
    train_speakers = {c["speaker"] for c in corpus.clips("train")}
    test_speakers = {c["speaker"] for c in corpus.clips("test")}
    assert test_speakers == HELD_OUT and not train_speakers & test_speakers and len(train_speakers) >= 5
    assert m["sources"]["codec2"]["licence"] == "LGPL-2.1" and "David Rowe" in m["sources"]["codec2"]["attribution"]
    assert m["sample_rate"] == 16000 and "festvox-ru" not in m["sources"]
    assert len(corpus.train) == sum(c["length"] for c in corpus.clips("train"))
    assert all(not c["path"].endswith(("f2400.wav", "m2400.wav", "all.wav")) for c in m["clips"])
    clips = corpus.test_clips()
    assert len(clips) == 2 and all(np.abs(a).max() == pytest.approx(0.9, abs=1e-3) for _, a in clips)
    # A window past the end wraps around.
    assert corpus.window(len(corpus.train) - 10, 30).shape == (30,)


def test_tiny_codec_trains_end_to_end(corpus, tmp_path):
    run = PRESETS["tiny"]
    torch.manual_seed(0)
    task = CodecTask(run.model, corpus=corpus)
    assert [p.name for p in task.phases] == ["gen", "disc"]
    cfg = dataclasses.replace(run.train, steps=6, progress=False, ckpt_every=0, eval_every=6)
    trainer = Trainer(task, cfg, tmp_path / "run")
    calls = []
    forward = task.codec.forward
    task.codec.forward = lambda *a, **k: calls.append(1) or forward(*a, **k)
    last = trainer.fit()
    assert len(calls) == 6  # the disc phase reuses the gen phase's reconstruction: one codec pass a step
    assert {"gen/loss", "gen/mel", "gen/l1", "gen/adversarial", "gen/feature", "disc/loss"} <= set(last)
    # The time-domain term has its own key (the log line's "time" is seconds elapsed); a used codebook's
    # perplexity is at least 1 even when quantizer dropout leaves the upper levels without vectors.
    assert last["gen/l1"] < 1.0 and last["gen/perplexity"] >= 1.0
    assert all(np.isfinite(v) for v in last.values())
    # Every codebook was started by k-means on real frames.
    assert all(layer.inited.item() == 1 for layer in task.codec.quantizer.layers)
    records = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert "eval/si_sdr@4" in records and "eval/mel@1" in records

    loaded = load(str(tmp_path / "run"))
    assert torch.equal(loaded.codec.state_dict()["quantizer.layers.0.embed"],
                       task.codec.state_dict()["quantizer.layers.0.embed"])
    alphabet = CodecAlphabet(loaded.codec, 2)
    clip = corpus.test_clips()[0][1][:8000]
    codes = alphabet.encode(clip)
    assert codes.shape == (2, 500) and alphabet.decode(codes).shape == (8000,)

    # The second stage of the recipe starts from the first stage's codec weights.
    stage2 = CodecTask(dataclasses.replace(run.model, init_from=str(tmp_path / "run")), corpus=corpus)
    assert torch.equal(stage2.codec.state_dict()["encoder.stem.conv.bias"], loaded.codec.state_dict()[
        "encoder.stem.conv.bias"])
    # EnCodec's frequency loss joins the generator's terms only when weighted.
    loss = dataclasses.replace(run.model.loss, frequency=1.0)
    freq = CodecTask(dataclasses.replace(run.model, loss=loss), corpus=corpus)
    _, terms = freq.loss(freq.batch(torch.arange(2)), "gen")
    assert terms["frequency"] > 0 and "frequency" not in last and "gen/frequency" not in last


def test_a_new_decoder_learns_on_frozen_tokens(corpus, tmp_path):
    """train_parts="decoder": a Vocos decoder learns on a trained codec's encoder and codebooks, which stay as they
    were (so its tokens are the old codec's), and only the decoder may differ from the codec it starts from."""
    run = PRESETS["tiny"]
    torch.manual_seed(0)
    short = dataclasses.replace(run.train, steps=3, progress=False, ckpt_every=0, eval_every=0)
    Trainer(CodecTask(run.model, corpus=corpus), short, tmp_path / "s1").fit()
    first = load(str(tmp_path / "s1"))
    istft = dataclasses.replace(run.model.codec, decoder="istft", istft_width=8, istft_layers=1)
    model = dataclasses.replace(run.model, codec=istft, init_from=str(tmp_path / "s1"), train_parts="decoder",
                                loss=dataclasses.replace(run.model.loss, adversarial=0.0))
    task = CodecTask(model, corpus=corpus)
    assert set(task.frozen()) == {"encoder", "quantizer"}
    decoder_before = copy.deepcopy(task.codec.decoder.state_dict())
    last = Trainer(task, dataclasses.replace(short, steps=4), tmp_path / "s2").fit()
    assert last["commitment"] == 0 and "perplexity" not in last and np.isfinite(last["loss"])
    assert any(not torch.equal(v, task.codec.decoder.state_dict()[k]) for k, v in decoder_before.items())
    second = load(str(tmp_path / "s2"))
    kept = {k: v for k, v in first.codec.state_dict().items() if not k.startswith("decoder.")}
    assert all(torch.equal(second.codec.state_dict()[k], v) for k, v in kept.items())
    clip = corpus.test_clips()[0][1][:4000]
    old, new = CodecAlphabet(first.codec, 4), CodecAlphabet(second.codec, 4)
    codes = new.encode(clip)
    assert torch.equal(codes, old.encode(clip)) and new.decode(codes).shape == (4000,)
    # Training everything needs the same codec; training the decoder needs the same encoder and codebooks.
    with pytest.raises(GenlabError, match="its codec config differs"):
        CodecTask(dataclasses.replace(model, train_parts="all"), corpus=corpus)
    with pytest.raises(GenlabError, match="its encoder or quantiser config differs"):
        CodecTask(dataclasses.replace(model, codec=dataclasses.replace(istft, n_filters=8)), corpus=corpus)
