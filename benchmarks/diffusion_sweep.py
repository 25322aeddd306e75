"""Sampler sweep of a diffusion model: FID / precision / recall against sampling steps, on the held-out split.

    python benchmarks/diffusion_sweep.py [--model emoji32-ddpm] [--n 2000] [--seed 0] [--bf16]

Each sampler at 5, 10, 20, 50 and 100 steps, plus DDPM at 1000. Every configuration's result is written to
``results/diffusion_sweep_parts/`` as soon as it is done, and a rerun skips those already measured for the same
model weights, n and seed, so the sweep can be stopped and resumed (it takes hours on 2 CPU cores). After every
configuration the summary ``results/diffusion_sweep.json`` and the plot ``results/diffusion_sweep.svg`` are rewritten
from all parts measured so far; ``--write-metrics`` also copies the summary beside the bundled model.
Configurations run cheapest first. The work unit is one batch of 256 samples (batch ``b`` draws its noise from
``seed + b``, so it is the same batch :func:`generate` makes in one call): each finished batch is saved (compressed,
about 0.5 MB) under ``results/diffusion_sweep_batches/``, where it can be committed, so a stopped sweep loses at
most one batch per process, even when the machine is gone, and the long configurations (DDPM at 1000 steps takes
about 4 thread-hours) are shared; a configuration's batches are deleted once its part is written. Several processes
may run the sweep at once (one thread each is the fastest use of a small CPU): each claims a batch, or the scoring
of a configuration, with an exclusive ``.claim`` file, and a claim whose process is gone is taken over.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, write_result  # noqa: E402

from genlab.diffusion.pipeline import BUNDLED, generate, load  # noqa: E402
from genlab.eval.fid import fid_report  # noqa: E402

BATCH = 256
BATCHES = RESULTS / "diffusion_sweep_batches"
SAMPLERS = ["ddim", "dpmpp-2m", "euler", "heun", "ddpm"]
STEPS = [5, 10, 20, 50, 100]


def configurations() -> list[tuple[str, int]]:
    configs = [(s, n) for n in STEPS for s in SAMPLERS] + [("ddpm", 1000)]
    evals = lambda c: 2 * c[1] - 1 if c[0] == "heun" else c[1]  # noqa: E731
    return sorted(configs, key=evals)


def measured(part: Path, key: tuple) -> bool:
    """Whether ``part`` holds a result for these weights, n and seed."""
    if not part.exists():
        return False
    old = json.loads(part.read_text())
    return (old["weights_hash"], old["n"], old["seed"]) == key


def claim(part: Path) -> bool:
    """Take ``part`` for this process unless a live process holds it (``O_EXCL`` makes the check atomic)."""
    path = part.with_suffix(".claim")
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(path.read_text() or 0)
                if pid <= 0:
                    raise ValueError(pid)  # half-written by a process killed between open and write
                os.kill(pid, 0)
                return False  # its owner is alive
            except (ProcessLookupError, ValueError, FileNotFoundError):
                path.unlink(missing_ok=True)  # a stale claim of a stopped sweep
                continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True
    return False


def summary(parts_dir: Path, weights_hash: str, n: int, seed: int) -> dict:
    rows = []
    for path in sorted(parts_dir.glob("*.json")):
        r = json.loads(path.read_text())
        if r["weights_hash"] == weights_hash and r["n"] == n and r["seed"] == seed:
            keys = ("sampler", "steps", "model_evaluations", "fid", "fid_floor", "precision", "recall", "coverage",
                    "seconds", "memorisation")
            rows.append({k: r.get(k) for k in keys})
    rows.sort(key=lambda r: (SAMPLERS.index(r["sampler"]), r["steps"]))
    best = min(rows, key=lambda r: r["fid"]) if rows else None
    return {"n": n, "seed": seed, "weights_hash": weights_hash, "rows": rows, "best": best,
            "real_floor_fid": rows[0]["fid_floor"] if rows else None,
            "complete": len(rows) == len(configurations())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="emoji32-ddpm")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast for the UNet (about 2x faster on CPU)")
    ap.add_argument("--max-evals", type=int, default=10**9, help="skip configurations with more model evaluations")
    ap.add_argument("--write-metrics", action="store_true", help="copy the summary beside the bundled model")
    args = ap.parse_args()

    loaded = load(args.model)
    parts = RESULTS / "diffusion_sweep_parts"
    parts.mkdir(parents=True, exist_ok=True)
    key = (loaded.weights_hash, args.n, args.seed)
    batch_dir = BATCHES / f"{loaded.weights_hash}-n{args.n}-seed{args.seed}"
    batch_dir.mkdir(parents=True, exist_ok=True)
    for sampler, steps in configurations():
        evals = 2 * steps - 1 if sampler == "heun" else steps
        part = parts / f"{sampler}-{steps}.json"
        if evals > args.max_evals or measured(part, key):
            continue
        batch_files = [batch_dir / f"{sampler}-{steps}-b{b}.npz" for b in range(-(-args.n // BATCH))]
        for b, path in enumerate(batch_files):
            if path.exists() or not claim(path):
                continue
            if not path.exists():  # another process may have finished it between the two checks
                count = min(BATCH, args.n - b * BATCH)
                t0 = time.perf_counter()
                images = generate(loaded.model, loaded.cfg, n=count, sampler=sampler, steps=steps,
                                  seed=args.seed + b, batch_size=BATCH, precision="bf16" if args.bf16 else "fp32")
                tmp = path.with_suffix(".tmp.npz")
                np.savez_compressed(tmp, images=images.numpy(), seconds=time.perf_counter() - t0)
                os.replace(tmp, path)  # atomic: a batch file is either whole or absent
            path.with_suffix(".claim").unlink(missing_ok=True)
        if not all(p.exists() for p in batch_files) or not claim(part):
            continue  # other processes still generate some of its batches, or score it
        if not measured(part, key):
            batches = [np.load(p) for p in batch_files]
            images = torch.from_numpy(np.concatenate([z["images"] for z in batches]))
            seconds = float(sum(z["seconds"] for z in batches))
            report = fid_report(images, n=args.n, seed=args.seed)
            report["memorisation"] = {k: v for k, v in report["memorisation"].items() if k != "pairs"}
            record = {"sampler": sampler, "steps": steps, "model_evaluations": evals, "seconds": seconds,
                      "weights_hash": loaded.weights_hash, "model": args.model, "bf16": args.bf16, "clip_x0": True,
                      **report}
            part.write_text(json.dumps(record, indent=2) + "\n")
            print(f"{sampler:9s} {steps:5d} steps  FID {report['fid']:.2f} (floor {report['fid_floor']:.2f})  "
                  f"P {report['precision']:.3f} R {report['recall']:.3f}  {seconds:.0f}s", flush=True)
            write_summary(args, loaded, parts)
        for path in batch_files:  # the part is the record now
            path.unlink(missing_ok=True)
        part.with_suffix(".claim").unlink(missing_ok=True)
    write_summary(args, loaded, parts)


def write_summary(args, loaded, parts: Path) -> None:
    from genlab.tour import svg_line_plot

    result = summary(parts, loaded.weights_hash, args.n, args.seed)
    result.update({"model": args.model, "bf16": args.bf16, "split": "held-out emoji test split (32 px)",
                   "feature_space": "genlab emoji feature network (src/genlab/assets/emoji-features-32.safetensors)"})
    write_result("diffusion_sweep", result)
    series: dict[str, list] = {}
    for r in result["rows"]:
        series.setdefault(r["sampler"], []).append((r["steps"], r["fid"]))
    (RESULTS / "diffusion_sweep.svg").write_text(svg_line_plot(series, "sampling steps", "FID (held-out)") + "\n")
    if args.write_metrics and args.model in BUNDLED:
        metrics = {"command": "python benchmarks/diffusion_sweep.py " + " ".join(sys.argv[1:]),
                   "weights_hash": loaded.weights_hash, "n": args.n,
                   "seed": args.seed, "real_floor_fid": result["real_floor_fid"], "best": result["best"],
                   "complete": result["complete"],
                   "sweep": [{k: r[k] for k in ("sampler", "steps", "fid", "precision", "recall")}
                             for r in result["rows"]]}
        (BUNDLED[args.model] / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


if __name__ == "__main__":
    main()
