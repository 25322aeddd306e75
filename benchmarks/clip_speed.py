"""Embedding throughput of genlab's CLIP against HF ``CLIPModel`` with identical weights (ViT-B/32 shapes).

    python benchmarks/clip_speed.py [--repeats 3] [--threads N] [--out benchmarks/results/clip_speed.json]

Both models are built in this process from one random-init HF ``CLIPModel`` (OpenAI ViT-B/32 configuration; no
weights download): genlab's through ``clip/convert.py``. Inputs: random 224 px images; text rows of 77 tokens
(OpenAI's ``tokenize`` pads to the full context), the end-of-text token last. Precision fp32, and bf16 autocast.
Batch 1 and 32. ``genlab`` is the path genlab's embeddings take (``clip/pipeline.py`` -> ``clip/fast.py``);
``genlab_model`` is the model's own forward (``clip/model.py``), for reference. Each timing is the median of
``--repeats`` calls after one warm-up, the systems interleaved call by call, their order rotating each round, so
that a busy machine slows all alike; the load average is recorded before and after. Outputs are compared with HF's
before timing and
again after it (genlab's first call reads oneDNN's weight copies; from the second on, a repeated row count reads
MKL's copies packed for it, made in the warm-up round, so the timed calls do not pay for the packing).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from genlab.clip import fast
from genlab.clip.convert import build, from_hf_state, hf_config

ROOT = Path(__file__).resolve().parent.parent


def models():
    import transformers

    torch.manual_seed(0)
    hf = transformers.CLIPModel(transformers.CLIPConfig()).eval()
    ours = build(hf_config(hf.config.to_dict(), Path("hf")), from_hf_state(hf.state_dict()), "hf").eval()
    return hf, ours


def inputs(batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randn(batch, 3, 224, 224, generator=g)
    ids = torch.randint(1, 49406, (batch, 77), generator=g)
    ids[:, 0], ids[:, -1] = 49406, 49407
    return pixels, ids


def calls(hf, ours, tower: str, pixels, ids) -> dict:
    if tower == "image":
        return {"genlab": lambda: fast.image_features(ours.visual, pixels), "genlab_model": lambda: ours.visual(pixels),
                "hf": lambda: hf.get_image_features(pixel_values=pixels)}
    return {"genlab": lambda: fast.text_features(ours.text, ids), "genlab_model": lambda: ours.text(ids),
            "hf": lambda: hf.get_text_features(input_ids=ids)}


def pooled(out):
    return getattr(out, "pooler_output", out)


@torch.inference_mode()
def measure(hf, ours, tower: str, batch: int, precision: str, repeats: int) -> dict:
    pixels, ids = inputs(batch)
    fns = calls(hf, ours, tower, pixels, ids)
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else nullcontext
    with ctx():
        ref = pooled(fns["hf"]()).float()
        diffs = {name: (fns[name]().float() - ref).abs().max().item() for name in ("genlab", "genlab_model")}
    names, times = list(fns), {name: [] for name in fns}
    for r in range(repeats + 1):
        for name in names[r % 3 :] + names[: r % 3]:  # each system first in turn
            with ctx():
                t = time.perf_counter()
                fns[name]()
                if r:  # the first round warms up
                    times[name].append(time.perf_counter() - t)
    with ctx():  # again once the copies a repeated row count earns are made (genlab.nn.linear: MKL's packed copies)
        diffs["genlab"] = max(diffs["genlab"], (fns["genlab"]().float() - ref).abs().max().item())
    med = {name: statistics.median(ts) for name, ts in times.items()}
    g, m, h = med["genlab"], med["genlab_model"], med["hf"]
    return {"tower": tower, "batch": batch, "precision": precision, "max_abs_diff": diffs["genlab"],
            "max_abs_diff_model": diffs["genlab_model"], "genlab_s": round(g, 5), "hf_s": round(h, 5),
            "genlab_model_s": round(m, 5), "genlab_items_per_s": round(batch / g, 2),
            "hf_items_per_s": round(batch / h, 2), "speedup": round(h / g, 3), "model_speedup": round(h / m, 3),
            "repeats": repeats}


def _cpu() -> str:
    try:
        info = open("/proc/cpuinfo").read().splitlines()
    except OSError:
        return "unknown"
    name = next((s.split(":", 1)[1].strip() for s in info if s.startswith("model name")), "unknown")
    flags = next((s.split(":", 1)[1].split() for s in info if s.startswith("flags")), [])
    native = any(f in flags for f in ("avx512_bf16", "amx_bf16"))
    return f"{name} ({'with' if native else 'without'} bf16 instructions)"


def _command(argv: list[str]) -> str:
    """The command line, less ``--note`` (the result keeps it as "note")."""
    kept = [a for i, a in enumerate(argv) if not a.startswith("--note") and (i == 0 or argv[i - 1] != "--note")]
    return shlex.join(["python", *kept])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16")
    p.add_argument("--batches", default="1,32", help="comma-separated batch sizes")
    p.add_argument("--bf16-batches", default=None, help="batch sizes for bf16 (default: --batches)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    p.add_argument("--note", default=None, help="a line kept in the result (why these threads, what else ran)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "clip_speed.json"))
    args = p.parse_args()
    import transformers

    if args.threads:
        torch.set_num_threads(args.threads)
    hf, ours = models()
    load_before, rows = os.getloadavg(), []
    batches = [int(b) for b in args.batches.split(",")]
    bf16_batches = [int(b) for b in (args.bf16_batches or args.batches).split(",")]
    for tower in ("image", "text"):
        for precision in args.precisions.split(","):
            for batch in bf16_batches if precision == "bf16" else batches:
                rows.append(measure(hf, ours, tower, batch, precision, args.repeats))
                print(json.dumps(rows[-1]), flush=True)
    result = {"command": _command(sys.argv), "torch": torch.__version__,
              "transformers": transformers.__version__, "threads": torch.get_num_threads(),
              "cpu": _cpu(), "cores": os.cpu_count(),
              "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "load_average_1_5_15_min": {"before": [round(v, 2) for v in load_before],
                                          "after": [round(v, 2) for v in os.getloadavg()]},
              "model": "random-init HF CLIPModel(CLIPConfig()) = OpenAI ViT-B/32 shapes, same weights in genlab",
              **({"note": args.note} if args.note else {}), "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
