"""Recipe for the bundled ``emoji-clip`` model (1.7M parameters, 3.4 MB in fp16).

    python recipes/emoji_clip.py smoke     # 10 steps of 64 into runs/emoji-clip-smoke: checks the pipeline
    python recipes/emoji_clip.py train     # the real run (resumable: rerun to continue), run dir runs/emoji-clip
    python recipes/emoji_clip.py export    # EMA weights -> src/genlab/assets/emoji-clip (fp16 safetensors)
    python recipes/emoji_clip.py eval      # benchmarks/clip_eval.py on the exported model

Data: the ``train`` split of genlab's captioned images at 32 px (``clip/data.py``): OpenMoji with the ``emoji``
package's names (CC BY-SA 4.0), Tux Paint stamps with their English descriptions (GPL-2) and openclipart drawings
named by their titles (public domain): about 5,660 pairs when both Debian packages are installed (3,300 emoji
alone otherwise). Each pair is seen under one of its source's caption templates at random, shifted by up to 2 px.

Model and optimisation (``clip/task.py`` preset ``emoji-clip``): ViT 32 px / patch 4 / width 128 / 4 layers,
text transformer width 128 / 3 layers over a 2,048-token BPE alphabet trained on the captions, joint space 128;
AdamW lr 1e-3, beta2 0.98, weight decay 0.2, warmup 300, cosine to 1e-4, batch 256, 3,000 steps (~135 epochs),
fp32, EMA 0.999.

Cost: about 87 GFLOP per step (forward and backward of 256 pairs). On 2 free CPU cores (fp32 matmul peak ~184
GFLOP/s, DESIGN 6; transformers this narrow reach perhaps a third of it) expect 1-2 s per step, 1-1.5 hours for
3,000 steps. Measured here only on a machine shared by ~8 processes (load 13 on 2 cores): a fp32 step took 14 s
on one thread. bf16 autocast is no help on a CPU without bf16 instructions: on this AMD EPYC (no AVX-512-BF16 or
AMX exposed) a bf16 step took 121 s; add ``train.precision=bf16`` only where bf16 matmuls are native.

Expected metrics: none are claimed before the run; ``eval`` measures zero-shot accuracy (Fashion-MNIST, held-out
emoji groups, held-out clip-art categories) and retrieval R@1/5/10 on held-out pairs, each beside its chance level,
into ``benchmarks/results/clip_eval.json``. The trainer logs R@1/5 on 512 held-out pairs every 500 steps in
``runs/emoji-clip/metrics.jsonl``.
"""

import json
import subprocess
import sys
from pathlib import Path

import torch

from genlab.checkpoint import load_checkpoint, save_checkpoint
from genlab.cli import main

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "runs" / "emoji-clip"
OUT = ROOT / "src" / "genlab" / "assets" / "emoji-clip"
OVERRIDES = ["train.steps=3000", "train.threads=2"]  # add train.precision=bf16 on a CPU with bf16 matmuls
SMOKE = ["train.steps=10", "train.batch_size=64", "train.threads=2", "train.eval_every=20", "train.warmup_steps=5",
         "train.ckpt_every=0", "train.log_every=5"]


def export() -> None:
    ckpt = load_checkpoint(RUN, kind="clip")
    ema = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in (ckpt.ema or ckpt.model).items()}
    meta = {**ckpt.meta, "recipe": "recipes/emoji_clip.py", "exported_from": str(ckpt.path.relative_to(ROOT)),
            "weights": "EMA, stored in fp16"}
    save_checkpoint(OUT, kind="clip", config=ckpt.config, model=ema, meta=meta)
    print(json.dumps({"exported": str(OUT), "step": ckpt.meta.get("step")}))


if __name__ == "__main__":
    if sys.argv[1:] == ["train"]:
        sys.exit(main(["train", "clip", "--preset", "emoji-clip", "--out", str(RUN), *OVERRIDES]))
    elif sys.argv[1:] == ["smoke"]:
        sys.exit(main(["train", "clip", "--preset", "emoji-clip", "--out", str(RUN) + "-smoke", "--fresh", *SMOKE]))
    elif sys.argv[1:] == ["export"]:
        export()
    elif sys.argv[1:] == ["eval"]:
        sys.exit(subprocess.call([sys.executable, str(ROOT / "benchmarks" / "clip_eval.py"), "--model", "emoji-clip"]))
    else:
        sys.exit(__doc__)
