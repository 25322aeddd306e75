"""The precision / recall / density / coverage that the collapse monitor logs (``eval/fid.py``) against a
brute-force numpy computation of their definitions (Kynkäänniemi et al. 2019; Naeem et al. 2020)."""

import numpy as np
import pytest

from genlab.eval.fid import density_coverage, precision_recall


def _radii(x, k):
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    return np.array([np.sort(row)[k] for row in d])  # row[0] is the point itself


def _brute_force(real, fake, k_pr, k_dc):
    r_real, r_fake = _radii(real, k_pr), _radii(fake, k_pr)
    precision = np.mean([any(np.linalg.norm(f - r) <= rad for r, rad in zip(real, r_real)) for f in fake])
    recall = np.mean([any(np.linalg.norm(r - f) <= rad for f, rad in zip(fake, r_fake)) for r in real])
    r_dc = _radii(real, k_dc)
    inside = np.array([[np.linalg.norm(f - r) <= rad for r, rad in zip(real, r_dc)] for f in fake])  # (M, N)
    density = inside.sum() / (k_dc * len(fake))
    coverage = inside.any(0).mean()
    return precision, recall, density, coverage


@pytest.mark.parametrize("shift", [0.0, 0.7, 3.0])
def test_prdc_equals_brute_force(shift):
    rng = np.random.default_rng(int(shift * 10))
    real = rng.normal(size=(120, 5))
    fake = np.concatenate([rng.normal(size=(60, 5)) * 0.5 + shift, rng.normal(size=(40, 5))])
    precision, recall, density, coverage = _brute_force(real, fake, 3, 5)
    assert precision_recall(real, fake, k=3) == pytest.approx((precision, recall), abs=1e-12)
    assert density_coverage(real, fake, k=5) == pytest.approx((density, coverage), abs=1e-12)
