"""How well a language model predicts held-out text: perplexity and bits per character, against n-gram baselines.

Every model scores the same thing: a token stream (each document's tokens, documents separated by an end-of-text
token, the first one too), every token after the first predicted from what precedes it. The total negative
log-likelihood ``NLL`` (nats) gives

- per-token loss ``NLL / n_tokens`` and perplexity ``exp(NLL / n_tokens)`` (comparable only between models that
  share an alphabet), and
- bits per character ``NLL / ln 2 / n_chars`` (comparable across alphabets: SmolLM2's 49k-token BPE against
  text-lm's 4k one), with ``n_chars`` the characters of the held-out documents.

A transformer sees at most ``context`` tokens: the stream is read in windows of ``context`` tokens that advance by
``stride`` (default ``context / 2``); each window scores only the targets the previous ones did not, so each
of those has at least ``context - stride`` tokens of history (the HF perplexity recipe).

Baselines, fitted on the training stream: a unigram model with add-one smoothing, and a bigram model with
interpolated absolute discounting (Ney, Essen & Kneser 1994; discount 0.75), ``p(w|v) = max(c(v,w) - d, 0) / c(v)
+ d N1+(v·) / c(v) p_uni(w)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class Score:
    nll: float  # nats, summed
    tokens: int  # predicted tokens
    chars: int  # characters of the text they encode

    @property
    def loss(self) -> float:
        return self.nll / self.tokens

    @property
    def perplexity(self) -> float:
        return math.exp(self.loss)

    @property
    def bits_per_char(self) -> float:
        return self.nll / math.log(2) / self.chars

    def as_dict(self) -> dict[str, float]:
        return {"loss": self.loss, "perplexity": self.perplexity, "bits_per_char": self.bits_per_char,
                "tokens": self.tokens, "chars": self.chars}


def windows(n: int, context: int, stride: int) -> list[tuple[int, int, int]]:
    """``(start, end, first)`` for a stream of ``n`` tokens: inputs ``start .. end - 1``, targets ``start + 1 ..
    end``, of which ``first .. end`` are scored. Every target ``1 .. n - 1`` is scored exactly once."""
    if not 1 <= stride <= context:
        raise ValueError(f"stride {stride} must be in 1 .. context ({context})")
    out, done, start = [], 0, 0
    while done < n - 1:
        end = min(start + context, n - 1)
        out.append((start, end, done + 1))
        done, start = end, start + stride
    return out


@torch.no_grad()
def model_nll(model: torch.nn.Module, stream: torch.Tensor, context: int, stride: int | None = None,
              batch: int = 8) -> tuple[float, int]:
    """Summed NLL (nats) and count of every target of ``stream (N,)`` under ``model`` (``(B, T) -> (B, T, V)``)."""
    model.eval()
    stride = stride or max(1, context // 2)
    spans = windows(len(stream), context, stride)
    device = next(model.parameters()).device
    nll, count = 0.0, 0
    for i in range(0, len(spans), batch):
        group = spans[i : i + batch]
        length = max(e - s for s, e, _ in group)
        x = torch.zeros(len(group), length + 1, dtype=torch.long)  # (b, L + 1) inputs and targets, right-padded
        scored = torch.zeros(len(group), length, dtype=torch.bool)  # (b, L) which targets count
        for row, (s, e, first) in enumerate(group):
            x[row, : e - s + 1] = stream[s : e + 1]
            scored[row, first - s - 1 : e - s] = True
        x, scored = x.to(device), scored.to(device)
        logits = model(x[:, :-1]).float()  # (b, L, V)
        losses = F.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none")  # (b, L)
        nll += float(losses[scored].sum())
        count += int(scored.sum())
    return nll, count


class NGram:
    """Unigram (``order=1``, add-one) or interpolated absolutely discounted bigram (``order=2``) over token ids."""

    def __init__(self, train: np.ndarray, vocab_size: int, order: int = 2, discount: float = 0.75):
        if order not in (1, 2):
            raise ValueError("order must be 1 or 2")
        self.V, self.order, self.d = vocab_size, order, discount
        train = np.asarray(train, dtype=np.int64)
        self.unigram = (np.bincount(train, minlength=vocab_size) + 1.0) / (len(train) + vocab_size)  # (V,)
        if order == 2:
            pairs, counts = np.unique(train[:-1] * vocab_size + train[1:], return_counts=True)  # sorted keys
            self.pairs, self.pair_counts = pairs, counts.astype(np.float64)
            self.context_counts = np.bincount(train[:-1], minlength=vocab_size).astype(np.float64)  # c(v)
            self.followers = np.bincount(pairs // vocab_size, minlength=vocab_size).astype(np.float64)  # N1+(v·)

    def probabilities(self, stream: np.ndarray) -> np.ndarray:
        """``p(stream[i] | stream[i - 1])`` for ``i = 1 .. N - 1``."""
        stream = np.asarray(stream, dtype=np.int64)
        v, w = stream[:-1], stream[1:]
        p_uni = self.unigram[w]
        if self.order == 1:
            return p_uni
        keys = v * self.V + w
        at = np.clip(np.searchsorted(self.pairs, keys), 0, len(self.pairs) - 1)
        c_vw = np.where(self.pairs[at] == keys, self.pair_counts[at], 0.0)
        c_v = self.context_counts[v]
        seen = c_v > 0
        safe = np.where(seen, c_v, 1.0)
        p = np.maximum(c_vw - self.d, 0.0) / safe + self.d * self.followers[v] / safe * p_uni
        return np.where(seen, p, p_uni)

    def nll(self, stream: np.ndarray) -> tuple[float, int]:
        p = self.probabilities(stream)
        return float(-np.log(p).sum()), len(p)


def separated_stream(alphabet, texts: list[str], separator: int) -> np.ndarray:
    """``separator`` then each text's tokens followed by ``separator`` (the layout the training stream has)."""
    ids = [separator]
    for encoding in alphabet.tokenizer.encode_batch(texts, add_special_tokens=False):
        ids.extend(encoding.ids)
        ids.append(separator)
    return np.asarray(ids, dtype=np.int64)


def heldout_report(lm, max_chars: int | None = None, baselines: bool = True, window: int = 1024) -> dict:
    """The model's loss, perplexity and bits per character on the held-out KJV chapters (all, or the first ones up
    to ``max_chars`` characters), beside unigram and bigram baselines fitted on the training chapters in the
    model's own alphabet. ``window``: the longest context given to the model (at most its own)."""
    from . import data
    from .data import EOT

    docs = list(data.split("heldout"))
    if max_chars:
        total, kept = 0, []
        for d in docs:
            if kept and total + len(d.text) > max_chars:
                break
            kept.append(d)
            total += len(d.text)
        docs = kept
    vocab = lm.alphabet.tokenizer.get_vocab()
    separator = vocab.get(EOT, vocab.get(lm.cfg.eos_token or "", None))
    if separator is None:
        raise ValueError("the model's alphabet has neither <|endoftext|> nor an end-of-text token")
    texts = [d.text for d in docs]
    stream = separated_stream(lm.alphabet, texts, separator)
    context = min(window, lm.model.cfg.context)
    chars = sum(len(t) for t in texts)
    nll, n = model_nll(lm.model, torch.from_numpy(stream), context)
    report = {"model": lm.source, "weights_hash": lm.weights_hash, "vocab_size": lm.alphabet.vocab_size,
              "split": f"KJV held-out chapters (index % {data.HELDOUT_EVERY} == {data.HELDOUT_EVERY - 1})",
              "documents": len(docs), "chars": chars, "window": context, "stride": max(1, context // 2),
              "lm": Score(nll, n, chars).as_dict()}
    if baselines:
        train = separated_stream(lm.alphabet, [d.text for d in data.split("train")], separator)
        for name, order in (("unigram", 1), ("bigram", 2)):
            report[name] = Score(*NGram(train, lm.alphabet.vocab_size, order).nll(stream), chars).as_dict()
    return report
