"""Zero-shot transfer (Radford et al. 2021, section 3.1): classify with class names, retrieve across modalities.

A classifier is made from text alone: each class name goes through prompt templates ("a picture of a {}."), the
template embeddings of a class are averaged and renormalised (prompt ensembling, section 3.1.4), and an image's
class is the one whose embedding is nearest. Retrieval ranks every text for each image and the reverse;
recall@k is the share of queries whose true partner is among the top k.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .model import CLIP
from .pipeline import embed_texts
from .text import ClipTokenizer

# Prompt templates for drawings, icons and product photos (a subset of the spirit of CLIP's ImageNet templates).
TEMPLATES = (
    "a picture of a {}.",
    "a drawing of a {}.",
    "an icon of a {}.",
    "an emoji of a {}.",
    "clip art of a {}.",
    "a photo of a {}.",
    "{}",
)


def class_embeddings(model: CLIP, tokenizer: ClipTokenizer, classes: Sequence[str],
                     templates: Sequence[str] = TEMPLATES, bf16: bool = False) -> torch.Tensor:
    """``(K, D)`` unit embeddings: per class, the renormalised mean of its templates' embeddings."""
    prompts = [t.format(c) for c in classes for t in templates]
    emb = embed_texts(model, tokenizer, prompts, bf16=bf16).view(len(classes), len(templates), -1)  # (K, n_t, D)
    return F.normalize(emb.mean(dim=1), dim=-1)  # (K, D)


def zero_shot_probs(image_emb: torch.Tensor, class_emb: torch.Tensor, scale: float) -> torch.Tensor:
    """``(N, K)`` class probabilities: softmax over ``scale * cosine`` (the model's own temperature)."""
    return (scale * image_emb @ class_emb.t()).softmax(dim=-1)


def accuracy(image_emb: torch.Tensor, class_emb: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Top-1 / top-5 accuracy and the per-class mean (CLIP_benchmark's ``mean_per_class_recall``)."""
    sim = image_emb @ class_emb.t()  # (N, K)
    top = sim.topk(min(5, sim.shape[1]), dim=1).indices  # (N, k)
    hit1 = top[:, 0] == labels
    per_class = [hit1[labels == k].float().mean().item() for k in labels.unique()]
    return {"top1": hit1.float().mean().item(), "top5": (top == labels[:, None]).any(1).float().mean().item(),
            "mean_per_class_recall": sum(per_class) / len(per_class)}


def confusion(image_emb: torch.Tensor, class_emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``(K, K)`` counts: row = true class, column = predicted class."""
    k = class_emb.shape[0]
    pred = (image_emb @ class_emb.t()).argmax(1)
    return torch.bincount(labels * k + pred, minlength=k * k).view(k, k)


def recall_at_k(image_emb: torch.Tensor, text_emb: torch.Tensor, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Image->text and text->image recall@k for ``(N, D)`` pairs (row i of each belongs together).

    Chance level of recall@k is k / N. A tie counts against the query (the partner ranks after every candidate
    that scores as high), so a collapsed model that embeds everything alike scores 0, not 1."""
    sim = image_emb @ text_emb.t()  # (N, N)
    out = {}
    for name, s in (("image_to_text", sim), ("text_to_image", sim.t())):
        rank = (s >= s.diagonal()[:, None]).sum(1) - 1  # (N,) other candidates scoring at least as high
        for k in ks:
            out[f"{name}_R@{k}"] = (rank < k).float().mean().item()
    return out
