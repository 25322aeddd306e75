"""The latent diffusion section of ``genlab tour``: prompts x guidance scale, and unconditional beside conditional."""

from __future__ import annotations

import html
import time
from pathlib import Path

import torch

from .pipeline import generate, load, provenance, save_images

GUIDANCE = (0.0, 1.0, 2.0, 4.0, 8.0)
# Two training captions, then two held-out combinations (a seen object in an unseen tone / colour).
PROMPTS = ("grinning face", "red apple", "waving hand medium-dark skin tone", "blue heart")


def _figure(src: str, caption: str, width: int) -> str:
    return (f"<figure><img src='{html.escape(src)}' width='{width}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def latent_section(out_dir: Path, quick: bool, model: str = "emoji64-ldm") -> str:
    loaded = load(model)
    out, steps = out_dir / "latent", 10 if quick else 25
    n_params = sum(p.numel() for p in loaded.model.unet.parameters()) / 1e6
    parts = [
        "<h2>Latent diffusion steered by text — 64 px OpenMoji</h2>",
        f"<p>The bundled <code>{model}</code> (UNet {n_params:.2f}M parameters, hash <code>{loaded.hashes['model']}"
        f"</code>; its autoencoder <code>{html.escape(loaded.refs.get('vae', ''))}</code>, hash <code>"
        f"{loaded.hashes.get('vae')}</code>) denoises 16 x 16 x 4 latents, reads the prompt through cross-attention "
        "at every step, and is steered by classifier-free guidance; the autoencoder decodes the result. Rows: "
        f"prompts (the last two are held-out combinations); columns: guidance {', '.join(map(str, GUIDANCE))}. "
        f"DPM++ 2M Karras, {steps} steps, seed 0 for every cell: each column starts from the same noise.</p>",
    ]
    t0 = time.perf_counter()
    prompts = [p for p in PROMPTS for _ in GUIDANCE]
    cells = [generate(loaded, p, guidance=g, steps=steps, n=1, seed=0) for p in PROMPTS for g in GUIDANCE]
    info = provenance(loaded, " | ".join(PROMPTS), "", None, "dpmpp-2m-karras", steps, 0, len(prompts),
                      guidance_per_column=list(GUIDANCE), what="rows: prompts, columns: guidance scales")
    save_images(torch.cat(cells), out / "guidance_grid.png", {k: v for k, v in info.items() if k != "prompt"},
                nrow=len(GUIDANCE))
    parts.append(_figure("latent/guidance_grid.png", f"prompts x guidance ({time.perf_counter() - t0:.1f} s)", 360))
    n = 4 if quick else 8
    for guidance, label in ((0.0, "unconditional (guidance 0)"), (4.0, "'grinning face', guidance 4")):
        images = generate(loaded, "grinning face", guidance=guidance, steps=steps, n=n, seed=1)
        file = f"latent/{'unconditional' if guidance == 0 else 'conditional'}.png"
        save_images(images, out_dir / file, provenance(loaded, "grinning face", "", guidance, "dpmpp-2m-karras",
                                                       steps, 1, n))
        parts.append(_figure(file, label + ", same seed", 200))
    return "\n".join(parts)
