"""The CLIP section of ``genlab tour``: zero-shot emoji groups as a confusion matrix, and text-to-image search over
held-out images with thumbnails."""

from __future__ import annotations

import html
from pathlib import Path

import torch

from ..data.images import make_grid, save_png
from .data import load_captioned
from .pipeline import embed_images, embed_texts, load
from .zeroshot import TEMPLATES, accuracy, class_embeddings, confusion

QUERIES = ("a red apple", "a smiling face", "a car", "a flag", "a musical instrument", "a tree")


def _table(names: list[str], counts: torch.Tensor) -> str:
    head = "".join(f"<th>{html.escape(n[:12])}</th>" for n in names)
    rows = "".join(f"<tr><th>{html.escape(n)}</th>" + "".join(f"<td>{int(c)}</td>" for c in row) + "</tr>"
                   for n, row in zip(names, counts))
    return f"<table><tr><th>true \\ predicted</th>{head}</tr>{rows}</table>"


def clip_section(out_dir: Path, quick: bool, model: str = "emoji-clip") -> str:
    loaded = load(model)
    size = loaded.cfg.vision.image_size
    test = load_captioned(size, "test")
    emoji = test.select([i for i, s in enumerate(test.sources) if s == "openmoji"])
    names = sorted(set(emoji.categories))
    labels = torch.tensor([names.index(c) for c in emoji.categories])
    image_emb = embed_images(loaded.model, emoji.images)
    classes = class_embeddings(loaded.model, loaded.tokenizer, names, TEMPLATES)
    acc = accuracy(image_emb, classes, labels)
    parts = [
        "<h2>CLIP — images and words in one space</h2>",
        f"<p><code>{html.escape(model)}</code> (weights hash <code>{loaded.weights_hash}</code>) embeds a picture and "
        "a sentence into one space. <b>Zero-shot:</b> the held-out emoji, classified into their Unicode groups from "
        f"the group names alone ({len(TEMPLATES)} prompt templates averaged): top-1 {acc['top1']:.1%} on "
        f"{len(labels)} images, chance {1 / len(names):.1%}.</p>",
        _table(names, confusion(image_emb, classes, labels)),
        "<p><b>Search:</b> each query against every held-out image (emoji, Tux Paint stamps, clip art); the five "
        "nearest, best first.</p>",
    ]
    all_emb = embed_images(loaded.model, test.images)
    out = out_dir / "clip"
    for q in QUERIES[: 3 if quick else len(QUERIES)]:
        scores = all_emb @ embed_texts(loaded.model, loaded.tokenizer, [q])[0]
        top = scores.topk(5).indices
        file = f"clip/search-{q.replace(' ', '-')}.png"
        save_png(make_grid(test.images[top], nrow=5), out_dir / file,
                 {"model": loaded.source, "weights_hash": loaded.weights_hash, "query": q,
                  "items": [test.keys[i] for i in top.tolist()]})
        caption = f"“{q}”: " + ", ".join(f"{test.captions[i]} ({scores[i]:.2f})" for i in top.tolist())
        parts.append(f"<figure><img src='{html.escape(file)}' width='320'>"
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    out.mkdir(parents=True, exist_ok=True)
    return "".join(parts)
