"""The bundled GAN against the bundled DDPM under one evaluation, and the GAN's latent-space measurements.

    python benchmarks/gan_eval.py [--gan emoji32-gan] [--ddpm emoji32-ddpm] [--n 2000] [--seed 0]

Both models draw ``n`` samples with ``seed``; both are scored by :func:`genlab.eval.fid.fid_report` against the
held-out OpenMoji split at 32 px in genlab's emoji feature space (FID, precision, recall, density, coverage, the
real-vs-real floor, memorisation): the same evaluation ``benchmarks/diffusion_sweep.py`` gives the DDPM. The DDPM
samples with the sampler and precision its own sweep found best (``metrics.json``: Heun, 10 steps, bf16). Sampling
time per image is measured for both at batch 100 (GAN: one forward pass; DDPM: 19 UNet evaluations).

The GAN also gets: the perceptual path length of z-slerps and w-lerps (StyleGAN sec. 4.2; distance: genlab's
LPIPS-like emoji-feature distance, ``gan/latent.py``), FID at truncation psi 0.7, and the reconstruction distance of
held-out emoji projected into w (``--project K`` of them, 300 steps each). Writes
``benchmarks/results/gan_eval.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from genlab.eval.fid import fid_report  # noqa: E402


def _summary(report: dict) -> dict:
    keep = ("fid", "fid_floor", "precision", "recall", "density", "coverage", "n", "n_real", "seed", "real_split")
    out = {k: report[k] for k in keep}
    out["memorisation_frac_closer_than_p5_pixel"] = report["memorisation"]["pixel"]["frac_closer_than_p5"]
    return out


def evaluate_gan(name: str, n: int, seed: int, n_ppl: int, n_project: int, project_steps: int) -> dict:
    from genlab.data.emoji import load_emoji
    from genlab.gan.latent import PerceptualDistance, path_length, project
    from genlab.gan.pipeline import generate_images, load

    loaded = load(name)
    G, spec = loaded.G, loaded.spec
    generate_images(G, spec, 100, seed=seed + 1)  # warm-up
    t0 = time.perf_counter()
    images = generate_images(G, spec, n, seed=seed, batch_size=100)
    seconds = time.perf_counter() - t0
    out = {"model": name, "weights_hash": loaded.weights_hash, "step": loaded.meta.get("step"),
           "seconds_per_image": seconds / n, **_summary(fid_report(images, n=n, seed=seed))}
    out["psi_0.7"] = _summary(fid_report(generate_images(G, spec, n, seed=seed, psi=0.7), n=n, seed=seed))
    distance = PerceptualDistance()
    out["ppl"] = {space: path_length(G, spec, space, n=n_ppl, seed=seed, distance=distance) for space in ("z", "w")}
    if n_project:
        held_out = load_emoji(32, "test")
        pick = torch.linspace(0, len(held_out) - 1, n_project).round().long()
        result = project(G, spec, held_out.images[pick], steps=project_steps, seed=seed, distance=distance)
        out["projection"] = {"n": n_project, "steps": project_steps, "split": "test",
                             "perceptual_mean": sum(result["perceptual"]) / n_project,
                             "pixel_rmse_mean": sum(result["pixel_rmse"]) / n_project,
                             "chars": [held_out.chars[i] for i in pick.tolist()]}
    return out


def evaluate_ddpm(name: str, n: int, seed: int, precision: str) -> dict:
    from genlab.diffusion.pipeline import BUNDLED, generate, load

    loaded = load(name)
    best = {"sampler": "heun", "steps": 10}
    metrics = BUNDLED.get(name, Path(name)) / "metrics.json"
    if metrics.exists():
        best = {k: json.loads(metrics.read_text())["best"][k] for k in ("sampler", "steps")}
    t0 = time.perf_counter()
    images = generate(loaded.model, loaded.cfg, n=n, seed=seed, batch_size=100, precision=precision, **best)
    seconds = time.perf_counter() - t0
    return {"model": name, "weights_hash": loaded.weights_hash, **best, "precision_mode": precision,
            "seconds_per_image": seconds / n,
            **_summary(fid_report(images, n=n, seed=seed))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gan", default="emoji32-gan")
    parser.add_argument("--ddpm", default="emoji32-ddpm")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ppl-n", type=int, default=2000)
    parser.add_argument("--project", type=int, default=32, help="held-out emoji to project (0: skip)")
    parser.add_argument("--project-steps", type=int, default=300)
    parser.add_argument("--ddpm-precision", choices=["fp32", "bf16"], default="bf16",
                        help="as the DDPM's own sweep measured it (its metrics.json)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--result", default="gan_eval", help="benchmarks/results/RESULT.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gan = evaluate_gan(args.gan, args.n, args.seed, args.ppl_n, args.project, args.project_steps)
    ddpm = evaluate_ddpm(args.ddpm, args.n, args.seed, args.ddpm_precision)
    path = write_result(args.result, {
        "evaluation": "fid_report: emoji feature network, held-out split, same n and seed for both models",
        "gan": gan, "ddpm": ddpm,
        "diversity_gap": {k: gan[k] - ddpm[k] for k in ("recall", "coverage", "precision", "density", "fid")},
        "speedup_gan_over_ddpm_per_image": ddpm["seconds_per_image"] / gan["seconds_per_image"],
    })
    print(json.dumps({"gan": {k: gan[k] for k in ("fid", "precision", "recall", "coverage")},
                      "ddpm": {k: ddpm[k] for k in ("fid", "precision", "recall", "coverage")}}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
