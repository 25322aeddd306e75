"""Recipe for the bundled ``emoji32-ddpm`` model.

    python recipes/emoji32_ddpm.py train      # trains (resumable: rerun to continue), run dir runs/emoji32-ddpm
    python recipes/emoji32_ddpm.py export     # EMA weights -> src/genlab/assets/emoji32-ddpm (fp16 safetensors)

Trained on the OpenMoji training split (32 px) with genlab's shared trainer, on 2 CPU cores with bf16 autocast.
The FID of the exported model is measured by benchmarks/diffusion_sweep.py and written beside it (metrics.json).
"""

import json
import sys
from pathlib import Path

import torch

from genlab.checkpoint import load_checkpoint, save_checkpoint
from genlab.cli import main

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "runs" / "emoji32-ddpm"
OUT = ROOT / "src" / "genlab" / "assets" / "emoji32-ddpm"
OVERRIDES = ["train.steps=9000", "train.amp=bf16", "train.threads=1", "train.ckpt_every=250", "train.sample_every=0",
             "train.lr=5e-4", "model.unet.layers_per_block=1"]


def export() -> None:
    ckpt = load_checkpoint(RUN, kind="diffusion")
    ema = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in ckpt.ema.items()}
    meta = {**ckpt.meta, "recipe": "recipes/emoji32_ddpm.py", "exported_from": str(ckpt.path.relative_to(ROOT)),
            "weights": "EMA, stored in fp16"}
    save_checkpoint(OUT, kind="diffusion", config=ckpt.config, model=ema, meta=meta)
    print(json.dumps({"exported": str(OUT), "step": ckpt.meta.get("step")}))


if __name__ == "__main__":
    if sys.argv[1:] == ["train"]:
        sys.exit(main(["train", "diffusion", "--preset", "emoji32", "--out", str(RUN), *OVERRIDES]))
    elif sys.argv[1:] == ["export"]:
        export()
    else:
        sys.exit(__doc__)
