"""Recipe for the bundled ``text-lm``: a Llama-style language model trained from scratch on the King James Bible.

    python recipes/text_lm.py train     # trains (resumable: rerun to continue), run dir runs/text-lm
    python recipes/text_lm.py export    # weights -> src/genlab/assets/text-lm (fp16 safetensors + config + tokenizer)
    python recipes/text_lm.py eval      # bits per character on the first 20,000 held-out characters: text-lm,
                                        # SmolLM2, n-gram baselines -> benchmarks/results/lm_quality.json

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
2,000 steps, plus ~25 s per held-out evaluation. Expected metrics (not yet measured: the run is the lead's to
schedule): held-out bits per character well under the bigram baseline's 1.50 (unigram 2.21; both measured on this
split with this alphabet), i.e. held-out perplexity well under the bigram's 59.6 per token. SmolLM2-135M-Instruct
reads the first 18,800 held-out characters at 0.953 bits per character (benchmarks/results/lm_quality.json).
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
    print(json.dumps({"exported": str(OUT), "step": ckpt.meta.get("step")}))


if __name__ == "__main__":
    if sys.argv[1:] == ["train"]:
        sys.exit(main(["train", "lm", "--preset", "text-lm", "--out", str(RUN), *OVERRIDES]))
    elif sys.argv[1:] == ["export"]:
        export()
    elif sys.argv[1:] == ["eval"]:
        import subprocess

        sys.exit(subprocess.call([sys.executable, str(ROOT / "benchmarks" / "lm_quality.py"), "--model", "text-lm",
                                  "--model", "smollm2", "--max-chars", "20000"]))
    else:
        sys.exit(__doc__)
