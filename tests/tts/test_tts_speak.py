"""`genlab speak` end to end on a tiny random bundle: every output is watermarked and carries its provenance; the
built-in voice and cloning; bad input (text, reference, output, consent) ends in one line and exit 2; long text
streams; and the TTS family has no way to write audio but the marked writer."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile

from genlab.cli import main
from genlab.errors import GenlabError
from genlab.provenance.watermark import default

pytestmark = pytest.mark.usefixtures("espeak")
REFERENCE = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav"


def _speak(bundle, out, *extra) -> int:
    return main(["speak", "Dr. Lee paid $3.50 on 5 March 2024. Then he left!", "--model", str(bundle),
                 "--out", str(out), *extra])


def test_builtin_voice_is_marked_and_recorded(bundle, tmp_path, capsys):
    out = tmp_path / "a.wav"
    assert _speak(bundle, out, "--seed", "3") == 0
    audio, rate = soundfile.read(out, dtype="float32")
    assert rate == 22050 and len(audio) > rate  # two sentences of ~5 frames a phoneme
    assert default().detect(audio, rate).detected
    assert main(["verify", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    record = result["provenance"]
    assert result["detected"] and record["kind"] == "tts" and record["seed"] == 3
    assert record["text"].startswith("Dr. Lee") and record["vocoder"] == "hifigan"
    assert set(record["hashes"]) == {"acoustic", "vocoder", "speaker"}


def test_cloning_needs_consent_and_records_it(bundle, tmp_path, capsys):
    if not Path(REFERENCE).exists():
        pytest.skip("pocketsphinx-testdata is not installed")
    out = tmp_path / "clone.wav"
    assert _speak(bundle, out, "--voice", REFERENCE) == 2
    assert "consent" in capsys.readouterr().err
    consent = "I, Jane Doe, agree that my voice is cloned for this test."
    assert _speak(bundle, out, "--voice", REFERENCE, "--consent", consent) == 0
    with soundfile.SoundFile(out) as f:
        inline = json.loads(f.comment)
    assert inline["kind"] == "voice-clone" and inline["consent"] == consent
    assert inline["voice"]["reference_name"] == Path(REFERENCE).name and len(inline["voice"]["reference_sha256"]) == 64
    assert default().detect(*soundfile.read(out, dtype="float32")).detected
    # The clone differs from the built-in voice: the d-vector reaches the model.
    builtin = tmp_path / "builtin.wav"
    assert _speak(bundle, builtin) == 0
    assert not np.allclose(soundfile.read(out)[0][:2000], soundfile.read(builtin)[0][:2000])


def _references(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    rng = np.random.default_rng(0)
    speechy = (rng.standard_normal(16000 * 5) * 0.1 * (0.5 + 0.5 * np.sin(np.arange(16000 * 5) / 800))).astype(
        np.float32)
    cases = {"too short": (speechy[:16000], 16000, r"1\.0 s of audio"),
             "silent": (np.zeros(16000 * 5, np.float32), 16000, "silent"),
             "clipped": (np.clip(speechy * 40, -1, 1), 16000, "clipped"),
             "wrong rate": (speechy[::2], 8000, "8000 Hz")}
    out = {}
    for name, (audio, rate, message) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.wav"
        soundfile.write(path, audio, rate)
        out[name] = (path, message)
    bad = tmp_path / "not_audio.wav"
    bad.write_text("this is text")
    out["not audio"] = (bad, "not a readable audio file")
    out["missing"] = (tmp_path / "nope.wav", "no such audio file")
    return out


def test_bad_references_are_one_line(bundle, tmp_path, capsys):
    for name, (path, message) in _references(tmp_path).items():
        code = _speak(bundle, tmp_path / "o.wav", "--voice", str(path), "--consent", "yes, I agree")
        err = capsys.readouterr().err
        assert code == 2, name
        assert err.count("\n") == 1 and re.search(message, err), (name, err)
        assert not (tmp_path / "o.wav").exists()


@pytest.mark.parametrize("argv, message", [
    (["speak", "", "--out", "{tmp}/x.wav"], "empty"),
    (["speak", "   ", "--out", "{tmp}/x.wav"], "empty"),
    (["speak", "😀 ☃ 你好", "--out", "{tmp}/x.wav", "--model", "{bundle}"], "nothing speakable"),
    (["speak", "hello", "--out", "{tmp}/x.mp3"], ".wav"),
    (["speak", "hello", "--out", "{tmp}/d.wav"], "directory"),
    (["speak", "hello", "--out", "{tmp}/x.wav", "--consent", "ok"], "goes with --voice"),
    (["speak", "hello", "--out", "{tmp}/x.wav", "--pace", "9"], "pace"),
    (["speak", "--text-file", "{tmp}/none.txt", "--out", "{tmp}/x.wav"], "no such text file"),
    (["speak", "hi", "--text-file", "{tmp}/none.txt", "--out", "{tmp}/x.wav"], "not both"),
    (["speak", "hello", "--out", "{tmp}/x.wav", "--model", "{tmp}/no-model"], "model not found"),
    (["speak", "hello", "--out", "{tmp}/x.wav", "--model", "{bundle}", "--speaker", "7"], "voices 0-1"),
])
def test_bad_input_is_one_line(bundle, tmp_path, capsys, argv, message):
    (tmp_path / "d.wav").mkdir()
    argv = [a.format(tmp=tmp_path, bundle=bundle) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_unknown_characters_are_skipped(bundle, tmp_path):
    out = tmp_path / "u.wav"
    assert main(["speak", "Hello 😀 world ☃!", "--model", str(bundle), "--out", str(out)]) == 0
    assert soundfile.info(out).frames > 0


def test_long_text_streams(bundle, tmp_path):
    """A 10,000-word text: the first sentences are spoken while most of it is still unread."""
    from genlab.tts.api import Voice, _stream, load

    loaded = load(str(bundle))
    read = []

    def pieces():
        for i in range(1000):  # 1,000 sentences of 10 words
            read.append(i)
            yield f"This is sentence number {i} of a very long book. "

    stream = _stream(loaded, pieces(), Voice(), 1.0, 0)
    first = [next(stream) for _ in range(3)]
    assert all(len(a) > 0 for a in first)
    assert len(read) < 60  # bounded: at most one 2,000-character buffer ahead


def test_text_file_and_synthesize(bundle, tmp_path):
    from genlab.tts.api import load, synthesize

    text = tmp_path / "t.txt"
    text.write_text("First line here.\nSecond line.\n\nA new paragraph.\n")
    out = tmp_path / "f.wav"
    assert main(["speak", "--text-file", str(text), "--model", str(bundle), "--out", str(out)]) == 0
    assert default().detect(*soundfile.read(out, dtype="float32")).detected
    audio = synthesize(load(str(bundle)), "Hello there, general.")
    assert default().detect(audio, 22050).detected  # the array API returns marked audio too
    with pytest.raises(GenlabError):
        synthesize(load(str(bundle)), "")


def test_tts_has_no_unmarked_way_to_write_audio():
    """Only genlab.provenance writes audio: no file of genlab/tts calls a writer of sound files."""
    root = Path(__file__).resolve().parents[2] / "src" / "genlab" / "tts"
    writers = re.compile(r"soundfile\.write|sf\.write|SoundFile\([^)]*['\"]w|wave\.open|wavfile\.write|"
                         r"torchaudio\.save")
    offenders = [p.name for p in root.glob("*.py") if writers.search(p.read_text())]
    assert offenders == []


def test_tour_section_clones_held_out_speakers_beside_their_references(bundle, tmp_path, monkeypatch):
    """The tour's cloning part on the tiny bundle: each reference is written beside its clone, the clone is
    watermarked and records the consent statement and the corpus speaker (the held-out corpus stands in here as
    two real LibriVox clips: held_out_references itself needs `genlab data codec`)."""
    import genlab.tts.voice as voice
    from genlab.tts.tour import tts_section

    if not Path(REFERENCE).exists():
        pytest.skip("pocketsphinx-testdata is not installed")
    audio = soundfile.read(REFERENCE, dtype="float32")[0]
    monkeypatch.setattr(voice, "held_out_references",
                        lambda n: [(f"speaker-{k}", audio[k * 8000 :], [audio]) for k in range(n)])
    page = tts_section(tmp_path, quick=False, model=str(bundle))
    assert page.count("<audio") == 3 + 2 * 2 and "speaker-1: reference" in page
    for k in range(2):
        assert np.allclose(soundfile.read(tmp_path / f"tts/reference-{k}.wav", dtype="float32")[0],
                           audio[k * 8000 :], atol=1e-4)
        clone = tmp_path / f"tts/clone-{k}.wav"
        with soundfile.SoundFile(clone) as f:
            record = json.loads(f.comment)
        assert record["kind"] == "voice-clone" and f"speaker-{k}" in record["consent"]
        assert record["voice"] == {"reference_corpus_speaker": f"speaker-{k}"}
        assert default().detect(*soundfile.read(clone, dtype="float32")).detected
