"""CLIP's symmetric contrastive loss (Radford et al. 2021, figure 3), with negatives gathered from every rank.

Figure 3 in the paper's symbols: ``I_e``, ``T_e`` the L2-normalised image and text embeddings of a batch of n
pairs, ``t`` the learned log-temperature::

    logits = I_e @ T_e.T * exp(t)          # (n, n): row i holds image i against every text
    loss_i = cross_entropy(logits, arange(n))    # image -> text
    loss_t = cross_entropy(logits.T, arange(n))  # text -> image
    loss = (loss_i + loss_t) / 2

The other pairs of the batch are each pair's negatives, so a bigger batch is a harder task. Under data parallelism
every rank sees only its share; the task gathers the global batch on every rank with the trainer's
:func:`genlab.train.all_gather` (its docstring does the gradient bookkeeping) so that each computes the loss over
all ``n`` pairs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def contrastive_loss(image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Figure 3's symmetric cross-entropy of ``(n, D)`` unit image and text embeddings (row i of each is a pair)
    at temperature ``scale`` (= exp(t)). Returns the loss and the ``(n, n)`` image-to-text logits."""
    logits = scale * image @ text.t()  # (n, n)
    labels = torch.arange(logits.shape[0], device=logits.device)
    wide = logits.to(torch.promote_types(logits.dtype, torch.float32))  # the softmax in at least fp32 under bf16
    loss = (F.cross_entropy(wide, labels) + F.cross_entropy(wide.t(), labels)) / 2
    return loss, logits
