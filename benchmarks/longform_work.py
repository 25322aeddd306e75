"""Where the long-form time goes, per file of benchmarks/longform.py (dev by default): the encoder windows, the
decoder calls (and those at a temperature above 0), the tokens decoded, for genlab and faster-whisper on the same
weights with their voice-activity gates; for genlab also the seconds spent decoding, waiting for the encoder ahead
and aligning (word timing). Counting, not timing: each system runs once per file in its own process, and its wall
seconds are one run each (the timings against faster-whisper are asr_speed.py --longform's).

    python benchmarks/longform_work.py [--split dev] [--files a,b] [--beam 1] [--threads 2]
        [--systems genlab-fp32,faster-whisper-fp32] [--out NAME]

genlab's counts come from wrapping LongForm.encode_windows, decode_with_fallback's decodings and LongForm._accept;
faster-whisper's from a proxy around its CTranslate2 model's encode and generate.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402


def genlab_counter(beam: int):
    """fn(audio, language) -> counts, transcribing with genlab's Whisper base (gate and word timestamps on)."""
    import genlab.asr.fast.ahead as ahead
    import genlab.asr.transcribe as loop
    from genlab.asr import load

    pipe, n = load("base"), {}

    def wrap(owner, name, key, count=lambda *a, **k: 1):
        inner = getattr(owner, name)

        def timed(*args, **kw):
            t = time.perf_counter()
            out = inner(*args, **kw)
            n[key + "_s"] = n.get(key + "_s", 0.0) + time.perf_counter() - t
            n[key] = n.get(key, 0) + count(*args, out=out)
            return out

        setattr(owner, name, timed)

    wrap(loop.LongForm, "encode_windows", "encoder_windows", lambda self, wins, out: len(wins))
    wrap(loop, "decode_with_fallback", "decoding")
    wrap(ahead.EncodeAhead, "take", "waits")
    wrap(loop.LongForm, "_accept", "accepts")
    decode_at = loop._decode_at

    def decode_at_counting(model, features, tok, base, t, *rest):
        out = decode_at(model, features, tok, base, t, *rest)
        key = "hot" if t > 0 else "greedy"
        n[key + "_tokens"] = n.get(key + "_tokens", 0) + sum(len(r.tokens) for r in out)
        n["decode_calls"] = n.get("decode_calls", 0) + 1
        n["hot_calls"] = n.get("hot_calls", 0) + (t > 0)
        return out

    loop._decode_at = decode_at_counting

    def run(audio, language):
        n.clear()
        pipe.transcribe(audio, language=language, beam_size=beam, vad=True, word_timestamps=True)
        return {"encoder_windows": n.get("encoder_windows", 0), "decode_calls": n.get("decode_calls", 0),
                "hot_calls": n.get("hot_calls", 0), "greedy_tokens": n.get("greedy_tokens", 0),
                "hot_tokens": n.get("hot_tokens", 0), "decoding_s": round(n.get("decoding_s", 0.0), 2),
                "waiting_for_encoder_s": round(n.get("waits_s", 0.0), 2),
                "accepting_s": round(n.get("accepts_s", 0.0), 2)}

    return run


def faster_whisper_counter(beam: int, threads: int):
    from asr_speed import ct2_dir
    from faster_whisper import WhisperModel

    model, n = WhisperModel(ct2_dir(), device="cpu", compute_type="float32", cpu_threads=threads), {}

    class Counting:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def encode(self, *args, **kw):
            n["encoder_windows"] = n.get("encoder_windows", 0) + 1
            return self.inner.encode(*args, **kw)

        def generate(self, features, prompts, **kw):
            out = self.inner.generate(features, prompts, **kw)
            hot = kw.get("sampling_temperature", 0.0) > 0 and kw.get("beam_size", 1) == 1
            key = "hot" if hot else "greedy"
            n[key + "_tokens"] = n.get(key + "_tokens", 0) + sum(len(r.sequences_ids[0]) for r in out)
            n["decode_calls"] = n.get("decode_calls", 0) + 1
            n["hot_calls"] = n.get("hot_calls", 0) + hot
            return out

    model.model = Counting(model.model)

    def run(audio, language):
        n.clear()
        segments, _ = model.transcribe(audio, language=language, beam_size=beam, vad_filter=True,
                                       word_timestamps=True)
        list(segments)
        return {k: n.get(k, 0) for k in ("encoder_windows", "decode_calls", "hot_calls", "greedy_tokens",
                                          "hot_tokens")}

    return run


def child(system: str, beam: int, threads: int, names: list[str]) -> None:
    import torch
    from longform import cached

    torch.set_num_threads(threads)
    run = genlab_counter(beam) if system == "genlab-fp32" else faster_whisper_counter(beam, threads)
    for name in names:
        path, manifest = cached(name)
        audio = np.load(path).astype(np.float32)
        t = time.perf_counter()
        counts = run(audio, manifest["language"])
        print(json.dumps({"file": name, "wall_s": round(time.perf_counter() - t, 2), **counts}), flush=True)


def main() -> None:
    from longform import FILES

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="dev", choices=["dev", "test"])
    ap.add_argument("--files", default=None)
    ap.add_argument("--beam", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--systems", default="genlab-fp32,faster-whisper-fp32")
    ap.add_argument("--out", default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    names = args.files.split(",") if args.files else [k for k, v in FILES.items() if v[0] == args.split]
    if args.child:
        return child(args.child, args.beam, args.threads, names)
    per_file: dict = {name: {} for name in names}
    systems = args.systems.split(",")
    for system in systems:
        out = subprocess.run([sys.executable, __file__, "--child", system, "--beam", str(args.beam), "--threads",
                              str(args.threads), "--files", ",".join(names)], capture_output=True, text=True,
                             check=True).stdout
        for line in out.splitlines():
            row = json.loads(line)
            per_file[row.pop("file")][system] = row
    totals = {s: {k: round(sum(f[s][k] for f in per_file.values()), 2) for k in per_file[names[0]][s]}
              for s in systems}
    print(json.dumps(totals, indent=1))
    if args.out:
        write_result(args.out, {"beam": args.beam, "threads": args.threads, "totals": totals, "files": per_file})


if __name__ == "__main__":
    main()
