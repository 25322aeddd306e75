"""Checkpoints: a directory of safetensors + JSON, written atomically, never pickled (DESIGN 3.4).

Layout of one checkpoint directory::

    config.json              {"kind": ..., "config": {...}, "components": {...}}   the model is rebuilt from this
    model.safetensors        weights
    ema.safetensors          EMA weights (optional)
    train_state.safetensors  optimizer/scheduler tensors and RNG states (optional; for exact resume)
    train_state.json         the non-tensor part of the training state
    meta.json                genlab version, git commit, data fingerprint, metrics, ...

A checkpoint may name *components*: frozen parts (a VAE, a text tower, a codec) that it uses but does not hold,
each by a bundled name or a path (:func:`genlab.models.resolve_model`) and the hash of its weights::

    "components": {"vae": {"ref": "sd-vae", "hash": "3f2a..."}}

They are loaded, not copied: :func:`load_checkpoint` loads each one (a genlab checkpoint directory or a safetensors
file) into ``Checkpoint.components`` and refuses, in one line, a component whose weights no longer have the recorded
hash. A relative path is looked up beside the checkpoint first, then from the working directory.

A checkpoint is written into a temporary sibling directory and moved into place with ``os.replace``, so a crash
never leaves a half-written checkpoint where a reader would look. A run directory keeps several checkpoints
(``checkpoints/step_0000100``) and a one-line ``checkpoints/latest`` file, itself replaced atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .errors import GenlabError

MODEL_FILE = "model.safetensors"
EMA_FILE = "ema.safetensors"
CONFIG_FILE = "config.json"
META_FILE = "meta.json"
TRAIN_TENSORS_FILE = "train_state.safetensors"
TRAIN_JSON_FILE = "train_state.json"


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns: everything as plain dicts and tensors."""

    path: Path
    kind: str
    config: dict[str, Any]
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor] | None = None
    train_state: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    component_refs: dict[str, dict[str, str]] = field(default_factory=dict)  # as recorded: {name: {ref, hash}}
    components: dict[str, Checkpoint] = field(default_factory=dict)  # each component, loaded and verified


# ---------------------------------------------------------------------------------------------------------------
# Nested training state (optimizer state dicts, RNG states) <-> flat tensors + a JSON skeleton.


def flatten_state(obj: Any, tensors: dict[str, torch.Tensor] | None = None, prefix: str = "s") -> tuple[Any, dict]:
    """Split a nested structure into a JSON skeleton and a flat dict of tensors (no pickle needed)."""
    tensors = {} if tensors is None else tensors
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous()
        return {"__tensor__": prefix}, tensors
    if isinstance(obj, dict):
        keys = list(obj.keys())
        items = [flatten_state(obj[k], tensors, f"{prefix}.{i}")[0] for i, k in enumerate(keys)]
        # JSON object keys must be strings; optimizer state uses int keys, so keep keys with their type.
        return {"__dict__": [[k, v] for k, v in zip(keys, items)]}, tensors
    if isinstance(obj, (list, tuple)):
        items = [flatten_state(v, tensors, f"{prefix}.{i}")[0] for i, v in enumerate(obj)]
        return ({"__tuple__": items} if isinstance(obj, tuple) else items), tensors
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj, tensors
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            return tensors[skeleton["__tensor__"]]
        if "__dict__" in skeleton:
            return {k: unflatten_state(v, tensors) for k, v in skeleton["__dict__"]}
        if "__tuple__" in skeleton:
            return tuple(unflatten_state(v, tensors) for v in skeleton["__tuple__"])
    if isinstance(skeleton, list):
        return [unflatten_state(v, tensors) for v in skeleton]
    return skeleton


# ---------------------------------------------------------------------------------------------------------------


def weights_hash(state: dict[str, torch.Tensor]) -> str:
    """A short sha256 over names, dtypes, shapes and bytes of a state dict: the model's identity in provenance."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous().reshape(-1)  # 0-dim tensors cannot be viewed as bytes
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def save_checkpoint(
    path: str | os.PathLike,
    *,
    kind: str,
    config: dict[str, Any],
    model: dict[str, torch.Tensor],
    ema: dict[str, torch.Tensor] | None = None,
    train_state: Any = None,
    meta: dict[str, Any] | None = None,
    sparse_rows: tuple[str, ...] = (),
    components: dict[str, dict[str, str]] | None = None,
) -> Path:
    """Write a checkpoint directory atomically and return its path.

    ``components`` names frozen parts that the checkpoint uses but does not hold: ``{name: {"ref": bundled name or
    path, "hash": weights hash}}`` (a missing hash is computed from the ref's weights now). Recorded in config.json.

    ``sparse_rows`` names 2-D weights stored without their all-zero rows (``NAME`` holds the other rows and
    ``NAME.__rows__`` their indices; :func:`load_checkpoint` restores the full tensor). A from-scratch Whisper
    uses a few hundred of its 51,865 token embeddings: this keeps its file a few MB instead of tens.
    """
    path = Path(path)
    refs = _component_refs(components or {})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GenlabError(f"cannot create {path.parent}: {e.strerror}") from None
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir()
        shapes = {name: list(model[name].shape) for name in sparse_rows}
        _write_json(tmp / CONFIG_FILE, {"kind": kind, "config": config, **({"sparse_rows": shapes} if shapes else {}),
                                        **({"components": refs} if refs else {})})
        save_file(_drop_zero_rows(model, sparse_rows), str(tmp / MODEL_FILE))
        if ema is not None:
            save_file(_drop_zero_rows(ema, sparse_rows), str(tmp / EMA_FILE))
        if train_state is not None:
            skeleton, tensors = flatten_state(train_state)
            save_file(tensors, str(tmp / TRAIN_TENSORS_FILE))
            _write_json(tmp / TRAIN_JSON_FILE, skeleton)
        # The caller's meta may be copied from another checkpoint: this one's own identity is computed, and wins.
        full_meta = {**(meta or {}), "genlab_version": __version__, "git_commit": git_commit(),
                     "weights_hash": weights_hash(model)}
        _write_json(tmp / META_FILE, full_meta)
        # Swap into place: the old checkpoint (if any) stays whole until the new one is complete.
        if path.exists():
            old = path.parent / f".{path.name}.old-{os.getpid()}"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise GenlabError(f"cannot write checkpoint {path}: {e.strerror or e}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _component_refs(components: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    out = {}
    for name, entry in components.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("ref"), str) or set(entry) - {"ref", "hash"}:
            raise ValueError(f"component {name!r}: expected {{'ref': name or path, 'hash': weights hash}}, "
                             f"got {entry!r}")
        ref = entry["ref"]
        out[name] = {"ref": ref, "hash": entry.get("hash") or weights_hash(_load_component_weights(ref, None)[1])}
    return out


def _load_component_weights(ref: str, beside: Path | None) -> tuple[Path, dict[str, torch.Tensor], Checkpoint | None]:
    """Resolve a component reference and read its weights: (path, the weights it is hashed by, its checkpoint)."""
    from .models import resolve_model

    local = beside / ref if beside is not None else None
    path = local if local is not None and local.exists() else resolve_model(ref)
    if path.is_file() and path.suffix == ".safetensors":
        return path, load_tensors(path), None
    ckpt = load_checkpoint(path)
    return ckpt.path, ckpt.model, ckpt


def load_component(name: str, ref: str, expected_hash: str | None = None, beside: Path | None = None) -> Checkpoint:
    """Load the component ``name`` from ``ref`` (a genlab checkpoint or a safetensors file); with ``expected_hash``,
    refuse weights whose hash differs (one line: the part was retrained or replaced since it was recorded)."""
    try:
        path, weights, ckpt = _load_component_weights(ref, beside)
    except GenlabError as e:
        raise GenlabError(f"component {name!r}: {e}") from None
    found = weights_hash(weights)
    if expected_hash is not None and found != expected_hash:
        raise GenlabError(f"component {name!r} ({ref}): its weights hash is {found}, the checkpoint was made with "
                          f"{expected_hash}; restore those weights or retrain")
    if ckpt is None:
        ckpt = Checkpoint(path=path, kind="weights", config={}, model=weights, meta={"weights_hash": found})
    return ckpt


def _drop_zero_rows(state: dict[str, torch.Tensor], names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    out = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    for name in names:
        weight = out.pop(name)
        if weight.ndim != 2:
            raise ValueError(f"sparse_rows: {name} is not a matrix")
        rows = torch.nonzero(weight.abs().sum(1) > 0).flatten()
        out[name], out[name + ".__rows__"] = weight[rows].contiguous(), rows
    return out


def _restore_zero_rows(state: dict[str, torch.Tensor], shapes: dict[str, list[int]], source: Path):
    for name, shape in shapes.items():
        if name not in state or name + ".__rows__" not in state:
            raise GenlabError(f"{source}: sparse weight {name} is missing")
        rows, values = state.pop(name + ".__rows__").long(), state.pop(name)
        if rows.numel() and (int(rows.max()) >= shape[0] or values.shape != (rows.numel(), shape[1])):
            raise GenlabError(f"{source}: sparse weight {name} does not fit its shape {shape}")
        full = torch.zeros(shape, dtype=values.dtype)
        full[rows] = values
        state[name] = full
    return state


def write_latest(run_checkpoints: Path, name: str) -> None:
    """Point ``checkpoints/latest`` at ``name`` with an atomic file replace."""
    tmp = run_checkpoints / f".latest.tmp-{os.getpid()}"
    tmp.write_text(name + "\n")
    os.replace(tmp, run_checkpoints / "latest")


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """Accept a checkpoint dir, a run's ``checkpoints/`` dir, or a run dir; return the checkpoint dir."""
    path = Path(path)
    if not path.exists():
        raise GenlabError(f"checkpoint not found: {path}")
    if (path / MODEL_FILE).exists() or (path / CONFIG_FILE).exists():
        return path
    for ckdir in (path, path / "checkpoints"):
        if (ckdir / "latest").exists():
            return ckdir / (ckdir / "latest").read_text().strip()
    raise GenlabError(f"{path} is not a genlab checkpoint (no {CONFIG_FILE} / {MODEL_FILE} / checkpoints/latest)")


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise GenlabError(f"{path.parent}: missing {path.name}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GenlabError(f"{path}: corrupt JSON ({e})") from None


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Load a safetensors file, turning any failure into one clear line."""
    if not path.exists():
        raise GenlabError(f"{path.parent}: missing {path.name}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise GenlabError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0][:120]})") from None


def load_checkpoint(path: str | os.PathLike, kind: str | None = None, with_train_state: bool = False,
                    with_components: bool = True) -> Checkpoint:
    """Load a checkpoint directory; ``kind`` (if given) must match the one it was saved as. Its components are
    loaded and their weights hashes checked (``with_components=False`` only reads their references)."""
    path = resolve_checkpoint(path)
    cfg = _load_json(path / CONFIG_FILE)
    if not isinstance(cfg, dict) or "kind" not in cfg or "config" not in cfg:
        raise GenlabError(f"{path / CONFIG_FILE}: not a genlab config (needs 'kind' and 'config')")
    if kind is not None and cfg["kind"] != kind:
        raise GenlabError(f"{path}: holds a {cfg['kind']!r} model, expected {kind!r}")
    sparse = cfg.get("sparse_rows") or {}
    model = _restore_zero_rows(load_tensors(path / MODEL_FILE), sparse, path)
    refs = cfg.get("components") or {}
    ckpt = Checkpoint(path=path, kind=cfg["kind"], config=cfg["config"], model=model, component_refs=refs)
    if with_components:
        for name, entry in refs.items():
            if not isinstance(entry, dict) or "ref" not in entry or "hash" not in entry:
                raise GenlabError(f"{path / CONFIG_FILE}: component {name!r} needs a 'ref' and a 'hash'")
            ckpt.components[name] = load_component(name, entry["ref"], entry["hash"], beside=path)
    if (path / EMA_FILE).exists():
        ckpt.ema = _restore_zero_rows(load_tensors(path / EMA_FILE), sparse, path)
    if (path / META_FILE).exists():
        ckpt.meta = _load_json(path / META_FILE)
    if with_train_state and (path / TRAIN_JSON_FILE).exists():
        ckpt.train_state = unflatten_state(_load_json(path / TRAIN_JSON_FILE), load_tensors(path / TRAIN_TENSORS_FILE))
    return ckpt


def load_weights_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str | os.PathLike) -> None:
    """``load_state_dict`` that refuses, in one line, weights whose names or shapes do not match the config."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} shape mismatches (e.g. {k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)})")
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise GenlabError(f"{source}: weights do not match the config: {'; '.join(parts)}")
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
