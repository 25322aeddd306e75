"""The LM section of ``genlab tour`` on a tiny random model: samples at three temperatures and across the top-p
sweep, the held-out curve of its run, the bits-per-character table, a chat answer, or one line for what is missing."""

import json

import pytest

from genlab.lm import cli as lm_cli
from genlab.lm import pipeline, tour
from genlab.lm.model import LMConfig, TransformerLM

TEXT = ["In the beginning God created the heaven and the earth.", "And the earth was without form, and void.",
        "And God said, Let there be light: and there was light."] * 10
TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['content'] }}<|endoftext|>{% endfor %}<|im_start|>"
LOG = [{"step": 10, "loss": 5.0, "loss_avg": 5.2}, {"step": 10, "heldout_loss": 5.1, "heldout_ppl": 164.0},
       {"step": 20, "loss": 4.0, "loss_avg": 4.1}, {"step": 20, "heldout_loss": 4.6, "heldout_ppl": 99.5,
                                                    "heldout_bpc": 1.9}]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory: a training log and, under it, a tiny random Llama-style checkpoint with a chat template."""
    import torch

    from genlab.data.alphabet import BPEText

    run = tmp_path_factory.mktemp("run")
    tok = BPEText.train(TEXT, vocab_size=160, special=("<|endoftext|>", "<|im_start|>"))
    cfg = LMConfig(style="llama", vocab_size=tok.vocab_size, context=160, n_layer=1, dim=32, n_head=4, n_kv_head=2)
    torch.manual_seed(0)
    text_cfg = pipeline.TextLMConfig(model=cfg, tokenizer=pipeline.tokenizer_json(tok), chat_template=TEMPLATE)
    pipeline.save(run / "weights", text_cfg, TransformerLM(cfg).state_dict(), {})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in LOG))
    return run


def test_section_shows_samples_curve_and_chat(run_dir, tmp_path):
    model = str(run_dir / "weights")
    page = tour.tour_section(tmp_path, quick=True, model=model, chat_model=model)
    for t in tour.TEMPERATURES:
        assert f"<td>T = {t:g}</td>" in page
    for p in tour.TOP_PS:
        assert f"<td>top-p = {p:g}</td>" in page
    assert page.count(f"<b>{tour.PROMPT}</b>") == len(tour.TEMPERATURES) + len(tour.TOP_PS)
    assert "<svg" in page and "held-out" in page and "training batches" in page
    assert "Held-out perplexity 99.5 at step 20 (lowest 99.5 at step 20)" in page
    assert tour.QUESTION in page and "Could not run" not in page
    assert page == tour.tour_section(tmp_path, quick=True, model=model, chat_model=model)  # seeded: the same page


def test_missing_chat_model_and_log_are_one_note_each(run_dir, tmp_path):
    lm = pipeline.load(str(run_dir / "weights"))
    lm.source = str(tmp_path)  # nothing beside it, no run above it
    assert tour.read_metrics(lm) == {}
    page = tour.tour_section(tmp_path, quick=True, model=str(run_dir / "weights"), chat_model="no-such-model")
    assert "Could not run no-such-model: model not found" in page


def test_metrics_json_beside_the_weights_gives_curve_and_quality(run_dir, tmp_path):
    lm = pipeline.load(str(run_dir / "weights"))
    quality = {"text": "the first 100 characters", "bits_per_char": {"text-lm": 1.01, "smollm2": 0.95},
               "command": "python benchmarks/lm_quality.py", "date": "today"}
    (tmp_path / "metrics.json").write_text(json.dumps(
        {"quality": quality, "heldout_curve": tour.heldout_curve(run_dir / "metrics.jsonl")}))
    lm.source = str(tmp_path)
    metrics = tour.read_metrics(lm)
    assert [r["train_loss_avg"] for r in metrics["heldout_curve"]] == [5.2, 4.1]
    assert "<td>smollm2</td><td>0.950</td>" in tour._quality(metrics)


def test_registered_as_the_lm_section():
    from genlab.cli import build_parser
    from genlab.tour import section_name

    _, commands = build_parser()
    assert lm_cli.tour_section in commands.tour_sections and section_name(lm_cli.tour_section) == "lm"
