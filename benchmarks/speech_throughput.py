"""Training throughput of the ``speech-asr`` task: achieved FLOP/s over the machine's measured peak matmul FLOP/s,
in float32 and under bf16 autocast.

    python benchmarks/speech_throughput.py [--threads 1] [--steps 4] [--group 24] [--frames 500]

One training step = forward + backward + AdamW on one length-grouped batch of the real corpus task (the
``speech-asr`` preset, active-vocabulary loss). Its FLOPs are counted by ``torch.utils.flop_counter`` on the
same step (matmuls, convolutions and attention; elementwise work is not counted, as is usual for MFU). The peak
is the best of a few large square matmuls (2048^3) in the same process, same threads, same dtype. Medians of
``--steps`` timed steps after one warm-up. Writes ``benchmarks/results/speech_throughput.json``.

The CPU is shared with other jobs while this runs; the JSON records the load average so the numbers can be read
in that light.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent.parent


def peak_matmul(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--group", type=int, default=24, help="utterances per step")
    p.add_argument("--frames", type=int, default=500, help="mel frames per window (the median training window)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "speech_throughput.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from genlab.asr.task import ASRTask, preset

    cfg = preset("speech-asr")
    cfg.data.group_size = args.group
    cfg.data.full_window_every = 0
    cfg.data.window_frames = args.frames
    task = ASRTask(cfg)
    # A group whose longest clip fills the window: the typical step of the run.
    g = min(range(task.num_examples), key=lambda k: abs(max(task.mels[i].shape[1] for i in task.groups[k])
                                                        - args.frames))
    batch = task.batch(torch.tensor([g]))
    opt = torch.optim.AdamW(task.model.parameters(), lr=1e-4)
    result = {
        "command": "python benchmarks/speech_throughput.py " + shlex.join(argv),
        "threads": args.threads, "utterances_per_step": int(batch["mel"].shape[0]),
        "mel_shape": list(batch["mel"].shape), "token_shape": list(batch["tokens"].shape),
        "model": "speech-asr preset", "parameters": sum(p.numel() for p in task.model.parameters()),
        "load_average_before": os.getloadavg(),
    }
    for name, amp in (("fp32", False), ("bf16_autocast", True)):
        ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if amp else nullcontext

        def step(ctx=ctx):
            with ctx():
                loss, _ = task.loss(batch)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        with FlopCounterMode(display=False) as counter:
            step()
        flops = counter.get_total_flops()
        times = []
        for _ in range(args.steps):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
        sec = statistics.median(times)
        peak = peak_matmul(torch.bfloat16 if amp else torch.float32)
        result[name] = {
            "flops_per_step": flops, "seconds_per_step_median": round(sec, 3),
            "seconds_per_step_all": [round(t, 3) for t in times],
            "achieved_gflops": round(flops / sec / 1e9, 2), "peak_matmul_gflops": round(peak / 1e9, 2),
            "fraction_of_peak": round(flops / sec / peak, 4), "utterances_per_second": round(
                result["utterances_per_step"] / sec, 2),
        }
        print(name, json.dumps(result[name]), flush=True)
    result["bf16_speedup"] = round(result["fp32"]["seconds_per_step_median"]
                                   / result["bf16_autocast"]["seconds_per_step_median"], 3)
    result["load_average_after"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
