"""Marked files carry their provenance: the WAV's LIST/INFO comment and the sidecar; `genlab watermark detect` and
`genlab verify` read them back; bad input ends in one line and exit 2."""

import json

import numpy as np
import pytest
import soundfile

from genlab.cli import main
from genlab.errors import GenlabError
from genlab.provenance.record import MarkedWriter, provenance_record, read_record, write_marked
from genlab.provenance.watermark import default


def _speech_like(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Noise shaped like speech (a 4 Hz syllable envelope over a falling spectrum): enough to carry the mark."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    spectrum = np.fft.rfft(rng.standard_normal(n)) / (1 + np.fft.rfftfreq(n, 1 / rate) / 300)
    x = np.fft.irfft(spectrum, n) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * np.arange(n) / rate))
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def test_marked_writer_streams_marks_and_records(tmp_path):
    out = tmp_path / "speech.wav"
    text = "word " * 2000  # long: the file keeps a preview, the sidecar the whole
    record = provenance_record("tts", model="test", model_hash="abc123", seed=7, text=text)
    audio = _speech_like(6.0, 24000)
    with MarkedWriter(out, 24000, record) as w:
        for chunk in np.array_split(audio, 3):
            w.write(chunk)
    written, rate = soundfile.read(out, dtype="float32")
    assert rate == 24000 and len(written) == len(audio)
    assert np.abs(written - audio).max() > 1e-3  # changed: marked
    assert default().detect(written, rate).detected
    assert not default().detect(audio, rate).detected
    with soundfile.SoundFile(out) as f:
        inline = json.loads(f.comment)
    assert inline["text_sha256"] == record["text_sha256"] and len(inline["text"]) < 200
    assert inline["watermark"]["key_id"] == default().key_id
    full = read_record(out)
    assert full["text"] == text and full["seed"] == 7 and full["seconds"] == pytest.approx(6.0)
    (tmp_path / "speech.wav.json").write_text(json.dumps(dict(full, seed=8)))  # a sidecar that disagrees
    assert read_record(out)["text"] != text  # falls back to the file's own record


def test_writer_refuses_other_formats_and_unwritable_paths(tmp_path):
    with pytest.raises(GenlabError, match=".wav"):
        MarkedWriter(tmp_path / "x.mp3", 24000, {})
    (tmp_path / "dir.wav").mkdir()
    with pytest.raises(GenlabError, match="cannot write"):
        MarkedWriter(tmp_path / "dir.wav", 24000, {})


def test_cli_detect_and_verify(tmp_path, capsys):
    marked = write_marked(tmp_path / "m.wav", _speech_like(4.0, 16000), 16000,
                          provenance_record("tts", model="test", model_hash="h", seed=1, text="hello"))
    plain = tmp_path / "plain.wav"
    soundfile.write(plain, _speech_like(4.0, 16000, seed=1), 16000)
    assert main(["watermark", "detect", str(marked)]) == 0
    assert "watermark detected" in capsys.readouterr().out
    assert main(["watermark", "detect", str(plain), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["detected"] is False
    assert main(["verify", str(marked), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["detected"] and result["provenance"]["model_hash"] == "h" and result["provenance"]["seed"] == 1
    assert main(["verify", str(plain)]) == 0
    assert "none recorded" in capsys.readouterr().out


def test_cli_embed_then_detect(tmp_path, capsys):
    src = tmp_path / "in.flac"
    soundfile.write(src, _speech_like(3.0, 22050), 22050)
    assert main(["watermark", "embed", str(src), "--out", str(tmp_path / "out.wav")]) == 0
    capsys.readouterr()
    assert main(["watermark", "detect", str(tmp_path / "out.wav"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["detected"] is True


@pytest.mark.parametrize("content", [b"", b"not audio at all"])
def test_cli_bad_input_is_one_line(tmp_path, capsys, content):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    assert main(["watermark", "detect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.wav" in err
    assert main(["watermark", "detect", str(tmp_path / "missing.wav")]) == 2
    assert main(["watermark", "embed", str(bad), "--out", str(tmp_path / "o.mp3")]) == 2


def test_tour_sections(tmp_path):
    from genlab.provenance.cli import watermark_tour
    from genlab.tour import write_tour
    from genlab.tts.cli import tts_tour

    index = write_tour(tmp_path, [watermark_tour, tts_tour], quick=True)
    page = index.read_text()
    assert "Watermark" in page and "Speaking" in page
    if (tmp_path / "watermark").exists():  # with pocketsphinx-testdata: every attacked clip was still detected
        assert page.count("<td>yes</td>") == len(list((tmp_path / "watermark").glob("*.wav")))
