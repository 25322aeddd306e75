"""Recipe for the bundled ``fashion-gan`` model: class-conditional StyleGAN2 on Fashion-MNIST (28 px padded to 32).

    python recipes/fashion_gan.py train     # trains (resumable: rerun to continue), run dir runs/fashion-gan
    python recipes/fashion_gan.py export    # EMA generator -> src/genlab/assets/fashion-gan

Needs the Debian package ``dataset-fashion-mnist`` (scripts/install.d/gan.sh). Model: the ``fashion-gan`` preset
(``src/genlab/gan/task.py``): the emoji GAN's networks with one image channel and the 10 classes fed to the mapping
network (label embedding) and to a projection discriminator; R1 gamma 0.05 every 16 steps, no augmentation (60,000
images), Adam lr 2.5e-3 betas (0, 0.99), EMA 0.999, batch 32, 15,000 steps (480k images, 8 epochs).

Cost: about 0.9 CPU-seconds per step single-threaded (the emoji preset's networks at one channel), so 15,000 steps
take about 2.5-3 hours on 2 cores. genlab has no feature network for Fashion-MNIST, so no FID or collapse monitor is
computed for it; sample grids per class are written every 1,000 steps to runs/fashion-gan/samples.
"""

import json
import sys
from pathlib import Path

import torch

from genlab.checkpoint import load_checkpoint, save_checkpoint
from genlab.cli import main

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "runs" / "fashion-gan"
OUT = ROOT / "src" / "genlab" / "assets" / "fashion-gan"


def export() -> None:
    ckpt = load_checkpoint(RUN, kind="gan")
    meta = {**ckpt.meta, "recipe": "recipes/fashion_gan.py", "exported_from": str(ckpt.path.relative_to(ROOT)),
            "weights": "EMA generator, float32"}
    meta.pop("run", None)
    save_checkpoint(OUT, kind="gan", config=ckpt.config, model=ckpt.ema, meta=meta)
    print(json.dumps({"exported": str(OUT), "step": ckpt.meta.get("step")}))


if __name__ == "__main__":
    torch.set_num_threads(2)
    if sys.argv[1:] == ["train"]:
        sys.exit(main(["train", "gan", "--preset", "fashion-gan", "--out", str(RUN), "train.threads=2"]))
    elif sys.argv[1:] == ["export"]:
        export()
    else:
        sys.exit(__doc__)
