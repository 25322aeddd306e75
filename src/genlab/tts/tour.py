"""The TTS section of ``genlab tour``: the built-in voice reading sentences, and two held-out real speakers cloned
beside their references; every clip watermarked."""

from __future__ import annotations

import html
import time
from pathlib import Path

from ..errors import GenlabError

TOUR_SENTENCES = ("The quick brown fox jumps over the lazy dog.",
                  "On 5 March 2024, Dr. Lee paid $3.50 for 2 coffees.",
                  "Every clip genlab speaks carries a watermark that genlab can detect.")


def tts_section(out_dir: Path, quick: bool, model: str = "speech-tts") -> str:
    from .api import load, speak, vocoder_name

    head = "<h2>Speaking — text to speech, always watermarked</h2>"
    try:
        loaded = load(model)
    except GenlabError as e:
        return head + f"<p>(skipped: {html.escape(str(e))})</p>"
    parts = [head, f"<p>Bundle <code>{html.escape(model)}</code> (hashes {html.escape(str(loaded.hashes))}), vocoder "
                   f"{vocoder_name(loaded)}.</p>"]
    for k, text in enumerate(TOUR_SENTENCES[:1] if quick else TOUR_SENTENCES):
        file = f"tts/sentence-{k}.wav"
        t0 = time.perf_counter()
        record = speak(loaded, text, out_dir / file, seed=k)
        took = time.perf_counter() - t0
        parts.append(f"<figure><audio controls src='{file}'></audio><figcaption>{html.escape(text)} "
                     f"({record['seconds']:.1f} s in {took:.1f} s)</figcaption></figure>")
    parts.append(_clones(loaded, out_dir, 1 if quick else 2))
    return "\n".join(parts)


def _clones(loaded, out_dir: Path, n: int) -> str:
    """Held-out real speakers of the codec corpus (never heard in training), each reference beside its clone."""
    from ..data.audio import save_recording
    from .api import Voice, speak
    from .voice import SPEAKER_RATE, dvector, held_out_references

    head = "<h3>Cloned voices</h3>"
    if loaded.speaker_encoder is None or not loaded.cfg.speaker_dim:
        return head + "<p>(skipped: this bundle has no speaker encoder)</p>"
    try:
        references = held_out_references(n)
    except GenlabError as e:
        return head + f"<p>(skipped: {html.escape(str(e))})</p>"
    parts = [head, "<p>Speakers the codec corpus holds out (no model heard them in training): a reference of "
                   "4-10 s, then the clone saying a sentence the reference never says. Each clone's file records "
                   "the consent statement and the corpus speaker.</p>"]
    (out_dir / "tts").mkdir(parents=True, exist_ok=True)
    for k, (speaker, ref, _) in enumerate(references):
        ref_file, clone_file = f"tts/reference-{k}.wav", f"tts/clone-{k}.wav"
        save_recording(out_dir / ref_file, ref, SPEAKER_RATE)  # the real recording: not generated, not marked
        voice = Voice(0, dvector(loaded.speaker_encoder, ref), {"reference_corpus_speaker": speaker})
        speak(loaded, TOUR_SENTENCES[0], out_dir / clone_file, voice, seed=k,
              consent=f"genlab tour: held-out corpus speaker {speaker}, cloned for a demonstration only")
        parts.append(f"<figure><audio controls src='{ref_file}'></audio><audio controls src='{clone_file}'></audio>"
                     f"<figcaption>{html.escape(speaker)}: reference ({len(ref) / SPEAKER_RATE:.1f} s), then its "
                     f"clone</figcaption></figure>")
    return "\n".join(parts)
