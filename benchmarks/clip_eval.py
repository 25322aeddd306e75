"""Zero-shot and retrieval quality of genlab CLIP models, each number beside its chance level.

    python benchmarks/clip_eval.py --model emoji-clip [MODEL ...] [--fashion-n 10000] [--seed 0] [--out FILE]

Several models (``emoji-clip`` and ``src/genlab/assets/emoji-clip-minilm``, its text tower borrowed and frozen) are
scored on the same items, templates and seed into one file: ``models`` holds each one's full result, ``comparison``
their headline numbers side by side (does borrowed language help?).

Protocol (after CLIP_benchmark): class names as the dataset gives them, the prompt templates listed in the result,
prompt ensembling (mean of the templates' unit embeddings, renormalised), top-1 accuracy and mean per-class recall.

- Fashion-MNIST test split (Debian ``dataset-fashion-mnist``; never trained on): the 10 classes, images as
  distributed (white garment on black) and inverted (dark on white, as the drawings the model was trained on);
  chance 10 %.
- Held-out emoji: OpenMoji's held-out split, classified into its Unicode groups (names as Unicode gives them).
- Held-out categories: every item of the clip-art categories no training image came from (``clip/data.py``
  ``HELD_OUT_CATEGORIES``), classified among those category names, per source.
- Retrieval on the held-out ``test`` pairs (captions as given, no template): image->text and text->image R@1/5/10;
  chance k / N.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genlab.clip.data import FASHION_CLASSES, HELD_OUT_CATEGORIES, load_captioned, load_fashion_mnist, manifests
from genlab.clip.images import to_square
from genlab.clip.pipeline import embed_images, embed_texts, load
from genlab.clip.zeroshot import TEMPLATES, accuracy, class_embeddings, confusion, recall_at_k

ROOT = Path(__file__).resolve().parent.parent


def zero_shot(loaded, images: torch.Tensor, labels: torch.Tensor, classes: list[str], templates) -> dict:
    emb = embed_images(loaded.model, images)
    cls = class_embeddings(loaded.model, loaded.tokenizer, classes, templates)
    majority = torch.bincount(labels).max().item() / len(labels)  # what always answering the largest class scores
    return {"n": len(labels), "classes": classes, **accuracy(emb, cls, labels), "chance": 1 / len(classes),
            "majority_class_top1": majority,
            "confusion": confusion(emb, cls, labels).tolist()}


def fashion(loaded, n: int, seed: int, templates) -> dict:
    images, labels = load_fashion_mnist("test")
    if n < len(labels):
        pick = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:n]
        images, labels = images[pick], labels[pick]
    size, mode = loaded.cfg.vision.image_size, loaded.cfg.vision.resize_mode
    out = {}
    for name, x in (("as_distributed", images), ("inverted", 255 - images)):
        squares = np.stack([to_square(Image.fromarray(im[0].numpy()).convert("RGB"), size, mode) for im in x])
        out[name] = zero_shot(loaded, torch.from_numpy(squares), labels, list(FASHION_CLASSES), templates)
    return out


def by_category(data, templates, loaded) -> dict:
    names = sorted(set(data.categories))
    labels = torch.tensor([names.index(c) for c in data.categories])
    return zero_shot(loaded, data.images, labels, names, templates)


def retrieval(loaded, data) -> dict:
    img = embed_images(loaded.model, data.images)
    txt = embed_texts(loaded.model, loaded.tokenizer, data.captions)
    r = recall_at_k(img, txt)
    return {"n": len(data), **r, "chance": {f"R@{k}": k / len(data) for k in (1, 5, 10)}}


def text_tower(loaded) -> str:
    if loaded.cfg.minilm is None:
        return "transformer trained with the image tower"
    return f"frozen {loaded.cfg.minilm.weights} (all-MiniLM-L6-v2 shape) + trained linear projection"


def evaluate(loaded, fashion_n: int, seed: int, templates: list[str]) -> dict:
    """Every benchmark of the module docstring for one model."""
    t0 = time.time()
    size = loaded.cfg.vision.image_size
    emoji_test = load_captioned(size, "test", ("openmoji",))
    result = {
        "model": loaded.source, "weights_hash": loaded.weights_hash, "text_tower": text_tower(loaded),
        "fashion_mnist": fashion(loaded, fashion_n, seed, templates),
        "emoji_groups_heldout_items": by_category(emoji_test, templates, loaded),
        "heldout_categories": {},
        "retrieval_test_pairs": {"all": retrieval(loaded, load_captioned(size, "test"))},
    }
    for source in HELD_OUT_CATEGORIES:
        held = load_captioned(size, "heldout", (source,))
        if len(held):
            result["heldout_categories"][source] = by_category(held, templates, loaded)
        test = load_captioned(size, "test", (source,))
        if len(test):
            result["retrieval_test_pairs"][source] = retrieval(loaded, test)
    result["retrieval_test_pairs"]["openmoji"] = retrieval(loaded, emoji_test)
    result["seconds"] = round(time.time() - t0, 1)
    return result


def headline(result: dict) -> dict[str, float]:
    """The numbers to compare models by: zero-shot top-1 and retrieval R@1/R@5 (chance is in each full result)."""
    out = {f"fashion_mnist_{k}_top1": v["top1"] for k, v in result["fashion_mnist"].items()}
    out["emoji_groups_top1"] = result["emoji_groups_heldout_items"]["top1"]
    out.update({f"heldout_{k}_top1": v["top1"] for k, v in result["heldout_categories"].items()})
    r = result["retrieval_test_pairs"]["all"]
    out.update({f"retrieval_{k}": r[k] for k in ("image_to_text_R@1", "text_to_image_R@1", "image_to_text_R@5",
                                                 "text_to_image_R@5")})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", nargs="+", default=["emoji-clip"], help="bundled names or checkpoint directories")
    p.add_argument("--fashion-n", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "clip_eval.json"))
    args = p.parse_args()
    if len(set(args.model)) != len(args.model):
        sys.exit("clip_eval: a model is named twice")
    models = {name: load(name) for name in args.model}  # every model loads before minutes of work
    sizes = {m.cfg.vision.image_size for m in models.values()}
    templates = list(TEMPLATES)
    result = {
        "command": shlex.join([sys.executable.rsplit("/", 1)[-1], *sys.argv]), "seed": args.seed,
        "fashion_n": args.fashion_n, "templates": templates,
        "models": {name: evaluate(loaded, args.fashion_n, args.seed, templates) for name, loaded in models.items()},
        "data": {size: manifests(size) for size in sorted(sizes)},
    }
    result["comparison"] = {name: headline(r) for name, r in result["models"].items()}
    Path(args.out).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result["comparison"], indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
