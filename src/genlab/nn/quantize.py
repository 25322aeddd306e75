"""Vector quantisation: a codebook that turns continuous vectors into integer tokens, and its residual stack.

- :class:`VectorQuantizer` — van den Oord et al. 2017 (VQ-VAE): the nearest codebook entry, the straight-through
  estimator for the encoder's gradient, the commitment loss ``beta * ||z - sg(e)||^2`` (their eq. 3). The codebook
  learns either by its own loss ``||sg(z) - e||^2`` (eq. 3) or, as in their appendix A.1, by exponential moving
  averages of the vectors each code receives (``ema_decay``), which trains faster and more stably.
  Two habits of SoundStream (Zeghidour et al. 2021, section 3.3) and Jukebox (Dhariwal et al. 2020, section 3):
  the codebook starts as k-means centroids of the first training batch, and a code that stops receiving vectors
  (its moving-average count falls below ``dead_threshold``) restarts at a random vector of the current batch.
- :class:`ResidualVQ` — SoundStream's residual vector quantiser (section 3.3, Algorithm 1): each codebook
  quantises what the ones before it left over; with quantizer dropout each training example uses only its first
  ``n_q ~ U{1..N_q}`` codebooks, so one model serves every bitrate and the bitrate is chosen at inference by
  how many codebooks are kept.

Both take channel-first tensors ``(B, D, *S)`` as convolutional networks produce them: ``(B, D, T)`` for audio
frames, ``(B, D, H, W)`` for an image's latent grid. Codes have the same layout without ``D``.

Randomness (k-means seeding, restarts, dropout) draws from ``generator`` when one is given. Under
``torch.distributed`` the codebook statistics are summed over ranks and random choices are taken from rank 0,
so every rank keeps the same codebook.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class Quantized:
    """What a quantiser returns.

    ``z_q``: ``(B, D, *S)`` the quantised vectors, with the straight-through gradient to the input;
    ``codes``: ``(B, *S)`` (one codebook) or ``(B, n_q, *S)`` (residual) long token ids;
    ``loss``: scalar, the commitment loss (plus the codebook loss when the codebook learns by gradient);
    ``perplexity``: ``(n_q,)`` ``exp`` of the entropy of the codes used in this batch, per codebook.
    """

    z_q: Tensor
    codes: Tensor
    loss: Tensor
    perplexity: Tensor


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _sum_over_ranks(t: Tensor) -> Tensor:
    if _world() > 1:
        dist.all_reduce(t)
    return t


def _from_rank0(t: Tensor) -> Tensor:
    if _world() > 1:
        dist.broadcast(t, src=0)
    return t


def _rank0_has(x: Tensor) -> bool:
    """Whether rank 0 (the only rank, without DDP) holds any vectors: random choices are taken from its batch."""
    return bool(_from_rank0(torch.tensor([float(len(x) > 0)], device=x.device)).item())


def _sample_rows(x: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
    """``n`` rows of ``x`` drawn at random (with replacement only when ``x`` has fewer than ``n`` rows)."""
    if len(x) >= n:
        idx = torch.randperm(len(x), generator=generator, device="cpu")[:n]
    else:
        idx = torch.randint(0, len(x), (n,), generator=generator, device="cpu")
    return x[idx.to(x.device)]


def kmeans(x: Tensor, k: int, iters: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means of the rows of ``x`` ``(N, D)``: ``(centroids (k, D), counts (k,))``.

    Seeded by k-means++ (Arthur & Vassilvitskii 2007: each next centre drawn with probability proportional to the
    squared distance to the nearest chosen one); with fewer rows than centres, every row and then random repeats.
    An empty cluster keeps its previous centroid.
    """
    if len(x) <= k:
        centroids = torch.cat([x, _sample_rows(x, k - len(x), generator)]) if len(x) < k else x.clone()
    else:
        first = torch.randint(0, len(x), (1,), generator=generator).item()
        chosen = [first]
        d2 = (x - x[first]).pow(2).sum(1)  # (N,) squared distance to the nearest chosen centre
        for _ in range(k - 1):
            weights = d2.cpu() if d2.sum() > 0 else torch.ones(len(x))
            nxt = torch.multinomial(weights, 1, generator=generator).item()
            chosen.append(nxt)
            d2 = torch.minimum(d2, (x - x[nxt]).pow(2).sum(1))
        centroids = x[chosen].clone()
    counts = torch.zeros(k, device=x.device, dtype=x.dtype)
    for _ in range(iters):
        assign = torch.cdist(x, centroids).argmin(dim=1)  # (N,)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
    return centroids, counts


class VectorQuantizer(nn.Module):
    """One codebook of ``codebook_size`` vectors of size ``dim`` (van den Oord et al. 2017).

    ``ema_decay`` (gamma) set: the codebook is a buffer updated by moving averages (appendix A.1); ``None``: it is
    a parameter trained by the codebook loss. ``commitment`` is beta of eq. 3 (0.25 in the paper).
    """

    def __init__(self, dim: int, codebook_size: int, *, ema_decay: float | None = 0.99, commitment: float = 0.25,
                 kmeans_init: bool = True, kmeans_iters: int = 10, dead_threshold: float = 2.0, eps: float = 1e-5):
        super().__init__()
        self.dim, self.codebook_size = dim, codebook_size
        self.ema_decay, self.commitment, self.eps = ema_decay, commitment, eps
        self.kmeans_iters, self.dead_threshold = kmeans_iters, dead_threshold
        embed = torch.randn(codebook_size, dim) * (0.0 if kmeans_init else 1.0)
        if ema_decay is None:
            self.embed = nn.Parameter(embed)
        else:
            self.register_buffer("embed", embed)  # (K, D)
            self.register_buffer("embed_avg", embed.clone())  # (K, D) moving average of the vectors' sums
        # Moving average of how many vectors each code receives: the EMA update's denominator, and how dead codes
        # are found in both modes. ``inited`` is a float (1,) as in EnCodec's checkpoints.
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("inited", torch.tensor([0.0 if kmeans_init else 1.0]))

    # -- the quantiser --------------------------------------------------------------------------------------------

    def nearest(self, flat: Tensor) -> Tensor:
        """The nearest code of each row of ``flat`` ``(N, D)`` in Euclidean distance: ``(N,)`` long."""
        embed = self.embed.detach().t()  # (D, K); the same operations as EnCodec's, so the same ties
        dist2 = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ embed + embed.pow(2).sum(0, keepdim=True)  # (N, K)
        return dist2.argmin(dim=1)

    def lookup(self, codes: Tensor) -> Tensor:
        """Codes ``(B, *S)`` -> vectors ``(B, D, *S)``."""
        return F.embedding(codes, self.embed).movedim(-1, 1)

    def encode(self, z: Tensor) -> Tensor:
        """``(B, D, *S)`` -> codes ``(B, *S)``."""
        flat = z.movedim(1, -1).reshape(-1, self.dim)  # (N, D)
        with torch.autocast(z.device.type, enabled=False):
            return self.nearest(flat.float()).view(z.shape[0], *z.shape[2:])

    def forward(self, z: Tensor, mask: Tensor | None = None, generator: torch.Generator | None = None) -> Quantized:
        """Quantise ``z`` ``(B, D, *S)``. In training mode also update the codebook from the vectors where
        ``mask`` ``(B, *S)`` is true (all of them by default): k-means at the first call, EMA, then dead-code restarts
        (for the next batch).
        Distances, counts and sums are float32 even under autocast (bf16 cannot count past 256).
        """
        with torch.autocast(z.device.type, enabled=False):
            return self._forward(z.float(), mask, generator)

    def _forward(self, z: Tensor, mask: Tensor | None, generator: torch.Generator | None) -> Quantized:
        flat = z.movedim(1, -1).reshape(-1, self.dim)  # (N, D)
        keep = None if mask is None else mask.reshape(-1)  # (N,)
        used = flat.detach() if keep is None else flat.detach()[keep]
        if self.training and not self.inited.item():
            self._kmeans_init(used, generator)
        codes = self.nearest(flat.detach())  # (N,)
        q = F.embedding(codes, self.embed)  # (N, D)
        onehot = F.one_hot(codes if keep is None else codes[keep], self.codebook_size).to(flat.dtype)  # (n, K)
        if self.training and self.ema_decay is not None:
            self._ema_update(used, onehot)
        elif self.training:
            self._count(onehot)
        if self.training:
            # After this batch is quantised, as EnCodec's ``expire_codes_``: codes restarted at the batch's own
            # vectors before it would quantise those vectors exactly, and a codebook whose dead codes outnumber the
            # batch (1,024 codes, 400 frames) would pass its input through untouched in training only.
            self._restart_dead_codes(used, generator)
        loss = self.commitment * _masked_mse(flat, q.detach(), keep)  # beta ||z - sg(e)||^2
        if self.ema_decay is None:
            loss = loss + _masked_mse(q, flat.detach(), keep)  # ||sg(z) - e||^2
        z_q = flat + (q - flat).detach()  # straight-through: forward e, backward identity
        shape = (z.shape[0], *z.shape[2:])
        return Quantized(z_q.view(*shape, self.dim).movedim(-1, 1), codes.view(shape), loss, _perplexity(onehot))

    # -- codebook learning (no gradients) -------------------------------------------------------------------------

    @torch.no_grad()
    def _kmeans_init(self, x: Tensor, generator: torch.Generator | None) -> None:
        """SoundStream 3.3: start from the k-means centroids of the first batch (rank 0's, under DDP)."""
        if not _rank0_has(x):
            return
        centroids = torch.zeros(self.codebook_size, self.dim, device=x.device)
        counts = torch.zeros(self.codebook_size, device=x.device)
        if len(x):
            centroids, counts = kmeans(x.float(), self.codebook_size, self.kmeans_iters, generator)
        centroids, counts = _from_rank0(centroids.to(self.embed.dtype)), _from_rank0(counts.to(self.embed.dtype))
        self.embed.data.copy_(centroids)
        self.cluster_size.copy_(counts)
        if self.ema_decay is not None:
            self.embed_avg.copy_(centroids * counts[:, None])  # so that embed = embed_avg / cluster_size
        self.inited.fill_(1.0)

    @torch.no_grad()
    def _restart_dead_codes(self, x: Tensor, generator: torch.Generator | None) -> None:
        """Jukebox 3 / SoundStream 3.3: codes whose average count fell below the threshold restart at batch vectors."""
        dead = self.cluster_size < self.dead_threshold  # (K,), the same on every rank
        if self.dead_threshold <= 0 or not dead.any() or not _rank0_has(x):
            return
        fresh = torch.zeros_like(self.embed)
        if len(x):
            fresh = _sample_rows(x, self.codebook_size, generator).to(self.embed.dtype).contiguous()
        fresh = _from_rank0(fresh)
        self.embed.data[dead] = fresh[dead]
        self.cluster_size[dead] = self.dead_threshold
        if self.ema_decay is not None:
            self.embed_avg[dead] = fresh[dead] * self.dead_threshold

    @torch.no_grad()
    def _count(self, onehot: Tensor) -> None:
        counts = _sum_over_ranks(onehot.sum(0))
        self.cluster_size.lerp_(counts, 1 - (self.ema_decay or 0.99))

    @torch.no_grad()
    def _ema_update(self, x: Tensor, onehot: Tensor) -> None:
        """van den Oord et al. 2017, appendix A.1 (eqs. 6-8), with Laplace smoothing of the counts:

        N_i <- gamma N_i + (1 - gamma) n_i;   m_i <- gamma m_i + (1 - gamma) sum_j z_{i,j};   e_i = m_i / N_i.
        """
        counts = _sum_over_ranks(onehot.sum(0))  # (K,) n_i
        sums = _sum_over_ranks(onehot.t() @ x.to(onehot.dtype))  # (K, D)
        if counts.sum() == 0:  # no vector reached this codebook on any rank (quantizer dropout)
            return
        gamma = self.ema_decay
        self.cluster_size.mul_(gamma).add_(counts, alpha=1 - gamma)
        self.embed_avg.mul_(gamma).add_(sums, alpha=1 - gamma)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + self.codebook_size * self.eps) * n  # never zero
        self.embed.copy_(self.embed_avg / smoothed[:, None])


def _masked_mse(a: Tensor, b: Tensor, keep: Tensor | None) -> Tensor:
    """Mean squared error over the rows of ``(N, D)`` tensors that ``keep`` selects (all when None)."""
    if keep is None:
        return F.mse_loss(a, b)
    if not keep.any():
        return (a - b).sum() * 0.0  # a zero that still connects to the graph
    return F.mse_loss(a[keep], b[keep])


def _perplexity(onehot: Tensor) -> Tensor:
    """exp(entropy) of the code histogram: K when all codes are used evenly, 1 when one code takes everything."""
    if len(onehot) == 0:
        return onehot.new_zeros(())
    p = onehot.float().mean(0)
    return torch.exp(-(p * torch.log(p.clamp_min(1e-10))).sum())


class ResidualVQ(nn.Module):
    """``n_q`` codebooks, each quantising the residual of those before it (Zeghidour et al. 2021, Algorithm 1).

    ``quantizer_dropout``: in training each example draws ``n_q ~ U{1..N_q}`` (section 3.3) and only its first
    ``n_q`` codebooks quantise it and learn from it; every codebook still runs (so all ranks of a distributed run
    call the same collectives), its statistics masked.
    """

    def __init__(self, dim: int, n_q: int, codebook_size: int, *, quantizer_dropout: bool = True, **vq_kwargs):
        super().__init__()
        self.dim, self.n_q, self.codebook_size = dim, n_q, codebook_size
        self.quantizer_dropout = quantizer_dropout
        self.layers = nn.ModuleList([VectorQuantizer(dim, codebook_size, **vq_kwargs) for _ in range(n_q)])

    def _check(self, n_q: int) -> int:
        if not 1 <= n_q <= self.n_q:
            raise ValueError(f"n_q={n_q}: this quantiser has 1 to {self.n_q} codebooks")
        return n_q

    def forward(self, z: Tensor, n_q: int | None = None, generator: torch.Generator | None = None) -> Quantized:
        """Quantise ``z`` ``(B, D, *S)`` with ``n_q`` codebooks (all, or a random number per example in training
        with quantizer dropout when ``n_q`` is None). ``codes`` is ``(B, n_q, *S)``, ``n_q`` the most any example used.
        """
        z = z.float()  # each codebook works in float32 (VectorQuantizer.forward)
        batch, spatial = z.shape[0], z.shape[2:]
        dropout = n_q is None and self.training and self.quantizer_dropout
        per_example = torch.full((batch,), self._check(n_q or self.n_q), device=z.device)
        if dropout and all(layer.inited.item() for layer in self.layers):  # k-means starts need every level's data
            per_example = torch.randint(1, self.n_q + 1, (batch,), generator=generator, device="cpu").to(z.device)
        levels = self.n_q if dropout else int(per_example.max())  # under dropout all run: the same collectives
        residual, total = z, torch.zeros_like(z)
        codes, losses, perplexities = [], [], []
        for level, layer in enumerate(self.layers[:levels]):
            active = per_example > level  # (B,)
            mask = active.view(batch, *([1] * len(spatial))).expand(batch, *spatial)  # (B, *S)
            out = layer(residual, mask=None if active.all() else mask, generator=generator)
            q = out.z_q.detach()  # the quantised residual, (B, D, *S)
            total = total + q * active.view(batch, 1, *([1] * len(spatial))).to(q.dtype)
            residual = residual - q
            codes.append(out.codes)
            losses.append(out.loss)
            perplexities.append(out.perplexity)
        z_q = z + (total - z).detach()  # straight-through over the whole stack
        used = int(per_example.max())
        loss = torch.stack(losses[:used]).mean()
        return Quantized(z_q, torch.stack(codes[:used], dim=1), loss, torch.stack(perplexities))

    @torch.no_grad()
    def encode(self, z: Tensor, n_q: int | None = None) -> Tensor:
        """``(B, D, *S)`` -> codes ``(B, n_q, *S)`` with the first ``n_q`` codebooks (all by default)."""
        residual, codes = z.float(), []
        for layer in self.layers[: self._check(n_q or self.n_q)]:
            c = layer.encode(residual)
            residual = residual - layer.lookup(c)
            codes.append(c)
        return torch.stack(codes, dim=1)

    def decode(self, codes: Tensor) -> Tensor:
        """Codes ``(B, n_q, *S)`` -> the sum of their vectors ``(B, D, *S)``."""
        self._check(codes.shape[1])
        out = self.layers[0].lookup(codes[:, 0])
        for level in range(1, codes.shape[1]):
            out = out + self.layers[level].lookup(codes[:, level])
        return out
