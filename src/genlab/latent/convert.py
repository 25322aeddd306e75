"""diffusers weights -> genlab latent diffusion: ``AutoencoderKL`` (Stable Diffusion's VAE format) and
``UNet2DConditionModel`` (its text-conditioned UNet).

Both use diffusers' module names but for attention and transformer blocks, which are genlab's shared ones
(:mod:`genlab.nn.attention`). What this module does: read a diffusers config, refuse in one line any option the
genlab modules do not implement, rename the keys, and check the weights strictly.

Key map (diffusers -> genlab), everything else as it is:

- mid-block attention of the VAE: ``to_q/to_k/to_v/to_out.0`` -> ``attn.query/key/value/out``
  (:func:`genlab.interop.diffusers.rename_attention_keys`, shared with the pixel UNet);
- transformer blocks of the UNet (``...attentions.i.transformer_blocks.j.``): ``norm1/attn1`` -> ``attn_ln/attn``,
  ``norm2/attn2`` -> ``cross_attn_ln/cross_attn``, ``norm3`` -> ``mlp_ln``, ``ff.net.0.proj`` (the GEGLU's fused
  ``[value; gate]`` projection) -> ``mlp.up`` and ``mlp.gate`` (its halves), ``ff.net.2`` -> ``mlp.down``;
- ``proj_in``/``proj_out`` stored as 1x1 convs (``use_linear_projection=False``, Stable Diffusion 1.x) are the same
  linear maps: their ``(C, C, 1, 1)`` weights are squeezed to ``(C, C)``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import load_weights_strict, save_checkpoint
from ..config import to_dict
from ..diffusion.model import UNet, UNetConfig
from ..errors import GenlabError
from ..interop.diffusers import _load_weights, _read_json, rename_attention_keys
from .vae import AutoencoderKL, VAEConfig

VAE_KIND = "vae"

# ---------------------------------------------------------------------------------------------------------------
# Config translation: each refuses, in one line naming the key, what genlab's modules cannot express.


def _require(cfg: dict, key: str, allowed: tuple, source: Path, what: str) -> None:
    value = cfg.get(key, allowed[0])
    if isinstance(value, list):
        value = tuple(value)
    if value not in allowed:
        raise GenlabError(f"{source}: {key}={value!r} is not supported by genlab's {what} (supported: "
                          f"{', '.join(map(repr, allowed))})")


def _one_value(cfg: dict, key: str, default: Any, source: Path) -> Any:
    """A setting diffusers allows per stage (an int or a list): genlab needs the same value for every stage."""
    value = cfg.get(key, default)
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            raise GenlabError(f"{source}: {key}={list(value)} differs between stages; genlab needs one value")
        value = value[0]
    return value


def vae_config_from_diffusers(cfg: dict, source: Path) -> VAEConfig:
    """Translate an ``AutoencoderKL`` config."""
    if cfg.get("_class_name", "AutoencoderKL") != "AutoencoderKL":
        raise GenlabError(f"{source}: a {cfg.get('_class_name')} is not an AutoencoderKL")
    what = "VAE"
    _require(cfg, "act_fn", ("silu",), source, what)
    _require(cfg, "latents_mean", (None,), source, what)
    _require(cfg, "latents_std", (None,), source, what)
    channels = tuple(cfg.get("block_out_channels", (64,)))
    down = tuple(cfg.get("down_block_types", ("DownEncoderBlock2D",)))
    up = tuple(cfg.get("up_block_types", ("UpDecoderBlock2D",)))
    if down != ("DownEncoderBlock2D",) * len(channels) or up != ("UpDecoderBlock2D",) * len(channels):
        raise GenlabError(f"{source}: block types {down} / {up} are not supported (DownEncoderBlock2D and "
                          f"UpDecoderBlock2D, one per entry of block_out_channels)")
    size = cfg.get("sample_size", 32)
    return VAEConfig(
        image_size=size[0] if isinstance(size, (list, tuple)) else size,
        in_channels=cfg.get("in_channels", 3), out_channels=cfg.get("out_channels", 3), channels=channels,
        layers_per_block=cfg.get("layers_per_block", 1), latent_channels=cfg.get("latent_channels", 4),
        norm_groups=cfg.get("norm_num_groups", 32), mid_attention=cfg.get("mid_block_add_attention", True),
        quant_conv=cfg.get("use_quant_conv", True), post_quant_conv=cfg.get("use_post_quant_conv", True),
        scaling_factor=float(cfg.get("scaling_factor", 0.18215)), shift_factor=float(cfg.get("shift_factor") or 0.0),
    )


# Options of UNet2DConditionModel that genlab's UNet does not implement, with the values it does.
_COND_UNET_FIXED = {
    "center_input_sample": (False,), "act_fn": ("silu",), "resnet_time_scale_shift": ("default",),
    "time_embedding_type": ("positional",), "class_embed_type": (None,), "addition_embed_type": (None,),
    "encoder_hid_dim": (None,), "num_class_embeds": (None,), "dual_cross_attention": (False,),
    "only_cross_attention": (False,), "mid_block_type": ("UNetMidBlock2DCrossAttn",),
    "mid_block_scale_factor": (1, 1.0), "resnet_skip_time_act": (False,), "resnet_out_scale_factor": (1.0, 1),
    "time_embedding_dim": (None,), "time_embedding_act_fn": (None,), "timestep_post_act": (None,),
    "time_cond_proj_dim": (None,), "conv_in_kernel": (3,), "conv_out_kernel": (3,), "attention_type": ("default",),
    "class_embeddings_concat": (False,), "mid_block_only_cross_attention": (None, False),
    "cross_attention_norm": (None,), "reverse_transformer_layers_per_block": (None,), "num_attention_heads": (None,),
}


def cond_unet_config_from_diffusers(cfg: dict, source: Path) -> UNetConfig:
    """Translate a ``UNet2DConditionModel`` config (Stable Diffusion 1.x/2.x shapes)."""
    if cfg.get("_class_name", "UNet2DConditionModel") != "UNet2DConditionModel":
        raise GenlabError(f"{source}: a {cfg.get('_class_name')} is not a UNet2DConditionModel")
    for key, allowed in _COND_UNET_FIXED.items():
        _require(cfg, key, allowed, source, "UNet")
    down = cfg.get("down_block_types", ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"])
    up = cfg.get("up_block_types", ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3)
    attention = []
    for kind in down:
        if kind not in ("DownBlock2D", "CrossAttnDownBlock2D"):
            raise GenlabError(f"{source}: down block {kind} is not supported (DownBlock2D, CrossAttnDownBlock2D)")
        attention.append(kind == "CrossAttnDownBlock2D")
    mirrored = ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)]
    if list(up) != mirrored:
        raise GenlabError(f"{source}: up_block_types {list(up)} must mirror the down blocks ({mirrored})")
    channels = tuple(cfg.get("block_out_channels", (320, 640, 1280, 1280)))
    # diffusers' "attention_head_dim" of this class is the number of heads (its docstring's naming issue #2011).
    heads = cfg.get("attention_head_dim", 8)
    num_heads, head_dim = 0, 0
    if isinstance(heads, int) or len(set(heads)) == 1:
        num_heads = heads if isinstance(heads, int) else heads[0]
    elif len({c // h for c, h in zip(channels, heads)}) == 1:
        head_dim = channels[0] // heads[0]  # Stable Diffusion 2: heads differ per stage, 64 channels each
    else:
        raise GenlabError(f"{source}: attention_head_dim={list(heads)} gives a different head width per stage")
    size = cfg.get("sample_size", 64)
    return UNetConfig(
        image_size=size[0] if isinstance(size, (list, tuple)) else (size or 64),
        in_channels=cfg.get("in_channels", 4), out_channels=cfg.get("out_channels", 4), channels=channels,
        attention=tuple(attention), layers_per_block=_one_value(cfg, "layers_per_block", 2, source),
        head_dim=head_dim, num_heads=num_heads, norm_groups=cfg.get("norm_num_groups", 32),
        norm_eps=cfg.get("norm_eps", 1e-5), dropout=cfg.get("dropout", 0.0), mid_attention=True,
        flip_sin_to_cos=cfg.get("flip_sin_to_cos", True), freq_shift=float(cfg.get("freq_shift", 0)),
        downsample_padding=cfg.get("downsample_padding", 1),
        cross_attention_dim=_one_value(cfg, "cross_attention_dim", 1280, source),
        transformer_layers=_one_value(cfg, "transformer_layers_per_block", 1, source),
    )


# ---------------------------------------------------------------------------------------------------------------
# Keys

_BLOCK_KEYS = {"norm1": "attn_ln", "attn1": "attn", "norm2": "cross_attn_ln", "attn2": "cross_attn",
               "norm3": "mlp_ln", "ff.net.2": "mlp.down"}
_PROJ_KEYS = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "out"}
_BLOCK_PATTERN = re.compile(r"^(.*\.transformer_blocks\.\d+)\.(.+)\.(weight|bias)$")


def rename_transformer_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers ``Transformer2DModel`` keys -> genlab ``SpatialTransformer`` keys (module docstring)."""
    out = {}
    for key, value in state.items():
        match = _BLOCK_PATTERN.match(key)
        if key.endswith(("proj_in.weight", "proj_out.weight")) and value.ndim == 4:
            value = value[:, :, 0, 0]  # a 1x1 conv is a linear map over channels
        if not match:
            out[key] = value
            continue
        head, name, kind = match.groups()
        if name == "ff.net.0.proj":  # GEGLU: hidden, gate = proj(x).chunk(2)
            value, gate = value.chunk(2, dim=0)
            out[f"{head}.mlp.gate.{kind}"] = gate
            name = "mlp.up"
        else:
            for old, new in _BLOCK_KEYS.items():
                if name == old or name.startswith(old + "."):
                    name = new + name[len(old):]
                    break
            module, _, proj = name.partition(".")
            if module in ("attn", "cross_attn") and proj in _PROJ_KEYS:
                name = f"{module}.{_PROJ_KEYS[proj]}"
        out[f"{head}.{name}.{kind}"] = value
    return out


# ---------------------------------------------------------------------------------------------------------------
# Loading and converting directories


def _model_dir(src: str | Path, sub: str) -> Path:
    src = Path(src)
    if not src.is_dir():
        raise GenlabError(f"{src}: not a directory (expected a diffusers pipeline or a {sub} folder)")
    folder = src / sub if (src / sub / "config.json").exists() else src
    if not (folder / "config.json").exists():
        raise GenlabError(f"{src}: no config.json (expected a diffusers pipeline or a {sub} folder)")
    return folder


def load_diffusers_vae(src: str | Path) -> tuple[AutoencoderKL, VAEConfig]:
    """A diffusers pipeline (its ``vae/``) or ``AutoencoderKL`` directory -> genlab's autoencoder."""
    folder = _model_dir(src, "vae")
    cfg = vae_config_from_diffusers(_read_json(folder / "config.json"), folder / "config.json")
    model = AutoencoderKL(cfg)
    load_weights_strict(model, rename_attention_keys(_load_weights(folder)), folder)
    return model.eval(), cfg


def load_diffusers_cond_unet(src: str | Path) -> tuple[UNet, UNetConfig]:
    """A diffusers pipeline (its ``unet/``) or ``UNet2DConditionModel`` directory -> genlab's conditional UNet."""
    folder = _model_dir(src, "unet")
    cfg = cond_unet_config_from_diffusers(_read_json(folder / "config.json"), folder / "config.json")
    model = UNet(cfg)
    load_weights_strict(model, rename_transformer_keys(_load_weights(folder)), folder)
    return model.eval(), cfg


def save_vae(path: str | Path, vae: AutoencoderKL, meta: dict | None = None) -> Path:
    """A genlab VAE checkpoint: kind ``vae``, config ``{"vae": ...}``, weights under ``vae.`` (as a training run
    stores them, next to its discriminator's)."""
    return save_checkpoint(path, kind=VAE_KIND, config={"vae": to_dict(vae.cfg)},
                           model={f"vae.{k}": v for k, v in vae.state_dict().items()}, meta=meta)


def convert_vae(src: str | Path, out: str | Path) -> Path:
    model, _ = load_diffusers_vae(src)
    return save_vae(out, model, {"converted_from": str(Path(src).resolve()), "source_format": "diffusers"})
