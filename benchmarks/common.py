"""Helpers shared by the benchmark scripts: timing A against B in turn, and writing results with provenance."""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def time_pairs(fn_a, fn_b, repeats: int, warmup: int = 1) -> dict:
    """Run A, B, A, B, ... and return the median seconds of each and the median of the per-pair ratios A/B.

    Pairing cancels slow drifts of a shared machine: each ratio compares two runs made moments apart."""
    for _ in range(warmup):
        fn_a()
        fn_b()
    a, b = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn_a()
        a.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fn_b()
        b.append(time.perf_counter() - t0)
    return {"a_median_s": statistics.median(a), "b_median_s": statistics.median(b),
            "ratio_a_over_b_median": statistics.median(x / y for x, y in zip(a, b)),
            "a_all_s": a, "b_all_s": b, "repeats": repeats}


def cpu_model() -> str:
    """The processor's name (kernels rank differently on different CPUs: MKL on AMD, AMX on Intel)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "unknown")
    except OSError:
        return platform.processor() or "unknown"


def machine() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(), "machine": platform.machine(), "cpu": cpu_model()}


def write_result(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    record = {"command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]), "machine": machine(),
              "date": time.strftime("%Y-%m-%d %H:%M:%S"), **result}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)
    return path
