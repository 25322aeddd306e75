"""``genlab train asr --preset speech-asr [--out DIR] [--fresh] [key=value ...]``: train (or fine-tune) Whisper on
the speech corpus with the shared trainer. Overrides use dotted keys: ``model.n_text_layer=2``, ``train.steps=50``,
``data.utterances=600``, ``init=base``. Rerunning with the same ``--out`` resumes exactly; ``--fresh`` starts over
(see :func:`genlab.cli.add_train_command`)."""

from __future__ import annotations


def register(commands) -> None:
    from ..cli import add_train_command

    add_train_command(commands, "asr", help="train Whisper from scratch or fine-tune it on the speech corpus",
                      presets=["speech-asr", "whisper-finetune", "tiny"], default="speech-asr", handler=_train)


def _train(args) -> None:
    from ..cli import run_directory
    from ..config import apply_overrides
    from .task import preset, train

    cfg = apply_overrides(preset(args.preset), args.overrides)
    out = run_directory(args, "asr")
    metrics = train(cfg, out)
    print(f"trained to {out}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
