"""The GAN task with the shared trainer: it trains, resumes bit-exactly, and 2 processes (gloo DDP) compute what
one process computes; per-example draws, lazy R1 and ADA's p as the task schedules them."""

import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from genlab.gan.task import PRESETS, GANTask, draw, mix_seed
from genlab.train import Trainer, seed_everything

HERE = Path(__file__).parent
RUN = PRESETS["tiny"]


def _task():
    seed_everything(RUN.train.seed)
    return GANTask(RUN.model, seed=RUN.train.seed)


def _fit(run_dir, steps):
    task = _task()
    trainer = Trainer(task, dataclasses.replace(RUN.train, steps=steps), run_dir)
    metrics = trainer.fit()
    return task, trainer, metrics


def test_trains_and_resumes_bit_exactly(tmp_path):
    task, trainer, metrics = _fit(tmp_path / "straight", 4)
    assert {"D/loss", "G/loss", "D/augment_p", "D/logit_real"} <= set(metrics)
    straight = {**task.model.state_dict(), **{f"ema.{k}": v for k, v in trainer.ema.module.state_dict().items()}}
    assert int(straight["step"]) == 4 and float(straight["augment.p"]) != RUN.model.loss.augment_p  # ADA moved p
    _fit(tmp_path / "halves", 2)
    task, trainer, _ = _fit(tmp_path / "halves", 4)  # resumes at step 2: an R1 step and an ADA update follow
    resumed = {**task.model.state_dict(), **{f"ema.{k}": v for k, v in trainer.ema.module.state_dict().items()}}
    assert straight.keys() == resumed.keys()
    for k in straight:
        assert torch.equal(straight[k], resumed[k]), k


def test_lazy_r1_and_per_example_draws():
    task = _task()
    batches = [task.batch(torch.arange(8)) for _ in range(4)]
    assert [b["r1"] for b in batches] == [True, False, True, False]  # every r1_every = 2 steps
    _, with_r1 = task.loss(batches[0], "D")
    _, without = task.loss(batches[1], "D")
    assert "r1" in with_r1 and "r1" not in without
    G = task.model.G
    whole = draw(batches[0]["seeds"], 0, G.z_dim, G.noise_shapes())
    odd = draw(batches[0]["seeds"][1::2], 0, G.z_dim, G.noise_shapes())  # what rank 1 of 2 draws
    assert torch.equal(whole.z[1::2], odd.z) and torch.equal(whole.u[1::2], odd.u)
    assert all(torch.equal(a[1::2], b) for a, b in zip(whole.noise, odd.noise))
    assert not torch.equal(batches[0]["seeds"], batches[1]["seeds"])  # a new step, new draws
    assert mix_seed(0, 1, 2) != mix_seed(0, 2, 1) and 0 <= mix_seed(2**70, -1) < 2**63


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_matches_one_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    worker = str(HERE / "ddp_gan_worker.py")
    sys.path.insert(0, str(HERE))
    from ddp_gan_worker import train_and_save

    train_and_save(tmp_path / "one")  # one process, here
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
         f"--master_port={_free_port()}", worker, str(tmp_path / "two")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    one = load_file(str(tmp_path / "one" / "final.safetensors"))
    two = load_file(str(tmp_path / "two" / "final.safetensors"))
    assert one.keys() == two.keys()
    for k in one:
        # Round-off of the all-reduce only: far below one Adam step (lr 2.5e-3 per weight), which any difference
        # in data, draws or averaging would show.
        assert torch.allclose(one[k].double(), two[k].double(), atol=1e-4, rtol=0), (k, (one[k] - two[k]).abs().max())
    assert one["model.augment.p"] != RUN.model.loss.augment_p  # ADA's statistics were pooled over both processes
