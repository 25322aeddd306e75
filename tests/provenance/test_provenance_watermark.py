"""The watermark: imperceptible (SI-SDR), found under every attack the issue names, never found in unmarked speech,
and a null distribution that obeys the bound the threshold is built on."""

import io
import math

import numpy as np
import pytest
import soxr

from genlab.provenance.watermark import SAMPLE_RATE, Watermark, WatermarkConfig, band_edges, default


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    a = np.dot(estimate, reference) / np.dot(reference, reference)
    return 10 * math.log10(np.sum((a * reference) ** 2) / np.sum((a * reference - estimate) ** 2))


def encode(audio: np.ndarray, rate: int, fmt: str, kbps: int) -> tuple[np.ndarray, int]:
    """A lossy round trip through libsndfile at about ``kbps`` (MP3 CBR or Ogg/Opus); the measured bitrate is
    checked, so the attack is what it says."""
    import soundfile

    buf = io.BytesIO()
    if fmt == "MP3":  # libsndfile maps compression_level 0..1 onto 160..8 kbps (MPEG-2, <= 24 kHz) CBR
        soundfile.write(buf, audio, rate, format="MP3", subtype="MPEG_LAYER_III",
                        compression_level=(160 - kbps) / 152, bitrate_mode="CONSTANT")
    else:
        soundfile.write(buf, audio, rate, format="OGG", subtype="OPUS", compression_level=0.9)  # ~30 kbps
    measured = len(buf.getvalue()) * 8 / 1000 / (len(audio) / rate)
    assert 0.7 * kbps < measured < 1.5 * kbps, measured
    buf.seek(0)
    out, out_rate = soundfile.read(buf, dtype="float32")
    return out, out_rate


def test_band_edges_cover_the_band():
    cfg = WatermarkConfig()
    edges = band_edges(cfg)
    widths = np.diff(edges)
    assert edges[0] == cfg.f_lo and edges[-1] <= cfg.f_hi + 1
    assert widths.min() >= cfg.min_band_hz - 1e-9
    assert np.all(widths <= np.maximum(cfg.min_band_hz, (cfg.band_ratio - 1) * edges[:-1]) + 1e-9)


def test_key_is_a_function_of_the_key_string():
    a, b, c = Watermark(), Watermark(), Watermark(WatermarkConfig(key="another"))
    assert np.array_equal(a.key, b.key) and a.key_id == b.key_id
    assert not np.array_equal(a.key, c.key)
    assert set(np.unique(a.key)) == {-1.0, 1.0}


def test_si_sdr_of_marked_speech_above_25_db(real_speech):
    for path, audio, rate in real_speech:
        marked = default().embed(audio, rate)
        assert marked.shape == audio.shape and marked.dtype == np.float32
        assert si_sdr(audio, marked) > 25.0, path


def test_silence_and_short_input_stay_unchanged():
    wm = default()
    assert np.array_equal(wm.embed(np.zeros(16000, np.float32), 16000), np.zeros(16000))
    short = np.random.default_rng(0).standard_normal(500).astype(np.float32) * 0.1
    assert np.array_equal(wm.embed(short, 16000), short)
    with pytest.raises(ValueError):
        wm.embed(np.zeros((2, 16000), np.float32), 16000)


def _attacks(rng):
    def noise(x, r, snr_db=20.0):
        return x + rng.standard_normal(len(x)).astype(np.float32) * np.sqrt(np.mean(x**2)) * 10 ** (-snr_db / 20), r

    return {
        "none": lambda x, r: (x, r),
        "resample 16k": lambda x, r: (soxr.resample(x, r, 16000), 16000),
        "resample 22.05k": lambda x, r: (soxr.resample(x, r, 22050), 22050),
        "resample 44.1k": lambda x, r: (soxr.resample(x, r, 44100), 44100),
        "mp3 32 kbps": lambda x, r: encode(soxr.resample(x, r, 16000), 16000, "MP3", 32),
        "opus 32 kbps": lambda x, r: encode(soxr.resample(x, r, 16000), 16000, "OPUS", 32),
        "noise 20 dB": noise,
        "gain -12 dB": lambda x, r: (x * 0.25, r),
        "gain +6 dB clipped": lambda x, r: (np.clip(x * 2.0, -1, 1), r),
        "crop 2 s": lambda x, r: (x[len(x) // 3 : len(x) // 3 + 2 * r], r),
        "crop 1 s": lambda x, r: (x[len(x) // 2 : len(x) // 2 + r], r),
        "speed x0.9": lambda x, r: (soxr.resample(x, r, r / 0.9), r),
        "speed x1.1": lambda x, r: (soxr.resample(x, r, r / 1.1), r),
    }


def test_detected_under_every_attack(real_speech):
    # A LibriVox sentence (7 s, a 64 kbps MP3 at the source), marked at 24 kHz as genlab's speech is written.
    path, audio, rate = real_speech[0]
    x24 = soxr.resample(audio, rate, 24000)
    marked = default().embed(x24, 24000)
    missed = {}
    for name, attack in _attacks(np.random.default_rng(0)).items():
        y, r = attack(marked, 24000)
        d = default().detect(y, r)
        if not d.detected:
            missed[name] = d.score
    assert not missed, f"missed under {missed}"


def test_unmarked_speech_is_not_detected(real_speech):
    for path, audio, rate in real_speech:
        d = default().detect(audio, rate)
        assert not d.detected, (path, d)
        assert d.p_value > 1e-3


def test_espeak_marked_and_unmarked(espeak_speech):
    for audio, rate in espeak_speech:
        assert not default().detect(audio, rate).detected
        assert default().detect(default().embed(audio, rate), rate).detected
        assert si_sdr(audio, default().embed(audio, rate)) > 25.0


def test_another_key_does_not_detect(real_speech):
    path, audio, rate = real_speech[-1]
    marked = default().embed(audio, rate)
    assert not Watermark(WatermarkConfig(key="someone-else")).detect(marked, rate).detected


def test_chunks_carry_one_pattern(real_speech):
    """Marking a stream chunk by chunk (start_sample continuing) gives the same mark as marking it whole, away from
    the joins, so a window that spans two sentences still sees one pattern."""
    path, audio, rate = real_speech[0]
    wm, cut = default(), len(audio) // 2
    whole = wm.embed(audio, rate) - audio
    parts = np.concatenate([wm.embed(audio[:cut], rate), wm.embed(audio[cut:], rate, start_sample=cut)]) - audio
    away = np.r_[rate // 2 : cut - rate // 2, cut + rate // 2 : len(audio) - rate // 2]
    assert np.corrcoef(whole[away], parts[away])[0, 1] > 0.9
    restarted = np.concatenate([wm.embed(audio[:cut], rate), wm.embed(audio[cut:], rate)]) - audio
    second = np.r_[cut + rate // 2 : len(audio) - rate // 2]
    assert np.corrcoef(whole[second], restarted[second])[0, 1] < 0.5  # start_sample is not a no-op


def test_null_scores_obey_the_hoeffding_bound(real_speech):
    """For audio made without the key, z is a Rademacher sum normalised by its own spread: over many random keys
    its mean is ~0, its variance <= 1 and its tail below exp(-t^2/2). (Exchangeability: genlab's key is one draw.)"""
    path, audio, rate = real_speech[-1]
    wm = Watermark()
    frames = wm._tile_scores(soxr.resample(audio, rate, SAMPLE_RATE))
    rng = np.random.default_rng(1)
    z = []
    for _ in range(300):
        wm.key = rng.choice([-1.0, 1.0], wm.key.shape)
        z.append(wm._correlate(frames, 0)[0])
    z = np.array(z)
    assert abs(z.mean()) < 0.25 and z.var() < 1.3
    assert (z >= 2.0).mean() <= math.exp(-2.0)


def test_threshold_is_the_union_bound():
    wm = default()
    n = wm.tries_per_window()
    assert n == len(wm.speeds()) * 4 * wm.cfg.period
    assert math.isclose(n * math.exp(-wm.threshold(n) ** 2 / 2), wm.cfg.fpr)
    assert wm.speeds()[0] == 1.0 and np.isclose(wm.speeds().max(), math.exp(wm.cfg.max_speed_change))


@pytest.mark.xfail(strict=True, reason="the mark does not survive the bundled speech-codec (a Vocos decoder that makes "
                   "up each frame's phase): 0 of 60 marked clips detected, watermark_eval_codec.json")
def test_codec_round_trip(real_speech):
    """genlab's own codec: the mark should survive encode/decode. It does not yet with the bundled speech-codec
    (strict: this fails once it does, so that the note and the README are updated)."""
    import torch

    from genlab.errors import GenlabError

    try:
        from genlab.codec.api import load

        loaded = load("speech-codec")
    except (GenlabError, ImportError) as e:
        pytest.skip(f"no trained genlab codec: {e}")
    path, audio, rate = real_speech[0]
    sr = loaded.cfg.sample_rate
    marked = default().embed(soxr.resample(audio, rate, sr), sr)
    with torch.no_grad():
        wav = torch.from_numpy(marked)[None, None]
        decoded = loaded.codec.decode(loaded.codec.encode(wav)).squeeze().numpy()
    assert default().detect(decoded, sr).detected


def test_one_second_crops_of_high_voices_clear_the_threshold():
    """1 s crops were the attack the mark failed most (92.6% detected on the test clips of
    benchmarks/watermark_eval.py), and the misses were high voices, whose harmonics leave few quiet tiles. Every 1 s
    crop of two such espeak voices now scores well above the threshold: with 64 ms frames and blocks, a mark of
    +-0.3 and no time whitening or weighting, the lowest of these crops scored 0.3 above it. espeak does not say a
    sentence the same way twice in a process (its output depends on what it said before), and over 8 renderings
    after other sentences the lowest crop of en-us+linda scored 2.3-3.4 above the threshold: hence 1.5, not 3."""
    pytest.importorskip("espeakng_loader")
    from genlab.data.speech import espeak

    engine, wm = espeak(), default()
    text = "The old lighthouse keeper counted the ships that passed beneath the cliffs each evening."
    for voice in ("en-us+linda", "en+shelby"):
        x = soxr.resample(engine.synth(text, voice, rate=170), engine.sample_rate, 24000).astype(np.float32)
        marked = wm.embed(x, 24000)
        for f in (0.1, 0.3, 0.5, 0.7, 0.9):
            start = int(f * (len(marked) - 24000))
            d = wm.detect(marked[start : start + 24000], 24000)
            assert d.score >= d.threshold + 1.5, (voice, f, d.score, d.threshold)
