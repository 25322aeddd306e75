"""Embedding throughput of genlab's CLIP against HF ``CLIPModel`` with identical weights (ViT-B/32 shapes).

    python benchmarks/clip_speed.py [--repeats 3] [--out benchmarks/results/clip_speed.json]

Both models are built in this process from one random-init HF ``CLIPModel`` (OpenAI ViT-B/32 configuration; no
weights download): genlab's through ``clip/convert.py``. Inputs: random 224 px images; text rows of 77 tokens
(OpenAI's ``tokenize`` pads to the full context), the end-of-text token last. Precision fp32, and bf16 autocast.
Batch 1 and 32. Each timing is the median of ``--repeats`` calls after one warm-up, the two libraries interleaved
call by call so that a busy machine slows both alike. Outputs are compared before timing.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

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


def calls(hf, ours, tower: str, pixels, ids):
    if tower == "image":
        return (lambda: ours.visual(pixels)), (lambda: hf.get_image_features(pixel_values=pixels))
    return (lambda: ours.text(ids)), (lambda: hf.get_text_features(input_ids=ids))


def pooled(out):
    return getattr(out, "pooler_output", out)


@torch.inference_mode()
def measure(hf, ours, tower: str, batch: int, precision: str, repeats: int) -> dict:
    pixels, ids = inputs(batch)
    ours_fn, hf_fn = calls(hf, ours, tower, pixels, ids)
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else nullcontext
    with ctx():
        diff = (ours_fn().float() - pooled(hf_fn()).float()).abs().max().item()
    times = {"genlab": [], "hf": []}
    for r in range(repeats + 1):
        for name, fn in (("genlab", ours_fn), ("hf", hf_fn)) if r % 2 == 0 else (("hf", hf_fn), ("genlab", ours_fn)):
            with ctx():
                t = time.perf_counter()
                fn()
                if r:  # the first round warms up
                    times[name].append(time.perf_counter() - t)
    g, h = statistics.median(times["genlab"]), statistics.median(times["hf"])
    return {"tower": tower, "batch": batch, "precision": precision, "max_abs_diff": diff,
            "genlab_s": round(g, 5), "hf_s": round(h, 5), "genlab_items_per_s": round(batch / g, 2),
            "hf_items_per_s": round(batch / h, 2), "speedup": round(h / g, 3), "repeats": repeats}


def _cpu() -> str:
    try:
        info = open("/proc/cpuinfo").read().splitlines()
    except OSError:
        return "unknown"
    name = next((s.split(":", 1)[1].strip() for s in info if s.startswith("model name")), "unknown")
    flags = next((s.split(":", 1)[1].split() for s in info if s.startswith("flags")), [])
    native = any(f in flags for f in ("avx512_bf16", "amx_bf16"))
    return f"{name} ({'with' if native else 'without'} bf16 instructions)"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16")
    p.add_argument("--batches", default="1,32", help="comma-separated batch sizes")
    p.add_argument("--bf16-batches", default=None, help="batch sizes for bf16 (default: --batches)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "clip_speed.json"))
    args = p.parse_args()
    import transformers

    hf, ours = models()
    rows = []
    batches = [int(b) for b in args.batches.split(",")]
    bf16_batches = [int(b) for b in (args.bf16_batches or args.batches).split(",")]
    for tower in ("image", "text"):
        for precision in args.precisions.split(","):
            for batch in bf16_batches if precision == "bf16" else batches:
                rows.append(measure(hf, ours, tower, batch, precision, args.repeats))
                print(json.dumps(rows[-1]), flush=True)
    result = {"command": shlex.join(["python", *sys.argv]), "torch": torch.__version__,
              "transformers": transformers.__version__, "threads": torch.get_num_threads(),
              "cpu": _cpu(),
              "model": "random-init HF CLIPModel(CLIPConfig()) = OpenAI ViT-B/32 shapes, same weights in genlab",
              "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
