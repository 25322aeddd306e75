"""``genlab codec encode|decode`` on good and bad input: every case ends in a correct result or one line and exit 2.

The inputs are made here with numpy + soundfile; the codecs are small random ones saved as genlab checkpoints (the
command-line plumbing does not depend on what the weights learned)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from genlab.checkpoint import save_checkpoint
from genlab.cli import main
from genlab.codec.api import Streaming, decode_stream, encode_stream, load
from genlab.codec.model import Codec, CodecConfig
from genlab.codec.tokens import read_tokens
from genlab.config import to_dict


def _save_codec(path, cfg: CodecConfig, seed: int = 0):
    torch.manual_seed(seed)
    codec = Codec(cfg)
    codec.train()(torch.randn(4, 1, 8 * cfg.hop_length * 4) * 0.3)  # k-means start of the codebooks
    save_checkpoint(path, kind="codec", config={"codec": to_dict(cfg)},
                    model={f"codec.{k}": v for k, v in codec.eval().state_dict().items()})
    return str(path)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """16 kHz, hop 64 (250 frames a second), 4 codebooks of 16: 1 kbps per codebook."""
    cfg = CodecConfig(sample_rate=16000, n_filters=2, ratios=(8, 8), dimension=8, codebook_size=16, n_q=4,
                      lstm_layers=1)
    return _save_codec(tmp_path_factory.mktemp("codec") / "ckpt", cfg)


def _tone(seconds: float, sr: int, channels: int = 1, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = amp * np.sin(2 * np.pi * 220 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
    return np.stack([x] * channels, axis=1).astype(np.float32) if channels > 1 else x.astype(np.float32)


def _run(capsys, *argv):
    rc = main(list(argv))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _error_line(capsys, *argv):
    rc, out, err = _run(capsys, *argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("genlab: error:"), (rc, err)
    return lines[0]


def test_encode_decode_round_trip_with_header_and_provenance(tmp_path, capsys, model):
    wav = tmp_path / "in.wav"
    sf.write(wav, _tone(1.0, 16000), 16000)
    rc, out, err = _run(capsys, "codec", "encode", str(wav), "--kbps", "3", "--model", model,
                        "--out", str(tmp_path / "x.tokens"))
    assert rc == 0 and "resampl" not in err
    codes, header = read_tokens(tmp_path / "x.tokens")
    assert codes.shape == (3, 250) and header["n_q"] == 3 and header["kbps"] == 3
    assert header["sample_rate"] == 16000 and header["n_samples"] == 16000 and len(header["model_hash"]) == 16
    assert header["source"] == {"file": "in.wav", "sample_rate": 16000, "channels": 1, "seconds": 1.0}
    loaded = load(model)
    assert torch.equal(codes, loaded.codec.encode(torch.from_numpy(_tone(1.0, 16000))[None, None], 3)[0])

    rc, out, err = _run(capsys, "codec", "decode", str(tmp_path / "x.tokens"), "--out", str(tmp_path / "y.wav"))
    assert rc == 0
    audio, sr = sf.read(tmp_path / "y.wav", dtype="float32")
    assert sr == 16000 and audio.shape == (16000,)
    expected = loaded.codec.decode(codes[None])[0, 0, :16000].clamp(-1, 1).numpy()
    assert np.abs(audio - expected).max() < 1.5 / 32768  # 16-bit PCM of the same waveform
    prov = json.loads(sf.SoundFile(tmp_path / "y.wav").comment)
    assert prov["model_hash"] == header["model_hash"] and prov["n_q"] == 3 and prov["tokens"] == "x.tokens"


def test_other_rates_and_channels_are_resampled_and_said_so(tmp_path, capsys, model):
    for name, sr, channels in [("phone.wav", 8000, 1), ("studio.wav", 48000, 2)]:
        sf.write(tmp_path / name, _tone(0.5, sr, channels), sr)
        rc, out, err = _run(capsys, "codec", "encode", str(tmp_path / name), "--kbps", "1", "--model", model,
                            "--out", str(tmp_path / f"{name}.tokens"))
        assert rc == 0 and f"resampling {sr} Hz to 16000 Hz" in err
        assert ("mixing 2 channels to mono" in err) == (channels == 2)
        codes, header = read_tokens(tmp_path / f"{name}.tokens")
        assert abs(header["n_samples"] - 8000) <= 2 and codes.shape == (1, 125)
        rc, _, _ = _run(capsys, "codec", "decode", str(tmp_path / f"{name}.tokens"), "--out",
                        str(tmp_path / f"{name}.flac"))
        assert rc == 0 and sf.info(tmp_path / f"{name}.flac").samplerate == 16000


def test_short_and_clipped_input_give_a_correct_result(tmp_path, capsys, model):
    sf.write(tmp_path / "short.wav", _tone(0.1, 16000), 16000)
    rc, _, _ = _run(capsys, "codec", "encode", str(tmp_path / "short.wav"), "--kbps", "4", "--model", model,
                    "--out", str(tmp_path / "short.tokens"))
    assert rc == 0 and read_tokens(tmp_path / "short.tokens")[0].shape == (4, 25)
    rc, _, _ = _run(capsys, "codec", "decode", str(tmp_path / "short.tokens"), "--out", str(tmp_path / "short.wav"))
    assert rc == 0 and sf.info(tmp_path / "short.wav").frames == 1600
    sf.write(tmp_path / "clipped.wav", np.clip(_tone(0.5, 16000, amp=3.0), -1, 1), 16000)
    rc, _, err = _run(capsys, "codec", "encode", str(tmp_path / "clipped.wav"), "--kbps", "2", "--model", model,
                      "--out", str(tmp_path / "clipped.tokens"))
    assert rc == 0 and "clipped input" in err


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, model):
    (tmp_path / "empty.wav").write_bytes(b"")
    sf.write(tmp_path / "noframes.wav", np.zeros(0, np.float32), 16000)
    nan = _tone(0.5, 16000)
    nan[100] = np.nan
    sf.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    (tmp_path / "text.wav").write_text("this is not audio\n" * 20)
    sf.write(tmp_path / "ok.wav", _tone(0.2, 16000), 16000)
    out = str(tmp_path / "x.tokens")
    cases = {
        "empty.wav": "empty file", "noframes.wav": "no audio samples", "nan.wav": "NaN",
        "text.wav": "not a readable audio file", "missing.wav": "no such audio file",
    }
    for name, message in cases.items():
        line = _error_line(capsys, "codec", "encode", str(tmp_path / name), "--kbps", "2", "--model", model,
                           "--out", out)
        assert message in line and name in line
    assert "1 kbps (1 codebook) to 4 kbps" in _error_line(
        capsys, "codec", "encode", str(tmp_path / "ok.wav"), "--kbps", "9", "--model", model, "--out", out)
    assert "cannot write" in _error_line(
        capsys, "codec", "encode", str(tmp_path / "ok.wav"), "--kbps", "2", "--model", model,
        "--out", str(tmp_path / "ok.wav" / "x.tokens"))
    assert "model not found" in _error_line(
        capsys, "codec", "encode", str(tmp_path / "ok.wav"), "--kbps", "2", "--model", str(tmp_path / "nope"),
        "--out", out)


def test_corrupt_token_files_are_one_line_and_exit_2(tmp_path, capsys, model):
    sf.write(tmp_path / "ok.wav", _tone(0.2, 16000), 16000)
    good = tmp_path / "good.tokens"
    assert _run(capsys, "codec", "encode", str(tmp_path / "ok.wav"), "--kbps", "2", "--model", model,
                "--out", str(good))[0] == 0
    data = good.read_bytes()
    (tmp_path / "truncated.tokens").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.tokens").write_bytes(np.random.default_rng(0).bytes(300))
    from safetensors.torch import save_file

    save_file({"codes": torch.zeros(2, 5, dtype=torch.int16)}, str(tmp_path / "noheader.tokens"))
    codes, header = read_tokens(good)
    from genlab.codec.tokens import write_tokens

    write_tokens(tmp_path / "range.tokens", torch.full_like(codes, 16), {k: v for k, v in header.items()
                                                                         if k not in ("format", "version")})
    other = _save_codec(tmp_path / "other", load(model).cfg, seed=1)
    cases = {"truncated.tokens": "token file", "garbage.tokens": "token file", "noheader.tokens": "no genlab header",
             "range.tokens": "codes must lie in [0, 16)", "missing.tokens": "no such token file"}
    for name, message in cases.items():
        line = _error_line(capsys, "codec", "decode", str(tmp_path / name), "--out", str(tmp_path / "y.wav"))
        assert message in line and name in line
    assert "made by codec weights" in _error_line(
        capsys, "codec", "decode", str(good), "--model", other, "--out", str(tmp_path / "y.wav"))
    assert "write .wav, .flac or .ogg" in _error_line(
        capsys, "codec", "decode", str(good), "--out", str(tmp_path / "y.mp4"))


def _streams_as_one_pass(loaded, x: np.ndarray, read: int, streaming: Streaming) -> None:
    """Encoding ``x`` read ``read`` samples at a time, and decoding its codes, window by window give exactly the
    codes and (to float rounding) the samples of one pass over the whole signal."""
    blocks = (x[i : i + read] for i in range(0, len(x), read))  # reads that do not line up with the windows
    codes, n = encode_stream(loaded.codec, blocks, 3, streaming)
    whole = loaded.codec.encode(torch.from_numpy(x)[None, None], 3)[0]
    assert n == len(x) and torch.equal(codes.long(), whole)
    audio = np.concatenate(list(decode_stream(loaded.codec, whole, streaming)))
    reference = loaded.codec.decode(whole[None])[0, 0].numpy()
    assert audio.shape == reference.shape and np.abs(audio - reference).max() < 1e-5


def test_streaming_equals_one_pass_when_the_context_covers_the_receptive_field(tmp_path):
    """Without the LSTM the causal codec sees a finite past: windows with enough context give exactly the codes
    and samples of encoding the whole signal at once."""
    cfg = CodecConfig(sample_rate=8000, n_filters=2, ratios=(4, 4), dimension=8, codebook_size=16, n_q=3,
                      lstm_layers=0)
    x = np.random.default_rng(0).standard_normal(8000 * 5 + 77).astype(np.float32) * 0.3
    _streams_as_one_pass(load(_save_codec(tmp_path / "c", cfg)), x, 3000, Streaming(1.3, context_seconds=0.1))


def test_the_frequency_domain_codec_streams_as_it_runs_in_one_pass(tmp_path):
    """The bundled codec's kind (STFT encoder, Vocos decoder: neither causal) streamed with a context wider than
    its receptive field gives the codes and samples of one pass (with 1 frame of context it does not)."""
    cfg = CodecConfig(sample_rate=8000, ratios=(4, 4), dimension=8, codebook_size=16, n_q=3, lstm_layers=0,
                      encoder="stft", decoder="istft", stft_width=16, stft_layers=2, istft_width=16, istft_layers=2)
    x = np.random.default_rng(1).standard_normal(8000 * 3 + 50).astype(np.float32) * 0.3
    # 350-frame windows, 50 frames of context.
    _streams_as_one_pass(load(_save_codec(tmp_path / "c", cfg)), x, 2500, Streaming(0.7, context_seconds=0.1))


def test_an_hour_streams_in_bounded_memory(tmp_path):
    """A one-hour 8 kHz file (57.6 MB; 115 MB as float32): encoding it raises the process's peak memory by much less
    than the file's size over what the imports hold, and the tokens cover the whole hour."""
    cfg = CodecConfig(sample_rate=8000, n_filters=1, ratios=(32,), n_residual_layers=0, kernel_size=3,
                      last_kernel_size=3, dimension=4, codebook_size=16, n_q=2, lstm_layers=0)
    model = _save_codec(tmp_path / "c", cfg)
    minute = (_tone(60.0, 8000) + 0.01 * np.random.default_rng(0).standard_normal(480000)).astype(np.float32)
    with sf.SoundFile(tmp_path / "hour.wav", "w", 8000, 1, subtype="PCM_16") as f:
        for _ in range(60):
            f.write(minute)
    probe = (
        "import resource, sys\n"
        "import safetensors.torch, soundfile, soxr, tqdm, torch\n"
        "from genlab.cli import main\n"
        "from genlab.codec import api, cli, tokens\n"
        "api.load(sys.argv[-1])\n"  # the model's own memory is not the file's
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "rc = main(sys.argv[1:-1])\n"
        "print('grew_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base, file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    run = subprocess.run([sys.executable, "-c", probe, "codec", "encode", str(tmp_path / "hour.wav"), "--kbps", "2",
                          "--model", model, "--out", str(tmp_path / "hour.tokens"), model],
                         capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", "PATH": ""})
    assert run.returncode == 0, run.stderr
    grew_mb = int(run.stderr.split("grew_kb")[-1]) / 1024
    codes, header = read_tokens(tmp_path / "hour.tokens")
    assert header["n_samples"] == 3600 * 8000 and codes.shape == (2, 3600 * 250)
    assert grew_mb < 40, f"encoding an hour raised the peak memory by {grew_mb:.0f} MB"


def test_tour_section_plays_the_bitrate_ladder(tmp_path, model):
    from genlab.codec.tour import tour_section
    from genlab.errors import GenlabError

    try:
        page = tour_section(tmp_path, quick=True, model=model)
    except GenlabError as e:  # neither the corpus nor codec2-examples: nothing real to play
        pytest.skip(str(e))
    # The model has 4 codebooks of 1 kbps: the ladder keeps 1 and 3 codebooks (6 kbps is beyond it).
    assert page.count("<audio controls") == 4 and page.count("<tr><td>") == 3
    assert "1 kbps (1 codebook)" in page and "3 kbps (3 codebooks)" in page and "Opus" in page
    assert sf.info(tmp_path / "codec_1.wav").samplerate == 16000 and (tmp_path / "codec_1.png").exists()
