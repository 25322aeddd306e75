"""The one generic trainer (DESIGN 3.3).

A family hands the trainer a *task*: the model, how to make a batch from example indices, and the loss of each
training *phase*. Most tasks have one phase; a GAN has two (discriminator, generator) and a codec with a
discriminator likewise, each phase with its own optimizer. The trainer owns everything else:

- device, bf16 autocast, gradient accumulation, clipping, EMA, warmup + cosine LR, ``torch.compile``;
- data-parallel training under ``torchrun`` (gloo on CPU, nccl on GPU): every rank takes its slice of the same
  global batch and gradients are averaged with one all-reduce per phase, so N processes compute the same update
  as one process on the whole global batch;
- a tqdm progress bar, a JSONL metrics log, periodic sample / eval hooks;
- checkpoints written atomically and *exact* resume: weights, EMA, optimizers, the step (which fixes the LR and
  the data order, see :func:`batch_indices`) and every RNG state; SIGTERM / SIGINT save and exit cleanly.

Build the task after :func:`seed_everything` (its initial weights come from the seed too). ``loss`` returns the
loss tensor and a dict of floats that should include ``"loss"`` (the progress bar shows its running mean). After
``fit()``, ``trainer.ema.module`` holds the EMA weights. The task interface (duck-typed; see ``diffusion/task.py``)::

    kind: str                                   # checkpoint kind, e.g. "diffusion"
    model: nn.Module                            # everything saved in model.safetensors
    num_examples: int                           # size of the training set
    phases: list[str]                           # optional, default ["main"]
    def batch(self, indices: Tensor) -> Any     # tensors (on CPU) for these example indices
    def loss(self, batch, phase: str) -> tuple[Tensor, dict[str, float]]
    def parameters(self, phase: str)            # optional, default model.parameters()
    def ema_module(self) -> nn.Module | None    # optional, default model
    def checkpoint_config(self) -> dict         # rebuilds the model; stored in config.json
    def sample(self, out_dir: Path, step: int, ema_model) -> None     # optional hook
    def evaluate(self, step: int, ema_model) -> dict[str, float]      # optional hook
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import shutil
import signal
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .checkpoint import load_checkpoint, resolve_checkpoint, save_checkpoint, write_latest
from .config import to_dict
from .errors import GenlabError


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 64  # global batch per optimizer step, over all ranks and accumulation micro-steps
    grad_accum: int = 1
    lr: float = 2e-4
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 100
    schedule: Literal["cosine", "constant"] = "cosine"
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    grad_clip: float = 1.0  # 0 disables clipping
    ema_decay: float = 0.999  # 0 disables EMA
    amp: Literal["none", "bf16"] = "none"
    compile: bool = False
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # torch intra-op threads; 0 keeps torch's default
    log_every: int = 10
    ckpt_every: int = 500
    keep_checkpoints: int = 2
    sample_every: int = 0  # 0: only at the end
    eval_every: int = 0  # 0: never during training
    progress: bool = True


# ---------------------------------------------------------------------------------------------------------------
# Pure functions of the step: the learning rate and the data order. Resume needs nothing but the step for them.


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warmup, then cosine decay to ``lr * min_lr_ratio`` (Loshchilov & Hutter 2017)."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def batch_indices(num_examples: int, batch_size: int, step: int, seed: int) -> torch.Tensor:
    """The global batch of example indices for ``step``: consecutive slices of per-epoch permutations.

    Epoch ``e`` is ``randperm(num_examples)`` drawn from a generator seeded with ``(seed, e)``, so the data order
    depends only on ``(seed, step)`` and is identical on every rank and after a resume.
    """
    start = step * batch_size
    out = []
    while len(out) < batch_size:
        epoch, offset = divmod(start + len(out), num_examples)
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        perm = torch.randperm(num_examples, generator=g)
        out.extend(perm[offset : offset + batch_size - len(out)].tolist())
    return torch.tensor(out, dtype=torch.long)


# ---------------------------------------------------------------------------------------------------------------


class EMA:
    """Exponential moving average of a module's parameters and buffers, with the usual warmup of the decay."""

    def __init__(self, module: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        for ema_p, p in zip(self.module.parameters(), module.parameters()):
            ema_p.lerp_(p.detach(), 1 - decay)
        for ema_b, b in zip(self.module.buffers(), module.buffers()):
            ema_b.copy_(b)


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def split_batch(batch: Any, parts: int) -> list[Any]:
    """Split every tensor in a (nested) batch along dim 0 into ``parts`` micro-batches."""
    if parts == 1:
        return [batch]
    if isinstance(batch, torch.Tensor):
        return list(batch.chunk(parts))
    if isinstance(batch, dict):
        pieces = {k: split_batch(v, parts) for k, v in batch.items()}
        return [{k: pieces[k][i] for k in batch} for i in range(parts)]
    if isinstance(batch, (list, tuple)):
        pieces = [split_batch(v, parts) for v in batch]
        return [type(batch)(p[i] for p in pieces) for i in range(parts)]
    return [batch] * parts


def rng_state() -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": json.dumps(np.random.get_state(legacy=True)[1].tolist()),
        "numpy_pos": int(np.random.get_state(legacy=True)[2]),
        "python": json.dumps(random.getstate(), default=list),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", np.array(json.loads(state["numpy"]), dtype=np.uint32), state["numpy_pos"], 0, 0.0))
    version, internal, gauss = json.loads(state["python"])
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _StopRequest:
    """Turns SIGTERM / SIGINT into a flag the loop checks at each step boundary."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: no signal handling
                pass
        return self

    def _handle(self, signum, frame):
        if self.requested:  # a second Ctrl-C means now
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# ---------------------------------------------------------------------------------------------------------------


class Trainer:
    """Runs a task: ``Trainer(task, cfg, run_dir).fit()``; resumes from ``run_dir`` when it holds a checkpoint."""

    def __init__(self, task: Any, cfg: TrainConfig, run_dir: str | os.PathLike, resume: bool = True):
        self.task, self.cfg, self.run_dir = task, cfg, Path(run_dir)
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if cfg.batch_size % (self.world_size * cfg.grad_accum):
            raise GenlabError(
                f"batch_size={cfg.batch_size} must be divisible by world size {self.world_size} x "
                f"grad_accum {cfg.grad_accum}"
            )
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        self.device = self._pick_device()
        if self.world_size > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.phases: list[str] = list(getattr(task, "phases", ["main"]))
        task.model.to(self.device)
        if cfg.compile:
            task.model.compile()
        self.optimizers = {phase: self._make_optimizer(phase) for phase in self.phases}
        ema_source = task.ema_module() if hasattr(task, "ema_module") else task.model
        self.ema = EMA(ema_source, cfg.ema_decay) if (cfg.ema_decay > 0 and ema_source is not None) else None
        self.step = 0
        seed_everything(cfg.seed + self.rank)  # ranks draw different noise; data order is shared (batch_indices)
        if resume and (self.run_dir / "checkpoints" / "latest").exists():
            self._resume()

    # -- set-up ---------------------------------------------------------------------------------------------------

    def _pick_device(self) -> torch.device:
        if self.cfg.device == "auto":
            if torch.cuda.is_available():
                return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            return torch.device("cpu")
        try:
            return torch.device(self.cfg.device)
        except RuntimeError:
            raise GenlabError(f"unknown device {self.cfg.device!r}") from None

    def _params(self, phase: str):
        return list(self.task.parameters(phase) if hasattr(self.task, "parameters") else self.task.model.parameters())

    def _make_optimizer(self, phase: str) -> torch.optim.Optimizer:
        params = [p for p in self._params(phase) if p.requires_grad]
        # No weight decay on biases and norm gains (1-D tensors), as in most transformer / UNet recipes.
        groups = [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": self.cfg.weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(
            groups, lr=self.cfg.lr, betas=(self.cfg.beta1, self.cfg.beta2), fused=self.device.type == "cuda"
        )

    # -- checkpoints ------------------------------------------------------------------------------------------------

    def _train_state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "optimizers": {phase: opt.state_dict() for phase, opt in self.optimizers.items()},
            "rng": rng_state(),
            "train_config": to_dict(self.cfg),
        }

    def save(self) -> Path | None:
        """Write ``run_dir/checkpoints/step_XXXXXXX`` atomically, update ``latest``, prune old ones (rank 0)."""
        if self.rank != 0:
            return None
        ckdir = self.run_dir / "checkpoints"
        name = f"step_{self.step:07d}"
        save_checkpoint(
            ckdir / name,
            kind=self.task.kind,
            config=self.task.checkpoint_config(),
            model=self.task.model.state_dict(),
            ema=self.ema.module.state_dict() if self.ema else None,
            train_state=self._train_state(),
            meta={"step": self.step, **getattr(self.task, "meta", {})},
        )
        write_latest(ckdir, name)
        old = sorted(p for p in ckdir.glob("step_*") if p.is_dir() and p.name != name)
        for p in old[: max(0, len(old) - (self.cfg.keep_checkpoints - 1))]:
            shutil.rmtree(p, ignore_errors=True)
        return ckdir / name

    def _resume(self) -> None:
        path = resolve_checkpoint(self.run_dir)
        ckpt = load_checkpoint(path, kind=self.task.kind, with_train_state=True)
        if ckpt.train_state is None:
            raise GenlabError(f"{path}: has no training state to resume from")
        self.task.model.load_state_dict(ckpt.model)
        if self.ema is not None and ckpt.ema is not None:
            self.ema.module.load_state_dict(ckpt.ema)
        for phase, opt in self.optimizers.items():
            opt.load_state_dict(ckpt.train_state["optimizers"][phase])
        self.step = int(ckpt.train_state["step"])
        set_rng_state(ckpt.train_state["rng"])
        if self.world_size > 1:  # rank 0 saved its own RNG; the others must still differ from it
            torch.manual_seed(torch.initial_seed() + self.rank * 7919 + self.step)
        if self.rank == 0:
            print(f"resumed from {path} at step {self.step}")

    # -- the loop ---------------------------------------------------------------------------------------------------

    def _autocast(self):
        if self.cfg.amp == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _all_reduce_grads(self, params: list[nn.Parameter]) -> None:
        grads = [p.grad for p in params if p.grad is not None]
        if self.world_size == 1 or not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def train_step(self) -> dict[str, float]:
        """One optimizer step per phase on this step's global batch; returns averaged metrics."""
        cfg = self.cfg
        indices = batch_indices(self.task.num_examples, cfg.batch_size, self.step, cfg.seed)
        local = indices[self.rank :: self.world_size]  # this rank's share of the global batch
        micro_batches = split_batch(to_device(self.task.batch(local), self.device), cfg.grad_accum)
        lr = learning_rate(cfg, self.step)
        metrics: dict[str, float] = {"lr": lr}
        self.task.model.train()
        for phase in self.phases:
            opt = self.optimizers[phase]
            for group in opt.param_groups:
                group["lr"] = lr * getattr(self.task, "lr_scale", {}).get(phase, 1.0)
            opt.zero_grad(set_to_none=True)
            for micro in micro_batches:
                with self._autocast():
                    loss, phase_metrics = self.task.loss(micro, phase)
                (loss / cfg.grad_accum).backward()
                for k, v in phase_metrics.items():
                    metrics[k] = metrics.get(k, 0.0) + float(v) / cfg.grad_accum
            params = [p for group in opt.param_groups for p in group["params"]]
            self._all_reduce_grads(params)
            if cfg.grad_clip > 0:
                norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                metrics[f"grad_norm/{phase}" if len(self.phases) > 1 else "grad_norm"] = float(norm)
            opt.step()
        self.step += 1
        if self.ema is not None:
            self.ema.update(self.task.ema_module() if hasattr(self.task, "ema_module") else self.task.model, self.step)
        return metrics

    def _hooks(self, final: bool = False) -> None:
        if self.rank != 0:
            return
        cfg = self.cfg
        ema_model = self.ema.module if self.ema else self.task.model
        if hasattr(self.task, "sample") and (final or (cfg.sample_every and self.step % cfg.sample_every == 0)):
            self.task.sample(self.run_dir / "samples", self.step, ema_model)
        if hasattr(self.task, "evaluate") and cfg.eval_every and (final or self.step % cfg.eval_every == 0):
            self._log({"step": self.step, **self.task.evaluate(self.step, ema_model)})

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def fit(self) -> dict[str, float]:
        cfg = self.cfg
        if self.rank == 0:
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                (self.run_dir / "train_config.json").write_text(json.dumps(to_dict(cfg), indent=2) + "\n")
            except OSError as e:
                raise GenlabError(f"cannot write to run directory {self.run_dir}: {e.strerror}") from None
        from tqdm import tqdm

        bar = tqdm(
            total=cfg.steps, initial=self.step, disable=not cfg.progress or self.rank != 0, dynamic_ncols=True
        )
        last: dict[str, float] = {}
        window: list[float] = []
        t0 = time.perf_counter()
        with _StopRequest() as stop:
            while self.step < cfg.steps:
                metrics = self.train_step()
                last = metrics
                window.append(metrics.get("loss", float("nan")))
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    avg = sum(window) / len(window)
                    bar.set_postfix(loss=f"{avg:.4f}", lr=f"{metrics['lr']:.2e}")
                    if self.rank == 0:
                        self._log({"step": self.step, **metrics, "loss_avg": avg, "time": time.perf_counter() - t0})
                    window = []
                if cfg.ckpt_every and self.step % cfg.ckpt_every == 0 and self.step < cfg.steps:
                    self.save()
                if self.step < cfg.steps:
                    self._hooks()
                if stop.requested:
                    bar.close()
                    self.save()
                    if self.rank == 0:
                        print(f"stopped by signal at step {self.step}; checkpoint saved, rerun to resume")
                    return last
        bar.close()
        self.save()
        self._hooks(final=True)
        return last
