"""The codec's quality on held-out speakers, beside Opus: SI-SDR, multi-scale mel distance, PESQ, WER, codebook usage.

    python benchmarks/codec_eval.py [--model speech-codec] [--n 60] [--seed 0] [--wer-n 30]
    python benchmarks/codec_eval.py --opus-only        # the Opus column alone (no trained codec needed)
    python benchmarks/codec_eval.py --unquantised      # also the encoder -> decoder without the quantiser

Clips: ``--n`` utterances drawn with ``--seed`` from the held-out speakers of the codec corpus (``genlab data
codec``; speakers never seen in training) in turn, so each speaker gives about as many as the others (the game
voices' clips are short and few), each at least 1 s and cut to its first 8 s, 16 kHz. Each is encoded and
decoded by genlab's codec at 1.5, 3 and 6 kbps (3, 6, 12 codebooks for the speech-codec shape) and by Opus through
libsndfile (``soundfile``, OGG/Opus). libsndfile sets Opus's bitrate from its compression level, from 6 kbps (the
lowest it asks libopus for) up; so 1.5 and 3 kbps have no Opus of their own and Opus at 6 kbps is the nearest; the
bitrate Opus actually used (file bytes, container included) is reported beside it.

Metrics, each a mean over the clips (with the median for SI-SDR): SI-SDR in dB (Le Roux et al. 2019), the
multi-scale log-mel distance of genlab.codec.loss.mel_distance (lower is better), the level kept per octave band
(``band_db_<Hz>``: decoded power minus the original's, dB, 125 Hz to 8 kHz), wide-band PESQ (ITU-T P.862.2, the
``pesq`` package; skipped if absent), and with ``--wer-n`` the WER of Whisper base (genlab's, greedy, language
given) on the Italian Asterisk speaker's prompts (their transcripts ship in ``asterisk-core-sounds-it``), the
original audio's WER being the floor. Codebook usage: per level, the perplexity of the codes over all clips and the
codes never used. Writes ``benchmarks/results/codec_eval.json`` (``--out`` another name).
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402
from speech_eval import error_rates  # noqa: E402

from genlab.codec.loss import mel_distance, si_sdr  # noqa: E402

LADDER = (1.5, 3.0, 6.0)
OPUS_MIN_KBPS = 6.0
ASTERISK_IT = "/usr/share/asterisk/sounds/it_IT_m_Carlo/"
ASTERISK_IT_TEXT = "/usr/share/doc/asterisk-core-sounds-it/core-sounds-it.txt.gz"


def opus_round_trip(audio: np.ndarray, sr: int, kbps: float) -> tuple[np.ndarray, float]:
    """Encode with Opus at ``kbps`` (libsndfile maps compression level 1 to 6 kbps, 0 to 256 kbps, linearly) and
    decode; returns the audio and the bitrate the file really has."""
    level = float(np.clip(1 - (kbps * 1000 - 6000) / (256000 - 6000), 0, 1))
    buf = io.BytesIO()
    sf.write(buf, audio, sr, format="OGG", subtype="OPUS", compression_level=level)
    used = len(buf.getvalue()) * 8 / (len(audio) / sr) / 1000
    buf.seek(0)
    out, _ = sf.read(buf, dtype="float32")
    return out[: len(audio)], used


BANDS_HZ = (125, 250, 500, 1000, 2000, 4000)  # octave bands: 125-250 Hz ... 4-8 kHz


def band_levels(decoded: np.ndarray, reference: np.ndarray, sr: int) -> dict[str, float]:
    """The decoded clip's power minus the reference's, per octave band, in dB: 0 where a band's level is kept,
    negative where the codec loses it."""
    f = np.fft.rfftfreq(len(reference), 1 / sr)
    d = np.abs(np.fft.rfft(decoded[: len(reference)].astype(np.float64), n=len(reference))) ** 2
    r = np.abs(np.fft.rfft(reference.astype(np.float64))) ** 2
    out = {}
    for lo in BANDS_HZ:
        band = (f >= lo) & (f < min(2 * lo, sr / 2))
        out[f"band_db_{lo}"] = float(10 * np.log10((d[band].sum() + 1e-12) / (r[band].sum() + 1e-12)))
    return out


def scores(decoded: np.ndarray, reference: np.ndarray, sr: int) -> dict[str, float]:
    y, x = torch.from_numpy(decoded[: len(reference)]), torch.from_numpy(reference)
    out = {"si_sdr": si_sdr(y, x).item(), "mel": mel_distance(y, x, sr).item(), **band_levels(decoded, reference, sr)}
    try:
        from pesq import pesq

        out["pesq"] = float(pesq(sr, reference, decoded[: len(reference)], "wb"))
    except ImportError:
        pass
    except Exception:  # pesq refuses clips it finds no speech in
        out["pesq"] = float("nan")
    return out


def summarise(rows: list[dict]) -> dict:
    out = {}
    for key in rows[0]:
        values = np.array([r[key] for r in rows], dtype=np.float64)
        out[key] = round(float(np.nanmean(values)), 4)
        if key == "si_sdr":
            out["si_sdr_median"] = round(float(np.nanmedian(values)), 4)
    return out


def pick_clips(n: int, seed: int, min_s: float, max_s: float) -> tuple[list[tuple[dict, np.ndarray]], int]:
    from genlab.codec.data import load

    corpus = load()
    pool = corpus.test_clips(min_seconds=min_s)
    rng = np.random.default_rng(seed)
    by_speaker: dict[str, list[int]] = {}
    for i, (meta, _) in enumerate(pool):
        by_speaker.setdefault(meta["speaker"], []).append(i)
    queues = [list(rng.permutation(idx)) for _, idx in sorted(by_speaker.items())]
    chosen: list[int] = []
    while len(chosen) < min(n, len(pool)):  # one clip of each speaker in turn, so no speaker fills the sample
        chosen += [int(q.pop()) for q in queues if q][: n - len(chosen)]
    return [(pool[i][0], pool[i][1][: int(max_s * corpus.sample_rate)]) for i in sorted(chosen)], corpus.sample_rate


def codebook_usage(codec, clips: list[np.ndarray]) -> list[dict]:
    cfg = codec.cfg
    codes = torch.cat([codec.encode(torch.from_numpy(a)[None, None])[0] for a in clips], dim=1)  # (n_q, frames)
    out = []
    for level, row in enumerate(codes):
        p = torch.bincount(row, minlength=cfg.codebook_size).double() / row.numel()
        entropy = -(p[p > 0] * p[p > 0].log()).sum().item()
        out.append({"level": level + 1, "perplexity": round(float(np.exp(entropy)), 2),
                    "dead_codes": int((p == 0).sum()), "frames": int(row.numel())})
    return out


def wer_table(systems: dict, n: int, seed: int, sr: int) -> dict:
    """WER of Whisper base on the Italian Asterisk prompts, through each system."""
    from genlab.asr import load as load_asr
    from genlab.codec.data import read_clip

    texts = {}
    for line in gzip.open(ASTERISK_IT_TEXT, "rt", encoding="utf-8-sig"):
        if ":" in line and not line.startswith(";"):
            key, text = line.split(":", 1)
            if text.strip() and "[" not in text:
                texts[key.strip()] = text.strip()
    paths = sorted(p for p in Path(ASTERISK_IT).rglob("*.wav") if str(p.relative_to(ASTERISK_IT))[:-4] in texts)
    # silence/*.wav are "(N secondi di silenzio)": a description, not words, and silence/10.wav reads as 0 samples
    paths = [p for p in paths if not texts[str(p.relative_to(ASTERISK_IT))[:-4]].startswith("(")]
    rng = np.random.default_rng(seed)
    paths = [paths[i] for i in sorted(rng.choice(len(paths), size=min(n, len(paths)), replace=False))]
    refs = [texts[str(p.relative_to(ASTERISK_IT))[:-4]] for p in paths]
    asr = load_asr("base")
    out = {}
    for name, fn in {"original": lambda a: a, **systems}.items():
        hyps = []
        for p in paths:
            audio = read_clip(str(p), sr)
            result = asr.transcribe(fn(audio)[: len(audio)], language="it", beam_size=1, temperature=0.0,
                                    condition_on_previous_text=False)
            hyps.append(result.text)
        out[name] = error_rates(refs, hyps)
        print(f"WER {name}: {out[name]}", flush=True)
    return out


def model_step(name_or_dir: str) -> int | None:
    """The training step the codec's weights come from, as its checkpoint records it."""
    from genlab.checkpoint import load_checkpoint
    from genlab.codec.api import resolve_model

    return load_checkpoint(resolve_model(name_or_dir), kind="codec").meta.get("step")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="speech-codec")
    ap.add_argument("--opus-only", action="store_true")
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-seconds", type=float, default=1.0)
    ap.add_argument("--max-seconds", type=float, default=8.0)
    ap.add_argument("--wer-n", type=int, default=0, help="Italian prompts for the WER table (0: skip)")
    ap.add_argument("--unquantised", action="store_true",
                    help="also the codec's autoencoder without its quantiser (its ceiling at any bitrate)")
    ap.add_argument("--out", default="codec_eval")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    clips, sr = pick_clips(args.n, args.seed, args.min_seconds, args.max_seconds)
    systems = {}
    info: dict = {}
    if not args.opus_only:
        from genlab.codec.api import load

        loaded = load(args.model)
        codec, cfg = loaded.codec, loaded.cfg
        info["model"] = {"name": args.model, "weights_hash": loaded.weights_hash, "sample_rate": cfg.sample_rate,
                         "frame_rate": cfg.frame_rate, "codebook_size": cfg.codebook_size, "n_q": cfg.n_q,
                         "step": model_step(args.model)}
        for kbps in LADDER:
            n_q = cfg.n_q_for_kbps(kbps)
            if cfg.kbps(n_q) != kbps or n_q > cfg.n_q:
                continue

            def run(audio, n_q=n_q):
                with torch.no_grad():
                    return codec.decode(codec.encode(torch.from_numpy(audio)[None, None], n_q))[0, 0].numpy()

            systems[f"genlab@{kbps:g}kbps"] = (run, kbps)
        if args.unquantised:

            def autoencode(audio):
                with torch.no_grad():
                    x = torch.from_numpy(audio)[None, None]
                    return codec.decoder(codec.encoder(x))[0, 0, : x.shape[-1]].numpy()

            systems["genlab-unquantised"] = (autoencode, None)
    opus_rates = sorted({max(OPUS_MIN_KBPS, k) for k in LADDER})
    for kbps in opus_rates:
        systems[f"opus@{kbps:g}kbps"] = (lambda audio, kbps=kbps: opus_round_trip(audio, sr, kbps)[0], kbps)

    t0 = time.perf_counter()
    results = {}
    for name, (fn, kbps) in systems.items():
        rows = [scores(fn(audio), audio, sr) for _, audio in clips]
        results[name] = {"kbps": kbps, **summarise(rows)}
        if name.startswith("opus"):
            results[name]["kbps_measured"] = round(float(np.mean([opus_round_trip(a, sr, kbps)[1]
                                                                  for _, a in clips])), 3)
        print(name, results[name], flush=True)
    if not args.opus_only:
        info["codebook_usage"] = codebook_usage(codec, [a for _, a in clips])
    if args.wer_n:
        info["wer_whisper_base_it"] = wer_table({k: v[0] for k, v in systems.items()}, args.wer_n, args.seed, sr)
    speakers = sorted({c["speaker"] for c, _ in clips})
    path = write_result(args.out, {
        "clips": {"n": len(clips), "seed": args.seed, "split": "test (held-out speakers)", "speakers": speakers,
                  "seconds": round(sum(len(a) for _, a in clips) / sr, 1), "min_seconds": args.min_seconds,
                  "max_seconds": args.max_seconds, "sample_rate": sr},
        "opus_note": f"libsndfile's Opus goes no lower than {OPUS_MIN_KBPS:g} kbps: 1.5 and 3 kbps compare with it",
        "results": results, **info, "seconds": round(time.perf_counter() - t0, 1)})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
