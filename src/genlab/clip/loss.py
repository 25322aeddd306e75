"""CLIP's symmetric contrastive loss (Radford et al. 2021, figure 3), with negatives gathered from every rank.

Figure 3 in the paper's symbols: ``I_e``, ``T_e`` the L2-normalised image and text embeddings of a batch of n
pairs, ``t`` the learned log-temperature::

    logits = I_e @ T_e.T * exp(t)          # (n, n): row i holds image i against every text
    loss_i = cross_entropy(logits, arange(n))    # image -> text
    loss_t = cross_entropy(logits.T, arange(n))  # text -> image
    loss = (loss_i + loss_t) / 2

The other pairs of the batch are each pair's negatives, so a bigger batch is a harder task. Under data parallelism
every rank sees only its share; :func:`gather` assembles the global batch on every rank so that each computes the
loss over all ``n`` pairs.

Gradient bookkeeping. Every rank computes the same global loss ``L``, but only its own rows of the gathered
embeddings are connected to its graph, so its backward pass yields ``g_r``, the part of ``dL/dθ`` that flows through
its own examples (``Σ_r g_r = dL/dθ``), while the temperature, used by every rank, gets the whole ``dL/dt`` on each.
genlab's trainer *averages* gradients over ranks, which would give the towers ``dL/dθ / W``; the local rows
therefore carry their gradient multiplied by ``W`` (:class:`_ScaleGrad`, identity in the forward pass). After the
average, every parameter gets exactly the gradient of one process on the whole batch, and the backward pass needs
no communication (open_clip's ``gather_with_grad`` gets the same sum by an all-reduce in backward instead).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; the gradient multiplied by ``factor`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, factor: float) -> torch.Tensor:
        ctx.factor = factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.factor, None


def gather(x: torch.Tensor, rank: int = 0, world_size: int = 1) -> torch.Tensor:
    """``(B, D)`` on each of ``world_size`` ranks -> ``(world_size * B, D)`` on every rank, in rank order.

    Only this rank's rows keep their autograd link, with their gradient scaled by ``world_size`` (see the module
    docstring). Every rank must pass the same ``B``.
    """
    if world_size == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world_size)]
    dist.all_gather(parts, x.detach().contiguous())
    parts[rank] = _ScaleGrad.apply(x, float(world_size))
    return torch.cat(parts)  # (world_size * B, D)


def contrastive_loss(image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Figure 3's symmetric cross-entropy of ``(n, D)`` unit image and text embeddings (row i of each is a pair)
    at temperature ``scale`` (= exp(t)). Returns the loss and the ``(n, n)`` image-to-text logits."""
    logits = scale * image @ text.t()  # (n, n)
    labels = torch.arange(logits.shape[0], device=logits.device)
    wide = logits.to(torch.promote_types(logits.dtype, torch.float32))  # the softmax in at least fp32 under bf16
    loss = (F.cross_entropy(wide, labels) + F.cross_entropy(wide.t(), labels)) / 2
    return loss, logits
