"""Training a language model with the shared trainer: presets and the task.

The loss is the whole idea of the chapter's first machine: maximise the likelihood of each next token given the
ones before it, i.e. minimise the cross-entropy ``-1/N sum_t log p(x_t | x_<t)`` over windows of the training
stream (Bengio et al. 2003; Radford et al. 2018). Examples are the stream cut into ``context + 1``-token windows;
each batch shifts them by a random offset so that epochs do not see the same cuts. Held-out perplexity and bits
per character (``lm/evaluate.py``) are logged at ``eval_every``; samples at three temperatures at ``sample_every``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..config import to_dict
from ..data.alphabet import BPEText
from ..train import TrainConfig
from .model import PRESETS as MODEL_PRESETS
from .model import LMConfig, TransformerLM
from .pipeline import TextLMConfig, tokenizer_json


@dataclass
class LMData:
    corpus: Literal["kjv"] = "kjv"  # lm/data.py
    vocab_size: int = 4096  # of the BPE alphabet trained on the corpus's training split
    eval_tokens: int = 0  # held-out tokens scored at each evaluation (0: all of them, ~51k)


@dataclass
class LMRun:
    """A preset: model, data and training (``genlab train lm --preset NAME key=value ...``)."""

    model: LMConfig = field(default_factory=LMConfig)
    data: LMData = field(default_factory=LMData)
    train: TrainConfig = field(default_factory=TrainConfig)


PRESETS: dict[str, LMRun] = {
    # The bundled model (recipes/text_lm.py): Llama-style, 4 layers x 256, 4k BPE, 4.0M parameters (8 MB in fp16).
    "text-lm": LMRun(
        replace(MODEL_PRESETS["tiny"], dropout=0.1),
        LMData(vocab_size=4096, eval_tokens=0),
        TrainConfig(steps=2000, batch_size=32, lr=1e-3, warmup_steps=100, min_lr_ratio=0.1, weight_decay=0.1,
                    beta2=0.95, grad_clip=1.0, ema_decay=0.0, ckpt_every=250, eval_every=250, sample_every=1000),
    ),
    # A minute of training for tests and smoke runs: the same corpus, a much smaller model.
    "smoke": LMRun(
        LMConfig(style="llama", vocab_size=512, context=64, n_layer=2, dim=64, n_head=4, n_kv_head=2),
        LMData(vocab_size=512, eval_tokens=4096),
        TrainConfig(steps=60, batch_size=16, lr=3e-3, warmup_steps=10, ema_decay=0.0, ckpt_every=0, eval_every=30,
                    log_every=10, progress=False),
    ),
}


class LMTask:
    """Next-token cross-entropy on a token stream, handed to :class:`genlab.train.Trainer`."""

    kind = "lm"

    def __init__(self, run: LMRun, train_stream: np.ndarray | None = None, heldout: np.ndarray | None = None,
                 alphabet: BPEText | None = None, heldout_chars: int | None = None):
        from . import data

        self.run, self.cfg = run, run.model
        self.alphabet = alphabet or data.alphabet(run.data.vocab_size)
        if self.alphabet.vocab_size != self.cfg.vocab_size:
            raise ValueError(f"the alphabet has {self.alphabet.vocab_size} tokens, the model {self.cfg.vocab_size}")
        self.stream = torch.from_numpy(np.asarray(data.token_stream("train", run.data.vocab_size)
                                                  if train_stream is None else train_stream, dtype=np.int64))
        self.heldout = torch.from_numpy(np.asarray(data.token_stream("heldout", run.data.vocab_size)
                                                   if heldout is None else heldout, dtype=np.int64))
        if heldout_chars is None:
            heldout_chars = sum(len(d.text) for d in data.split("heldout"))
        self.heldout_chars = heldout_chars
        if run.data.eval_tokens:  # a prefix; characters scaled by the share of tokens kept
            share = min(1.0, run.data.eval_tokens / len(self.heldout))
            self.heldout, self.heldout_chars = self.heldout[: run.data.eval_tokens], round(heldout_chars * share)
        self.model = TransformerLM(self.cfg)
        T = self.cfg.context
        self.num_examples = (len(self.stream) - 1) // T - 1  # windows of T + 1 tokens, one spare for the shift
        if self.num_examples < 1:
            raise ValueError(f"the training stream ({len(self.stream)} tokens) is shorter than two contexts")
        self.meta = {"corpus": run.data.corpus, "train_tokens": len(self.stream), "heldout_tokens": len(self.heldout)}

    def batch(self, indices: torch.Tensor) -> torch.Tensor:
        """``(B, T + 1)`` windows starting at ``index * T`` plus one random shift per batch."""
        T = self.cfg.context
        shift = int(torch.randint(0, T, ()))
        starts = indices * T + shift  # (B,)
        return self.stream[starts[:, None] + torch.arange(T + 1)]  # (B, T + 1)

    def loss(self, x: torch.Tensor, phase: str) -> tuple[torch.Tensor, dict[str, float]]:
        logits = self.model(x[:, :-1])  # (B, T, V)
        loss = F.cross_entropy(logits.float().flatten(0, 1), x[:, 1:].flatten())
        return loss, {"loss": loss.item()}

    def checkpoint_config(self) -> dict:
        return to_dict(TextLMConfig(model=self.cfg, tokenizer=tokenizer_json(self.alphabet),
                                    eos_token="<|endoftext|>", source=f"trained on {self.run.data.corpus}"))

    def evaluate(self, step: int, model: TransformerLM) -> dict[str, float]:
        from .evaluate import Score, model_nll

        was_training = model.training
        nll, n = model_nll(model, self.heldout, self.cfg.context)
        model.train(was_training)
        s = Score(nll, n, self.heldout_chars)
        return {"heldout_loss": s.loss, "heldout_ppl": s.perplexity, "heldout_bpc": s.bits_per_char}

    @torch.no_grad()
    def sample(self, out_dir: Path, step: int, model: TransformerLM) -> None:
        """Continuations of a fixed prompt at three temperatures, with their provenance (JSON)."""
        from .pipeline import TextLM, generate_text

        was_training = model.training
        lm = TextLM(model.eval(), self.alphabet, TextLMConfig(model=self.cfg), f"training step {step}", "-")
        out = [generate_text(lm, "And God said,", max_new_tokens=48, temperature=t, top_p=0.95, seed=0)
               for t in (0.5, 0.8, 1.0)]
        model.train(was_training)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"step_{step:07d}.json").write_text(json.dumps(out, indent=1) + "\n")
