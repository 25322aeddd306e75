"""Language-model speed side by side with HF transformers on identical weights: greedy decoding at batch 1
(tokens/s) and prompt processing (prefill, tokens/s), fp32 and bf16, one run each (A, B in turn after a warm-up).

    python benchmarks/lm_speed.py --model smollm2 --threads 2
    python benchmarks/lm_speed.py --model tiny --new-tokens 64 --prompt-tokens 128
    python benchmarks/lm_speed.py --int4 --threads 1 --new-tokens 32 --prompt-tokens 128   # lm_speed_int4.json

genlab: ``genlab.sampling.generate`` over ``TransformerLM.step`` with a preallocated :class:`KVCache`.
HF: ``LlamaForCausalLM.generate(do_sample=False)`` with its dynamic cache, the same weights (SmolLM2's
dequantised GGUF, or a random ``tiny`` preset). Both greedy outputs are checked equal in fp32. llama.cpp
(``llama-cpp-python``) is not compared: it builds from source, with no wheel for this machine.
Writes benchmarks/results/lm_speed.json.

``--int4`` (SmolLM2 only; ``lm_int4.py``): genlab with the file's Q4_1 matrices kept 4-bit
(``pipeline.load(weights="int4")``) against HF on the dequantised weights in fp32 and bf16 (HF has no Q4_1 kernel
on CPU: its own GGUF loading dequantises too), timed in turn on the same prompts, with the int4 matvec floor, the
kernel/dequantise crossover, greedy-token agreement with the fp32 reference and the held-out bits per character.
Writes benchmarks/results/lm_speed_int4.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from genlab import sampling  # noqa: E402
from genlab.lm import convert, pipeline  # noqa: E402
from genlab.lm.model import PRESETS, TransformerLM  # noqa: E402


def hf_twin(model: TransformerLM):
    """HF ``LlamaForCausalLM`` holding the same weights as ``model`` (Llama style)."""
    import transformers

    c = model.cfg
    hf_cfg = transformers.LlamaConfig(vocab_size=c.vocab_size, hidden_size=c.dim,
                                      intermediate_size=c.block().mlp_hidden,
                                      num_hidden_layers=c.n_layer, num_attention_heads=c.n_head,
                                      num_key_value_heads=c.n_kv_head or c.n_head, max_position_embeddings=c.context,
                                      rms_norm_eps=c.norm_eps, rope_theta=c.rope_theta,
                                      tie_word_embeddings=c.tie_embeddings, bos_token_id=None, eos_token_id=None,
                                      pad_token_id=None)
    hf = transformers.LlamaForCausalLM(hf_cfg)
    state = model.state_dict()
    hf.load_state_dict({theirs: state[ours] for ours, theirs in convert.llama_hf_names(c).items()}, strict=False)
    hf.tie_weights()
    return hf.eval()


@torch.no_grad()
def matvec_floor(model: TransformerLM, repeats: int = 5) -> dict:
    """The least a decoding step can cost with these kernels: one ``F.linear`` of a single token through every
    weight matrix of the model (each linear layer and the output head), nothing else. Best of ``repeats`` passes.
    A decoding step of either system cannot go below it, so ``step / floor`` says how much of a step is overhead
    (attention over the cache, norms, sampling, Python), and how much faster than HF genlab could be at most."""
    mats = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if model.head is None:  # tied: the logits are read from the token embedding matrix
        mats.append(model.token_embedding.weight)
    x = {w.shape[1]: torch.randn(1, w.shape[1], dtype=w.dtype) for w in mats}
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for w in mats:
            torch.nn.functional.linear(x[w.shape[1]], w)
        best = min(best, time.perf_counter() - t0)
    return {"seconds": best, "matrices": len(mats), "weight_bytes": sum(w.numel() * w.element_size() for w in mats)}


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


@torch.no_grad()
def compare(model: TransformerLM, hf, prompt: torch.Tensor, new_tokens: int, long_prompt: torch.Tensor) -> dict:
    def ours_decode():
        cache = model.new_cache(1, prompt.shape[1] + new_tokens)
        return sampling.generate(model.step, prompt, max_new_tokens=new_tokens, cache=cache)

    def hf_decode():
        return hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new_tokens,
                           min_new_tokens=new_tokens, do_sample=False)

    def ours_prefill():
        return model.step(long_prompt, model.new_cache(1, long_prompt.shape[1]))

    def hf_prefill():
        return hf(long_prompt, use_cache=True).logits[:, -1]

    for fn in (ours_decode, hf_decode, ours_prefill, hf_prefill):  # warm-up
        fn()
    (t_ours, a), (t_hf, b) = timed(ours_decode), timed(hf_decode)
    (p_ours, _), (p_hf, _) = timed(ours_prefill), timed(hf_prefill)
    n, P = new_tokens, long_prompt.shape[1]
    floor = matvec_floor(model)
    return {"greedy_tokens_equal": bool(torch.equal(a, b)),
            "decode": {"genlab_tokens_per_s": n / t_ours, "hf_tokens_per_s": n / t_hf, "speedup": t_hf / t_ours,
                       "prompt_tokens": prompt.shape[1], "new_tokens": n,
                       "matvec_floor": floor, "floor_tokens_per_s": 1 / floor["seconds"],
                       "genlab_step_over_floor": t_ours / n / floor["seconds"],
                       "hf_step_over_floor": t_hf / n / floor["seconds"]},
            "prefill": {"genlab_tokens_per_s": P / p_ours, "hf_tokens_per_s": P / p_hf, "speedup": p_hf / p_ours,
                        "prompt_tokens": P}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2", help="smollm2 | tiny (a random Llama-style preset)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--prompt-tokens", type=int, default=256, help="prefill length")
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--name", default=None, help="result file (default lm_speed, or lm_speed_int4 with --int4)")
    p.add_argument("--int4", action="store_true", help="genlab's 4-bit weights against HF (SmolLM2)")
    p.add_argument("--repeats", type=int, default=2, help="--int4: timed runs of each system, in turn")
    p.add_argument("--quality-chars", type=int, default=20000, help="--int4: held-out characters scored (0: skip)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.int4:
        from lm_int4 import run

        print(write_result(args.name or "lm_speed_int4", run(args, hf_twin)))
        return
    if args.model == "smollm2":
        lm = pipeline.load("smollm2")
        model, source = lm.model, lm.source
    else:
        torch.manual_seed(0)
        model, source = TransformerLM(PRESETS[args.model]).eval(), f"random {args.model} preset"
    g = torch.Generator().manual_seed(0)
    prompt = torch.randint(0, model.cfg.vocab_size, (1, 16), generator=g)
    long_prompt = torch.randint(0, model.cfg.vocab_size, (1, args.prompt_tokens), generator=g)
    hf = hf_twin(model)
    results = {}
    for name in args.dtypes.split(","):
        dtype = pipeline.DTYPES[name]
        pipeline.cast(model, dtype)
        hf.to(dtype)
        results[name] = compare(model, hf, prompt, args.new_tokens, long_prompt)
        print(name, results[name], flush=True)
    parameters = sum(p.numel() for p in model.parameters())
    print(write_result(args.name or "lm_speed", {"model": source, "parameters": parameters,
                                                 "runs": "one timed run each, after one warm-up", "results": results}))


if __name__ == "__main__":
    main()
