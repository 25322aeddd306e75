"""The watermark section of ``genlab tour``: a real sentence marked, attacked, and checked by the detector."""

from __future__ import annotations

import html
import io
import math
from pathlib import Path

import numpy as np

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav")


def _attacks(rng: np.random.Generator, quick: bool) -> dict:
    import soundfile as sf
    import soxr

    def mp3(x, r):
        buf = io.BytesIO()
        y = soxr.resample(x, r, 16000)
        sf.write(buf, y, 16000, format="MP3", subtype="MPEG_LAYER_III", compression_level=(160 - 32) / 152,
                 bitrate_mode="CONSTANT")
        buf.seek(0)
        return sf.read(buf, dtype="float32")

    table = {"none": lambda x, r: (x, r), "MP3 32 kbps": mp3,
             "noise 20 dB SNR": lambda x, r: (x + rng.standard_normal(len(x)).astype(np.float32)
                                              * np.sqrt(np.mean(x**2)) * 0.1, r),
             "1 s crop": lambda x, r: (x[len(x) // 2 : len(x) // 2 + r], r)}
    if not quick:
        table |= {"resample 44.1 kHz": lambda x, r: (soxr.resample(x, r, 44100), 44100),
                  "speed x1.1": lambda x, r: (soxr.resample(x, r, r / 1.1), r),
                  "gain -12 dB": lambda x, r: (x * 0.25, r)}
    return table


def watermark_section(out_dir: Path, quick: bool) -> str:
    import soundfile as sf

    from .watermark import default

    wm = default()
    parts = ["<h2>Watermark — every clip genlab speaks carries one</h2>"]
    if not LIBRIVOX.exists():
        return parts[0] + "<p>(skipped: pocketsphinx-testdata is not installed)</p>"
    audio, rate = sf.read(LIBRIVOX, dtype="float32")
    marked = wm.embed(audio, rate)
    sdr = 10 * math.log10(np.sum(audio**2) / np.sum((marked - audio) ** 2))
    out = out_dir / "watermark"
    out.mkdir(parents=True, exist_ok=True)
    parts.append(f"<p>A LibriVox sentence (public domain) marked with genlab's key (id <code>{wm.key_id}</code>): "
                 f"SNR of the mark {sdr:.1f} dB. The detector's threshold bounds false positives at "
                 f"{wm.cfg.fpr:g} per file, whatever the audio (genlab/provenance/watermark.py).</p>")
    rows = ["<table><tr><th>attack</th><th>detected</th><th>score</th><th>threshold</th><th>listen</th></tr>"]
    rng = np.random.default_rng(0)
    clean = wm.detect(audio, rate)
    rows.append(f"<tr><td>unmarked original</td><td>{'yes' if clean.detected else 'no'}</td>"
                f"<td>{clean.score:.1f}</td><td>{clean.threshold:.1f}</td><td></td></tr>")
    for k, (name, attack) in enumerate(_attacks(rng, quick).items()):
        y, r = attack(marked, rate)
        d = wm.detect(y, r)
        file = f"watermark/attack-{k}.wav"
        sf.write(out_dir / file, y, r, subtype="PCM_16")
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{'yes' if d.detected else 'no'}</td><td>{d.score:.1f}</td>"
                    f"<td>{d.threshold:.1f}</td><td><audio controls src='{file}'></audio></td></tr>")
    return "\n".join(parts + rows + ["</table>"])
