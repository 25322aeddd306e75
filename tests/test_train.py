"""The shared trainer: schedule, data order, exact resume after kill -9, signals, DDP equivalence."""

import json
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

from genlab.errors import GenlabError, Interrupted
from genlab.train import EMA, Phase, TrainConfig, Trainer, batch_indices, learning_rate

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
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


def test_sigterm_saves_and_exits_143(tmp_path):
    proc = _train_cli(tmp_path / "run", "train.steps=100000", "train.ckpt_every=2", wait=False)
    _wait_for_checkpoint(tmp_path / "run", "step_0000002", proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err  # 128 + SIGTERM, as a shell reports a job killed by it: not a success
    assert "stopped by signal" in err and "Traceback" not in err
    _, name = _final_params(tmp_path / "run")
    assert name > "step_0000002"  # saved at the step where it stopped


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_ddp_matches_one_process(tmp_path):
    """Regression, GAN (3 phases, lazy R1) and contrastive (gathered negatives): 2 ranks = 1 process, same batch."""
    from ddp_worker import train_all

    port = str(_free_port())
    procs = [
        subprocess.Popen([sys.executable, str(HERE / "ddp_worker.py"), str(tmp_path / "two")],
                         env={**os.environ, "OMP_NUM_THREADS": "1", "RANK": str(r), "LOCAL_RANK": str(r),
                              "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for r in range(2)
    ]
    train_all(tmp_path / "one")  # meanwhile, the same tasks on one process
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    for name in ("regression", "gan", "contrastive"):
        one = load_file(str(tmp_path / "one" / f"{name}.safetensors"))
        two = load_file(str(tmp_path / "two" / f"{name}.safetensors"))
        assert one.keys() == two.keys()
        for k in one:
            assert torch.allclose(one[k], two[k], atol=1e-6, rtol=1e-5), (name, k, (one[k] - two[k]).abs().max())


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


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_training_saves_then_fails_with_the_signal_exit_code(tmp_path, signum, code):
    """A stopped run is not a finished one: fit() saves, then raises, and the CLI exits 128 + signal."""
    sys.path.insert(0, str(HERE))
    from toy_task import RegressionTask

    task = RegressionTask()
    real_batch, calls = task.batch, []

    def batch_then_signal(indices):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signum)
        return real_batch(indices)

    task.batch = batch_then_signal
    cfg = TrainConfig(steps=50, batch_size=8, warmup_steps=0, ckpt_every=0, progress=False)
    with pytest.raises(BaseException) as info:
        Trainer(task, cfg, tmp_path).fit()
    assert getattr(info.value, "exit_code", None) == code
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step_0000003"


# ---------------------------------------------------------------------------------------------------------------
# The task contract: phases with their own optimizers and frequencies, the context, frozen components.


def _fit(task, run_dir, **settings):
    cfg = TrainConfig(**{"warmup_steps": 0, "ckpt_every": 0, "progress": False, "ema_decay": 0.9, **settings})
    trainer = Trainer(task, cfg, run_dir)
    trainer.fit()
    return trainer


def _weights(trainer):
    return {**trainer.task.model.state_dict(), **{f"ema.{k}": v for k, v in trainer.ema.module.state_dict().items()}}


def _stop_after(task, steps):
    """SIGTERM during step ``steps`` - 1: the trainer finishes that step, saves and raises Interrupted."""
    real_batch, calls = task.batch, []

    def batch_then_signal(indices):
        calls.append(1)
        if len(calls) == steps:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_batch(indices)

    task.batch = batch_then_signal
    return task


def _assert_resume_is_bit_exact(make_task, tmp_path, stop_at, **settings):
    """``steps`` straight through, against: stopped by SIGTERM at ``stop_at``, then a new task and trainer (other
    RNG state, as a new process would have) resume from its checkpoint to the end."""
    straight = _fit(make_task(), tmp_path / "straight", **settings)
    with pytest.raises(Interrupted):
        _fit(_stop_after(make_task(), stop_at), tmp_path / "split", **settings)
    torch.manual_seed(1234)
    resumed = _fit(make_task(), tmp_path / "split", **settings)
    assert resumed.step == settings["steps"]
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    return straight, resumed


def test_gan_trains_with_three_phases_and_a_lazy_r1(tmp_path):
    from toy_task import GANTask, mode_distance

    task = GANTask()
    with torch.no_grad():
        before = mode_distance(task.model.G(task.z[:512]))
    trainer = _fit(task, tmp_path, steps=150, batch_size=64, lr=1e-3, schedule="constant", log_every=1)
    with torch.no_grad():
        fake = task.model.G(task.z[:512])
    assert mode_distance(fake) < 0.6 * before  # the generator moved onto the data
    assert 0.2 < float((fake[:, 0] > 0).float().mean()) < 0.8  # and covers both blobs
    # Each phase has its own AdamW with its own settings; the lazy phase ran at every second step only.
    opts = trainer.optimizers
    assert set(opts) == {"D", "D_r1", "G"} and opts["D"] is not opts["D_r1"]
    assert opts["G"].param_groups[0]["betas"] == (0.5, 0.9) and opts["D"].param_groups[0]["lr"] == 2e-3
    assert task.r1_steps == 75 and int(opts["D_r1"].state[task.model.D[0].weight]["step"]) == 75
    assert all(p.requires_grad for p in task.model.G.parameters())
    assert {id(p) for g in opts["G"].param_groups for p in g["params"]} == {id(p) for p in task.model.G.parameters()}
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {"D/loss", "G/loss", "D/grad_norm", "D_r1/loss"} <= set(records[0])  # step 1: after step 0, R1 ran
    assert "D_r1/loss" not in records[1] and "D_r1/loss" in records[2] and "loss" not in records[0]
    assert "G/grad_norm" not in records[0]  # grad_clip=0.0 for G: no clipping, no norm


def test_gan_resume_is_bit_exact_across_the_lazy_phase(tmp_path):
    from toy_task import GANTask

    # Stopping at an odd step: the resumed run must pick up the every-2 rhythm of the R1 phase where it left it.
    _assert_resume_is_bit_exact(GANTask, tmp_path, stop_at=5, steps=12, batch_size=32, lr=1e-3)


def test_contrastive_trains_and_is_told_its_context(tmp_path):
    from toy_task import ContrastiveTask

    task = ContrastiveTask()
    assert task.retrieval_accuracy() < 0.05
    trainer = _fit(task, tmp_path, steps=100, batch_size=64, lr=3e-3)
    assert task.ctx is trainer.ctx and (task.ctx.rank, task.ctx.world_size) == (0, 1)
    assert task.ctx.device.type == "cpu"
    assert task.retrieval_accuracy() > 0.5  # from chance (1/256) to most pairs found


def test_contrastive_resume_is_bit_exact_with_global_rng_noise(tmp_path):
    from toy_task import ContrastiveTask

    _assert_resume_is_bit_exact(lambda: ContrastiveTask(noise=0.1), tmp_path, stop_at=4, steps=9, batch_size=32,
                                lr=3e-3)


def _tower_checkpoint(path, seed=5):
    from toy_task import Tower

    from genlab.checkpoint import save_checkpoint

    torch.manual_seed(seed)
    return save_checkpoint(path, kind="toy-tower", config={}, model=Tower(6, 16, dropout=0.5).state_dict())


def test_frozen_component_is_loaded_not_copied_not_trained_and_not_averaged(tmp_path):
    from toy_task import ContrastiveTask

    from genlab.checkpoint import load_checkpoint

    tower = _tower_checkpoint(tmp_path / "tower")
    make = lambda: ContrastiveTask(locked=str(tower))  # noqa: E731
    task = make()
    frozen_before = {k: v.clone() for k, v in task.model.tower_b.state_dict().items()}
    trainer = _fit(task, tmp_path / "run", steps=6, batch_size=32, lr=3e-3)
    assert task.tower_b_training == [False] * 6  # eval mode while the rest of the model trains (dropout off)
    for k, v in task.model.tower_b.state_dict().items():
        assert torch.equal(v, frozen_before[k]), k
    trained = {id(p) for opt in trainer.optimizers.values() for g in opt.param_groups for p in g["params"]}
    assert not trained & {id(p) for p in task.model.tower_b.parameters()}
    assert trainer.ema.module.tower_b is task.model.tower_b  # shared with the EMA model, not copied
    ckpt = load_checkpoint(tmp_path / "run", kind="toy-contrastive")
    assert not [k for k in ckpt.model if k.startswith("tower_b.")] and not [k for k in ckpt.ema if "tower_b" in k]
    assert ckpt.component_refs == {"tower_b": {"ref": str(tower), "hash": task.tower_hash}}
    assert torch.equal(ckpt.components["tower_b"].model["0.weight"], frozen_before["0.weight"])
    # Resuming fills the frozen part from the component again, bit-exactly.
    _assert_resume_is_bit_exact(make, tmp_path / "resume", stop_at=3, steps=6, batch_size=32, lr=3e-3)
    # A component retrained since: resuming is refused in one line.
    _tower_checkpoint(tower, seed=6)
    with pytest.raises(GenlabError, match="component 'tower_b'.*hash"):
        Trainer(make(), TrainConfig(steps=8, progress=False), tmp_path / "run")


def test_phase_settings_are_validated_and_plain_strings_still_work(tmp_path):
    from toy_task import RegressionTask

    with pytest.raises(GenlabError, match="every must be >= 1"):
        Phase("D", every=0)
    task = RegressionTask()
    task.phases = ["main"]
    trainer = _fit(task, tmp_path, steps=2, batch_size=8)
    assert list(trainer.optimizers) == ["main"] and trainer.phases == [Phase("main")]
    task.phases = ["a", "a"]
    with pytest.raises(GenlabError, match="distinct"):
        Trainer(task, TrainConfig(progress=False), tmp_path / "x")
