"""Training throughput of ``genlab train lm`` as a share of the machine's measured matmul peak, fp32 and bf16.

    python benchmarks/lm_train_throughput.py --threads 1 --steps 3

One step = forward + backward + AdamW on one batch of the ``text-lm`` preset (its model, batch size and context,
the real KJV stream), as the trainer runs it (bf16: autocast of the forward pass, fp32 weights: the trainer's
``train.precision=bf16``). FLOPs per step two ways:

- ``6 N T``: the usual approximation (Kaplan et al. 2020), ``N`` all parameters (the tied embedding once: it is
  the head's product; its lookup is no matmul), ``T`` tokens per step; it leaves attention's ``QK^T`` and ``AV`` out;
- counted: ``torch.utils.flop_counter`` on the same step (matmuls and attention, no elementwise work).

The peak is the best of a few large square matmuls (2048^3) in the same process, threads and dtype. Medians of
``--steps`` timed steps after one warm-up. Writes benchmarks/results/lm_train_throughput.json with the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402
from speech_throughput import peak_matmul  # noqa: E402

from genlab.lm.task import PRESETS, LMTask  # noqa: E402


def measure(task: LMTask, batch: torch.Tensor, bf16: bool, steps: int) -> dict:
    opt = torch.optim.AdamW(task.model.parameters(), lr=1e-4)
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else nullcontext

    def step():
        with ctx():
            loss, _ = task.loss(batch, "train")
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    with FlopCounterMode(display=False) as counter:  # also the warm-up
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    sec = statistics.median(times)
    peak = peak_matmul(torch.bfloat16 if bf16 else torch.float32)
    tokens = batch.shape[0] * (batch.shape[1] - 1)
    six_nt = 6 * sum(p.numel() for p in task.model.parameters()) * tokens
    counted = counter.get_total_flops()
    return {"seconds_per_step_median": sec, "seconds_per_step_all": times, "tokens_per_s": tokens / sec,
            "flops_6NT": six_nt, "flops_counted": counted, "peak_matmul_flops_per_s": peak,
            "share_of_peak_6NT": six_nt / sec / peak, "share_of_peak_counted": counted / sec / peak}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--preset", default="text-lm")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    run = PRESETS[args.preset]
    task = LMTask(run)
    task.model.train()
    batch = task.batch(torch.arange(run.train.batch_size))  # (B, T + 1)
    result = {"preset": args.preset, "parameters": sum(p.numel() for p in task.model.parameters()),
              "batch": list(batch.shape), "load_average_before": os.getloadavg()}
    for name, bf16 in (("fp32", False), ("bf16_autocast", True)):
        result[name] = measure(task, batch, bf16, args.steps)
        print(name, result[name], flush=True)
    result["load_average_after"] = os.getloadavg()
    print(write_result("lm_train_throughput", result))


if __name__ == "__main__":
    main()
