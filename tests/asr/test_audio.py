"""The audio front end: reading, resampling, Whisper's log-mel (parity with openai-whisper), bad files."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from genlab.data import audio as A
from genlab.errors import GenlabError

JFK = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "jfk.flac"


@pytest.mark.parametrize("n_mels", [80, 128])
def test_mel_filters_match_openai_whisper(n_mels):
    whisper = pytest.importorskip("whisper")
    ref = whisper.audio.mel_filters("cpu", n_mels).numpy()
    np.testing.assert_allclose(A.mel_filters(n_mels), ref, atol=1e-7, rtol=0)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_log_mel_matches_openai_whisper_on_random_audio(n_mels):
    whisper = pytest.importorskip("whisper")
    x = (np.random.default_rng(0).standard_normal(16000 * 3) * 0.1).astype(np.float32)
    ref = whisper.log_mel_spectrogram(x, n_mels=n_mels, padding=4000)
    ours = A.log_mel_spectrogram(x, n_mels=n_mels, padding=4000)
    assert ours.shape == ref.shape == (n_mels, (16000 * 3 + 4000) // 160)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_log_mel_matches_openai_whisper_on_jfk():
    whisper = pytest.importorskip("whisper")
    if not JFK.exists():
        pytest.skip("jfk.flac not present")
    audio = A.load_audio(JFK)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) / A.SAMPLE_RATE - 11.0) < 0.01
    ref = whisper.log_mel_spectrogram(audio, padding=A.N_SAMPLES)
    torch.testing.assert_close(A.log_mel_spectrogram(audio, padding=A.N_SAMPLES), ref, atol=1e-5, rtol=0)


def test_batched_log_mel_equals_per_clip():
    x = torch.randn(2, 8000)
    batch = A.log_mel_spectrogram(x)
    torch.testing.assert_close(batch[1], A.log_mel_spectrogram(x[1]))


def test_pad_or_trim_numpy_and_torch():
    assert A.pad_or_trim(np.ones(10), 4).shape == (4,)
    assert A.pad_or_trim(np.ones((2, 3)), 5).tolist()[0] == [1, 1, 1, 0, 0]
    t = A.pad_or_trim(torch.ones(3, 7), 4, axis=0)
    assert t.shape == (4, 7) and t[3].sum() == 0
    assert A.pad_or_trim(torch.ones(2, 9), 5).shape == (2, 5)


def _tone(sr, seconds, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    x = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def test_resample_and_downmix(tmp_path):
    p8, p48 = tmp_path / "a8k.wav", tmp_path / "a48k.flac"
    sf.write(p8, _tone(8000, 1.0), 8000)
    sf.write(p48, _tone(48000, 1.0, channels=2), 48000)
    for p in (p8, p48):
        a = A.load_audio(p)
        assert a.dtype == np.float32 and a.shape == (16000,)
        # The 440 Hz tone survives resampling: its spectral peak is at 440 Hz.
        spec = np.abs(np.fft.rfft(a))
        assert abs(np.argmax(spec) * 16000 / len(a) - 440) < 2
    streamed = np.concatenate(list(A.stream_audio(p48, block_seconds=0.3)))
    assert abs(len(streamed) - 16000) <= 2
    np.testing.assert_allclose(streamed[1000:15000], A.load_audio(p48)[1000:15000], atol=1e-3)


def test_bad_files_give_one_line_errors(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 20)
    good = tmp_path / "good.wav"
    sf.write(good, _tone(16000, 1.0), 16000)
    corrupt = tmp_path / "corrupt.wav"
    raw = bytearray(good.read_bytes())
    raw[0:12] = b"JUNKJUNKJUNK"
    corrupt.write_bytes(bytes(raw))
    nosamples = tmp_path / "zero.wav"
    sf.write(nosamples, np.zeros(0, np.float32), 16000)
    nan = tmp_path / "nan.wav"
    x = _tone(16000, 1.0)
    x[100:200] = np.nan
    sf.write(nan, x, 16000, subtype="FLOAT")
    for path, words in [
        (tmp_path / "missing.wav", "no such"),
        (tmp_path, "directory"),
        (empty, "empty"),
        (text, "not a readable audio"),
        (corrupt, "not a readable audio"),
        (nosamples, "no audio"),
        (nan, "NaN"),
    ]:
        with pytest.raises(GenlabError) as e:
            A.load_audio(path)
        msg = str(e.value)
        assert "\n" not in msg and str(path) in msg and words in msg, msg


@pytest.mark.parametrize("seconds", [0.05, 7.3, 150.0])
def test_long_log_mel_in_chunks_equals_the_one_shot_log_mel(seconds):
    from genlab.asr.windows import long_log_mel

    audio = np.random.default_rng(1).uniform(-0.5, 0.5, int(seconds * A.SAMPLE_RATE)).astype(np.float32)
    whole = A.log_mel_spectrogram(audio, padding=A.N_SAMPLES)
    chunked = long_log_mel(audio, 80, chunk_seconds=60)
    assert chunked.shape == whole.shape
    torch.testing.assert_close(chunked, whole, atol=2e-5, rtol=0)


def test_long_files_are_read_in_blocks_with_the_one_shot_result(tmp_path):
    import soxr

    rng = np.random.default_rng(2)
    stereo = rng.uniform(-0.5, 0.5, (44100 * 70, 2)).astype(np.float32)  # longer than two 30 s blocks
    sf.write(tmp_path / "long.flac", stereo, 44100, subtype="PCM_24")
    data, _ = sf.read(tmp_path / "long.flac", dtype="float32", always_2d=True)
    one_shot = soxr.resample(data.mean(axis=1, dtype=np.float32), 44100, 16000, quality="HQ")
    np.testing.assert_allclose(A.load_audio(tmp_path / "long.flac"), one_shot, atol=1e-6, rtol=0)
