"""``python benchmarks/lm_speed.py --int4``: SmolLM2 with its Q4_1 matrices kept 4-bit (genlab.nn.int4) against HF
``generate`` on the dequantised weights, fp32 and bf16, and what the 4 bits cost in quality.

- speed: greedy decoding at batch 1 and prefill, each system run in turn ``--repeats`` times (medians), so that a
  shared machine's load falls on both; the int4 matvec floor (one row through every matrix once: the 4-bit layers
  and the bf16 head); the rows at which the 4-bit layer's kernel stops beating dequantise-then-``F.linear``;
- agreement: greedy tokens of int4 (and of genlab bf16) against the fp32 reference on the benchmark's prompt and on
  chat prompts (tokens equal, first divergence), and next-token argmax agreement, teacher-forced, on held-out text;
- quality: held-out bits per character and perplexity of fp32, bf16 and int4 (``genlab.lm.evaluate``, as
  ``benchmarks/lm_quality.py`` scores them).
"""

from __future__ import annotations

import statistics
import subprocess
import time

import torch

from genlab import sampling
from genlab.lm import pipeline
from genlab.lm.evaluate import heldout_report
from genlab.nn.int4 import Int4Linear, _kernel
from genlab.nn.int8 import Int8Linear

CHAT = ["What is the capital of France?", "Write a haiku about the sea.", "How do plants make food?",
        "Give me three tips for sleeping well.", "What is 12 times 7?"]


def load_average() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def in_turn(fns: dict, repeats: int) -> dict:
    """Each function once for warm-up, then all of them in turn ``repeats`` times: median seconds of each."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()} | {"all_s": times}


@torch.no_grad()
def int4_floor(model, repeats: int = 5) -> dict:
    """One bf16 row through every 4-bit layer and the head (int8 or bf16), nothing else: best of ``repeats``."""
    layers = [m for m in model.modules() if isinstance(m, Int4Linear)]
    dim = model.cfg.dim
    x = {n: torch.randn(1, n, dtype=torch.bfloat16) for n in {la.in_features for la in layers} | {dim}}
    best_layers = best_head = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for la in layers:
            la(x[la.in_features])
        t1 = time.perf_counter()
        model.logits(x[dim])
        best_layers, best_head = min(best_layers, t1 - t0), min(best_head, time.perf_counter() - t1)
    head = "int8" if isinstance(model.head, Int8Linear) else str(model.token_embedding.weight.dtype)
    return {"seconds": best_layers + best_head, "int4_layers_s": best_layers, "head_s": best_head,
            "int4_layers": len(layers), "head": head.removeprefix("torch."),
            "floor_tokens_per_s": 1 / (best_layers + best_head)}


@torch.no_grad()
def crossover(layer: Int4Linear, rows=(1, 4, 16, 32, 64, 128), repeats: int = 5) -> dict:
    """Seconds of the kernel and of dequantise + ``F.linear`` (bf16) for one layer at several row counts."""
    out = {}
    for n in rows:
        x = torch.randn(n, layer.in_features, dtype=torch.bfloat16)
        fns = {"kernel_s": lambda x=x: _kernel(x, layer.packed, layer.scales_and_zeros),
               "dequantise_linear_s": lambda x=x: torch.nn.functional.linear(x, layer.dequantized(torch.bfloat16))}
        out[n] = {k: min(_seconds(fn) for _ in range(repeats)) for k, fn in fns.items()}
    return {"matrix": [layer.out_features, layer.in_features], "rows": out}


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def greedy(model, prompt: torch.Tensor, n: int) -> torch.Tensor:
    cache = model.new_cache(1, prompt.shape[1] + n)
    return sampling.generate(model.step, prompt, max_new_tokens=n, cache=cache)[0, prompt.shape[1] :]


def token_agreement(ref: torch.Tensor, got: torch.Tensor) -> dict:
    same = (ref == got).tolist()
    return {"equal": sum(same), "of": len(same), "first_divergence": same.index(False) if False in same else None}


@torch.no_grad()
def agreement(models: dict, prompt: torch.Tensor, new_tokens: int, alphabet, chat_lm) -> dict:
    """Greedy tokens of each model against ``models["float32"]`` on the benchmark prompt and the chat prompts, and
    teacher-forced next-token argmax agreement on the first held-out chapter (up to 1024 tokens)."""
    from genlab.lm import data

    prompts = {"benchmark": prompt} | {
        q: torch.tensor([alphabet.encode(pipeline.chat_prompt(chat_lm, q))]) for q in CHAT}
    ref = {name: greedy(models["float32"], p, new_tokens) for name, p in prompts.items()}
    text = torch.tensor([alphabet.encode(next(iter(data.split("heldout"))).text)[:1024]])
    ref_argmax = models["float32"](text)[0].argmax(-1)
    out = {}
    for name, model in models.items():
        if name == "float32":
            continue
        greedy_runs = {p: token_agreement(ref[p], greedy(model, x, new_tokens)) for p, x in prompts.items()}
        argmax = model(text)[0].argmax(-1)
        out[name] = {"greedy": greedy_runs,
                     "greedy_tokens_equal": sum(r["equal"] for r in greedy_runs.values()),
                     "greedy_tokens": sum(r["of"] for r in greedy_runs.values()),
                     "teacher_forced_argmax_agreement": float((argmax == ref_argmax).float().mean()),
                     "teacher_forced_tokens": int(text.shape[1])}
    return out


def quality(lms: dict, max_chars: int) -> dict:
    """Held-out loss / perplexity / bits per character of each model (no baselines: they do not change)."""
    out = {}
    for name, lm in lms.items():
        t0 = time.perf_counter()
        report = heldout_report(lm, max_chars=max_chars, baselines=False)
        out[name] = {**report["lm"], "window": report["window"], "documents": report["documents"],
                     "seconds": time.perf_counter() - t0}
    ref = out["float32"]
    for name in out:
        out[name]["bits_per_char_minus_float32"] = out[name]["bits_per_char"] - ref["bits_per_char"]
        out[name]["perplexity_ratio_to_float32"] = out[name]["perplexity"] / ref["perplexity"]
    return out


@torch.no_grad()
def speed(model4, hf, prompt: torch.Tensor, long_prompt: torch.Tensor, new_tokens: int, repeats: int) -> dict:
    """int4 against HF (in its current dtype), decode then prefill, in turn."""
    decode = in_turn({"genlab_int4": lambda: greedy(model4, prompt, new_tokens),
                      "hf": lambda: hf.generate(prompt, attention_mask=torch.ones_like(prompt),
                                                max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                                do_sample=False)}, repeats)
    load_after_decode = load_average()
    prefill = in_turn({"genlab_int4": lambda: model4.step(long_prompt, model4.new_cache(1, long_prompt.shape[1])),
                       "hf": lambda: hf(long_prompt, use_cache=True).logits[:, -1]}, repeats)
    n, P = new_tokens, long_prompt.shape[1]
    return {"decode": {"genlab_int4_tokens_per_s": n / decode["genlab_int4"], "hf_tokens_per_s": n / decode["hf"],
                       "speedup": decode["hf"] / decode["genlab_int4"], "new_tokens": n,
                       "prompt_tokens": prompt.shape[1], "all_s": decode["all_s"],
                       "load_average_after": load_after_decode},
            "prefill": {"genlab_int4_tokens_per_s": P / prefill["genlab_int4"], "hf_tokens_per_s": P / prefill["hf"],
                        "speedup": prefill["hf"] / prefill["genlab_int4"], "prompt_tokens": P,
                        "all_s": prefill["all_s"], "load_average_after": load_average()}}


def run(args, hf_twin) -> dict:
    """The whole ``--int4`` run: returns the result record (lm_speed.py writes it)."""
    if args.model != "smollm2":
        raise SystemExit("--int4 reads the GGUF's Q4_1 blocks: --model smollm2 only")
    load_before = load_average()
    ref = pipeline.load("smollm2")  # fp32, the published weights dequantised: the reference
    lm4 = pipeline.load("smollm2", weights="int4")
    bf16 = pipeline.load("smollm2", dtype="bfloat16")
    g = torch.Generator().manual_seed(0)
    prompt = torch.randint(0, ref.model.cfg.vocab_size, (1, 16), generator=g)
    long_prompt = torch.randint(0, ref.model.cfg.vocab_size, (1, args.prompt_tokens), generator=g)
    hf = hf_twin(ref.model)
    results = {}
    for name in args.dtypes.split(","):
        hf.to(pipeline.DTYPES[name])
        results[f"hf_{name}"] = speed(lm4.model, hf, prompt, long_prompt, args.new_tokens, args.repeats)
        print(name, results[f"hf_{name}"], flush=True)
    del hf
    layer = next(m for m in lm4.model.modules() if isinstance(m, Int4Linear) and m.out_features > m.in_features)
    record = {"model": ref.source, "load_average_before": load_before, "repeats": args.repeats,
              "runs": f"warm-up, then each system in turn {args.repeats} times; medians",
              "hf_note": "HF has no Q4_1 kernel on CPU (its GGUF loading dequantises too): it runs the dequantised "
                         "weights, the same numbers genlab's float path runs",
              "int4": {"layers": lm4.meta["int4_layers"], "float_matrices": lm4.meta["float_matrices"],
                       "int8_head": lm4.meta.get("int8_head"),
                       "activations": "bfloat16", "scales": "bfloat16 (Q4_1 stores float16)"},
              "speed": results, "matvec_floor_int4": int4_floor(lm4.model), "crossover": crossover(layer),
              "agreement_with_float32": agreement({"float32": ref.model, "bfloat16": bf16.model, "int4": lm4.model},
                                                  prompt, args.new_tokens, ref.alphabet, ref)}
    print(record["agreement_with_float32"], flush=True)
    if args.quality_chars:
        record["quality"] = quality({"float32": ref, "bfloat16": bf16, "int4": lm4}, args.quality_chars)
        record["quality_max_chars"] = args.quality_chars
    record["load_average_after"] = load_average()
    record["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                          text=True).stdout.strip()
    return record
