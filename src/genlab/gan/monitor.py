"""Mode collapse, measured while training: coverage of the data in feature space, and a histogram of classes.

A collapsing generator draws a few images well and forgets the rest. Image quality metrics do not see that — a
collapsed model can have precision 1 — but two signals do:

- *recall* (Kynkäänniemi et al. 2019) and *coverage* (Naeem et al. 2020) in the feature space of genlab's emoji
  network: the fraction of real images that have a generated sample nearby. Both fall as modes are dropped;
  coverage is robust to the outlier real points that make k-NN balls generous;
- the *class histogram*: the feature network's category head labels every sample (Smileys, Animals, Food, ...),
  and the histogram of samples is compared with the histogram of the same head on real images (total variation
  distance, and how many categories the samples reach at all).

The monitor samples the EMA generator with a fixed seed, so successive evaluations differ only by the weights.
Every number carries its sample counts. Only the emoji data sets have a feature network (``eval/features.py``);
for the others the monitor says so and measures nothing.
"""

from __future__ import annotations

import numpy as np
import torch

from ..eval.fid import density_coverage, precision_recall
from .pipeline import generate_images
from .task import GANSpec, load_data


class CollapseMonitor:
    """``measure(G, spec)`` -> precision, recall, density, coverage and class-histogram distance of ``n`` samples
    against ``n_real`` training images (fixed subset), in the emoji feature space."""

    def __init__(self, dataset: str, n: int = 500, n_real: int = 1000, seed: int = 0, k: int = 3, real=None):
        if not dataset.startswith("emoji"):
            raise ValueError(f"no feature network for {dataset!r}: collapse is measured on emoji only")
        from ..eval.features import load_feature_net
        from ..eval.fid import extract_features

        self.dataset, self.n, self.seed, self.k = dataset, n, seed, k
        self.net = load_feature_net()
        real = load_data(dataset, "train") if real is None else real
        pick = np.random.default_rng(seed).choice(len(real.images), size=min(n_real, len(real.images)), replace=False)
        images = real.images[torch.from_numpy(np.sort(pick))]
        self.real_feats = extract_features(images, net=self.net)  # (n_real, D)
        self.category_names = real.category_names
        self.real_hist = self._histogram(self.real_feats)

    def _histogram(self, feats: np.ndarray) -> np.ndarray:
        logits = self.net.category_head(torch.as_tensor(feats, dtype=torch.float32))  # (N, K)
        counts = np.bincount(logits.argmax(1).numpy(), minlength=len(self.category_names))
        return counts / counts.sum()

    @torch.no_grad()
    def measure(self, G, spec: GANSpec) -> dict:
        """The signals for ``n`` samples of the generator ``G`` (fixed seed)."""
        was_training = G.training
        G.eval()
        images = generate_images(G, spec, n=self.n, seed=self.seed)
        G.train(was_training)
        return self.measure_images(images)

    @torch.no_grad()
    def measure_images(self, images: torch.Tensor) -> dict:
        """The signals for uint8 images ``(N, 3, S, S)``."""
        from ..eval.fid import extract_features

        fake = extract_features(images, net=self.net)
        precision, recall = precision_recall(self.real_feats, fake, k=self.k)
        density, coverage = density_coverage(self.real_feats, fake, k=5)
        hist = self._histogram(fake)
        return {
            "collapse/precision": precision,
            "collapse/recall": recall,
            "collapse/density": density,
            "collapse/coverage": coverage,
            "collapse/class_tv": float(0.5 * np.abs(hist - self.real_hist).sum()),
            "collapse/classes_reached": int((hist > 0).sum()),
            "collapse/pixel_std": float(images.float().std(0).mean()),  # spread across samples, per pixel
            "collapse/class_hist_fake": [round(float(v), 4) for v in hist],
            "collapse/class_hist_real": [round(float(v), 4) for v in self.real_hist],
            "collapse/n": len(images),
            "collapse/n_real": len(self.real_feats),
        }
