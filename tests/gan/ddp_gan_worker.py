"""Run plainly or under torchrun: trains the tiny GAN preset for a few steps and saves the final GAN and EMA."""

import dataclasses
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from genlab.gan.task import PRESETS, GANTask
from genlab.train import Trainer, seed_everything


def train_and_save(out: Path, steps: int = 2) -> None:
    run = PRESETS["tiny"]
    seed_everything(run.train.seed)
    task = GANTask(run.model, seed=run.train.seed)
    trainer = Trainer(task, dataclasses.replace(run.train, steps=steps), out)
    trainer.fit()
    if trainer.rank == 0:
        state = {f"model.{k}": v for k, v in task.model.state_dict().items()}
        state.update({f"ema.{k}": v for k, v in trainer.ema.module.state_dict().items()})
        save_file({k: v.contiguous() for k, v in state.items()}, str(out / "final.safetensors"))


if __name__ == "__main__":
    train_and_save(Path(sys.argv[1]))
    if torch.distributed.is_initialized():
        torch.distributed.barrier()  # neither rank tears the group down while the other still writes or talks
        torch.distributed.destroy_process_group()
