"""The watermark under attack: detection rate on marked clips per attack, false positives on clean clips, and how
much the mark changes the audio (SI-SDR, wide-band PESQ).

    python benchmarks/watermark_eval.py [--n 500] [--clean 500] [--seed 0] [--dev]

Marked clips (``--n``): half genlab's own speech when a trained voice bundle exists (``--tts-model``, held-out
sentences, built-in voice), otherwise espeak-ng standing in for it, the speech genlab's TTS imitates: espeak-ng
sentences (held-out text of ``genlab.data.text_sources``, 24 voices, 140-210 words per minute; needs genlab[speech])
and real recorded speech (the held-out speakers of the codec corpus, ``genlab data codec``, and the LibriVox /
JFK clips) for the other half (what cloning imitates), each cut to at most 8 s and marked at 24 kHz. ``--dev``
marks espeak's training sentences and the codec corpus's training speakers instead: the watermark's settings are
chosen there, and the test clips only report them.

Attacks, each on every marked clip: resampling to 16 / 22.05 / 44.1 kHz, MP3 32 and 64 kbps CBR and Ogg/Opus
~32 kbps (libsndfile; the measured bitrate is reported), white noise at 20 dB SNR, gain -12 dB and +6 dB with
clipping, a 2 s and a 1 s crop at a random place, speed x0.9 and x1.1 (resampling: pitch and tempo), genlab's codec
round trip (when a trained codec is bundled), and a chain (44.1 kHz, MP3 32 kbps, noise 20 dB, 2 s crop).

Clean clips (``--clean``): real speech of every speaker of the codec corpus (both splits), LibriVox and JFK, espeak
sentences, and MP3 round trips of those; never marked. The detector's threshold guarantees at most 0.1 % false
positives per file by construction (a union bound, see genlab.provenance.watermark); this measures it.
Writes benchmarks/results/watermark_eval.json.
"""

from __future__ import annotations

import argparse
import glob
import io
import math
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from genlab.provenance.watermark import default  # noqa: E402

RATE = 24000
MAX_SECONDS = 8.0
JFK = Path(__file__).resolve().parents[2] / "shared" / "data" / "jfk.flac"
ESPEAK_VOICES = ("en-us", "en", "en-gb-x-rp", "en-029", "en-us+f2", "en-us+m3", "en+f4", "en-us+klatt", "en+m7",
                 "en-us+f5", "en-gb-x-gbclan", "en-us-nyc", "en-gb-scotland", "en+antonio", "en-us+grandma",
                 "en+Andy", "en-us+Annie", "en+michel", "en-us+steph", "en+max", "en-us+linda", "en+edward",
                 "en-us+paul", "en+shelby")


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    """95 % Wilson score interval of a rate k / n."""
    if n == 0:
        return [0.0, 1.0]
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 5), round(min(1.0, centre + half), 5)]


def lossy(audio: np.ndarray, rate: int, fmt: str, kbps: int) -> tuple[np.ndarray, int, float]:
    """An MP3 (CBR) or Ogg/Opus round trip at 16 kHz; returns the audio, its rate and the measured kbps."""
    x = soxr.resample(audio, rate, 16000) if rate != 16000 else audio
    buf = io.BytesIO()
    if fmt == "mp3":  # libsndfile: compression_level 0..1 -> 160..8 kbps for MPEG-2 layer III (16-24 kHz)
        sf.write(buf, x, 16000, format="MP3", subtype="MPEG_LAYER_III", compression_level=(160 - kbps) / 152,
                 bitrate_mode="CONSTANT")
    else:
        sf.write(buf, x, 16000, format="OGG", subtype="OPUS", compression_level=0.9)
    measured = len(buf.getvalue()) * 8 / 1000 / (len(x) / 16000)
    buf.seek(0)
    y, r = sf.read(buf, dtype="float32")
    return y, r, measured


def real_clips(split: str | None, n: int, rng: np.random.Generator) -> list[tuple[str, np.ndarray, int]]:
    """Up to ``n`` real utterances (>= 2 s) of the codec corpus (``split`` None: both), LibriVox and JFK."""
    out = []
    for path in sorted(glob.glob("/usr/share/pocketsphinx/test/data/librivox/*.wav")) + [str(JFK)]:
        if Path(path).exists():
            audio, rate = sf.read(path, dtype="float32", always_2d=True)
            out.append((Path(path).name, audio.mean(1), rate))
    try:
        from genlab.codec.data import load

        corpus = load(16000)
    except Exception as e:  # the corpus is optional here: say so and go on
        print(f"note: codec corpus unavailable ({e}); real speech is LibriVox and JFK only", file=sys.stderr)
        return out[:n]
    data = {"train": corpus.train, "test": corpus._test}
    clips = [c for c in corpus.manifest["clips"] if (split is None or c["split"] == split) and c["length"] >= 32000]
    for i in rng.permutation(len(clips))[: max(0, n - len(out))]:
        c = clips[i]
        pcm = data[c["split"]][c["offset"] : c["offset"] + c["length"]].astype(np.float32) / 32767
        out.append((f"{c['speaker']}/{Path(c['path']).name}", pcm, 16000))
    return out[:n]


def espeak_clips(n: int, rng: np.random.Generator, offset: int,
                 split: str = "test") -> list[tuple[str, np.ndarray, int]]:
    try:
        from genlab.data.speech import _split_sentences, espeak
    except ImportError:
        return []
    try:
        engine = espeak()
        sentences = _split_sentences(0)["en"][split]
    except Exception as e:
        print(f"note: espeak unavailable ({e})", file=sys.stderr)
        return []
    out = []
    for i in range(n):
        text = sentences[(offset + i) % len(sentences)] + " " + sentences[(offset + i + 7) % len(sentences)]
        voice = ESPEAK_VOICES[(offset + i) % len(ESPEAK_VOICES)]
        audio = engine.synth(text, voice, rate=int(rng.integers(140, 211)), pitch=int(rng.integers(30, 71)))
        out.append((f"espeak/{voice}/{i + offset}", audio, engine.sample_rate))
    return out


def attacks(rng: np.random.Generator, codec) -> dict:
    def noise(x, r):
        return x + rng.standard_normal(len(x)).astype(np.float32) * np.sqrt(np.mean(x**2)) * 0.1, r

    def crop(seconds):
        def f(x, r):
            n = int(seconds * r)
            start = int(rng.integers(0, max(1, len(x) - n)))
            return x[start : start + n], r
        return f

    def chain(x, r):
        y, r2, _ = lossy(soxr.resample(x, r, 44100), 44100, "mp3", 32)
        return crop(2.0)(*noise(y, r2))

    table = {
        "none": lambda x, r: (x, r),
        "resample 16 kHz": lambda x, r: (soxr.resample(x, r, 16000), 16000),
        "resample 22.05 kHz": lambda x, r: (soxr.resample(x, r, 22050), 22050),
        "resample 44.1 kHz": lambda x, r: (soxr.resample(x, r, 44100), 44100),
        "mp3 32 kbps": lambda x, r: lossy(x, r, "mp3", 32)[:2],
        "mp3 64 kbps": lambda x, r: lossy(x, r, "mp3", 64)[:2],
        "opus ~32 kbps": lambda x, r: lossy(x, r, "opus", 32)[:2],
        "noise 20 dB SNR": noise,
        "gain -12 dB": lambda x, r: (x * 0.25, r),
        "gain +6 dB, clipped": lambda x, r: (np.clip(x * 2.0, -1.0, 1.0), r),
        "crop 2 s": crop(2.0),
        "crop 1 s": crop(1.0),
        "speed x0.9": lambda x, r: (soxr.resample(x, r, r / 0.9), r),
        "speed x1.1": lambda x, r: (soxr.resample(x, r, r / 1.1), r),
        "chain: 44.1 kHz + mp3 32 + noise 20 dB + crop 2 s": chain,
    }
    if codec is not None:
        table["genlab codec round trip"] = codec
    return table


def codec_attack():
    """genlab's bundled codec as an attack, or None (with a note) when no trained codec is bundled."""
    try:
        import torch

        from genlab.codec.api import load

        loaded = load("speech-codec")
    except Exception as e:
        print(f"note: no genlab codec round trip ({e})", file=sys.stderr)
        return None
    sr = loaded.cfg.sample_rate

    def f(x, r):
        with torch.no_grad():
            wav = torch.from_numpy(soxr.resample(x, r, sr).astype(np.float32))[None, None]
            return loaded.codec.decode(loaded.codec.encode(wav)).squeeze().numpy(), sr
    return f


def si_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    a = np.dot(est, ref) / np.dot(ref, ref)
    return 10 * math.log10(np.sum((a * ref) ** 2) / np.sum((a * ref - est) ** 2))


def pesq_wb(ref: np.ndarray, deg: np.ndarray, rate: int) -> float | None:
    try:
        from pesq import pesq
    except ImportError:
        return None
    r16, d16 = soxr.resample(ref, rate, 16000), soxr.resample(deg, rate, 16000)
    try:
        return float(pesq(16000, r16, d16, "wb"))
    except Exception:
        return None


def genlab_clips(n: int, model: str) -> list[tuple[str, np.ndarray, int]]:
    """genlab's own speech (unmarked here: the benchmark marks every clip itself), or [] without a trained bundle."""
    try:
        from genlab.data.speech import _split_sentences
        from genlab.tts.api import Voice, _stream, load

        loaded = load(model)
        sentences = _split_sentences(0)["en"]["test"]
    except Exception as e:
        print(f"note: no genlab TTS clips ({e}); espeak stands in for genlab's speech", file=sys.stderr)
        return []
    return [(f"genlab/{i}", np.concatenate(list(_stream(loaded, sentences[i % len(sentences)], Voice(), 1.0, i))),
             22050) for i in range(n)]


def marked_set(n: int, rng, model: str = "speech-tts", dev: bool = False) -> list[tuple[str, np.ndarray]]:
    if dev:  # tuning data: training sentences and training speakers, never the reported test clips
        clips = espeak_clips(n // 2, rng, offset=0, split="train")
        clips += [c for c in real_clips("train", n - len(clips) + 10, rng) if "/" in c[0]][: n - len(clips)]
    else:
        clips = genlab_clips(n // 2, model) or espeak_clips(n // 2, rng, offset=0)
        clips += real_clips("test", n - len(clips), rng)
    out = []
    for name, audio, rate in clips:
        x = soxr.resample(audio[: int(MAX_SECONDS * rate)], rate, RATE).astype(np.float32)
        out.append((name, x))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=500, help="marked clips")
    ap.add_argument("--clean", type=int, default=500, help="clean clips")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="result name (default watermark_eval, or watermark_eval_dev)")
    ap.add_argument("--dev", action="store_true", help="tune here: espeak training sentences and real training "
                    "speakers (no LibriVox / JFK) instead of the reported test clips")
    ap.add_argument("--tts-model", default="speech-tts", help="genlab voice bundle whose speech is marked")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    wm = default()
    t0 = time.perf_counter()
    marked = marked_set(args.n, rng, args.tts_model, args.dev)
    table = attacks(rng, codec_attack())
    hits = {name: 0 for name in table}
    sdr, pesqs, embed_s, detect_s, scores = [], [], 0.0, 0.0, {name: [] for name in table}
    for i, (_, x) in enumerate(marked):
        t = time.perf_counter()
        y = wm.embed(x, RATE)
        embed_s += time.perf_counter() - t
        sdr.append(si_sdr(x, y))
        if i < 100 and (p := pesq_wb(x, y, RATE)) is not None:
            pesqs.append(p)
        for attack, f in table.items():
            a, r = f(y, RATE)
            t = time.perf_counter()
            d = wm.detect(a, r)
            detect_s += time.perf_counter() - t
            hits[attack] += d.detected
            scores[attack].append(d.score)
        if (i + 1) % 20 == 0:
            print(f"{i + 1}/{len(marked)} marked clips, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    n = len(marked)
    detection = {a: {"rate": round(hits[a] / n, 4), "detected": hits[a], "n": n, "ci95": wilson(hits[a], n),
                     "median_score_(lower_bound)": round(float(np.median(scores[a])), 2)} for a in table}

    clean = espeak_clips(args.clean // 4, rng, offset=1000)
    clean += real_clips(None, args.clean - len(clean) - args.clean // 4, rng)
    clean += [(f"mp3 32 kbps of {name}", *lossy(audio, rate, "mp3", 32)[:2])
              for name, audio, rate in clean[: args.clean - len(clean)]]
    false, clean_scores = [], []
    for name, audio, rate in clean:
        d = wm.detect(audio, rate)
        clean_scores.append(d.score)
        if d.detected:
            false.append({"clip": name, "score": d.score})
    m = len(clean)
    bitrates = {f"{fmt} {kb}": round(lossy(marked[0][1], RATE, fmt, kb)[2], 1) for fmt, kb in
                (("mp3", 32), ("mp3", 64), ("opus", 32))}
    result = {
        "split": "dev" if args.dev else "test", "n_marked": n, "n_clean": m, "seed": args.seed,
        "marked_sources": sorted({c[0].split("/")[0] for c in marked}),
        "detection": detection,
        "false_positives": {"rate": round(len(false) / max(m, 1), 5), "count": len(false), "n": m,
                            "ci95": wilson(len(false), m), "clips": false,
                            "max_clean_score": round(max(clean_scores), 3) if clean_scores else None,
                            "threshold_one_window": round(wm.threshold(wm.tries_per_window()), 3),
                            "guaranteed_bound": wm.cfg.fpr},
        "si_sdr_db": {"mean": round(float(np.mean(sdr)), 2), "min": round(float(np.min(sdr)), 2),
                      "p05": round(float(np.percentile(sdr, 5)), 2)},
        "pesq_wb_marked_vs_unmarked": {"mean": round(float(np.mean(pesqs)), 3), "min": round(float(np.min(pesqs)), 3),
                                       "n": len(pesqs)} if pesqs else None,
        "measured_kbps": bitrates,
        "seconds": {"embed_per_clip": round(embed_s / n, 4), "detect_per_call": round(detect_s / (n * len(table)), 4),
                    "total": round(time.perf_counter() - t0, 1)},
        "watermark_config": {k: v for k, v in wm.cfg.__dict__.items()},
    }
    write_result(args.out or ("watermark_eval_dev" if args.dev else "watermark_eval"), result)
    for a, d in detection.items():
        print(f"{a:50s} {d['rate'] * 100:6.1f} %  (n={n})")
    print(f"false positives {len(false)}/{m}; SI-SDR mean {result['si_sdr_db']['mean']} dB, min "
          f"{result['si_sdr_db']['min']} dB; PESQ {result['pesq_wb_marked_vs_unmarked']}")


if __name__ == "__main__":
    main()
