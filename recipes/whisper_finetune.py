"""Recipe: fine-tune published Whisper weights on genlab's speech corpus with the same task and trainer.

    python recipes/whisper_finetune.py --run runs/whisper-finetune [--init base] [KEY=VALUE ...]

Whisper users expect to adapt the published model to their own audio; here that audio is the espeak-ng corpus.
The task is :class:`genlab.asr.task.ASRTask` with ``init=base`` (weights from ``genlab.asr.load("base")``, the
``genlab[whisper]`` extra), the full 51,865-token loss and a small learning rate. The recipe measures the
teacher-forced token loss of held-out sentences (``test_sentences``, 30 s windows) before and after, and writes
both, with the command, to ``benchmarks/results/speech_finetune.json``. The fine-tuned checkpoint in ``--run``
loads with ``genlab.asr.load(RUN)`` and ``genlab transcribe --model RUN/checkpoints/step_...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from genlab.asr.task import ASRTask, load_pretrained, preset, train
from genlab.config import apply_overrides

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default="runs/whisper-finetune")
    p.add_argument("--init", default="base", help="the Whisper to fine-tune: base, tiny.en or a path")
    p.add_argument("--heldout", type=int, default=24, help="held-out utterances for the before/after loss")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "speech_finetune.json"))
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = p.parse_args(argv)
    cfg = apply_overrides(dataclasses.replace(preset("whisper-finetune"), init=args.init), args.overrides)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)

    model = load_pretrained(cfg.init)
    probe = ASRTask(dataclasses.replace(cfg, model=model.config, active_vocab=False), model=model)
    splits = ("test_sentences", "test_voices", "test_accents")
    t0 = time.perf_counter()
    before = {s: probe.eval_loss(s, model, limit=args.heldout, batch_size=8) for s in splits}
    print("held-out loss before:", before, flush=True)
    del model, probe

    t1 = time.perf_counter()
    train(cfg, args.run)
    train_seconds = time.perf_counter() - t1

    from genlab.checkpoint import load_checkpoint

    tuned = load_pretrained(cfg.init)
    tuned.load_state_dict(load_checkpoint(args.run, kind="whisper").model)
    probe = ASRTask(dataclasses.replace(cfg, model=tuned.config, active_vocab=False), model=tuned)
    after = {s: probe.eval_loss(s, tuned, limit=args.heldout, batch_size=8) for s in splits}
    print("held-out loss after:", after, flush=True)
    records = [json.loads(line) for line in (Path(args.run) / "metrics.jsonl").read_text().splitlines()]
    result = {
        "command": "python recipes/whisper_finetune.py " + shlex.join(argv),
        "init": cfg.init,
        "steps": cfg.train.steps,
        "utterances_per_step": cfg.train.batch_size * cfg.data.group_size,
        "lr": cfg.train.lr,
        "corpus_seed": cfg.data.seed,
        "heldout_n_per_split": args.heldout,
        "heldout_token_loss_before": {k: round(v, 4) for k, v in before.items()},
        "heldout_token_loss_after": {k: round(v, 4) for k, v in after.items()},
        "train_loss": [{"step": r["step"], "loss_avg": round(r["loss_avg"], 4)} for r in records if "loss_avg" in r],
        "train_seconds": round(train_seconds, 1),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
