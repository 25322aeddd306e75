"""Fréchet distance, improved precision/recall, nearest neighbours and the real floor on known cases."""

import numpy as np
import pytest
import scipy.linalg
import torch

from genlab.errors import GenlabError
from genlab.eval.fid import (
    density_coverage,
    frechet_distance,
    gaussian_frechet_distance,
    memorisation,
    nearest_neighbours,
    pairs_grid,
    precision_recall,
    real_floor,
)


def test_gaussian_frechet_distance_closed_form():
    rng = np.random.default_rng(0)
    d = 6
    mu_a, mu_b = rng.normal(size=d), rng.normal(size=d)
    var_a, var_b = rng.uniform(0.5, 2, d), rng.uniform(0.5, 2, d)
    # Diagonal covariances: sum (mu_a - mu_b)^2 + sum (sqrt(var_a) - sqrt(var_b))^2.
    expected = ((mu_a - mu_b) ** 2).sum() + ((np.sqrt(var_a) - np.sqrt(var_b)) ** 2).sum()
    assert gaussian_frechet_distance(mu_a, np.diag(var_a), mu_b, np.diag(var_b)) == pytest.approx(expected, rel=1e-10)
    # Full, non-commuting covariances: the formula with scipy's sqrtm of the product.
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    cov_a, cov_b = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
    ref = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * scipy.linalg.sqrtm(cov_a @ cov_b).real)
    assert gaussian_frechet_distance(mu_a, cov_a, mu_b, cov_b) == pytest.approx(ref, rel=1e-8)
    assert gaussian_frechet_distance(mu_a, cov_a, mu_a, cov_a) == pytest.approx(0, abs=1e-8)


def test_frechet_distance_from_samples_approaches_closed_form():
    rng = np.random.default_rng(1)
    a = rng.normal(0.0, 1.0, size=(200_000, 2))
    b = rng.normal(1.0, 2.0, size=(200_000, 2))
    assert frechet_distance(a, b) == pytest.approx(2 * 1.0 + 2 * (2.0 - 1.0) ** 2, rel=0.02)
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-8)
    with pytest.raises(GenlabError):
        frechet_distance(a[:1], b)


def test_precision_recall_sanity():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(400, 8))
    assert precision_recall(real, real.copy(), k=3) == (1.0, 1.0)
    far = real + 100.0
    assert precision_recall(real, far, k=3) == (0.0, 0.0)
    # Half the samples on the real manifold, half far away: precision ~0.5, recall still high.
    mixed = np.concatenate([rng.normal(size=(200, 8)), rng.normal(size=(200, 8)) + 100.0])
    p, r = precision_recall(real, mixed, k=3)
    assert 0.4 < p < 0.6 and r > 0.6
    # Mode collapse: every sample near one real point -> precision high, recall low.
    collapsed = real[:1] + 0.01 * rng.normal(size=(400, 8))
    p, r = precision_recall(real, collapsed, k=3)
    assert p == 1.0 and r < 0.05


def test_density_coverage_sanity():
    rng = np.random.default_rng(4)
    real = rng.normal(size=(500, 8))
    density, coverage = density_coverage(real, real.copy(), k=5)
    # Ball i holds its centre and its k nearest neighbours: (k + 1) / k exactly, with no ties.
    assert density == pytest.approx(6 / 5, rel=0.01) and coverage == 1.0  # (rel: cdist round-off at the radius)
    fresh_density, fresh_coverage = density_coverage(real, rng.normal(size=(500, 8)), k=5)
    assert 0.6 < fresh_density < 1.4 and fresh_coverage > 0.8
    collapsed = real[:1] + 0.01 * rng.normal(size=(500, 8))
    assert density_coverage(real, collapsed, k=5)[1] < 0.05
    assert density_coverage(real, real + 100.0, k=5) == (0.0, 0.0)


def test_nearest_neighbours_and_memorisation_flags_copies():
    g = torch.Generator().manual_seed(0)
    train = torch.randint(0, 256, (60, 3, 8, 8), generator=g, dtype=torch.uint8)
    copies = train[[5, 17, 42]]
    dist, idx = nearest_neighbours(copies, train, space="pixel")
    assert idx.tolist() == [5, 17, 42] and np.allclose(dist, 0, atol=1e-6)  # cdist via matmul: ~1e-7 round-off
    twins = torch.cat([train, train[:1]])  # an exact duplicate must not count as anyone's neighbour
    _, idx_self = nearest_neighbours(twins, twins, space="pixel", exclude_identical=True)
    assert (idx_self != np.arange(61)).all() and idx_self[0] != 60 and idx_self[60] != 0
    noise = torch.randint(0, 256, (40, 3, 8, 8), generator=g, dtype=torch.uint8)
    feats = lambda x: x.flatten(1).double().numpy() / 255  # noqa: E731
    m_copy = memorisation(copies, feats(copies), train, feats(train), n_pairs=3)
    m_new = memorisation(noise, feats(noise), train, feats(train))
    assert m_copy["pixel"]["frac_closer_than_p5"] == 1.0 and m_copy["feature"]["frac_closer_than_typical"] == 1.0
    # Fresh draws from the training distribution sit as far from it as training images sit from each other.
    assert m_new["pixel"]["frac_closer_than_p5"] <= 0.25 and 0.1 <= m_new["pixel"]["frac_closer_than_typical"] <= 0.9
    assert sorted(p[1] for p in m_copy["pairs"]) == [5, 17, 42]
    assert pairs_grid(copies, train, m_copy["pairs"], nrow=2).size == (2 + 2 * 10, 2 + 3 * 10)
    with pytest.raises(GenlabError):
        nearest_neighbours(copies, train, space="latent")


def test_real_floor_is_seeded_and_checks_size():
    rng = np.random.default_rng(3)
    ref, cand = rng.normal(size=(300, 4)), rng.normal(size=(1000, 4))
    assert real_floor(ref, cand, 300, seed=1) == real_floor(ref, cand, 300, seed=1)
    assert real_floor(ref, cand, 300, seed=1) != real_floor(ref, cand, 300, seed=2)
    with pytest.raises(GenlabError, match="real floor"):
        real_floor(ref, cand, 1001)
