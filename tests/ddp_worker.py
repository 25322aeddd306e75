"""Run under torchrun (or plainly for one process): trains the toy task and saves the final parameters."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from toy_task import RegressionTask  # noqa: E402

from genlab.train import TrainConfig, Trainer  # noqa: E402

if __name__ == "__main__":
    out = Path(sys.argv[1])
    task = RegressionTask()
    cfg = TrainConfig(steps=6, batch_size=16, lr=1e-2, warmup_steps=0, ema_decay=0.9, ckpt_every=0, progress=False,
                      threads=1, grad_accum=int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    trainer = Trainer(task, cfg, out)
    trainer.fit()
    if trainer.rank == 0:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in task.model.state_dict().items()}, str(out / "final.safetensors"))
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
