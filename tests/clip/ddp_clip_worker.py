"""Run under torchrun (or plainly for one process) on sklearn digits with the tiny CLIP; deterministic (no
augmentation, one caption per image, the same initial weights on every rank). Writes, from rank 0:

- ``grads.safetensors``: the gradient of the first global batch, each rank taking its share of the batch as the
  trainer does (``indices[rank::world]``) and gradients averaged over ranks as the trainer averages them;
- ``final.safetensors``: the weights after 3 steps of the shared trainer.
"""

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.distributed as dist
from safetensors.torch import save_file

from genlab.clip.data import CaptionedImages
from genlab.clip.model import PRESETS
from genlab.clip.task import ClipTask
from genlab.clip.text import ClipTokenizer, train_alphabet
from genlab.data.emoji import load_digits_images
from genlab.train import TrainConfig, Trainer, seed_everything


def digits_pairs(n: int = 64) -> CaptionedImages:
    d = load_digits_images("train", size=16)
    images = d.images[:n].expand(-1, 3, -1, -1).contiguous()  # (n, 3, 16, 16) grey as RGB
    return CaptionedImages(images, d.captions[:n], d.categories[:n], ["digits"] * n, d.hexcodes[:n], ["train"] * n)


def make_task() -> ClipTask:
    data = digits_pairs()
    cfg = PRESETS["tiny"]
    tokenizer = ClipTokenizer(train_alphabet(data.captions, cfg.text.vocab_size), cfg.text)
    seed_everything(0)
    return ClipTask(cfg, data, tokenizer, shift=0)


def first_batch_grads(rank: int, world: int) -> dict:
    task = make_task()
    task.setup(SimpleNamespace(rank=rank, world_size=world, device=torch.device("cpu")))
    local = torch.arange(32)[rank::world]
    loss, _ = task.loss(task.batch(local), "main")
    loss.backward()
    grads = {}
    for name, p in task.model.named_parameters():
        g = p.grad.clone()
        if world > 1:
            dist.all_reduce(g)
            g /= world
        grads[name] = g
    return grads


if __name__ == "__main__":
    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    if world > 1:
        dist.init_process_group("gloo")
    grads = first_batch_grads(rank, world)
    task = make_task()
    train = TrainConfig(steps=3, batch_size=16, lr=1e-2, warmup_steps=0, ema_decay=0.0, ckpt_every=0, progress=False,
                        threads=1)
    trainer = Trainer(task, train, out)
    trainer.fit()
    if rank == 0:
        save_file(grads, str(out / "grads.safetensors"))
        save_file({k: v.contiguous() for k, v in task.model.state_dict().items()}, str(out / "final.safetensors"))
    if dist.is_initialized():
        dist.barrier()  # neither rank tears the group down while the other still writes or talks
        dist.destroy_process_group()
