"""Published DDPM checkpoints in diffusers format -> genlab diffusion checkpoints.

A diffusers pipeline directory (``unet/`` + ``scheduler/``) or a bare ``UNet2DModel`` directory (``config.json``
+ ``diffusion_pytorch_model.safetensors`` or ``.bin``). genlab's UNet uses diffusers' module names, so the weights
load as they are; what this module does is read the config, refuse loudly what genlab's UNet cannot express,
rename the attention keys (today's ``to_q``... and the pre-0.14 ``query``/``key``/``value``/``proj_attn``) to
genlab's shared attention, and write a genlab checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import load_tensors, load_weights_strict, save_checkpoint
from ..config import to_dict
from ..diffusion.model import UNet, UNetConfig
from ..diffusion.task import DiffusionConfig
from ..errors import GenlabError

_SCHEDULES = {"linear": "linear", "squaredcos_cap_v2": "cosine"}
# diffusers' attention projections (and their pre-0.14 names) -> genlab.nn.attention.Attention's, under ``attn``.
ATTENTION_KEYS = {"to_q": "attn.query", "to_k": "attn.key", "to_v": "attn.value", "to_out.0": "attn.out",
                  "query": "attn.query", "key": "attn.key", "value": "attn.value", "proj_attn": "attn.out"}


def _require(cfg: dict, key: str, allowed: Any, source: Path) -> None:
    value = cfg.get(key, allowed[0] if isinstance(allowed, tuple) else allowed)
    ok = value in allowed if isinstance(allowed, tuple) else value == allowed
    if not ok:
        raise GenlabError(f"{source}: {key}={value!r} is not supported by genlab's UNet (supported: {allowed})")


def unet_config_from_diffusers(cfg: dict, source: Path) -> UNetConfig:
    """Translate a ``UNet2DModel`` config, refusing (one line) any option genlab's UNet does not implement."""
    if cfg.get("_class_name", "UNet2DModel") != "UNet2DModel":
        raise GenlabError(f"{source}: a {cfg.get('_class_name')} is not a UNet2DModel")
    _require(cfg, "time_embedding_type", ("positional",), source)
    _require(cfg, "act_fn", ("silu",), source)
    _require(cfg, "resnet_time_scale_shift", ("default",), source)
    _require(cfg, "mid_block_type", ("UNetMidBlock2D",), source)
    _require(cfg, "downsample_type", ("conv",), source)
    _require(cfg, "upsample_type", ("conv",), source)
    _require(cfg, "center_input_sample", (False,), source)
    _require(cfg, "mid_block_scale_factor", (1, 1.0), source)
    _require(cfg, "class_embed_type", (None,), source)
    _require(cfg, "num_class_embeds", (None,), source)
    _require(cfg, "attn_norm_num_groups", (None,), source)
    _require(cfg, "time_embedding_dim", (None,), source)
    down = cfg.get("down_block_types", ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"])
    up = cfg.get("up_block_types", ["AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"])
    attention = []
    for kind in down:
        if kind not in ("DownBlock2D", "AttnDownBlock2D"):
            raise GenlabError(f"{source}: down block {kind} is not supported (DownBlock2D, AttnDownBlock2D)")
        attention.append(kind == "AttnDownBlock2D")
    mirrored = ["AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)]
    if list(up) != mirrored:
        raise GenlabError(f"{source}: up_block_types {up} must mirror the down blocks ({mirrored})")
    head_dim = cfg.get("attention_head_dim", 8)
    sample_size = cfg.get("sample_size", 32)
    return UNetConfig(
        image_size=sample_size if isinstance(sample_size, int) else sample_size[0],
        in_channels=cfg.get("in_channels", 3),
        out_channels=cfg.get("out_channels", 3),
        channels=tuple(cfg.get("block_out_channels", (224, 448, 672, 896))),
        attention=tuple(attention),
        layers_per_block=cfg.get("layers_per_block", 2),
        head_dim=0 if head_dim is None else head_dim,
        norm_groups=cfg.get("norm_num_groups", 32),
        norm_eps=cfg.get("norm_eps", 1e-5),
        dropout=cfg.get("dropout", 0.0),
        mid_attention=cfg.get("add_attention", True),
        flip_sin_to_cos=cfg.get("flip_sin_to_cos", True),
        freq_shift=float(cfg.get("freq_shift", 0)),
        downsample_padding=cfg.get("downsample_padding", 1),
    )


def diffusion_config_from_diffusers(unet: UNetConfig, scheduler: dict | None, source: Path) -> DiffusionConfig:
    scheduler = scheduler or {}
    beta_schedule = scheduler.get("beta_schedule", "linear")
    if beta_schedule not in _SCHEDULES:
        raise GenlabError(f"{source}: beta_schedule {beta_schedule!r} is not supported ({', '.join(_SCHEDULES)})")
    if scheduler.get("trained_betas") is not None:
        raise GenlabError(f"{source}: trained_betas are not supported")
    prediction = scheduler.get("prediction_type", "epsilon")
    if prediction not in ("epsilon", "v_prediction"):
        raise GenlabError(f"{source}: prediction_type {prediction!r} is not supported (epsilon, v_prediction)")
    dataset = "digits" if unet.in_channels == 1 else ("emoji64" if unet.image_size == 64 else "emoji32")
    return DiffusionConfig(
        unet=unet, schedule=_SCHEDULES[beta_schedule],
        num_train_timesteps=scheduler.get("num_train_timesteps", 1000),
        beta_start=scheduler.get("beta_start", 1e-4), beta_end=scheduler.get("beta_end", 0.02),
        prediction_type=prediction, dataset=dataset,
    )


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise GenlabError(f"{path}: cannot read JSON ({e})") from None


def _load_weights(unet_dir: Path) -> dict[str, torch.Tensor]:
    st = unet_dir / "diffusion_pytorch_model.safetensors"
    if st.exists():
        return load_tensors(st)
    binary = unet_dir / "diffusion_pytorch_model.bin"
    if binary.exists():
        try:
            return torch.load(binary, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file for the user
            raise GenlabError(f"{binary}: not a loadable weights file ({str(e).splitlines()[0][:120]})") from None
    raise GenlabError(f"{unet_dir}: no diffusion_pytorch_model.safetensors or .bin")


def rename_attention_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers ``...attentions.0.to_q.weight`` (or the old ``...attentions.0.query.weight``) ->
    genlab ``...attentions.0.attn.query.weight``; other keys as they are."""
    out = {}
    for key, value in state.items():
        if ".attentions." in key:
            head, tail = key.split(".attentions.", 1)
            index, rest = tail.split(".", 1)
            name, kind = rest.rsplit(".", 1)
            if name in ATTENTION_KEYS:
                key = f"{head}.attentions.{index}.{ATTENTION_KEYS[name]}.{kind}"
                if value.ndim == 4:  # very old checkpoints stored these projections as 1x1 convs
                    value = value[:, :, 0, 0]
        out[key] = value
    return out


def load_diffusers_unet(src: str | Path) -> tuple[UNet, DiffusionConfig]:
    """Read a diffusers pipeline or UNet2DModel directory into genlab's UNet (weights checked strictly)."""
    src = Path(src)
    if not src.is_dir():
        raise GenlabError(f"{src}: not a directory (expected a diffusers pipeline or unet folder)")
    unet_dir = src / "unet" if (src / "unet" / "config.json").exists() else src
    if not (unet_dir / "config.json").exists():
        raise GenlabError(f"{src}: no config.json (expected a diffusers pipeline or unet folder)")
    unet_cfg = unet_config_from_diffusers(_read_json(unet_dir / "config.json"), unet_dir / "config.json")
    sched_path = next((p for p in (src / "scheduler" / "scheduler_config.json", src / "scheduler_config.json")
                       if p.exists()), None)
    cfg = diffusion_config_from_diffusers(unet_cfg, _read_json(sched_path) if sched_path else None, src)
    model = UNet(unet_cfg)
    load_weights_strict(model, rename_attention_keys(_load_weights(unet_dir)), unet_dir)
    return model, cfg


def convert_unet(src: str | Path, out: str | Path) -> Path:
    model, cfg = load_diffusers_unet(src)
    return save_checkpoint(out, kind="diffusion", config=to_dict(cfg), model=model.state_dict(),
                           meta={"converted_from": str(Path(src).resolve()), "source_format": "diffusers"})
