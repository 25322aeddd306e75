"""``genlab train asr --preset speech-asr [key=value ...] [--out DIR]``: train (or fine-tune) Whisper on the
speech corpus with the shared trainer. Overrides use dotted keys: ``model.n_text_layer=2``, ``train.steps=50``,
``data.utterances=600``, ``init=base``. Rerunning with the same ``--out`` resumes exactly."""

from __future__ import annotations


def register(commands) -> None:
    p = commands.train.add_parser("asr", help="train Whisper from scratch or fine-tune it on the speech corpus")
    p.add_argument("--preset", default="speech-asr", help="speech-asr | whisper-finetune | tiny")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. train.steps=200 model.n_text_layer=2")
    p.add_argument("--out", default=None, help="run directory (default runs/asr-PRESET); resumes if it exists")
    p.add_argument("--fresh", action="store_true", help="ignore a checkpoint already in --out")
    p.set_defaults(handler=_train)


def _train(args) -> None:
    from ..config import apply_overrides
    from .task import preset, train

    cfg = apply_overrides(preset(args.preset), args.overrides)
    out = args.out or f"runs/asr-{args.preset}"
    metrics = train(cfg, out, resume=not args.fresh)
    print(f"trained to {out}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
