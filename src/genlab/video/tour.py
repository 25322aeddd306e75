"""The video section of ``genlab tour``: the bundled joint model (temporal attention) and its frame-by-frame
baseline, the same seeds side by side, beside clips of the sprite world they learned; and each one's object
permanence and coherence measured on the clips shown (:mod:`.coherence`), with the rendered clips' numbers as the
ceiling."""

from __future__ import annotations

import html
from pathlib import Path

from ..errors import GenlabError
from .coherence import coherence, truth_clips
from .data import load_bank
from .pipeline import generate, load, provenance, save_clips

MODELS = ("sprites-video", "sprites-video-frames")
SCORES = ("count", "identity", "identity_after_occlusion", "permanence", "jerk")


def _figure(src: str, caption: str) -> str:
    return (f"<figure><img src='{html.escape(src)}' width='512'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _row(name: str, scores: dict) -> str:
    cells = "".join(f"<td>{'—' if scores.get(k) is None else f'{scores[k]:.3f}'}</td>" for k in SCORES)
    return f"<tr><td>{html.escape(name)}</td>{cells}</tr>"


def video_section(out_dir: Path, quick: bool) -> str:
    loaded = {name: load(name) for name in MODELS}  # a GenlabError (not trained yet) becomes the section's note
    joint = loaded[MODELS[0]]
    cfg = joint.cfg
    if loaded[MODELS[1]].cfg.unet.frames != cfg.unet.frames or loaded[MODELS[1]].cfg.data != cfg.data:
        raise GenlabError("the bundled sprites-video and sprites-video-frames were trained on different clips")
    n, frames, steps = (4, min(8, cfg.unet.frames), 10) if quick else (8, cfg.unet.frames, 50)
    out = out_dir / "video"
    bank = load_bank(cfg.data)
    real = truth_clips(bank, cfg.data, frames, n, seed=1, split="train")
    save_clips(real, out / "real.gif", {"rendered": True, "frames": frames, "n": n, "seed": 1}, fps=cfg.unet.fps)
    parts = [
        "<h2>Video diffusion — sprites that move, hide and reappear</h2>"
        "<p>Each clip is denoised as one sample by a space-time UNet (Ho et al. 2022): the image UNet's layers on "
        "every frame, plus attention across frames. The frame-by-frame baseline is the same UNet with no temporal "
        "attention, so each frame is an independent image. Same seeds, same sampler (DDIM, "
        f"{steps} steps), {frames} frames.</p>",
        _figure("video/real.gif", f"{n} rendered clips of the training sprites (what the models learned from)"),
    ]
    rows = [_row("rendered clips (ceiling)", coherence(real, bank, cfg.data))]
    for name, model in loaded.items():
        video = generate(model.model, model.cfg, n=n, frames=frames, sampler="ddim", steps=steps, seed=0)
        save_clips(video, out / f"{name}.gif", provenance(model, "ddim", steps, 0, n, frames), fps=cfg.unet.fps)
        parts.append(_figure(f"video/{name}.gif", f"{name} (weights hash {model.weights_hash}), seed 0"))
        rows.append(_row(name, coherence(video, bank, cfg.data)))
    header = "".join(f"<th>{k}</th>" for k in SCORES)
    parts.append(f"<p>Permanence and coherence of the {n} clips shown (1 is perfect; jerk in pixels, 0 is "
                 "perfectly smooth; <code>genlab eval video</code> measures more clips and lengths):</p>"
                 f"<table><tr><th>clips</th>{header}</tr>{''.join(rows)}</table>")
    return "\n".join(parts)
