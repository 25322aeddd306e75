"""Where a long-form transcription spends its time, beside how much work faster-whisper does on the same file.

    python benchmarks/asr_breakdown.py [--split dev] [--files dev-fr-june,...] [--beam 1] [--int8] [--threads 2]
        [--out asr_breakdown]

For each file of benchmarks/longform.py's split (dev by default: diagnose there, report on test with
asr_speed.py), genlab's Whisper base transcribes it with the voice-activity gate on, on the calling thread
(``encode_ahead=False``, so the parts add up): wall seconds of the encoder with the cross-attention keys/values
(windows encoded), of the decoding calls (decoding steps run), of the alignment that times words
(segments.window_segments), and the rest; then faster-whisper (same weights through CTranslate2, its VAD on) on
the same audio: wall seconds, windows (distinct seek positions of its segments) and tokens written. Decoding
steps that are not one token a row (a prompt, the first step) run the plain model and are counted apart. One run
each after a 5-second warm-up; no WER here (benchmarks/longform.py). Writes benchmarks/results/OUT.json.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402


def _timed(acc: collections.Counter, label: str, fn):
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        acc[label + "_s"] += time.perf_counter() - t
        acc[label + "_calls"] += 1
        return out
    return wrapper


def genlab_breakdown(audio: np.ndarray, language: str, beam: int, int8: bool) -> dict:
    from genlab.asr import load
    from genlab.asr import transcribe as longform_loop
    from genlab.asr.fast import step

    pipe = load("base", int8=int8)
    pipe.transcribe(audio[: 5 * 16000], language=language, beam_size=beam, vad=True)  # warm-up
    acc: collections.Counter = collections.Counter()
    saved = (longform_loop.LongForm.encode_windows, longform_loop._decode_at, longform_loop.window_segments,
             step.FastWhisper._step, step.FastWhisper.logits)
    longform_loop.LongForm.encode_windows = _timed(acc, "encode", saved[0])
    longform_loop._decode_at = _timed(acc, "decode", saved[1])
    longform_loop.window_segments = _timed(acc, "align", saved[2])
    step.FastWhisper._step = _timed(acc, "one_token_step", saved[3])
    step.FastWhisper.logits = _timed(acc, "logits", saved[4])
    try:
        t = time.perf_counter()
        r = pipe.transcribe(audio, language=language, beam_size=beam, vad=True, encode_ahead=False)
        wall = time.perf_counter() - t
    finally:
        (longform_loop.LongForm.encode_windows, longform_loop._decode_at, longform_loop.window_segments,
         step.FastWhisper._step, step.FastWhisper.logits) = saved
    parts = acc["encode_s"] + acc["decode_s"] + acc["align_s"]
    return {"wall_s": round(wall, 3), "encode_s": round(acc["encode_s"], 3), "windows_encoded": acc["encode_calls"],
            "decode_s": round(acc["decode_s"], 3), "decoding_calls": acc["decode_calls"],
            "one_token_steps": acc["one_token_step_calls"],
            "other_decoder_calls": acc["logits_calls"] - acc["one_token_step_calls"],
            "ms_per_one_token_step": round(1e3 * acc["one_token_step_s"] / max(acc["one_token_step_calls"], 1), 2),
            "align_s": round(acc["align_s"], 3), "rest_s": round(wall - parts, 3),
            "tokens_written": sum(len(s.tokens) for s in r.segments)}


def faster_whisper_work(audio: np.ndarray, language: str, beam: int, int8: bool, threads: int) -> dict:
    from asr_speed import ct2_dir
    from faster_whisper import WhisperModel

    model = WhisperModel(ct2_dir(), device="cpu", compute_type="int8" if int8 else "float32", cpu_threads=threads)
    list(model.transcribe(audio[: 5 * 16000], language=language, beam_size=beam, vad_filter=True)[0])  # warm-up
    t = time.perf_counter()
    segments = list(model.transcribe(audio, language=language, beam_size=beam, vad_filter=True)[0])
    wall = time.perf_counter() - t
    return {"wall_s": round(wall, 3), "windows": len({s.seek for s in segments}),
            "tokens_written": sum(len(s.tokens) for s in segments),
            "temperatures": sorted({s.temperature for s in segments})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", default="dev", choices=["dev", "test"])
    ap.add_argument("--files", default=None, help="comma-separated file names (default: every file of the split)")
    ap.add_argument("--beam", type=int, default=1)
    ap.add_argument("--int8", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="asr_breakdown")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from longform import FILES, cached

    names = args.files.split(",") if args.files else [n for n, f in FILES.items() if f[0] == args.split]
    rows = {}
    for name in names:
        path, manifest = cached(name)
        audio = np.load(path)
        rows[name] = {"seconds": manifest["seconds"],
                      "genlab": genlab_breakdown(audio, manifest["language"], args.beam, args.int8),
                      "faster_whisper": faster_whisper_work(audio, manifest["language"], args.beam, args.int8,
                                                            args.threads)}
        print(name, rows[name], flush=True)
    write_result(args.out, {"beam": args.beam, "precision": "int8" if args.int8 else "fp32",
                            "threads": args.threads, "files": rows})


if __name__ == "__main__":
    main()
