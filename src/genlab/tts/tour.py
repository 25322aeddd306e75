"""The TTS section of ``genlab tour``: the built-in voice reading held-out sentences, each clip watermarked."""

from __future__ import annotations

import html
import time
from pathlib import Path

from ..errors import GenlabError

TOUR_SENTENCES = ("The quick brown fox jumps over the lazy dog.",
                  "On 5 March 2024, Dr. Lee paid $3.50 for 2 coffees.",
                  "Every clip genlab speaks carries a watermark that genlab can detect.")


def tts_section(out_dir: Path, quick: bool) -> str:
    from .api import load, speak

    head = "<h2>Speaking — text to speech, always watermarked</h2>"
    try:
        loaded = load("speech-tts")
    except GenlabError as e:
        return head + f"<p>(skipped: {html.escape(str(e))})</p>"
    parts = [head, f"<p>Bundle <code>speech-tts</code> (hashes {html.escape(str(loaded.hashes))}), vocoder "
                   f"{'HiFi-GAN' if loaded.vocoder is not None else 'Griffin-Lim'}.</p>"]
    for k, text in enumerate(TOUR_SENTENCES[:1] if quick else TOUR_SENTENCES):
        file = f"tts/sentence-{k}.wav"
        t0 = time.perf_counter()
        record = speak(loaded, text, out_dir / file, seed=k)
        took = time.perf_counter() - t0
        parts.append(f"<figure><audio controls src='{file}'></audio><figcaption>{html.escape(text)} "
                     f"({record['seconds']:.1f} s in {took:.1f} s)</figcaption></figure>")
    return "\n".join(parts)
