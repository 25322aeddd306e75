"""The CLIP task with the shared trainer: a short run on real pairs (sklearn digits and their captions) learns to
match them, and its checkpoint loads back for zero-shot use with its tokenizer."""

import torch
from ddp_clip_worker import digits_pairs

from genlab.clip.model import PRESETS
from genlab.clip.pipeline import embed_images, embed_texts, load
from genlab.clip.task import ClipTask, shift_images
from genlab.clip.text import ClipTokenizer, train_alphabet
from genlab.clip.zeroshot import accuracy, class_embeddings, recall_at_k
from genlab.train import TrainConfig, Trainer, seed_everything


def test_short_run_learns_digits_and_reloads(tmp_path):
    data = digits_pairs(320)
    cfg = PRESETS["tiny"]
    tokenizer = ClipTokenizer(train_alphabet(data.captions, cfg.text.vocab_size), cfg.text)
    seed_everything(0)
    task = ClipTask(cfg, data, tokenizer, shift=0, eval_data=data.select(list(range(64))))
    train = TrainConfig(steps=150, batch_size=32, lr=1e-3, warmup_steps=0, schedule="constant", beta2=0.98,
                        ema_decay=0.0, ckpt_every=0, progress=False, eval_every=150, threads=1)
    Trainer(task, train, tmp_path / "run").fit()
    loaded = load(str(tmp_path / "run"))
    assert loaded.tokenizer.encode(["the digit 7"]).tolist() == tokenizer.encode(["the digit 7"]).tolist()
    # Zero-shot on held-out digits from their names alone: 10 classes, chance 10 %.
    test = digits_pairs(640).select(list(range(320, 640)))
    labels = torch.tensor([int(c) for c in test.categories])
    classes = class_embeddings(loaded.model, loaded.tokenizer, [str(d) for d in range(10)], ("the digit {}",))
    acc = accuracy(embed_images(loaded.model, test.images), classes, labels)
    assert acc["top1"] > 0.3, acc
    # and the trainer's eval hook logged retrieval on its pairs
    assert "eval/image_to_text_R@1" in (tmp_path / "run" / "metrics.jsonl").read_text()


def test_recall_at_k_counts_ties_against_the_query():
    """Perfect pairs: R@1 = 1. Texts nearer the next image than their own: one candidate scores higher, so
    R@1 = 0 and R@2 = 1, both ways."""
    x = torch.eye(3)
    r = recall_at_k(x, x, ks=(1, 3))
    assert r["image_to_text_R@1"] == r["text_to_image_R@1"] == 1.0
    text = torch.nn.functional.normalize(x.roll(1, dims=0) + 0.5 * x, dim=-1)
    r = recall_at_k(x, text, ks=(1, 2))
    assert r["image_to_text_R@1"] == r["text_to_image_R@1"] == 0.0
    assert r["image_to_text_R@2"] == r["text_to_image_R@2"] == 1.0
    # a collapsed model (everything embedded alike) ties everywhere: ties count against it
    same = torch.ones(3, 2) / 2**0.5
    r = recall_at_k(same, same, ks=(1, 3))
    assert r["image_to_text_R@1"] == 0.0 and r["image_to_text_R@3"] == 1.0


def test_shift_images_moves_content_and_fills_white():
    img = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    out = shift_images(img, 2, g)
    assert out.shape == img.shape and ((out == 0) | (out == 255)).all()
    assert shift_images(img, 0) is img


def test_embed_texts_batches_agree():
    data = digits_pairs(16)
    cfg = PRESETS["tiny"]
    tok = ClipTokenizer(train_alphabet(data.captions, cfg.text.vocab_size), cfg.text)
    seed_everything(0)
    task = ClipTask(cfg, data, tok)
    texts = [f"the digit {i}" for i in range(10)] + ["a much longer caption " * 10]
    full = embed_texts(task.model.eval(), tok, texts)
    parts = torch.cat([embed_texts(task.model, tok, texts[:3]), embed_texts(task.model, tok, texts[3:])])
    assert torch.allclose(full, parts, atol=1e-6)
    assert tok.encode(texts[-1:]).shape == (1, cfg.text.context_length)  # truncated, end-of-text kept
    assert tok.encode(texts[-1:])[0, -1].item() == cfg.text.eos_token_id
