"""How good an autoencoder is: PSNR, SSIM and FID of its reconstructions of held-out images.

FID is measured in genlab's emoji feature space (:mod:`genlab.eval.fid`) between the reconstructions and the very
images they reconstruct; beside it, the FID that as many real *training* images get against those held-out images
(the distance between two real samples, which a generative model cannot beat; a reconstruction can).
"""

from __future__ import annotations

import torch

from ..eval.fid import extract_features, frechet_distance, real_floor
from .data import load_captioned_emoji
from .loss import psnr, ssim
from .task import reconstruct
from .vae import AutoencoderKL


@torch.no_grad()
def vae_report(vae: AutoencoderKL, n: int | None = None, seed: int = 0) -> dict:
    """Scores on the first ``n`` (default all) images of the held-out ``test`` split at the VAE's size."""
    size = vae.cfg.image_size
    images = load_captioned_emoji(size, "test").images[:n]
    rec = reconstruct(vae, images)
    x, y = images.float() / 255, rec.float() / 255
    f_real, f_rec = extract_features(images), extract_features(rec)
    f_train = extract_features(load_captioned_emoji(size, "train").images)
    return {
        "split": "test", "n": len(images), "size": size, "seed": seed,
        "psnr": psnr(x, y).mean().item(), "ssim": ssim(x, y).mean().item(),
        "fid_reconstruction": frechet_distance(f_rec, f_real),
        "fid_real_train_vs_test": real_floor(f_real, f_train, min(len(images), len(f_train)), seed),
    }
