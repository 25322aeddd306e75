"""The GAN section of ``genlab tour``: samples, an animated latent walk, a truncation row, style mixing, a
projection of a held-out emoji, and the collapse curve of the bundled model's training run."""

from __future__ import annotations

import html
from pathlib import Path

import torch

from ..data.images import make_grid, save_png
from .latent import PerceptualDistance, project, save_animation, style_mixing_grid, truncation_row, walk
from .pipeline import generate_images, load, provenance, save_grid


def _figure(src: str, caption: str, width: int) -> str:
    return (f"<figure><img src='{html.escape(src)}' width='{width}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def gan_section(out_dir: Path, quick: bool) -> str:
    name = "emoji32-gan"
    loaded = load(name)  # a GenlabError (not trained yet) becomes the section's one-line note
    G, spec = loaded.G, loaded.spec
    out = out_dir / "gan"
    info = provenance(loaded, seed=0)
    n = 16 if quick else 64
    save_grid(generate_images(G, spec, n, seed=0), out / "samples.png", {**info, "n": n}, nrow=8)
    save_animation(walk(G, spec, seed=0, frames=24 if quick else 90, space="w"), out / "walk.gif",
                   {**info, "walk": "w"}, fps=15)
    psis = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)
    save_grid(truncation_row(G, spec, seed=1, psis=psis, count=4), out / "truncation.png", {**info, "psi": psis},
              nrow=len(psis))
    save_grid(style_mixing_grid(G, spec, [10, 11, 12, 13], [20, 21, 22, 23]), out / "mixing.png", info, nrow=5)
    parts = [
        f"<h2>GAN — StyleGAN2 on OpenMoji emoji (32 px)</h2><p>The bundled <code>{name}</code> (weights hash "
        f"<code>{loaded.weights_hash}</code>, <code>recipes/emoji32_gan.py</code>) maps a latent z through its "
        "mapping network to w, and w to an image in one forward pass. The walk moves linearly through w; the "
        "truncation rows pull w towards its average (psi 1 to 0); in the mixing grid each cell takes its coarse "
        "styles from the top row and its fine styles from the left column.</p>",
        _figure("gan/samples.png", "samples, seed 0, psi 1", 400),
        _figure("gan/walk.gif", "a looping walk through 4 latents, lerp in w", 256),
        _figure("gan/truncation.png", "truncation: psi 1, 0.8, ..., 0 per row", 300),
        _figure("gan/mixing.png", "style mixing", 300),
    ]
    parts.append(_projection(G, spec, out, info, steps=50 if quick else 300))
    parts.append(_collapse_table(loaded.meta))
    return "\n".join(parts)


def _projection(G, spec, out: Path, info: dict, steps: int) -> str:
    from ..data.emoji import load_emoji

    held_out = load_emoji(32, "test")
    target = held_out.images[0]
    result = project(G, spec, target, steps=steps, distance=PerceptualDistance())
    pair = torch.stack([target, result["image"]])  # (2, C, S, S)
    save_png(make_grid(pair, nrow=2), out / "projection.png", {**info, "target": held_out.chars[0], "steps": steps})
    return _figure("gan/projection.png", f"projection of the held-out {held_out.captions[0] or 'emoji'} "
                   f"(left) into w (right): perceptual distance {result['perceptual']:.3f}", 160)


def _collapse_table(meta: dict) -> str:
    curve = meta.get("collapse_curve")
    if not curve:
        return "<p class='note'>The bundled model's collapse curve is not recorded in its meta.json.</p>"
    rows = "".join(f"<tr><td>{r['step']}</td><td>{r['collapse/recall']:.3f}</td><td>{r['collapse/coverage']:.3f}"
                   f"</td><td>{r['collapse/class_tv']:.3f}</td></tr>" for r in curve)
    return ("<p>Mode collapse measured during training (EMA generator, 500 samples vs 1,000 training images, "
            "emoji feature space):</p><table><tr><th>step</th><th>recall</th><th>coverage</th>"
            f"<th>class TV distance</th></tr>{rows}</table>")
