"""What lets the TTS recipe train on a machine without espeak's sentence sources or soxr (scripts/gpu/*_tts.sh): a
corpus rendered from a plan made elsewhere, the scipy resampler of the training paths, batched speaker features."""

import importlib.util
import json

import numpy as np
import pytest
import torch

from genlab.tts.data import TTSCorpusSize, build, plan
from genlab.tts.voice import resample, speaker_features


def test_build_from_a_carried_plan_matches_build(espeak, tmp_path, monkeypatch):
    if importlib.util.find_spec("dataset_build") is None:  # its data only (the package itself is not imported)
        pytest.skip("the plan's sentences need genlab[speech] (dataset_build)")
    size = TTSCorpusSize(train=3, test=1)
    planned = json.loads(json.dumps(plan(size, seed=0)))  # as it travels in tts-plan.json
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "here"))
    here = build(size, 0, progress=False)
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "there"))
    there = build(size, 0, progress=False, planned=planned)
    assert [u["text"] for u in there.manifest["utterances"]] == [u["text"] for u in here.manifest["utterances"]]
    assert there.vocabulary == here.vocabulary
    # Timing is not compared: espeak keeps state between utterances, so a second rendering in the same process
    # shifts some phoneme boundaries by a frame (a fresh process rendering the plan in order reproduces them; the
    # GPU script checks that against the checksums of the corpus built here).
    for split in ("train", "test"):
        for name in ("phonemes", "stress"):
            np.testing.assert_array_equal(there.arrays[split][name], here.arrays[split][name])


def test_resample_keeps_a_tone_and_gives_ceil_length():
    rate, n = 22050, 22050
    t = np.arange(n) / rate
    y = resample(np.sin(2 * np.pi * 440 * t), rate, 16000)
    assert y.dtype == np.float32 and len(y) == -(-n * 16000 // rate)
    expected = np.sin(2 * np.pi * 440 * np.arange(len(y)) / 16000)
    assert np.abs(y - expected)[200:-200].max() < 1e-2  # away from the filter's edges


def test_speaker_features_batched_equal_one_by_one():
    x = torch.randn(3, 16000, generator=torch.Generator().manual_seed(0))
    batched = speaker_features(x, 40)  # (3, frames, 40)
    torch.testing.assert_close(batched, torch.stack([speaker_features(row, 40) for row in x]), rtol=0, atol=0)
