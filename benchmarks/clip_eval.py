"""Zero-shot and retrieval quality of a genlab CLIP model, each number beside its chance level.

    python benchmarks/clip_eval.py --model emoji-clip [--fashion-n 10000] [--seed 0] [--out FILE]

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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="emoji-clip")
    p.add_argument("--fashion-n", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "clip_eval.json"))
    args = p.parse_args()
    t0 = time.time()
    loaded = load(args.model)
    size = loaded.cfg.vision.image_size
    templates = list(TEMPLATES)
    emoji_test = load_captioned(size, "test", ("openmoji",))
    result = {
        "command": shlex.join([sys.executable.rsplit("/", 1)[-1], *sys.argv]),
        "model": loaded.source, "weights_hash": loaded.weights_hash, "seed": args.seed, "templates": templates,
        "fashion_mnist": fashion(loaded, args.fashion_n, args.seed, templates),
        "emoji_groups_heldout_items": by_category(emoji_test, templates, loaded),
        "heldout_categories": {},
        "retrieval_test_pairs": {"all": retrieval(loaded, load_captioned(size, "test"))},
        "data": manifests(size),
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
    Path(args.out).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    brief = {k: v for k, v in result.items() if k not in ("data", "templates")}
    print(json.dumps(brief, default=lambda x: x, ensure_ascii=False)[:3000])


if __name__ == "__main__":
    main()
