"""The shared trainer: schedule, data order, exact resume after kill -9, signals, DDP equivalence."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genlab.train import EMA, TrainConfig, Trainer, batch_indices, learning_rate

HERE = Path(__file__).parent
TINY = ["--preset", "digits", "model.unet.channels=8,16", "model.unet.norm_groups=4", "model.unet.head_dim=8",
        "train.batch_size=8", "train.threads=1", "train.progress=false", "train.sample_every=0", "train.log_every=1"]


def test_learning_rate_warmup_then_cosine():
    cfg = TrainConfig(steps=110, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert learning_rate(cfg, 0) == pytest.approx(0.1)
    assert learning_rate(cfg, 9) == pytest.approx(1.0)
    assert learning_rate(cfg, 10) == pytest.approx(1.0)
    assert learning_rate(cfg, 60) == pytest.approx(0.55)
    assert learning_rate(cfg, 110) == pytest.approx(0.1)


def test_batch_indices_cover_each_epoch_once_and_depend_only_on_step():
    seen = torch.cat([batch_indices(10, 5, s, seed=3) for s in range(2)])
    assert sorted(seen.tolist()) == list(range(10))
    assert torch.equal(batch_indices(10, 4, 7, seed=3), batch_indices(10, 4, 7, seed=3))
    assert not torch.equal(batch_indices(10, 10, 0, seed=3), batch_indices(10, 10, 0, seed=4))
    assert len(batch_indices(3, 8, 0, seed=0)) == 8  # a batch can span several epochs of a tiny dataset


def test_ema_tracks_parameters():
    m = torch.nn.Linear(2, 2)
    ema = EMA(m, decay=0.5)
    with torch.no_grad():
        m.weight.add_(1.0)
    ema.update(m, step=100)
    assert torch.allclose(ema.module.weight, m.weight - 0.5)


def _train_cli(out, *extra, wait=True):
    cmd = [sys.executable, "-m", "genlab.cli", "train", "diffusion", "--out", str(out), *TINY, *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _final_params(run_dir):
    latest = (run_dir / "checkpoints" / "latest").read_text().strip()
    return load_file(str(run_dir / "checkpoints" / latest / "model.safetensors")), latest


def _wait_for_checkpoint(run_dir, name, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        latest = run_dir / "checkpoints" / "latest"
        if latest.exists() and latest.read_text().strip() >= name:
            return
        if proc.poll() is not None:
            raise AssertionError(f"training ended early: {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


def test_kill_9_then_resume_is_bit_identical(tmp_path):
    steps = ["train.steps=14", "train.ckpt_every=4"]
    reference = _train_cli(tmp_path / "ref", *steps)
    assert reference.returncode == 0, reference.stderr
    proc = _train_cli(tmp_path / "run", *steps, wait=False)
    _wait_for_checkpoint(tmp_path / "run", "step_0000004", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = _train_cli(tmp_path / "run", *steps)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout
    ref, ref_name = _final_params(tmp_path / "ref")
    got, got_name = _final_params(tmp_path / "run")
    assert ref_name == got_name == "step_0000014"
    for k in ref:
        assert torch.equal(ref[k], got[k]), k


def test_sigterm_saves_and_exits_cleanly(tmp_path):
    proc = _train_cli(tmp_path / "run", "train.steps=100000", "train.ckpt_every=2", wait=False)
    _wait_for_checkpoint(tmp_path / "run", "step_0000002", proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "stopped by signal" in out
    _, name = _final_params(tmp_path / "run")
    assert name > "step_0000002"  # saved at the step where it stopped


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_matches_one_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, str(HERE / "ddp_worker.py"), str(tmp_path / "one")], env=env,
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
         f"--master_port={_free_port()}", str(HERE / "ddp_worker.py"), str(tmp_path / "two")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    one = load_file(str(tmp_path / "one" / "final.safetensors"))
    two = load_file(str(tmp_path / "two" / "final.safetensors"))
    for k in one:
        assert torch.allclose(one[k], two[k], atol=1e-6, rtol=1e-5), (k, (one[k] - two[k]).abs().max())


def test_gradient_accumulation_matches_full_batch(tmp_path):
    sys.path.insert(0, str(HERE))
    from toy_task import RegressionTask

    finals = []
    for accum in (1, 4):
        task = RegressionTask()
        cfg = TrainConfig(steps=5, batch_size=16, lr=1e-2, warmup_steps=0, grad_accum=accum, progress=False,
                          ckpt_every=0)
        Trainer(task, cfg, tmp_path / f"a{accum}").fit()
        finals.append({k: v.clone() for k, v in task.model.state_dict().items()})
    for k in finals[0]:
        assert torch.allclose(finals[0][k], finals[1][k], atol=1e-6), k
