"""The TTS corpus: espeak-ng voices reading held-apart sentences, with every phoneme's duration (``genlab data tts``).

No recorded corpus with transcripts and alignments installs here, so the acoustic model learns from espeak-ng
(GPL-3.0, through ``genlab[speech]``): the US-English voice with its 51 training variants (``data.speech``'s
:data:`TRAIN_VARIANTS`: male, female, Klatt and named voices) as 51 speakers, each utterance at its own rate and
pitch. Voice 0, the plain ``en-us``, is the built-in voice. espeak tells where each phoneme starts
(:mod:`genlab.tts.phonemes`), so the durations are exact and no aligner is trained. Sentences come from
``data.speech``'s seeded split of the offline English prose (``dataset_build``), so the held-out sentences are the
ones the ASR family holds out too; held-out voices (:data:`HELD_OUT_VARIANTS`) are for cloning evaluation.

What is stored, under ``cache_dir("tts", ...)``, per split: ``mel.npy`` (frames, 80) float16 log-mels,
``audio.npy`` int16 at 22,050 Hz (the vocoder's targets), ``phonemes.npy`` / ``stress.npy`` / ``durations.npy``
(one row per phoneme, all utterances end to end) and a manifest with the offsets, texts, voices and the phoneme
vocabulary (sorted by frequency in the training split).
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.cache import cache_dir, read_manifest, write_manifest
from ..errors import GenlabError

VERSION = 1
SAMPLE_RATE = 22050
N_FFT, HOP, N_MELS = 1024, 256, 80
LOG_FLOOR = 1e-5
SPLITS = ("train", "test")


@dataclass
class TTSCorpusSize:
    train: int = 2000
    test: int = 100


def log_mel(audio: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``(..., n)`` float audio at 22,050 Hz -> ``(..., n // 256 + 1, 80)`` natural-log mel magnitudes (HiFi-GAN's
    features: 1024-point Hann window, hop 256, Slaney mel bands 0-11,025 Hz, floored at 1e-5)."""
    from ..data.audio import mel_spectrogram

    x = torch.as_tensor(audio, dtype=torch.float32)
    mel = mel_spectrogram(x, SAMPLE_RATE, N_FFT, HOP, N_MELS)  # (..., 80, frames)
    return torch.log(mel.clamp(min=LOG_FLOOR)).transpose(-1, -2).contiguous()


def voices() -> tuple[list[str], list[str]]:
    """Training voices (the built-in one first) and held-out voices, as espeak names."""
    from ..data.speech import HELD_OUT_VARIANTS, TRAIN_VARIANTS

    train = ["en-us"] + [f"en-us+{v}" for v in TRAIN_VARIANTS if v]
    return train, [f"en-us+{v}" for v in HELD_OUT_VARIANTS]


def plan(size: TTSCorpusSize, seed: int) -> list[dict]:
    """What each utterance is (split, id, text, speaker, voice, rate, pitch): the one step of :func:`build` that needs
    the sentence sources (``dataset_build``); a machine without them renders a plan made elsewhere."""
    from ..data.speech import _split_sentences

    sentences = _split_sentences(seed)["en"]
    train_voices, _ = voices()
    rng = random.Random(f"{seed}-tts")
    out = []
    for split in SPLITS:
        pool = sentences["train" if split == "train" else "test"]
        for i in range(getattr(size, split)):
            # Voice 0 (the built-in voice) reads a quarter of the sentences at its default rate and pitch.
            builtin = split == "test" or rng.random() < 0.25
            voice = 0 if builtin else rng.randrange(1, len(train_voices))
            text = pool[rng.randrange(len(pool))]
            if rng.random() < 0.5:  # two sentences in a row half the time: longer contexts, real pauses
                text += " " + pool[rng.randrange(len(pool))]
            out.append({"split": split, "id": f"{split}-{i:05d}", "text": text, "speaker": voice,
                        "voice": train_voices[voice], "rate": 175 if builtin else rng.randint(140, 210),
                        "pitch": 50 if builtin else rng.randint(35, 65)})
    return out


class TTSCorpus:
    """A built corpus: per split, utterance ``i``'s phonemes, stress, durations, speaker, log-mel and audio."""

    def __init__(self, directory: Path, manifest: dict):
        self.dir, self.manifest = directory, manifest
        self.vocabulary: list[str] = manifest["vocabulary"]
        self.arrays = {split: {name: np.load(directory / split / f"{name}.npy", mmap_mode="r")
                               for name in ("mel", "audio", "phonemes", "stress", "durations")} for split in SPLITS}

    def utterances(self, split: str) -> list[dict]:
        return [u for u in self.manifest["utterances"] if u["split"] == split]

    def item(self, split: str, u: dict) -> dict[str, torch.Tensor]:
        a = self.arrays[split]
        p0, p1 = u["phoneme_offset"], u["phoneme_offset"] + u["n_phonemes"]
        f0, f1 = u["frame_offset"], u["frame_offset"] + u["n_frames"]
        s0, s1 = u["sample_offset"], u["sample_offset"] + u["n_samples"]
        return {"phonemes": torch.from_numpy(a["phonemes"][p0:p1].astype(np.int64)),
                "stress": torch.from_numpy(a["stress"][p0:p1].astype(np.int64)),
                "durations": torch.from_numpy(a["durations"][p0:p1].astype(np.int64)),
                "mel": torch.from_numpy(a["mel"][f0:f1].astype(np.float32)),
                "audio": torch.from_numpy(a["audio"][s0:s1].astype(np.float32) / 32767),
                "speaker": torch.tensor(u["speaker"])}


def encode_symbols(symbols: list[str], vocabulary: list[str]) -> list[int]:
    """IPA symbols -> ids: 0 pad, 1 unknown, 2 pause, then the vocabulary."""
    from .model import PAUSE, UNKNOWN

    index = {s: i + 3 for i, s in enumerate(vocabulary)}
    return [PAUSE if s == "_" else index.get(s, UNKNOWN) for s in symbols]


def corpus_dir(size: TTSCorpusSize, seed: int) -> Path:
    return cache_dir("tts", f"v{VERSION}-seed{seed}-n{size.train}-{size.test}")


def build(size: TTSCorpusSize | None = None, seed: int = 0, rebuild: bool = False, progress: bool = True,
          planned: list[dict] | None = None) -> TTSCorpus:
    """Synthesise and store the corpus (about a minute per 1,000 utterances on one core), from ``planned`` (the
    output of :func:`plan` for the same ``size`` and ``seed``) when given, else from :func:`plan`."""
    from .phonemes import phonemizer

    size = size or TTSCorpusSize()
    directory = corpus_dir(size, seed)
    if not rebuild and (manifest := read_manifest(directory, verify=False)) is not None:
        return TTSCorpus(directory, manifest)
    engine = phonemizer()
    utterances, rendered, t0 = planned or plan(size, seed), [], time.perf_counter()
    for k, u in enumerate(utterances):
        ph = engine(u["text"], u["voice"], u["rate"], u["pitch"])
        if len(ph.audio) < HOP * 4 or not ph.symbols:
            continue
        mel = log_mel(ph.audio).numpy()
        rendered.append((u, ph, mel, ph.frame_durations(HOP, len(mel))))
        if progress and (k + 1) % 500 == 0:
            print(f"  tts corpus: {k + 1}/{len(utterances)}, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    counts: dict[str, int] = {}
    for u, ph, _, _ in rendered:
        if u["split"] == "train":
            for s in ph.symbols:
                if s != "_":
                    counts[s] = counts.get(s, 0) + 1
    vocabulary = sorted(counts, key=lambda s: (-counts[s], s))
    entries = _store(directory, rendered, vocabulary)
    info = {"version": VERSION, "seed": seed, "size": asdict(size), "sample_rate": SAMPLE_RATE, "hop": HOP,
            "n_mels": N_MELS, "vocabulary": vocabulary, "voices": voices()[0], "held_out_voices": voices()[1],
            "synthesiser": "espeak-ng (GPL-3.0) via espeakng-loader",
            "text_source": "dataset_build (BSD-2-Clause; LLM-generated prose)",
            "build_seconds": round(time.perf_counter() - t0, 1), "utterances": entries}
    write_manifest(directory, [f"{s}/{n}.npy" for s in SPLITS for n in ("mel", "audio", "phonemes", "stress",
                                                                         "durations")], info)
    return TTSCorpus(directory, read_manifest(directory, verify=False))


def _store(directory: Path, rendered: list, vocabulary: list[str]) -> list[dict]:
    entries = []
    for split in SPLITS:
        (directory / split).mkdir(parents=True, exist_ok=True)
        parts: dict[str, list[np.ndarray]] = {n: [] for n in ("mel", "audio", "phonemes", "stress", "durations")}
        offsets = {"phoneme_offset": 0, "frame_offset": 0, "sample_offset": 0}
        for u, ph, mel, dur in (r for r in rendered if r[0]["split"] == split):
            entry = dict(u, **offsets, n_phonemes=len(ph.symbols), n_frames=len(mel), n_samples=len(ph.audio))
            entries.append(entry)
            parts["mel"].append(mel.astype(np.float16))
            parts["audio"].append(np.round(np.clip(ph.audio, -1, 1) * 32767).astype(np.int16))
            parts["phonemes"].append(np.array(encode_symbols(ph.symbols, vocabulary), np.int16))
            parts["stress"].append(np.array(ph.stress, np.int8))
            parts["durations"].append(dur.astype(np.int16))
            offsets["phoneme_offset"] += len(ph.symbols)
            offsets["frame_offset"] += len(mel)
            offsets["sample_offset"] += len(ph.audio)
        for name, arrays in parts.items():
            empty = np.zeros((0, N_MELS) if name == "mel" else 0, np.int16)
            np.save(directory / split / f"{name}.npy", np.concatenate(arrays) if arrays else empty)
    return entries


def load(size: TTSCorpusSize | None = None, seed: int = 0) -> TTSCorpus:
    size = size or TTSCorpusSize()
    manifest = read_manifest(corpus_dir(size, seed), verify=False)
    if manifest is None:
        raise GenlabError("the TTS corpus is not built: run `genlab data tts` (needs genlab[speech])")
    return TTSCorpus(corpus_dir(size, seed), manifest)
