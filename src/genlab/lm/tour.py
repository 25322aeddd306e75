"""The language-model section of ``genlab tour``: the bundled ``text-lm`` continuing one prompt at three
temperatures and across a top-p sweep, its held-out perplexity during training, its bits per character beside the
n-gram baselines and SmolLM2, and SmolLM2 answering a question — or one line saying what is missing.

The curve and the bits per character are read from ``metrics.json`` beside the weights (``recipes/text_lm.py
metrics`` writes it from the run's ``metrics.jsonl`` and ``benchmarks/results/lm_quality.json``); a run directory's
own ``metrics.jsonl`` serves for the curve when the model is a run.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

from ..errors import GenlabError
from .pipeline import TextLM, chat_prompt, generate_text, load

PROMPT = "And God said"
TEMPERATURES = (0.5, 1.0, 1.5)
TOP_PS = (0.3, 0.7, 0.95)
TOP_P_TEMPERATURE = 1.0
QUESTION = "What is the capital of France?"


def tour_section(out_dir: Path, quick: bool, model: str = "text-lm", chat_model: str = "smollm2") -> str:
    lm = load(model)
    n = 32 if quick else 80
    parts = [f"<h2>Language model: {html.escape(model)}, the next-token machine</h2>",
             "<p>Tokens in, a distribution over the next token out; sample one, append it, repeat. "
             f"Each row continues <q>{html.escape(PROMPT)}</q> for {n} tokens with seed 0.</p>"]
    temperature_rows = [(f"T = {t:g}", {"temperature": t}) for t in TEMPERATURES]
    parts.append(_samples(lm, "Three temperatures: T &lt; 1 sharpens the distribution, T &gt; 1 flattens it",
                          temperature_rows, n))
    top_p_rows = [(f"top-p = {p:g}", {"temperature": TOP_P_TEMPERATURE, "top_p": p}) for p in TOP_PS]
    parts.append(_samples(lm, f"Top-p (nucleus) sweep at T = {TOP_P_TEMPERATURE:g}: sample only among the most "
                          "likely tokens that together hold mass p", top_p_rows, n))
    metrics = read_metrics(lm)
    parts.append(_curve(metrics))
    parts.append(_quality(metrics))
    parts.append(_chat(chat_model, 24 if quick else 64))
    return "\n".join(parts)


def _samples(lm: TextLM, title: str, rows: list[tuple[str, dict]], n: int) -> str:
    cells = []
    for label, settings in rows:
        record = generate_text(lm, PROMPT, max_new_tokens=n, seed=0, **settings)
        cells.append(f"<tr><td>{html.escape(label)}</td><td><b>{html.escape(PROMPT)}</b>"
                     f"{html.escape(record['text'])}</td></tr>")
    return f"<h3>{title}</h3><table><tr><th>setting</th><th>text</th></tr>{''.join(cells)}</table>"


def read_metrics(lm: TextLM) -> dict:
    """``metrics.json`` beside the weights, or the held-out curve of the run directory the weights came from."""
    source = Path(lm.source)
    if (source / "metrics.json").exists():
        return json.loads((source / "metrics.json").read_text())
    for run in (source, *source.parents[:2]):
        if (run / "metrics.jsonl").exists():
            return {"heldout_curve": heldout_curve(run / "metrics.jsonl")}
    return {}


def heldout_curve(path: Path) -> list[dict]:
    """The held-out evaluations of a training log (``metrics.jsonl``), each with the training loss logged at the
    same step (its running average), so the two can be drawn side by side."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    train = {r["step"]: r["loss_avg"] for r in rows if "loss_avg" in r}
    return [{"step": r["step"], "heldout_loss": r["heldout_loss"], "heldout_ppl": r["heldout_ppl"],
             "heldout_bpc": r.get("heldout_bpc"), "train_loss_avg": train.get(r["step"])}
            for r in rows if "heldout_loss" in r]


def _curve(metrics: dict) -> str:
    from ..tour import svg_line_plot

    curve = metrics.get("heldout_curve")
    if not curve:
        return "<p class='note'>No training log beside these weights: no held-out perplexity curve.</p>"
    series = {"held-out": [(r["step"], r["heldout_ppl"]) for r in curve]}
    train = [(r["step"], math.exp(r["train_loss_avg"])) for r in curve if r.get("train_loss_avg") is not None]
    if train:
        series["training batches"] = train
    best = min(curve, key=lambda r: r["heldout_loss"])
    last = curve[-1]
    return ("<h3>Perplexity per token during training</h3>"
            + svg_line_plot(series, "training step", "perplexity", log_x=False)
            + f"<p class='note'>Held-out perplexity {last['heldout_ppl']:.1f} at step {last['step']} (lowest "
            f"{best['heldout_ppl']:.1f} at step {best['step']}); the gap to the training batches is memorised "
            "text.</p>")


def _quality(metrics: dict) -> str:
    quality = metrics.get("quality")
    if not quality:
        return ""
    rows = "".join(f"<tr><td>{html.escape(name)}</td><td>{bpc:.3f}</td></tr>"
                   for name, bpc in quality["bits_per_char"].items())
    return (f"<h3>Bits per character on held-out text</h3><p>{html.escape(quality['text'])}: lower is better; "
            f"bits per character compare models whose alphabets differ.</p>"
            f"<table><tr><th>model</th><th>bits / character</th></tr>{rows}</table>"
            f"<p class='note'>{html.escape(quality['command'])}</p>")


def _chat(name: str, n: int) -> str:
    try:
        lm = load(name)
    except GenlabError as e:
        return f"<h3>A published model answers</h3><p class='note'>Could not run {html.escape(name)}: " \
               f"{html.escape(str(e))}</p>"
    record = generate_text(lm, chat_prompt(lm, QUESTION), max_new_tokens=n, temperature=0.0)
    return (f"<h3>A published model answers: {html.escape(name)}, greedy, in genlab's own model and loop</h3>"
            f"<p><b>{html.escape(QUESTION)}</b></p><p>{html.escape(record['text'].strip())}</p>")
