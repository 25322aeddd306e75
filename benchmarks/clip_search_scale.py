"""``genlab search`` over folders of growing size: time, images per second and peak memory (bounded memory check).

    python benchmarks/clip_search_scale.py [--sizes 300,3000] [--out benchmarks/results/clip_search_scale.json]

Each size gets a fresh folder of random 128x96 RGB PNGs and a fresh index cache; the model is a random-init
``emoji-clip``-shaped CLIP (indexing cost does not depend on what the weights learned). The search runs as its own
process; its peak resident memory is read from ``getrusage`` of that child. Bounded memory shows as a peak that
does not grow with the folder (only the index, 512 bytes per image, does).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genlab.checkpoint import save_checkpoint
from genlab.clip.model import CLIP, PRESETS
from genlab.clip.text import ClipTokenizer, train_alphabet
from genlab.config import to_dict

ROOT = Path(__file__).resolve().parent.parent


def child_peak_mb(argv: list[str], env: dict) -> tuple[float, float, str]:
    """Run ``argv``; (seconds, its peak RSS in MB, its last stderr line)."""
    code = (f"import resource, subprocess, sys; p = subprocess.run({argv!r}, capture_output=True, text=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); print(p.stderr.strip().splitlines()[-1]); "
            "sys.exit(p.returncode)")
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if p.returncode:
        raise SystemExit(p.stderr[-2000:])
    kb, last = p.stdout.strip().splitlines()[:2]
    return time.perf_counter() - t, int(kb) / 1024, last


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="300,3000")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "clip_search_scale.json"))
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cfg = PRESETS["emoji-clip"]
        torch.manual_seed(0)
        tok = ClipTokenizer(train_alphabet(["a red apple", "a dog", "a cat"] * 5, 300), cfg.text)
        save_checkpoint(tmp / "ckpt", kind="clip", config={"model": to_dict(cfg), "tokenizer": tok.to_json()},
                        model=CLIP(cfg).state_dict())
        rng = np.random.default_rng(0)
        for n in (int(s) for s in args.sizes.split(",")):
            folder = tmp / f"pics{n}"
            folder.mkdir()
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(folder / f"{i:06d}.png")
            env = {**os.environ, "GENLAB_CACHE": str(tmp / f"cache{n}"), "OMP_NUM_THREADS": "1"}
            argv = [sys.executable, "-m", "genlab.cli", "search", "a red apple", "--images", str(folder), "--model",
                    str(tmp / "ckpt"), "--top", "3", "--no-progress"]
            seconds, peak, summary = child_peak_mb(argv, env)
            again, _, summary_again = child_peak_mb(argv, env)
            rows.append({"images": n, "seconds": round(seconds, 1), "images_per_s": round(n / seconds, 1),
                         "peak_rss_mb": round(peak, 1), "summary": summary, "second_run_seconds": round(again, 1),
                         "second_run_summary": summary_again})
            print(json.dumps(rows[-1]), flush=True)
    result = {"command": shlex.join(["python", *sys.argv]), "threads": 1, "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
