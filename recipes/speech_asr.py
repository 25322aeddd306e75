"""Recipe: train genlab's own multilingual recogniser ``speech-asr`` from scratch and bundle it.

    python recipes/speech_asr.py --run runs/speech-asr            # train (resumes), then export
    python recipes/speech_asr.py --run runs/speech-asr --export   # export the latest checkpoint only

Data: the espeak-ng corpus of :mod:`genlab.data.speech` (6 languages, many voices and accents, noise and
reverberation; ``genlab data speech`` builds it). Model: Whisper's architecture at d=192, 3+3 layers, with Whisper's
tokenizer and special tokens, so ``genlab transcribe --model speech-asr`` and the same decoder serve it. Training:
the shared trainer with the ``speech-asr`` preset of :mod:`genlab.asr.task` (active-vocabulary loss, length-grouped
batches, EMA), on 2 CPU cores.

Export writes ``src/genlab/assets/speech-asr/``: ``config.json`` + ``model.safetensors`` (the EMA weights in
float16: a genlab checkpoint of kind ``whisper``), Whisper's multilingual ``tokenizer.json`` and ``metrics.json``
(held-out loss, training curve summary, the command). WER/CER come from ``benchmarks/speech_eval.py``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

import torch

from genlab.asr.task import ASRRunConfig, ASRTask, default_tokenizer_path, preset, train
from genlab.checkpoint import load_checkpoint, save_checkpoint
from genlab.config import apply_overrides, from_dict, to_dict

ROOT = Path(__file__).resolve().parent.parent
ASSET = ROOT / "src" / "genlab" / "assets" / "speech-asr"


def curve_summary(run: Path) -> dict:
    """First, quarter, half, three-quarter and last logged training loss, and the wall time."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    steps = [r for r in records if "loss_avg" in r]
    if not steps:
        return {}
    picks = sorted({0, len(steps) // 4, len(steps) // 2, 3 * len(steps) // 4, len(steps) - 1})
    evals = [r for r in records if any(k.startswith("eval_loss") for k in r)]
    return {
        "loss_avg_at_step": {str(steps[k]["step"]): round(steps[k]["loss_avg"], 4) for k in picks},
        "eval": evals,
        "seconds_last_session": round(steps[-1].get("time", 0.0), 1),
    }


def export(run: Path, argv: list[str]) -> None:
    from genlab.asr.model import Whisper, WhisperConfig

    ckpt = load_checkpoint(run, kind="whisper")
    cfg = from_dict(WhisperConfig, ckpt.config)
    weights = ckpt.ema if ckpt.ema is not None else ckpt.model
    asr_cfg = json.loads((run / "asr_config.json").read_text())
    ASSET.mkdir(parents=True, exist_ok=True)
    half = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in weights.items()}
    tmp = ASSET.parent / ".speech-asr-export"
    # genlab.interop.whisper's format; the task pads short clips with the log-mel of silence (see ASRTask.batch)
    config = {**to_dict(cfg), "multilingual": True, "alignment_heads": None, "window_padding": "silence"}
    save_checkpoint(tmp, kind="whisper", config=config, model=half, sparse_rows=("decoder.token_embedding.weight",),
                    meta={"step": ckpt.meta.get("step"), "source_run": str(run), "weights": "ema, float16"})
    for name in ("config.json", "model.safetensors", "meta.json"):
        shutil.copy(tmp / name, ASSET / name)
    shutil.rmtree(tmp)
    tok = default_tokenizer_path()
    if tok.resolve() != (ASSET / "tokenizer.json").resolve():
        shutil.copy(tok, ASSET / "tokenizer.json")

    # Held-out teacher-forced loss of the exported (float16 -> float32) weights, on each held-out split.
    model = Whisper(cfg)
    model.load_state_dict({k: v.float() for k, v in half.items()})
    run_cfg = from_dict(ASRRunConfig, asr_cfg)  # the run's own settings (units, corpus seed and size)
    task = ASRTask(run_cfg, model=model)
    nonzero = int((model.decoder.token_embedding.weight.abs().sum(1) > 0).sum())
    metrics = {
        "command": "python recipes/speech_asr.py " + shlex.join(argv),
        "step": ckpt.meta.get("step"),
        "parameters": sum(p.numel() for p in model.parameters()),
        "embedding_rows_nonzero": nonzero,
        "model_safetensors_bytes": (ASSET / "model.safetensors").stat().st_size,
        "corpus": task.meta["corpus"],
        "train_utterances": task.meta["train_utterances"],
        "heldout_token_loss": {s: round(task.eval_loss(s, model, limit=200), 4)
                               for s in ("test_sentences", "test_voices", "test_accents")},
        "heldout_loss_n": 200,
        "training": curve_summary(run),
        "train_config": asr_cfg["train"],
    }
    (ASSET / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps({k: v for k, v in metrics.items() if k != "training"}, indent=2))


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default="runs/speech-asr")
    p.add_argument("--export", action="store_true", help="only export the latest checkpoint of --run")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = p.parse_args(argv)
    run = Path(args.run)
    if not args.export:
        cfg = apply_overrides(preset("speech-asr"), args.overrides)
        train(cfg, run)
        step = load_checkpoint(run, kind="whisper").meta.get("step", 0)
        if step < cfg.train.steps:  # stopped by a signal: rerun to resume, export at the end
            print(f"stopped at step {step} of {cfg.train.steps}; not exporting")
            return
    export(run, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
