"""The one generic trainer (DESIGN 3.3).

A family hands the trainer a *task* (:class:`Task`): the model, how to make a batch from example indices, and the
loss of each training *phase* (:class:`Phase`). Most tasks have one phase; a GAN has two (discriminator,
generator), a codec with a discriminator likewise, and lazy regularisation or n_critic are phases that run every
k-th step. The trainer owns everything else:

- device, precision (``train.precision=fp32|bf16``: bf16 autocast), gradient accumulation, clipping, EMA, warmup +
  cosine LR, ``torch.compile``;
- data-parallel training under ``torchrun`` (gloo on CPU, nccl on GPU): every rank takes its slice of the same
  global batch and gradients are averaged with one all-reduce per phase, so N processes compute the same update
  as one process on the whole global batch (a loss over the whole batch, e.g. contrastive, uses
  :func:`all_gather`);
- a tqdm progress bar, a JSONL metrics log, periodic sample / eval hooks;
- checkpoints written atomically and *exact* resume: weights, EMA, optimizers, the step (which fixes the LR and
  the data order, see :func:`batch_indices`) and every RNG state. Resuming with another model config is refused
  in one line naming the changed keys. SIGTERM / SIGINT save a checkpoint, then :meth:`Trainer.fit` raises
  :class:`genlab.errors.Interrupted` (the CLI exits 130 / 143): a stopped run is not a finished one.

The task contract. Required (:class:`Task`)::

    kind: str                                    # checkpoint kind, e.g. "diffusion"
    model: nn.Module                             # everything saved in model.safetensors (minus referenced parts)
    num_examples: int                            # size of the training set; batch_indices draws from it
    def batch(self, indices: Tensor) -> Any      # tensors (on CPU) for these example indices (this rank's share)
    def loss(self, batch, phase: str) -> tuple[Tensor, dict[str, float]]   # dict should hold "loss"
    def checkpoint_config(self) -> dict          # rebuilds the model; stored in config.json, compared on resume

Optional, each with its default (read once, in one place: :func:`task_parts`)::

    phases: list[Phase | str]                    # [Phase("main")]; a plain string s means Phase(s)
    def parameters(self, phase: str)             # model.parameters(): what this phase's optimizer updates
    def setup(self, ctx: TrainContext) -> None   # nothing; called once, first, with rank, world size, device
    def frozen(self) -> dict[str, nn.Module]     # {}: parts never trained (a VAE, a text tower, a codec)
    def components(self) -> dict[str, dict]      # {}: {name: {"ref": bundled name or path, "hash": weights hash}}
                                                 #   for frozen parts loaded from elsewhere (names among frozen())
    def ema_module(self) -> nn.Module | None     # model; None: no EMA
    meta: dict                                   # {}: extra provenance for meta.json (read at every save)
    def sample(self, out_dir: Path, step: int, ema_model) -> None       # absent: no sample hook
    def evaluate(self, step: int, ema_model) -> dict[str, float]        # absent: no eval hook

``Trainer(task, cfg, run_dir)`` calls, in this order: ``setup(ctx)`` (the context is also ``trainer.ctx``),
``frozen()``, ``components()``, moves the model to the device, builds one AdamW per phase, the EMA, seeds every RNG
with ``cfg.seed + rank``, and resumes from ``run_dir`` if it holds a checkpoint.

Phases. Each step runs the phases in order; a phase runs when ``step % every == 0`` (a pure function of the step,
so resume keeps the rhythm). Each phase has its own AdamW over ``parameters(name)`` with ``lr``, ``betas``,
``weight_decay`` and ``grad_clip`` (None: the TrainConfig value; the warmup + cosine schedule scales every phase's
lr alike; grad_clip 0: no clipping). Before a phase the gradients of every optimizer's parameters are cleared, so
one phase's backward pass (G's loss through D) never leaks into another's update. The trainer does not rescale a
phase that runs every k steps: lazy regularisation multiplies its loss by k itself (Karras et al. 2020, StyleGAN2
section 3.1). Metrics of a single-phase task keep their names ("loss", "grad_norm", "lr"); with several phases the
phase's metrics are prefixed by its name ("D/loss", "G/loss", "D/grad_norm", and "D/lr" for a phase with its own lr),
next to the schedule's "lr".

Frozen parts are put in eval mode with ``requires_grad=False`` (and back in eval mode after every ``model.train()``),
excluded from every optimizer, and shared, not copied, by the EMA model. Those named in ``components()`` are loaded,
not copied: their tensors are left out of model.safetensors / ema.safetensors, config.json records the reference and
hash (:func:`genlab.checkpoint.save_checkpoint`), loading verifies the hash, and resume takes them from the task's
freshly loaded part. A frozen part without a component reference is saved with the model like any weights.

Randomness. A task builds its model (and loads its frozen parts) after :func:`seed_everything`, so its initial
weights come from the seed too. Each rank seeds ``cfg.seed + rank``: noise drawn from the global RNG differs between
ranks, so N processes equal one only for a task whose batch is a function of its example indices (draw a GAN's
latents per example index, as ``tests/toy_task.py`` does). After ``fit()``, ``trainer.ema.module`` holds the EMA
weights.
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
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .checkpoint import load_checkpoint, load_weights_strict, resolve_checkpoint, save_checkpoint, write_latest
from .config import to_dict
from .errors import GenlabError, Interrupted


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
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast of the forward passes (weights stay fp32)
    compile: bool = False
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # torch intra-op threads; 0 keeps torch's default
    log_every: int = 10
    ckpt_every: int = 500  # 0: only at the end
    keep_checkpoints: int = 2
    sample_every: int = 0  # 0: only at the end
    eval_every: int = 0  # 0: never during training
    progress: bool = True

    # Keys that stored run configs (train_config.json, asr_config.json, meta.json) may still hold; mapped when they
    # are read back (config.from_dict), refused with a pointer as command-line overrides.
    RENAMED: ClassVar[dict[str, tuple[str, dict[Any, Any]]]] = {"amp": ("precision", {"none": "fp32", "bf16": "bf16"})}

    def __post_init__(self):
        checks = [
            ("steps", self.steps > 0, "> 0"), ("batch_size", self.batch_size > 0, "> 0"),
            ("grad_accum", self.grad_accum > 0, "> 0"), ("lr", self.lr > 0, "> 0"),
            ("min_lr_ratio", 0 <= self.min_lr_ratio <= 1, "in [0, 1]"),
            ("warmup_steps", self.warmup_steps >= 0, ">= 0"), ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("beta1", 0 <= self.beta1 < 1, "in [0, 1)"), ("beta2", 0 <= self.beta2 < 1, "in [0, 1)"),
            ("grad_clip", self.grad_clip >= 0, ">= 0 (0 disables clipping)"),
            ("ema_decay", 0 <= self.ema_decay < 1, "in [0, 1) (0 disables EMA)"),
            ("threads", self.threads >= 0, ">= 0"), ("log_every", self.log_every > 0, "> 0"),
            ("ckpt_every", self.ckpt_every >= 0, ">= 0"), ("keep_checkpoints", self.keep_checkpoints >= 1, ">= 1"),
            ("sample_every", self.sample_every >= 0, ">= 0"), ("eval_every", self.eval_every >= 0, ">= 0"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise GenlabError(f"train.{name} must be {rule}, got {getattr(self, name)}")


@dataclass(frozen=True)
class Phase:
    """One optimizer of a task: its name (passed to ``task.loss`` and ``task.parameters``), its AdamW settings
    (None: the TrainConfig value) and how often it runs (every ``every``-th step: n_critic, lazy regularisation)."""

    name: str
    lr: float | None = None
    betas: tuple[float, float] | None = None
    weight_decay: float | None = None
    grad_clip: float | None = None
    every: int = 1

    def __post_init__(self):
        if not self.name or "/" in self.name:
            raise GenlabError(f"phase name {self.name!r} must be non-empty and without '/'")
        if self.every < 1 or (self.lr is not None and self.lr <= 0):
            raise GenlabError(f"phase {self.name}: every must be >= 1 and lr > 0 (got every={self.every}, "
                              f"lr={self.lr})")


@dataclass(frozen=True)
class TrainContext:
    """What a task is told before training (``task.setup(ctx)``): its process's rank, the world size, the device."""

    rank: int
    world_size: int
    device: torch.device


class Task(Protocol):
    """The members every task has; the optional ones and their defaults are in the module docstring."""

    kind: str
    model: nn.Module
    num_examples: int

    def batch(self, indices: torch.Tensor) -> Any: ...

    def loss(self, batch: Any, phase: str) -> tuple[torch.Tensor, dict[str, float]]: ...

    def checkpoint_config(self) -> dict[str, Any]: ...


@dataclass
class TaskParts:
    """A task's optional members, each resolved to its value or its default (see :func:`task_parts`)."""

    phases: list[Phase]
    parameters: Callable[[str], Iterable[nn.Parameter]]
    setup: Callable[[TrainContext], None]
    frozen: Callable[[], dict[str, nn.Module]]
    components: Callable[[], dict[str, dict[str, str]]]
    ema_module: Callable[[], nn.Module | None]
    meta: Callable[[], dict[str, Any]]
    sample: Callable[[Path, int, nn.Module], None] | None = None
    evaluate: Callable[[int, nn.Module], dict[str, float]] | None = None


def task_parts(task: Task) -> TaskParts:
    """Read the task's optional members once, here and nowhere else, filling in the documented defaults."""
    phases = [p if isinstance(p, Phase) else Phase(str(p)) for p in getattr(task, "phases", ["main"])]
    if not phases or len({p.name for p in phases}) != len(phases):
        raise GenlabError(f"task {task.kind!r}: phases must be a non-empty list of distinct names")
    return TaskParts(
        phases=phases,
        parameters=getattr(task, "parameters", lambda phase: task.model.parameters()),
        setup=getattr(task, "setup", lambda ctx: None),
        frozen=getattr(task, "frozen", dict),
        components=getattr(task, "components", dict),
        ema_module=getattr(task, "ema_module", lambda: task.model),
        meta=lambda: getattr(task, "meta", {}),
        sample=getattr(task, "sample", None),
        evaluate=getattr(task, "evaluate", None),
    )


def all_gather(x: torch.Tensor, ctx: TrainContext) -> torch.Tensor:
    """``x`` (B, ...) of every rank concatenated in rank order: (world_size * B, ...); ``x`` itself on one process.

    For a loss over the whole global batch (CLIP's symmetric InfoNCE scores each pair against every other pair):
    every rank computes the same loss L over the gathered rows. The backward pass all-reduces the gradient of the
    gathered tensor, so each rank receives world_size * dL/d(its own rows) (every rank's copy of L depends on
    them), and parameters used outside the gather (a learned temperature) get dL/dp on every rank; after the
    trainer's averaging all-reduce both are exactly the one-process gradient. (open_clip's ``gather_with_grad=False``
    keeps only the local gradient, which is 1/world_size of it.) The rows come in another order than on one process
    (rank 0's share first), which a loss symmetric in its rows does not notice. Under gradient accumulation the loss
    sees one micro-batch at a time. Every rank must call it the same number of times (it is a collective).
    """
    if ctx.world_size == 1:
        return x
    return _AllGather.apply(x, ctx.rank, ctx.world_size)


class _AllGather(torch.autograd.Function):
    @staticmethod
    def forward(fctx, x: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(world_size)]
        dist.all_gather(parts, x.contiguous())
        fctx.rank, fctx.rows = rank, x.shape[0]
        return torch.cat(parts)  # (world_size * B, ...)

    @staticmethod
    def backward(fctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # the gradient of every rank's loss, summed
        return grad[fctx.rank * fctx.rows : (fctx.rank + 1) * fctx.rows], None, None


# ---------------------------------------------------------------------------------------------------------------
# Pure functions of the step: the learning rate and the data order. Resume needs nothing but the step for them.


def learning_rate(cfg: TrainConfig, step: int, lr: float | None = None) -> float:
    """Linear warmup, then cosine decay to ``lr * min_lr_ratio`` (Loshchilov & Hutter 2017); ``lr`` defaults to
    ``cfg.lr`` (a phase with its own lr follows the same schedule)."""
    lr = cfg.lr if lr is None else lr
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return lr
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


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
    """Exponential moving average of a module's parameters and buffers, with the usual warmup of the decay.

    Modules in ``shared`` (frozen parts) are not copied: the EMA model holds the very same objects, and they are
    left alone by :meth:`update`.
    """

    def __init__(self, module: nn.Module, decay: float, shared: Iterable[nn.Module] = ()):
        self.decay = decay
        memo: dict[int, Any] = {}
        for m in shared:
            memo.update({id(t): t for t in (m, *m.parameters(), *m.buffers())})
        self.module = copy.deepcopy(module, memo).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        pairs = [(e, p.detach()) for e, p in zip(self.module.parameters(), module.parameters()) if e is not p]
        if pairs:  # one multi-tensor launch on a GPU instead of one per parameter; the same lerp either way
            torch._foreach_lerp_([e for e, _ in pairs], [p for _, p in pairs], 1 - decay)
        for ema_b, b in zip(self.module.buffers(), module.buffers()):
            if ema_b is not b:
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
    """Turns SIGTERM / SIGINT into a flag (the signal's number) the loop checks at each step boundary."""

    def __init__(self):
        self.requested = 0
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
        self.requested = signum

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# ---------------------------------------------------------------------------------------------------------------



class Trainer:
    """Runs a task: ``Trainer(task, cfg, run_dir).fit()``; resumes from ``run_dir`` when it holds a checkpoint."""

    def __init__(self, task: Task, cfg: TrainConfig, run_dir: str | os.PathLike, resume: bool = True):
        self.task, self.cfg, self.run_dir = task, cfg, Path(run_dir)
        self.parts = task_parts(task)
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if cfg.batch_size % (self.world_size * cfg.grad_accum):
            raise GenlabError(
                f"train.batch_size={cfg.batch_size} must be divisible by world size {self.world_size} x "
                f"train.grad_accum {cfg.grad_accum}"
            )
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        self.device = self._pick_device()
        if self.world_size > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.ctx = TrainContext(self.rank, self.world_size, self.device)
        self.parts.setup(self.ctx)
        self.frozen = self._freeze(self.parts.frozen())
        self.components = self.parts.components()
        if set(self.components) - set(self.frozen):
            raise GenlabError(f"task {task.kind!r}: components {sorted(set(self.components) - set(self.frozen))} "
                              "are not among its frozen parts")
        # Tensors of frozen parts that a component reference stands for: loaded, never copied into a checkpoint.
        self._referenced = {id(t) for name in self.components
                            for t in (*self.frozen[name].parameters(), *self.frozen[name].buffers())}
        self.phases = self.parts.phases
        self.step = 0
        task.model.to(self.device)
        if cfg.compile:
            task.model.compile()
        self.optimizers = {phase.name: self._make_optimizer(phase) for phase in self.phases}
        ema_source = self.parts.ema_module()
        self.ema = None
        if cfg.ema_decay > 0 and ema_source is not None:
            self.ema = EMA(ema_source, cfg.ema_decay, shared=self.frozen.values())
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

    def _freeze(self, frozen: dict[str, nn.Module]) -> dict[str, nn.Module]:
        for module in frozen.values():
            module.to(self.device).eval().requires_grad_(False)
        return dict(frozen)

    def _make_optimizer(self, phase: Phase) -> torch.optim.Optimizer:
        params = [p for p in self.parts.parameters(phase.name) if p.requires_grad]
        if not params:
            raise GenlabError(f"task {self.task.kind!r}: phase {phase.name!r} has no trainable parameters")
        decay = self.cfg.weight_decay if phase.weight_decay is None else phase.weight_decay
        # No weight decay on biases and norm gains (1-D tensors), as in most transformer / UNet recipes.
        groups = [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ]
        betas = phase.betas if phase.betas is not None else (self.cfg.beta1, self.cfg.beta2)
        return torch.optim.AdamW(groups, lr=self._phase_lr(phase), betas=tuple(betas),
                                 fused=self.device.type == "cuda")

    def _phase_lr(self, phase: Phase) -> float:
        return learning_rate(self.cfg, self.step, phase.lr)

    # -- checkpoints ------------------------------------------------------------------------------------------------

    def _train_state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "rng": rng_state(),
            "train_config": to_dict(self.cfg),
        }

    def _own_state(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """``module``'s state without the frozen parts that a component reference stands for."""
        return {k: v.detach() for k, v in module.state_dict(keep_vars=True).items() if id(v) not in self._referenced}

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
            model=self._own_state(self.task.model),
            ema=self._own_state(self.ema.module) if self.ema else None,
            train_state=self._train_state(),
            meta={"step": self.step, **self.parts.meta()},
            components=self.components or None,
        )
        write_latest(ckdir, name)
        old = sorted(p for p in ckdir.glob("step_*") if p.is_dir() and p.name != name)
        for p in old[: max(0, len(old) - (self.cfg.keep_checkpoints - 1))]:
            shutil.rmtree(p, ignore_errors=True)
        return ckdir / name

    def _load_own_state(self, module: nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
        current = module.state_dict(keep_vars=True)
        referenced = {k: v.detach() for k, v in current.items() if id(v) in self._referenced}
        load_weights_strict(module, {**referenced, **state}, source)

    def _resume(self) -> None:
        path = resolve_checkpoint(self.run_dir)
        ckpt = load_checkpoint(path, kind=self.task.kind, with_train_state=True)
        if ckpt.train_state is None:
            raise GenlabError(f"{path}: has no training state to resume from")
        refs = {name: entry.get("ref") for name, entry in ckpt.component_refs.items()}  # hashes: load_checkpoint
        changed = config_changes({"model": ckpt.config, "components": refs},
                                 {"model": self.task.checkpoint_config(),
                                  "components": {name: entry["ref"] for name, entry in self.components.items()}})
        if changed:
            raise GenlabError(f"{self.run_dir} holds a run of another model ({'; '.join(changed)}): start over with "
                              "--fresh, or choose another --out")
        missing = sorted(set(self.optimizers) - set(ckpt.train_state["optimizers"]))
        if missing:
            raise GenlabError(f"{path}: has no optimizer state for phase(s) {', '.join(missing)}")
        self._load_own_state(self.task.model, ckpt.model, path)
        if self.ema is not None and ckpt.ema is not None:
            self._load_own_state(self.ema.module, ckpt.ema, path)
        for name, opt in self.optimizers.items():
            opt.load_state_dict(ckpt.train_state["optimizers"][name])
        self.step = int(ckpt.train_state["step"])
        set_rng_state(ckpt.train_state["rng"])
        if self.world_size > 1:  # rank 0 saved its own RNG; the others must still differ from it
            torch.manual_seed(torch.initial_seed() + self.rank * 7919 + self.step)
        if self.rank == 0:
            print(f"resumed from {path} at step {self.step}")

    # -- the loop ---------------------------------------------------------------------------------------------------

    def _autocast(self):
        if self.cfg.precision == "bf16":
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

    def _run_phase(self, phase: Phase, micro_batches: list[Any]) -> dict[str, float]:
        """Forward and backward passes of one phase over the micro-batches, then its optimizer step."""
        cfg, opt = self.cfg, self.optimizers[phase.name]
        lr = self._phase_lr(phase)
        for group in opt.param_groups:
            group["lr"] = lr
        for other in self.optimizers.values():  # a phase sees only its own gradients
            other.zero_grad(set_to_none=True)
        metrics: dict[str, float] = {}
        for micro in micro_batches:
            with self._autocast():
                loss, phase_metrics = self.task.loss(micro, phase.name)
            (loss / cfg.grad_accum).backward()
            for k, v in phase_metrics.items():
                metrics[k] = metrics.get(k, 0.0) + float(v) / cfg.grad_accum
        params = [p for group in opt.param_groups for p in group["params"]]
        self._all_reduce_grads(params)
        clip = cfg.grad_clip if phase.grad_clip is None else phase.grad_clip
        if clip > 0:
            metrics["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, clip))
        opt.step()
        if phase.lr is not None and len(self.phases) > 1:
            metrics["lr"] = lr
        return metrics

    def train_step(self) -> dict[str, float]:
        """One optimizer step of every phase due at this step, on this step's global batch; returns the metrics
        (averaged over micro-batches; prefixed ``phase/`` when the task has several phases)."""
        cfg = self.cfg
        indices = batch_indices(self.task.num_examples, cfg.batch_size, self.step, cfg.seed)
        local = indices[self.rank :: self.world_size]  # this rank's share of the global batch
        micro_batches = split_batch(to_device(self.task.batch(local), self.device), cfg.grad_accum)
        metrics: dict[str, float] = {"lr": learning_rate(cfg, self.step)}
        self.task.model.train()
        for module in self.frozen.values():  # model.train() reaches frozen submodules too
            module.eval()
        for phase in self.phases:
            if self.step % phase.every:
                continue
            phase_metrics = self._run_phase(phase, micro_batches)
            prefix = f"{phase.name}/" if len(self.phases) > 1 else ""
            metrics.update({prefix + k: v for k, v in phase_metrics.items()})
        self.step += 1
        if self.ema is not None:
            self.ema.update(self.parts.ema_module(), self.step)
        return metrics

    def _hooks(self, final: bool = False) -> None:
        if self.rank != 0:
            return
        cfg = self.cfg
        ema_model = self.ema.module if self.ema else self.task.model
        if self.parts.sample and (final or (cfg.sample_every and self.step % cfg.sample_every == 0)):
            self.parts.sample(self.run_dir / "samples", self.step, ema_model)
        if self.parts.evaluate and cfg.eval_every and (final or self.step % cfg.eval_every == 0):
            self._log({"step": self.step, **self.parts.evaluate(self.step, ema_model)})

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def _stop_signal(self, requested: int) -> int:
        """The signal that stops this step, agreed by every rank (one stopping alone would hang the others)."""
        if self.world_size == 1:
            return requested
        flag = torch.tensor([requested], dtype=torch.int64)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag)

    def _prepare_run_dir(self) -> None:
        if self.rank != 0:
            return
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "train_config.json").write_text(json.dumps(to_dict(self.cfg), indent=2) + "\n")
        except OSError as e:
            raise GenlabError(f"cannot write to run directory {self.run_dir}: {e.strerror}") from None

    def fit(self) -> dict[str, float]:
        """Train to ``cfg.steps``; returns the last step's metrics. Raises :class:`Interrupted` after saving when
        SIGINT or SIGTERM stopped it."""
        cfg = self.cfg
        self._prepare_run_dir()
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=self.step, disable=not cfg.progress or self.rank != 0, dynamic_ncols=True)
        last: dict[str, float] = {}
        window: dict[str, list[float]] = {}
        t0 = time.perf_counter()
        with _StopRequest() as stop:
            while self.step < cfg.steps:
                last = self.train_step()
                for k, v in last.items():
                    if k == "loss" or k.endswith("/loss"):
                        window.setdefault(k, []).append(v)
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    avg = {f"{k}_avg": sum(v) / len(v) for k, v in window.items()}
                    bar.set_postfix({k[:-4]: f"{v:.4f}" for k, v in avg.items()} | {"lr": f"{last['lr']:.2e}"})
                    if self.rank == 0:
                        self._log({"step": self.step, **last, **avg, "time": time.perf_counter() - t0})
                    window = {}
                if cfg.ckpt_every and self.step % cfg.ckpt_every == 0 and self.step < cfg.steps:
                    self.save()
                if self.step < cfg.steps:
                    self._hooks()
                signum = self._stop_signal(stop.requested)
                if signum:
                    bar.close()
                    self.save()
                    raise Interrupted(f"stopped by signal {signal.Signals(signum).name} at step {self.step}; "
                                      f"checkpoint saved in {self.run_dir}, rerun the same command to resume", signum)
        bar.close()
        self.save()
        self._hooks(final=True)
        return last


def config_changes(saved: Any, now: Any, prefix: str = "") -> list[str]:
    """``"key: old -> new"`` for every dotted key whose value differs between two JSON-like configs."""
    saved, now = json.loads(json.dumps(saved)), json.loads(json.dumps(now))  # tuples -> lists, as stored
    if isinstance(saved, dict) and isinstance(now, dict):
        out = []
        for key in [*saved, *(k for k in now if k not in saved)]:
            out += config_changes(saved.get(key), now.get(key), f"{prefix}{key}.")
        return out
    if saved != now:
        return [f"{prefix.rstrip('.')}: {json.dumps(saved)} -> {json.dumps(now)}"]
    return []
