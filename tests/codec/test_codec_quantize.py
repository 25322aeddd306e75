"""genlab.nn.quantize: the straight-through estimator, the EMA codebook against a hand computation, k-means starts,
dead-code restarts, residual quantisation (more codebooks, less error) and code round trips."""

import copy

import numpy as np
import pytest
import torch

from genlab.nn.quantize import ResidualVQ, VectorQuantizer, kmeans


def test_straight_through_passes_the_gradient_unchanged():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 8, kmeans_init=False).eval()
    z = torch.randn(2, 4, 5, requires_grad=True)  # (B, D, T)
    out = vq(z)
    # Forward: every vector is replaced by its nearest codebook entry.
    assert torch.allclose(out.z_q, vq.lookup(out.codes), atol=1e-6)  # z + (e - z): e up to rounding
    dists = torch.cdist(z.detach().movedim(1, -1).reshape(-1, 4), vq.embed)
    assert torch.equal(out.codes.reshape(-1), dists.argmin(1))
    # Backward: the identity (van den Oord et al. 2017, section 3.2).
    w = torch.randn_like(z)
    (out.z_q * w).sum().backward()
    assert torch.equal(z.grad, w)


def test_commitment_and_codebook_losses():
    torch.manual_seed(0)
    vq = VectorQuantizer(3, 6, ema_decay=None, commitment=0.25, kmeans_init=False).train()
    z = torch.randn(4, 3, requires_grad=True)  # (B, D): no spatial axes
    out = vq(z)
    q = out.z_q.detach()  # the codes' vectors as they quantised z (dead codes restart after, for the next batch)
    gap = ((z.detach() - q) ** 2).mean()
    assert torch.allclose(out.loss, 1.25 * gap)  # beta ||z - sg(e)||^2 + ||sg(z) - e||^2, equal in value
    out.loss.backward()
    # The commitment term pulls z towards e, the codebook term pulls e towards z (eq. 3).
    assert torch.allclose(z.grad, 0.25 * 2 * (z.detach() - q) / z.numel())
    expected = torch.zeros_like(vq.embed).index_add_(0, out.codes, 2 * (q - z.detach()) / z.numel())
    assert torch.allclose(vq.embed.grad, expected)


def test_ema_update_matches_a_hand_computation():
    """van den Oord et al. 2017, appendix A.1, with Laplace-smoothed counts, computed here with numpy."""
    torch.manual_seed(1)
    K, D, gamma, eps = 5, 3, 0.9, 1e-5
    vq = VectorQuantizer(D, K, ema_decay=gamma, kmeans_init=False, dead_threshold=0.0, eps=eps).train()
    vq.cluster_size.copy_(torch.tensor([3.0, 1.0, 0.5, 2.0, 0.0]))
    vq.embed_avg.copy_(torch.randn(K, D))
    embed0 = vq.embed.clone().numpy().astype(np.float64)
    N0, m0 = vq.cluster_size.clone().numpy().astype(np.float64), vq.embed_avg.clone().numpy().astype(np.float64)
    z = torch.randn(2, D, 7)
    out = vq(z)

    x = z.movedim(1, -1).reshape(-1, D).numpy().astype(np.float64)
    assign = ((x[:, None, :] - embed0[None]) ** 2).sum(-1).argmin(1)
    assert (assign == out.codes.reshape(-1).numpy()).all()
    n = np.bincount(assign, minlength=K)
    sums = np.zeros((K, D))
    np.add.at(sums, assign, x)
    N = gamma * N0 + (1 - gamma) * n
    m = gamma * m0 + (1 - gamma) * sums
    total = N.sum()
    e = m / ((N + eps) / (total + K * eps) * total)[:, None]
    np.testing.assert_allclose(vq.cluster_size.numpy(), N, rtol=1e-6)
    np.testing.assert_allclose(vq.embed_avg.numpy(), m, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(vq.embed.numpy(), e, rtol=1e-4, atol=1e-5)


def _clusters(k: int, n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=g) * 5
    labels = torch.arange(n) % k
    return centres[labels] + 0.05 * torch.randn(n, d, generator=g), centres


def test_kmeans_init_finds_the_clusters_of_the_first_batch():
    x, centres = _clusters(8, 400, 4, seed=2)
    vq = VectorQuantizer(4, 8, kmeans_iters=20).train()
    assert vq.inited.item() == 0
    out = vq(x, generator=torch.Generator().manual_seed(0))
    assert vq.inited.item() == 1
    # Every true centre has a code within the noise, and the batch uses all 8 codes evenly.
    assert torch.cdist(centres, vq.embed).min(dim=1).values.max() < 0.1
    assert out.perplexity.item() == pytest.approx(8.0, rel=1e-3)
    c, counts = kmeans(x, 8, 20, torch.Generator().manual_seed(0))
    assert counts.sum() == len(x)


def test_dead_codes_restart_at_batch_vectors():
    torch.manual_seed(3)
    vq = VectorQuantizer(3, 6, kmeans_init=False, dead_threshold=1.0).train()
    vq.cluster_size.copy_(torch.tensor([5.0, 5.0, 5.0, 0.1, 0.2, 5.0]))
    old = vq.embed.clone()
    z = torch.randn(16, 3) + 100.0  # far from every code
    vq(z, generator=torch.Generator().manual_seed(0))
    rows = {tuple(r.tolist()) for r in z}
    for i in (3, 4):  # the dead codes now sit on vectors of the batch (then moved by the EMA towards their own)
        assert torch.cdist(vq.embed[i : i + 1], z).min() < torch.cdist(old[i : i + 1], z).min()
    assert tuple(vq.embed[0].tolist()) not in rows


def test_residual_vq_more_codebooks_reconstruct_better_on_fitted_data():
    torch.manual_seed(4)
    x = torch.randn(64, 8, 10)  # (B, D, T)
    rvq = ResidualVQ(8, 4, 16, ema_decay=0.8, kmeans_iters=10, dead_threshold=0.5).train()
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        rvq(x, generator=g)
    rvq.eval()
    errors = [((rvq.decode(rvq.encode(x, n)) - x) ** 2).mean().item() for n in range(1, 5)]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.5 * errors[0]


def test_residual_vq_round_trips_and_eval_forward_agree():
    torch.manual_seed(5)
    x = torch.randn(3, 8, 6, 5)  # (B, D, H, W): an image latent grid works the same
    rvq = ResidualVQ(8, 3, 16).train()
    rvq(x)  # k-means start
    rvq.eval()
    codes = rvq.encode(x, 2)
    assert codes.shape == (3, 2, 6, 5) and codes.dtype == torch.long
    out = rvq(x, n_q=2)
    assert torch.equal(out.codes, codes)
    assert torch.allclose(out.z_q, rvq.decode(codes), atol=1e-6)
    # One codebook: decoding a code and encoding it again gives the code back.
    single = rvq.layers[0]
    c = torch.randint(0, 16, (2, 7))
    assert torch.equal(single.encode(single.lookup(c)), c)


def test_quantizer_dropout_uses_a_prefix_of_the_codebooks_per_example():
    torch.manual_seed(6)
    x = torch.randn(32, 4, 3)
    rvq = ResidualVQ(4, 4, 8).train()
    rvq(x)  # first call: k-means starts, every example uses every codebook
    before = copy.deepcopy(rvq)  # the codebooks this call quantises with (it updates them afterwards)
    out = rvq(x, generator=torch.Generator().manual_seed(1))
    used = set()
    for b in range(len(x)):
        matches = [k for k in range(1, 5)
                   if torch.allclose(out.z_q[b : b + 1], before.decode(out.codes[b : b + 1, :k]), atol=1e-5)]
        assert matches, f"example {b} is no prefix of its codes"
        used.add(matches[0])
    assert len(used) > 1  # different examples kept different numbers of codebooks


def test_codebook_statistics_stay_float32_under_bf16_autocast():
    """bf16 holds integers exactly only up to 256: the counts of 3000 vectors must not be computed in it."""
    torch.manual_seed(7)
    vq = VectorQuantizer(4, 2, ema_decay=0.99, kmeans_init=False, dead_threshold=0.0).train()
    z = torch.randn(3000, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = vq(z.bfloat16())
    counts = torch.bincount(out.codes, minlength=2).float()
    assert out.z_q.dtype == torch.float32
    assert torch.allclose(vq.cluster_size, 0.01 * counts, rtol=1e-6)


def test_a_batch_is_not_quantised_by_codes_restarted_at_its_own_vectors():
    """The bundled codec's shape of the problem: 1,024 codes, a batch of 400 frames. Restarting dead codes at the
    batch's vectors before quantising it gave every training vector an exact copy in the codebook: zero error in
    training, no bottleneck, and the residual levels after it learned from zeros (all-zero codebooks)."""
    torch.manual_seed(6)
    rvq = ResidualVQ(16, 3, 1024, ema_decay=0.99, kmeans_iters=2, quantizer_dropout=False).train()
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        z = torch.randn(8, 16, 50)  # (B, D, T): fresh vectors every step
        out = rvq(z, generator=g)
    assert ((out.z_q.detach() - z) ** 2).mean() > 0.01  # a fresh batch is quantised with error
    # every level now holds codes learned from non-zero residuals
    assert all(layer.embed.norm(dim=1).max() > 0.1 for layer in rvq.layers)
