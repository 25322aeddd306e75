"""The diffusion section of ``genlab tour``: a grid per sampler, the denoising trajectory, FID against steps."""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

import torch

from ..data.images import make_grid, save_png
from .pipeline import generate, load, provenance, save_grid

TOUR_SAMPLERS = [("ddpm", 50), ("ddim", 20), ("dpmpp-2m", 20), ("euler", 20), ("heun", 10)]


def _figure(src: str, caption: str, width: int) -> str:
    return (f"<figure><img src='{html.escape(src)}' width='{width}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def diffusion_section(out_dir: Path, quick: bool) -> str:
    from ..tour import svg_line_plot

    name = "emoji32-ddpm"
    loaded = load(name)
    out = out_dir / "diffusion"
    n = 8 if quick else 16
    parts = [
        "<h2>Pixel diffusion — DDPM on OpenMoji emoji (32 px)</h2>",
        f"<p>The bundled model <code>{name}</code> ({sum(p.numel() for p in loaded.model.parameters()) / 1e6:.2f}M "
        f"parameters, weights hash <code>{loaded.weights_hash}</code>, trained by "
        "<code>recipes/emoji32_ddpm.py</code>) turns Gaussian noise into emoji by removing noise step by step. "
        "The same network runs under five samplers; seed 0 everywhere, so each grid starts from the same noise. "
        "Every PNG carries its provenance (model hash, sampler, steps, seed) in a text chunk.</p>",
    ]
    for sampler, steps in TOUR_SAMPLERS:
        t0 = time.perf_counter()
        images = generate(loaded.model, loaded.cfg, n=n, sampler=sampler, steps=steps, seed=0)
        dt = time.perf_counter() - t0
        file = f"diffusion/{sampler}-{steps}.png"
        save_grid(images, out_dir / file, provenance(loaded, sampler, steps, 0, n), nrow=4)
        parts.append(_figure(file, f"{sampler}, {steps} steps ({dt:.1f} s for {n})", 200))

    # The trajectory: the sampler's running estimate of the clean image x0 as noise is removed.
    frames: list[torch.Tensor] = []
    picks = {0, 2, 4, 7, 10, 14, 19}

    def keep(i, t, x, x0):
        if i in picks:
            frames.append(torch.cat([x[:4], x0[:4]]))

    generate(loaded.model, loaded.cfg, n=4, sampler="dpmpp-2m", steps=20, seed=1, callback=keep)
    from .task import to_uint8

    stacked = torch.stack(frames, dim=1)  # (8, frames, C, H, W): rows of x_t then rows of predicted x0
    grid = to_uint8(stacked.reshape(-1, *stacked.shape[2:]).float())
    save_png(make_grid(grid, nrow=len(frames)), out / "trajectory.png",
             provenance(loaded, "dpmpp-2m", 20, 1, 4, what="trajectory: x_t rows 1-4, predicted x0 rows 5-8"))
    parts.append("<h3>Denoising trajectory</h3>")
    parts.append(_figure("diffusion/trajectory.png", f"DPM++ 2M, 20 steps, steps {sorted(picks)}: top four rows x_t, "
                         "bottom four the model's estimate of the clean image at that step", 320))

    metrics_path = Path(loaded.source) / "metrics.json"
    parts.append("<h3>Quality against sampling steps</h3>")
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else None
    if metrics is not None and metrics.get("weights_hash") not in (None, loaded.weights_hash):
        parts.append("<p class='note'>The bundled sweep results were measured on other weights; not shown.</p>")
    elif metrics is not None:
        rows = metrics.get("sweep", [])
        series: dict[str, list[tuple[float, float]]] = {}
        for r in rows:
            series.setdefault(r["sampler"], []).append((r["steps"], r["fid"]))
        parts.append(svg_line_plot(series, "sampling steps (heun: 2n-1 model evaluations)", "FID (lower is better)"))
        floor = metrics.get("real_floor_fid")
        parts.append(f"<p class='note'>FID in genlab's emoji feature space, {metrics.get('n', '?')} samples per point "
                     f"against the held-out split (seed {metrics.get('seed', '?')}); real-vs-real floor "
                     f"{floor if floor is None else round(floor, 2)}. From <code>{metrics.get('command', '')}</code>."
                     "</p>")
    else:
        parts.append("<p class='note'>No sweep results are bundled with this model yet.</p>")
    return "\n".join(parts)
