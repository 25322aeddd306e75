"""Recipe for the bundled ``text-lm``: a Llama-style language model trained from scratch on the King James Bible.

    python recipes/text_lm.py train     # trains (resumable: rerun to continue), run dir runs/text-lm
    python recipes/text_lm.py export    # weights -> src/genlab/assets/text-lm (fp16 safetensors + config + tokenizer)
    python recipes/text_lm.py eval --threads 1   # bits per character on the first 20,000 held-out characters:
                                        # text-lm, SmolLM2, n-gram baselines -> benchmarks/results/lm_quality.json,
                                        # then `metrics`
    python recipes/text_lm.py metrics   # the run's held-out curve and those bits per character -> metrics.json
                                        # beside the exported weights (what the tour's LM section shows)

Data: the KJV from Debian's ``bible-kjv`` (public domain; ``scripts/install.d/lm.sh`` installs it), 1,130 training
chapters (~3.95 M characters, ~0.99 M tokens), 59 held-out chapters (every 20th; ~0.20 M characters, ~51 k tokens).
Alphabet: byte-level BPE, 4,096 tokens, trained on the training chapters (``genlab.lm.data.alphabet``).
Model: the ``text-lm`` preset of ``genlab.lm.task`` — Llama style (RMSNorm, rotary, SwiGLU, grouped-query
attention 4 query / 2 key-value heads), 4 layers x 256, context 256, tied embeddings, dropout 0.1: 4.0 M parameters,
8 MB in fp16. Training: AdamW (betas 0.9 / 0.95, weight decay 0.1), lr 1e-3 with 100 warmup steps and cosine decay
to 1e-4, batch 32 x 256 tokens, 2,000 steps (16.4 M tokens, ~16 epochs), fp32 (this EPYC has no AVX-512 BF16:
bf16 autocast measured ~5x *slower* per step here), held-out evaluation every 250 steps (the perplexity curve in
``runs/text-lm/metrics.jsonl``), samples at three temperatures every 1,000 steps.

Expected on 2 CPU cores: ~2-4 s a step (measured 6-10 CPU-seconds a step on one shared thread), so ~1.5-2 h for
2,000 steps, plus ~25 s per held-out evaluation. The bundled weights were trained with this recipe on an H200
(fp32; ``meta.json`` says so).

Measured (``benchmarks/results/lm_quality.json``, the first 18,800 held-out characters, 5 chapters): text-lm 1.009
bits per character, SmolLM2-135M-Instruct 0.953, the bigram and unigram baselines in text-lm's alphabet 1.387 and
2.093. All 59 held-out chapters (``lm_quality_full.json``, 202,736 characters): text-lm 1.129 (perplexity 21.8 per
token), SmolLM2 1.022, bigram 1.498, unigram 2.207. The held-out curve bottoms out at step 1,250 (perplexity 20.5)
and rises to 21.8 by step 2,000 while the training loss keeps falling: the model starts to memorise the training
chapters (``runs/text-lm/metrics.jsonl``, kept in the exported ``metrics.json``).
"""

import json
import sys
from pathlib import Path

import torch

from genlab.checkpoint import load_checkpoint, save_checkpoint
from genlab.cli import main

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "runs" / "text-lm"
OUT = ROOT / "src" / "genlab" / "assets" / "text-lm"
OVERRIDES = ["train.steps=2000", "train.threads=2"]


def export() -> None:
    ckpt = load_checkpoint(RUN, kind="lm")
    weights = ckpt.ema if ckpt.ema is not None else ckpt.model
    half = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in weights.items()}
    meta = {**ckpt.meta, "recipe": "recipes/text_lm.py", "exported_from": str(ckpt.path.relative_to(ROOT)),
            "weights": "stored in fp16"}
    save_checkpoint(OUT, kind="lm", config=ckpt.config, model=half, meta=meta)
    (OUT / "metrics.json").unlink(missing_ok=True)  # it describes the old weights: `eval` remeasures
    print(json.dumps({"exported": str(OUT), "step": ckpt.meta.get("step")}))


def metrics() -> None:
    """``OUT/metrics.json``: the run's held-out curve and the bits per character measured by ``eval``."""
    from genlab.lm.tour import heldout_curve

    result = json.loads((ROOT / "benchmarks" / "results" / "lm_quality.json").read_text())
    ours = result["models"]["text-lm"]
    if ours["weights_hash"] != json.loads((OUT / "meta.json").read_text())["weights_hash"]:
        sys.exit("benchmarks/results/lm_quality.json measured other weights: run `python recipes/text_lm.py eval`")
    bpc = {"text-lm": ours["lm"]["bits_per_char"]}
    bpc.update({name: r["lm"]["bits_per_char"] for name, r in result["models"].items() if name != "text-lm"})
    bpc["bigram, text-lm's alphabet"] = ours["bigram"]["bits_per_char"]
    bpc["unigram, text-lm's alphabet"] = ours["unigram"]["bits_per_char"]
    quality = {"text": f"the first {ours['chars']:,} characters of the {ours['split']} ({ours['documents']} chapters)",
               "bits_per_char": bpc, "command": result["command"], "date": result["date"]}
    record = {"weights_hash": ours["weights_hash"], "quality": quality,
              "heldout_curve": heldout_curve(RUN / "metrics.jsonl"), "curve_from": "runs/text-lm/metrics.jsonl"}
    (OUT / "metrics.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({"wrote": str(OUT / "metrics.json"), "bits_per_char": bpc}))


if __name__ == "__main__":
    if sys.argv[1:] == ["train"]:
        sys.exit(main(["train", "lm", "--preset", "text-lm", "--out", str(RUN), *OVERRIDES]))
    elif sys.argv[1:] == ["export"]:
        export()
    elif sys.argv[1:2] == ["eval"]:  # extra arguments go to the benchmark (e.g. --threads 1)
        import subprocess

        code = subprocess.call([sys.executable, "benchmarks/lm_quality.py", "--model", "text-lm", "--model", "smollm2",
                                "--max-chars", "20000", *sys.argv[2:]], cwd=ROOT)
        sys.exit(code or metrics())
    elif sys.argv[1:] == ["metrics"]:
        metrics()
    else:
        sys.exit(__doc__)
