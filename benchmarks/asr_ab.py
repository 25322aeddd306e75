"""genlab's long-form transcription at two commits, side by side on the files of benchmarks/longform.py (dev by
default): wall seconds per file (each commit in its own process, alternating run by run) and whether the segments
are the same. For speed changes that must not change the transcript: develop on dev; the speed against
faster-whisper on the test files is asr_speed.py's.

    python benchmarks/asr_ab.py --base REV [--beam 1] [--repeats 2] [--split dev] [--files a,b] [--threads 2]
        [--out asr_ab_NAME]

``--base`` is checked out into a temporary git worktree; the other side is this working tree. Each process loads
Whisper base, warms up on 20 s of dev-en-allison, then transcribes every file once (voice-activity gate and word
timestamps on, as benchmarks/longform.py). Writes benchmarks/results/OUT.json with the medians and their ratio
(base over this tree: above 1 means this tree is faster) per file, and the median ratio across files.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def child(beam: int, names: list[str]) -> None:
    """In the child process: transcribe each file once; print {name: [seconds, segments]} as one JSON line."""
    import longform
    import numpy as np

    from genlab.asr import load

    pipe = load("base")
    warm = np.load(longform.cached("dev-en-allison")[0])
    pipe.transcribe(warm[: 20 * longform.SR], language="en", beam_size=beam, vad=True)
    out = {}
    for name in names:
        path, manifest = longform.cached(name)
        audio = np.load(path)
        t = time.perf_counter()
        r = pipe.transcribe(audio, language=manifest["language"], beam_size=beam, vad=True, word_timestamps=True)
        out[name] = [round(time.perf_counter() - t, 3), [[s.start, s.end, s.text] for s in r.segments]]
    print(json.dumps(out))


def run_side(src: Path, beam: int, names: list[str], threads: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, __file__, "--child", str(beam), *names]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(base_src: Path, beam: int, names: list[str], repeats: int, threads: int) -> dict:
    sides = {"base": base_src, "this": ROOT / "src"}
    times = {k: {n: [] for n in names} for k in sides}
    segments: dict[str, dict] = {}
    for r in range(repeats):
        for side in ("base", "this") if r % 2 == 0 else ("this", "base"):
            for name, (seconds, segs) in run_side(sides[side], beam, names, threads).items():
                times[side][name].append(seconds)
                segments.setdefault(side, {})[name] = segs
    files = {}
    for n in names:
        b, t = statistics.median(times["base"][n]), statistics.median(times["this"][n])
        files[n] = {"base_s": times["base"][n], "this_s": times["this"][n], "ratio": round(b / t, 3),
                    "same_segments": segments["base"][n] == segments["this"][n]}
    return {"files": files, "median_ratio": round(statistics.median(f["ratio"] for f in files.values()), 3),
            "all_same_segments": all(f["same_segments"] for f in files.values())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", help="the commit to compare this working tree with (required)")
    ap.add_argument("--beam", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--split", default="dev", choices=["dev", "test"])
    ap.add_argument("--files", default=None, help="comma-separated file names (default: every file of the split)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="default asr_ab_<split>_beam<N>")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(int(args.child[0]), args.child[1:])
    if not args.base:
        ap.error("--base is required")
    import longform

    names = args.files.split(",") if args.files else [n for n, f in longform.FILES.items() if f[0] == args.split]
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), args.base], check=True)
        try:
            commit = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True, check=True).stdout.strip()
            result = compare(tree / "src", args.beam, names, args.repeats, args.threads)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    this = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                          text=True).stdout.strip()
    path = write_result(args.out or f"asr_ab_{args.split}_beam{args.beam}",
                        {"base_commit": commit, "this_tree": this, "beam": args.beam, "repeats": args.repeats,
                         "threads": args.threads, **result})
    print(f"median ratio base/this {result['median_ratio']}, same segments: {result['all_same_segments']} -> {path}")


if __name__ == "__main__":
    main()
