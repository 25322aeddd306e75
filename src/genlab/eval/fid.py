"""FID, improved precision/recall and a memorisation check, in the feature space of genlab's emoji network.

- Fréchet distance (Heusel et al. 2017): fit a Gaussian to each feature set and measure
  ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``. The trace of the matrix square root is computed from the
  eigenvalues of the symmetric PSD matrix ``S_a^(1/2) S_b S_a^(1/2)``, which has the same spectrum as ``S_a S_b``
  and, unlike ``scipy.linalg.sqrtm`` of the non-symmetric product, no complex round-off to discard.
- Improved precision and recall (Kynkäänniemi et al. 2019): each real feature gets a ball reaching its k-th
  nearest real neighbour; precision is the fraction of generated samples inside some real ball, recall the
  fraction of real samples inside some generated ball.
- Memorisation: the nearest training image of every sample, in pixels and in features, compared with how close
  training images are to *each other*; a sample closer to the training set than training images typically are to
  their own nearest neighbour is a candidate copy.
- Density and coverage (Naeem et al. 2020): the same balls, counted so that outlier real points (whose large
  balls let even a blank image count as "precise") weigh less.
- The real-vs-real floor: the FID that real images of the training split get against the same reference. No
  model can be expected to beat it; it is reported beside every FID.

FID is biased upwards for small sample counts, so every number here carries its sample counts and seed.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import GenlabError
from .features import ASSET_SHA256, EmojiFeatureNet, load_feature_net


@torch.no_grad()
def extract_features(
    images: torch.Tensor | np.ndarray, batch_size: int = 256, net: EmojiFeatureNet | None = None
) -> np.ndarray:
    """uint8 ``(N, 3, H, W)`` -> float64 ``(N, 256)`` embeddings; other sizes are resized to 32 px (antialiased)."""
    x = torch.as_tensor(images)
    if x.ndim != 4 or x.shape[1] != 3 or x.dtype != torch.uint8:
        raise GenlabError(f"features need uint8 images of shape (N, 3, H, W), got {x.dtype} {tuple(x.shape)}")
    net = net or load_feature_net()
    size = net.cfg.image_size
    out = []
    for i in range(0, len(x), batch_size):
        chunk = x[i : i + batch_size]
        if chunk.shape[-1] != size or chunk.shape[-2] != size:
            chunk = F.interpolate(chunk.float() / 255, size=(size, size), mode="bilinear", antialias=True)
        out.append(net.embedding(chunk).double())
    return torch.cat(out).numpy()


def gaussian_frechet_distance(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Fréchet (2-Wasserstein squared) distance between N(mu_a, cov_a) and N(mu_b, cov_b)."""
    w, v = np.linalg.eigh(cov_a)
    sqrt_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T  # S_a^(1/2)
    m = sqrt_a @ cov_b @ sqrt_a
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()  # tr (S_a S_b)^(1/2)
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt)


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """FID between two feature sets ``(N, D)`` and ``(M, D)``."""
    if len(feats_a) < 2 or len(feats_b) < 2:
        raise GenlabError("FID needs at least 2 samples on each side")
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    return gaussian_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def _pairwise(a: torch.Tensor, b: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """Euclidean distances ``(N, M)`` in float64 chunks (exact enough to compare radii)."""
    return torch.cat([torch.cdist(a[i : i + chunk], b) for i in range(0, len(a), chunk)])


def _kth_neighbour_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    d = _pairwise(x, x)  # (N, N); the diagonal (0, the point itself) is the 1st smallest
    return d.kthvalue(k + 1, dim=1).values


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall with k-NN manifolds (Kynkäänniemi et al. 2019)."""
    if len(real) <= k or len(fake) <= k:
        raise GenlabError(f"precision/recall with k={k} needs more than {k} samples on each side")
    r, f = torch.as_tensor(real, dtype=torch.float64), torch.as_tensor(fake, dtype=torch.float64)
    d = _pairwise(f, r)  # (N_fake, N_real)
    precision = (d <= _kth_neighbour_radius(r, k)[None, :]).any(1).double().mean().item()
    recall = (d.t() <= _kth_neighbour_radius(f, k)[None, :]).any(1).double().mean().item()
    return precision, recall


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020), robust to the outlier real points that make precision generous.

    Density counts how many real k-NN balls hold each sample (1 on average for real data); coverage is the
    fraction of real balls that hold at least one sample. A collapsed model can have precision 1, never coverage 1.
    """
    if len(real) <= k or len(fake) < 1:
        raise GenlabError(f"density/coverage with k={k} needs more than {k} real samples")
    r, f = torch.as_tensor(real, dtype=torch.float64), torch.as_tensor(fake, dtype=torch.float64)
    inside = _pairwise(f, r) <= _kth_neighbour_radius(r, k)[None, :]  # (N_fake, N_real)
    return inside.double().sum().item() / (k * len(f)), inside.any(0).double().mean().item()


def _as_space(x: torch.Tensor | np.ndarray, space: str) -> torch.Tensor:
    if space == "pixel":  # uint8 images -> flat [0, 1] vectors (float64: float32 matmul round-off is ~1e-2 here)
        t = torch.as_tensor(x)
        return t.reshape(len(t), -1).double() / 255
    return torch.as_tensor(x, dtype=torch.float64)


def nearest_neighbours(
    fake, train, space: str = "feature", exclude_identical: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """For each ``fake`` item its nearest ``train`` item: (distances ``(N,)``, indices ``(N,)``).

    ``space="pixel"`` takes uint8 images ``(N, 3, H, W)`` (L2 on [0, 1] pixels); ``"feature"`` takes feature rows.
    ``exclude_identical`` (for train against itself) skips items at distance ~0: the item itself and exact
    duplicates, so each item gets its nearest *distinct* neighbour.
    """
    if space not in ("pixel", "feature"):
        raise GenlabError(f"unknown space {space!r}: use pixel or feature")
    a, b = _as_space(fake, space), _as_space(train, space)
    d = _pairwise(a, b)
    if exclude_identical:
        d[d < 1e-4] = float("inf")  # matmul-based cdist leaves ~1e-7 round-off on identical rows
    dist, idx = d.min(dim=1)
    return dist.numpy(), idx.numpy()


def memorisation(fake_images, fake_feats, train_images, train_feats, n_pairs: int = 16) -> dict:
    """How many samples sit closer to a training image than training images sit to each other.

    The reference is the train-train nearest-neighbour distance (each training image to its nearest *distinct*
    training image; OpenMoji draws some glyphs identically, and those twins would make every threshold 0): its
    median is the "typical" distance and its 5th percentile a "near-copy" distance (OpenMoji itself holds
    near-copies, e.g. skin-tone variants). ``pairs`` lists the ``n_pairs`` closest (sample, training
    image) pairs in pixel space for a side-by-side image (:func:`pairs_grid`).
    """
    out: dict = {}
    for space, fake, train in (("pixel", fake_images, train_images), ("feature", fake_feats, train_feats)):
        d_fake, idx = nearest_neighbours(fake, train, space)
        d_train, _ = nearest_neighbours(train, train, space, exclude_identical=True)
        typical, near = float(np.median(d_train)), float(np.percentile(d_train, 5))
        out[space] = {
            "train_train_nn_median": typical,
            "train_train_nn_p5": near,
            "fake_train_nn_median": float(np.median(d_fake)),
            "frac_closer_than_typical": float((d_fake < typical).mean()),
            "frac_closer_than_p5": float((d_fake < near).mean()),
        }
        if space == "pixel":
            order = np.argsort(d_fake)[:n_pairs]
            out["pairs"] = [[int(i), int(idx[i]), round(float(d_fake[i]), 4)] for i in order]
    return out


def pairs_grid(fake_images, train_images, pairs: list, nrow: int = 8):
    """A PIL grid of (sample, its nearest training image) side by side, one pair per two cells."""
    from ..data.images import make_grid

    cells = []
    for i, j, _ in pairs:
        cells += [torch.as_tensor(fake_images[i]), torch.as_tensor(train_images[j])]
    return make_grid(torch.stack(cells), nrow=2 * (nrow // 2))


def real_floor(reference: np.ndarray, candidates: np.ndarray, n: int, seed: int = 0) -> float:
    """FID of ``n`` real images (drawn without replacement from ``candidates``, by ``seed``) against ``reference``.

    With ``candidates`` the training split and ``reference`` the held-out split, this is the FID a perfect model
    would get with ``n`` samples: the floor printed beside every FID.
    """
    if n > len(candidates):
        raise GenlabError(f"the real floor needs {n} real images but only {len(candidates)} are available")
    pick = np.random.default_rng(seed).choice(len(candidates), size=n, replace=False)
    return frechet_distance(np.asarray(candidates)[pick], reference)


_REAL_FEATURES: dict[tuple, np.ndarray] = {}


def real_features(split: str, limit: int | None = None) -> np.ndarray:
    """Features of an emoji split at 32 px, computed once per process (a sampler sweep asks many times)."""
    from ..data.emoji import load_emoji

    key = (ASSET_SHA256, split, limit)
    if key not in _REAL_FEATURES:
        _REAL_FEATURES[key] = extract_features(load_emoji(32, split, limit=limit).images)
    return _REAL_FEATURES[key]


def fid_report(
    fake_images: torch.Tensor | np.ndarray,
    real_split: str = "test",
    n: int | None = None,
    seed: int = 0,
    k: int = 3,
    size: int = 32,
    limit: int | None = None,
) -> dict:
    """FID, precision/recall, density/coverage, the real floor and memorisation stats of uint8 ``(N, 3, H, W)``.

    The reference is the emoji ``real_split`` (the held-out ``test`` split by default). The floor compares ``n``
    real images of the other split with the same reference, so it has the model's sample count (capped by the
    other split's size; ``n_floor`` says how many). Memorisation is checked against the training split at
    ``size`` px, the resolution of the samples. ``limit`` uses a subset of the emoji set (for tests only).
    """
    from ..data.emoji import load_emoji

    if real_split not in ("test", "train"):
        raise GenlabError(f"unknown reference split {real_split!r}: use test or train")
    fake = torch.as_tensor(fake_images)
    n = len(fake) if n is None else n
    if n > len(fake):
        raise GenlabError(f"asked for n={n} samples but got {len(fake)} images")
    fake = fake[:n]
    other_split = "train" if real_split == "test" else "test"
    f_fake = extract_features(fake)
    f_real, f_other = real_features(real_split, limit), real_features(other_split, limit)
    n_floor = min(n, len(f_other))
    precision, recall = precision_recall(f_real, f_fake, k=k)
    density, coverage = density_coverage(f_real, f_fake, k=5)
    train = load_emoji(size, "train", limit=limit)
    train_feats = f_other if real_split == "test" else f_real
    return {
        "fid": frechet_distance(f_fake, f_real),
        "fid_floor": real_floor(f_real, f_other, n_floor, seed),
        "precision": precision,
        "recall": recall,
        "k": k,
        "density": density,
        "coverage": coverage,
        "k_density_coverage": 5,
        "n": n,
        "n_real": len(f_real),
        "n_floor": n_floor,
        "real_split": real_split,
        "seed": seed,
        "feature_net_sha256": ASSET_SHA256,
        "memorisation": memorisation(fake, f_fake, train.images, train_feats),
    }
