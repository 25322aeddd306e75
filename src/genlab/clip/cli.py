"""``genlab classify``, ``genlab search``, ``genlab embed``, ``genlab train clip``, ``genlab data clip`` and the CLIP
converters (``genlab convert --from hf-clip|open_clip``)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from ..errors import GenlabError, check_writable


def register(commands) -> None:
    from .convert import convert_hf, convert_open_clip

    def model_args(p):
        p.add_argument("--model", default="emoji-clip", help="bundled model name or CLIP checkpoint directory")
        p.add_argument("--bf16", action="store_true", help="bf16 autocast (about 2x faster on CPUs with bf16)")
        p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    p = commands.top.add_parser("classify", help="zero-shot classify images with CLIP from label names")
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("--labels", required=True, help='comma-separated class names, e.g. "cat,dog,car"')
    p.add_argument("--template", action="append", default=None,
                   help='prompt template with {} for the label (repeat to ensemble; default: genlab\'s set)')
    p.add_argument("--top", type=int, default=1, help="labels shown per image (default 1)")
    p.add_argument("--json", default=None, help="also write the results here")
    model_args(p)
    p.set_defaults(handler=_classify)

    p = commands.top.add_parser("search", help="rank a folder of images against a text query with CLIP")
    p.add_argument("query", help="what to look for")
    p.add_argument("--images", required=True, nargs="+", help="folders or files to search (indexed once, cached)")
    p.add_argument("--top", type=int, default=10)
    model_args(p)
    p.set_defaults(handler=_search)

    p = commands.top.add_parser("embed", help="CLIP embeddings of images or texts to a .npy file")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", nargs="+", help="image files or folders")
    src.add_argument("--texts", nargs="+", help="texts")
    src.add_argument("--text-file", help="a UTF-8 file, one text per line")
    p.add_argument("--out", required=True, help="the .npy file (a .json with provenance is written beside it)")
    model_args(p)
    p.set_defaults(handler=_embed)

    from ..cli import add_train_command

    add_train_command(commands, "clip", help="train CLIP contrastively on captioned images",
                      presets=("emoji-clip", "emoji-clip-minilm", "tiny"), default="emoji-clip", handler=_train)

    p = commands.data.add_parser("clip", help="build the captioned image set CLIP trains on and count it")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--rebuild", action="store_true")
    p.set_defaults(handler=_data)

    commands.converters["hf-clip"] = convert_hf
    commands.converters["open_clip"] = convert_open_clip
    commands.tour_sections.append(tour_section)


# ---------------------------------------------------------------------------------------------------------------


def _positive(value: int, name: str) -> None:
    if value < 1:
        raise GenlabError(f"--{name} must be at least 1, got {value}")


def _labels(text: str) -> list[str]:
    labels = [s.strip() for s in text.split(",")]
    if not text.strip() or any(not s for s in labels):
        raise GenlabError(f"--labels {text!r}: give comma-separated, non-empty class names")
    if len(set(labels)) != len(labels):
        raise GenlabError(f"--labels {text!r}: a class name appears twice")
    return labels


def _templates(given: list[str] | None) -> tuple[str, ...]:
    from .zeroshot import TEMPLATES

    for t in given or ():
        if t.count("{}") != 1:
            raise GenlabError(f"--template {t!r}: must contain {{}} exactly once (where the label goes)")
    return tuple(given) if given else TEMPLATES


def _provenance(loaded, **extra) -> dict:
    return {"model": loaded.source, "weights_hash": loaded.weights_hash,
            **({"components": loaded.components} if loaded.components else {}),
            "command": shlex.join(["genlab", *sys.argv[1:]]),
            **extra}


def _index_files(loaded, paths, args):
    from .search import EmbeddingIndex, embed_files, list_files

    files = list_files(paths)
    if not files:
        raise GenlabError(f"no files in {', '.join(map(str, paths))}")
    index = EmbeddingIndex(loaded.weights_hash, loaded.cfg.vision, loaded.cfg.embed_dim)
    usable, emb, report = embed_files(loaded, files, index, progress=args.progress, bf16=args.bf16)
    print(f"genlab: {report.line()}", file=sys.stderr)
    return usable, emb, report


def _classify(args) -> None:
    from .pipeline import load
    from .zeroshot import class_embeddings, zero_shot_probs

    labels, templates = _labels(args.labels), _templates(args.template)
    _positive(args.top, "top")
    if args.json:
        check_writable(Path(args.json))
    loaded = load(args.model)
    tokenizer = loaded.tokenizer
    usable, emb, report = _index_files(loaded, args.images, args)
    classes = class_embeddings(loaded.model, tokenizer, labels, templates, bf16=args.bf16)
    probs = zero_shot_probs(emb, classes, loaded.model.temperature().item()) if len(usable) else None
    results = []
    for i, path in enumerate(usable):
        top = probs[i].topk(min(args.top, len(labels)))
        ranked = [(labels[j], p) for j, p in zip(top.indices.tolist(), top.values.tolist())]
        print(f"{path}\t" + "\t".join(f"{name} {p:.3f}" for name, p in ranked))
        results.append({"path": str(path), "labels": [{"label": n, "p": p} for n, p in ranked]})
    if args.json:
        out = {**_provenance(loaded, labels=labels, templates=list(templates)), "results": results,
               "skipped": report.skipped, "converted": report.converted}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _search(args) -> None:
    from .pipeline import embed_texts, load
    from .search import rank

    if not args.query.strip():
        raise GenlabError("the search query is empty")
    _positive(args.top, "top")
    loaded = load(args.model)
    query = embed_texts(loaded.model, loaded.tokenizer, [args.query], bf16=args.bf16)[0]
    usable, emb, _ = _index_files(loaded, args.images, args)
    for row, score in rank(query, emb, args.top):
        print(f"{score:.4f}\t{usable[row]}")


def _embed(args) -> None:
    import numpy as np

    from .pipeline import embed_texts, load

    out = Path(args.out)
    if out.suffix != ".npy":
        raise GenlabError(f"--out {out}: use a .npy file name")
    check_writable(out)
    texts = args.texts
    if args.text_file:
        try:
            texts = [line for line in Path(args.text_file).read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as e:
            raise GenlabError(f"cannot read {args.text_file}: {getattr(e, 'strerror', None) or e}") from None
        if not texts:
            raise GenlabError(f"{args.text_file}: no text lines")
    loaded = load(args.model)
    if texts is not None:
        emb = embed_texts(loaded.model, loaded.tokenizer, texts, bf16=args.bf16)
        items = {"texts": texts}
    else:
        usable, emb, report = _index_files(loaded, args.images, args)
        items = {"images": [str(p) for p in usable], "skipped": report.skipped, "converted": report.converted}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, emb.numpy().astype(np.float32))
    meta = _provenance(loaded, shape=list(emb.shape), bf16=args.bf16, normalized=True, **items)
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out} {tuple(emb.shape)} and {out.with_suffix('.json')}")


def _train(args) -> None:
    from ..cli import train_preset
    from ..models import resolve_model
    from .data import load_captioned, summary
    from .task import PRESETS, ClipTask
    from .text import ClipTokenizer, train_alphabet

    def make_task(run) -> ClipTask:
        if run.model.minilm is not None:
            resolve_model(run.model.minilm.weights)  # a missing text encoder is one line, before any work
        size = run.model.vision.image_size
        data = load_captioned(size, "train", run.data.sources)
        held = load_captioned(size, "test", run.data.sources)
        held = held.select(list(range(0, len(held), max(1, len(held) // run.data.eval_pairs)))[: run.data.eval_pairs])
        tokenizer = None  # a borrowed text tower (run.model.minilm) brings its own
        if run.model.minilm is None:
            tokenizer = ClipTokenizer(train_alphabet(data.captions, run.model.text.vocab_size), run.model.text)
        task = ClipTask(run.model, data, tokenizer, run.data.shift, eval_data=held)
        task.meta["data"] = summary(data)
        return task

    def describe(task: ClipTask) -> str:
        frozen = sum(p.numel() for m in task.frozen().values() for p in m.parameters())
        trained = sum(p.numel() for p in task.model.parameters()) - frozen
        return (f"{trained / 1e6:.2f}M parameters" + (f" (+ {frozen / 1e6:.1f}M frozen)" if frozen else "")
                + f", {task.meta['data']}")

    train_preset(args, "clip", PRESETS, make_task, describe)


def tour_section(out_dir: Path, quick: bool) -> str:
    from .tour import clip_section

    return clip_section(out_dir, quick)


def _data(args) -> None:
    from .data import load_captioned, summary

    data = load_captioned(args.size, "all", rebuild=args.rebuild)
    print(json.dumps(summary(data), indent=2))
