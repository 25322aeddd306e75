"""Trains each toy task (regression, GAN with lazy R1, two-tower contrastive) and saves its final weights.

Run as a plain process for one, or as one of N processes with RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT set
(as torchrun sets them): ``python ddp_worker.py OUT``. Rank 0 writes ``OUT/<task>.safetensors``.
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from toy_task import ContrastiveTask, GANTask, RegressionTask  # noqa: E402

from genlab.train import TrainConfig, Trainer  # noqa: E402

TASKS = {
    "regression": (RegressionTask, dict(steps=6, batch_size=16, lr=1e-2, ema_decay=0.9)),
    "gan": (GANTask, dict(steps=7, batch_size=32, lr=1e-3, ema_decay=0.9)),  # R1 runs at steps 0, 2, 4, 6
    "contrastive": (ContrastiveTask, dict(steps=6, batch_size=32, lr=3e-3, ema_decay=0.9)),
}


def train_all(out: Path) -> dict[str, Trainer]:
    trainers = {}
    for name, (make_task, settings) in TASKS.items():
        task = make_task()
        cfg = TrainConfig(warmup_steps=0, ckpt_every=0, progress=False, threads=1, **settings)
        trainer = Trainer(task, cfg, out / name)
        trainer.fit()
        if trainer.rank == 0:
            from safetensors.torch import save_file

            state = {**task.model.state_dict(), **{f"ema.{k}": v for k, v in trainer.ema.module.state_dict().items()}}
            save_file({k: v.contiguous() for k, v in state.items()}, str(out / f"{name}.safetensors"))
        trainers[name] = trainer
    return trainers


if __name__ == "__main__":
    train_all(Path(sys.argv[1]))
    if torch.distributed.is_initialized():
        torch.distributed.barrier()  # neither rank tears the group down while the other still writes or talks
        torch.distributed.destroy_process_group()
