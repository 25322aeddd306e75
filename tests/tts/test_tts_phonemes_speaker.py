"""espeak's phoneme events: symbols, stress, pauses and frame durations that sum to the spectrogram; the GE2E loss
against a direct computation of Wan et al.'s equations; the EER of perfectly separated and random embeddings."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genlab.tts.model import SpeakerConfig
from genlab.tts.phonemes import PAUSE, Phonemes, _segment
from genlab.tts.speaker import GE2E


def test_segment_splits_stress_and_merges_pauses():
    events = [(100, "h"), (400, "ə"), (700, "ˈoʊ"), (900, ""), (950, ""), (1200, "ˌw")]
    ph = _segment(events, np.zeros(1500, np.float32), 22050)
    assert ph.symbols == [PAUSE, "h", "ə", "oʊ", PAUSE, "w"]
    assert ph.stress == [0, 0, 0, 1, 0, 2]
    assert ph.starts == [0, 100, 400, 700, 900, 1200]


def test_frame_durations_sum_to_the_frames():
    ph = Phonemes(["_", "a", "b"], [0, 0, 0], [0, 300, 900], np.zeros(1500, np.float32), 22050)
    d = ph.frame_durations(hop=256, n_frames=1500 // 256 + 1)
    assert d.tolist() == [1, 3, 2] and d.sum() == 6


def test_espeak_phonemes_and_timing():
    pytest.importorskip("espeakng_loader")
    from genlab.tts.data import HOP
    from genlab.tts.phonemes import phonemizer

    ph = phonemizer()("Hello world.", "en-us")
    assert [s for s in ph.symbols if s != PAUSE] == ["h", "ə", "l", "oʊ", "w", "ɜː", "l", "d"]
    assert ph.stress[ph.symbols.index("oʊ")] == 1
    assert ph.starts == sorted(ph.starts) and ph.starts[-1] < len(ph.audio)
    n = len(ph.audio) // HOP + 1
    assert ph.frame_durations(HOP, n).sum() == n


def _ge2e_reference(e: torch.Tensor, w: float, b: float) -> torch.Tensor:
    """Wan et al. 2018 eqs. 5-8 written out with loops."""
    N, M, _ = e.shape
    total = 0.0
    for j in range(N):
        for i in range(M):
            logits = []
            for k in range(N):
                if k == j:
                    c = (e[j].sum(0) - e[j, i]) / (M - 1)
                else:
                    c = e[k].mean(0)
                logits.append(w * F.cosine_similarity(e[j, i], c, dim=0) + b)
            logits = torch.stack(logits)
            total = total - (logits[j] - torch.logsumexp(logits, 0))
    return total / (N * M)


def test_corpus_builder_and_phonemizer_share_espeak_in_either_order():
    """libespeak-ng keeps one synth callback per process: the corpus builder's and the phonemizer's used to take it
    from each other, so whichever was made first then got no audio (the watermark tests' espeak sentences came back
    empty once a test before them had spoken through the phonemizer)."""
    pytest.importorskip("espeakng_loader")
    from genlab.data.speech import Espeak
    from genlab.tts.phonemes import Phonemizer

    first = Phonemizer()
    builder = Espeak()
    second = Phonemizer()
    for _ in range(2):
        ph = first("A short test.")
        assert len(ph.audio) > 0 and ph.symbols
        assert len(builder.synth("A short test.", "en-us")) > 0
        assert len(second("Another one.").symbols) > 0


def test_ge2e_loss_equals_the_equations():
    torch.manual_seed(0)
    model = GE2E(SpeakerConfig(n_mels=8, hidden=8, layers=1, dim=6))
    feats = torch.randn(3, 4, 20, 8)
    loss, _ = model(feats)
    e = model.encoder(feats.flatten(0, 1)).view(3, 4, -1)
    torch.testing.assert_close(loss, _ge2e_reference(e, 10.0, -5.0), rtol=1e-5, atol=1e-6)


def test_batched_dvectors_equal_one_at_a_time():
    from genlab.tts.model import SpeakerEncoder
    from genlab.tts.voice import dvector, dvectors

    torch.manual_seed(0)
    enc = SpeakerEncoder(SpeakerConfig(hidden=16, layers=1, dim=8)).eval()
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (8000, 30000, 52000, 16000)]
    batched = dvectors(enc, clips, batch=3)
    for clip, row in zip(clips, batched):
        torch.testing.assert_close(row, dvector(enc, clip), rtol=1e-4, atol=1e-5)
