"""Text in, watermarked speech out: ``load`` a voice model, ``speak`` to a file or ``synthesize`` to an array.

The path of every sentence: :func:`~.normalize.sentences` cuts the text (lazily: a book streams), each sentence is
normalised, phonemised by espeak (:mod:`.phonemes`), turned into log-mel frames by the acoustic model
(:class:`~.model.FastSpeech`) and into a waveform by the vocoder (:class:`~.model.HiFiGAN` or
:class:`~.model.VocosVocoder`, or Griffin-Lim when the bundle has none), then marked and written by
:class:`genlab.provenance.record.MarkedWriter`, one sentence at a time, so memory stays that of one sentence. Both
public ways out of this module, :func:`speak` and :func:`synthesize`, watermark what they return or write; the
unmarked sentence generator is private to them.

A bundle is a directory holding ``acoustic/`` (a ``tts-acoustic`` checkpoint), optionally ``vocoder/``
(``tts-vocoder``) and ``speaker/`` (``tts-speaker``, needed to clone); a single acoustic checkpoint directory is a
bundle without vocoder and speaker encoder.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import load_checkpoint, load_weights_strict, weights_hash
from ..config import from_dict
from ..errors import GenlabError
from ..models import resolve_model
from .data import HOP, LOG_FLOOR, N_FFT, N_MELS, SAMPLE_RATE
from .model import (
    AcousticConfig,
    FastSpeech,
    HiFiGAN,
    SpeakerConfig,
    SpeakerEncoder,
    VocoderConfig,
    VocosVocoder,
    build_vocoder,
)

SENTENCE_GAP_S = 0.2


@dataclass
class LoadedTTS:
    acoustic: FastSpeech
    vocoder: HiFiGAN | VocosVocoder | None  # None: Griffin-Lim
    speaker_encoder: SpeakerEncoder | None
    name: str
    hashes: dict[str, str]  # part -> weights hash

    @property
    def cfg(self) -> AcousticConfig:
        return self.acoustic.cfg


@dataclass
class Voice:
    """Whose voice: a built-in voice id, or a d-vector taken from a reference recording (cloning)."""

    speaker: int = 0
    dvector: torch.Tensor | None = None  # (speaker_dim,)
    description: dict | None = None  # for the provenance record


def _state(ckpt, use_ema: bool, prefix: str = "") -> dict[str, torch.Tensor]:
    if use_ema and ckpt.ema is not None:
        return ckpt.ema
    return {k.removeprefix(prefix): v for k, v in ckpt.model.items() if k.startswith(prefix)}


def _part(path: Path, kind: str, build, config_cls, prefix: str = "", use_ema: bool = True):
    ckpt = load_checkpoint(path, kind=kind)
    module = build(from_dict(config_cls, ckpt.config))
    state = _state(ckpt, use_ema, prefix)
    load_weights_strict(module, state, path)
    return module.eval().requires_grad_(False), weights_hash(state)


def load(name_or_dir: str = "speech-tts", use_ema: bool = True) -> LoadedTTS:
    """A bundled voice model by name, or a bundle / acoustic checkpoint directory."""
    path = resolve_model(name_or_dir)
    acoustic_dir = path / "acoustic" if (path / "acoustic").exists() else path
    acoustic, h = _part(acoustic_dir, "tts-acoustic", FastSpeech, AcousticConfig, use_ema=use_ema)
    hashes = {"acoustic": h}
    vocoder = speaker = None
    if (path / "vocoder").exists():
        vocoder, hashes["vocoder"] = _part(path / "vocoder", "tts-vocoder", build_vocoder, VocoderConfig, "generator.",
                                           use_ema)
    if (path / "speaker").exists():
        speaker, hashes["speaker"] = _part(path / "speaker", "tts-speaker", SpeakerEncoder, SpeakerConfig,
                                           "encoder.", use_ema)
    return LoadedTTS(acoustic, vocoder, speaker, name_or_dir, hashes)


# -------------------------------------------------------------------------------------------------------------------
# Mel -> waveform without a trained vocoder


def griffin_lim(log_mel: torch.Tensor, n_iter: int = 48, momentum: float = 0.99, seed: int = 0) -> torch.Tensor:
    """``(T, 80)`` log-mels -> waveform: the mel filterbank inverted by least squares, then the fast Griffin-Lim
    phase retrieval (Perraudin et al. 2013: Griffin & Lim 1984 with momentum ``alpha``)."""
    from ..data.audio import mel_filters

    fb = torch.from_numpy(mel_filters(N_MELS, SAMPLE_RATE, N_FFT)).double()  # (80, 513)
    mel = log_mel.double().exp().T  # (80, T) magnitudes
    linear = torch.linalg.lstsq(fb, mel, driver="gelsd").solution.clamp(min=1e-6).float()  # (513, T)
    window = torch.hann_window(N_FFT)
    g = torch.Generator().manual_seed(seed)
    angles = torch.polar(torch.ones_like(linear), torch.rand(linear.shape, generator=g) * 2 * torch.pi)
    previous = torch.zeros_like(angles)
    length = (linear.shape[1] - 1) * HOP
    for _ in range(n_iter):
        x = torch.istft(linear * angles, N_FFT, HOP, window=window, length=length)
        rebuilt = torch.stft(x, N_FFT, HOP, window=window, return_complex=True)
        accelerated = rebuilt - momentum / (1 + momentum) * previous
        angles = accelerated / accelerated.abs().clamp(min=1e-8)
        previous = rebuilt
    return torch.istft(linear * angles, N_FFT, HOP, window=window, length=length)


# -------------------------------------------------------------------------------------------------------------------
# Speech


def check_text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise GenlabError("the text is empty: give something to say")
    return text


@torch.no_grad()
def _sentence_audio(loaded: LoadedTTS, sentence: str, voice: Voice, pace: float, seed: int) -> np.ndarray | None:
    """One sentence -> float32 waveform at 22,050 Hz (unmarked: only :func:`_stream`'s callers see it)."""
    from .data import encode_symbols
    from .normalize import normalize
    from .phonemes import phonemizer

    words = normalize(sentence)
    if not words:
        return None
    ph = phonemizer()(words, "en-us")
    if not ph.symbols:
        return None
    ids = torch.tensor([encode_symbols(ph.symbols, loaded.cfg.phonemes)])
    stress = torch.tensor([ph.stress])
    dvector = voice.dvector[None] if voice.dvector is not None else None
    _, mel, _, _ = loaded.acoustic(ids, stress, torch.tensor([voice.speaker]), dvector=dvector, pace=pace)
    mel = mel[0]  # (T, 80)
    if loaded.vocoder is not None:
        # Pad to a multiple of 64 frames with silence (the log floor): conv kernels are planned once per length, so
        # a few lengths are planned and reused instead of one per sentence (faster, and bounded memory on a book).
        T = len(mel)
        padded = F.pad(mel.T, (0, -T % 64), value=float(np.log(LOG_FLOOR)))  # (80, T')
        audio = loaded.vocoder(padded[None])[0, : T * HOP]
    else:
        audio = griffin_lim(mel, seed=seed)
    return audio.clamp(-1, 1).numpy().astype(np.float32)


def _stream(loaded: LoadedTTS, text: str | Iterable[str], voice: Voice, pace: float, seed: int
            ) -> Iterator[np.ndarray]:
    from .normalize import sentences

    gap = np.zeros(int(SENTENCE_GAP_S * SAMPLE_RATE), np.float32)
    spoke = False
    for k, sentence in enumerate(sentences(text)):
        audio = _sentence_audio(loaded, sentence, voice, pace, seed + k)
        if audio is not None and len(audio):
            yield np.concatenate([audio, gap])
            spoke = True
    if not spoke:
        raise GenlabError("the text has nothing speakable (after normalisation it holds no words)")


def vocoder_name(loaded: LoadedTTS) -> str:
    return loaded.vocoder.cfg.kind if loaded.vocoder is not None else "griffin-lim"


def record_for(loaded: LoadedTTS, text: str | None, voice: Voice, seed: int, pace: float,
               consent: str | None) -> dict:
    from ..provenance.record import provenance_record

    fields = {"model": loaded.name, "model_hash": loaded.hashes["acoustic"], "hashes": loaded.hashes,
              "vocoder": vocoder_name(loaded), "seed": seed, "pace": pace,
              "voice": voice.description or {"builtin": voice.speaker}}
    if text is not None:
        fields["text"] = text
    if consent is not None:
        fields["consent"] = consent
    return provenance_record("tts" if voice.dvector is None else "voice-clone", **fields)


def speak(loaded: LoadedTTS, text: str | Iterable[str], out: str | os.PathLike, voice: Voice | None = None,
          seed: int = 0, pace: float = 1.0, consent: str | None = None, text_label: str | None = None) -> dict:
    """Say ``text`` (a string, or an iterable of pieces such as a file's lines) into the WAV ``out``, sentence by
    sentence, watermarked, with the provenance record in the file. Returns the record."""
    from ..provenance.record import MarkedWriter

    voice = voice or Voice()
    if voice.dvector is not None and not consent:
        raise GenlabError("cloning a voice needs a consent statement (--consent \"...\")")
    record = record_for(loaded, text if isinstance(text, str) else text_label, voice, seed, pace, consent)
    torch.manual_seed(seed)
    with MarkedWriter(out, SAMPLE_RATE, record) as writer:
        for audio in _stream(loaded, text, voice, pace, seed):
            writer.write(audio)
    return writer.record


def synthesize(loaded: LoadedTTS, text: str, voice: Voice | None = None, seed: int = 0,
               pace: float = 1.0) -> np.ndarray:
    """``text`` -> watermarked float32 audio at 22,050 Hz (the whole text in memory: use :func:`speak` for books)."""
    from ..provenance.watermark import embed

    voice = voice or Voice()
    torch.manual_seed(seed)
    pieces, marked, position = [], [], 0
    for audio in _stream(loaded, check_text(text), voice, pace, seed):
        marked.append(embed(audio, SAMPLE_RATE, start_sample=position))
        position += len(audio)
    pieces = np.concatenate(marked) if marked else np.zeros(0, np.float32)
    return pieces
