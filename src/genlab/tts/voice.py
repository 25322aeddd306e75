"""A reference recording -> the voice to clone: checked first, then turned into a d-vector.

The reference must be real, usable speech: readable audio, sampled at 16 kHz or more (a telephone-band 8 kHz
recording has lost the upper half of the voice), 3 s of speech at least (the first 10 s are used), not silent, not
clipped. Each problem is one line naming the file. The d-vector is GE2E's inference recipe (Wan et al. 2018,
section 3.2): log-mel windows of 1.6 s with 50 % overlap, each embedded, averaged, renormalised.

Two resamplers: a reference is resampled by soxr (HQ); the training paths (the speaker encoder's espeak voices, the
acoustic model's d-vector pass) use :func:`resample` (scipy's polyphase filter), because the GPU machine they train
on has no soxr. On the espeak corpus the two agree to 33 dB SNR (median of 40 clips; 25 dB at worst: they differ
only in the 7-8 kHz transition band), their 40-band log-mels by 0.005 on average (features of std 3.5), and
resample_poly's output is one sample longer (ceil instead of round).
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import torch

from ..errors import GenlabError
from .model import SpeakerEncoder

MIN_SECONDS, MAX_SECONDS = 3.0, 10.0
MIN_RATE = 16000
SPEAKER_RATE = 16000
WINDOW_FRAMES = 160  # 1.6 s of 10 ms frames


def resample(audio: np.ndarray, rate: int, to: int = SPEAKER_RATE) -> np.ndarray:
    """``(n,)`` float audio at ``rate`` -> ``(ceil(n * to / rate),)`` float32 at ``to`` (scipy.signal.resample_poly:
    a Kaiser-windowed polyphase FIR, beta 5)."""
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(rate, to)
    return resample_poly(np.asarray(audio, dtype=np.float32), to // g, rate // g).astype(np.float32)


def speaker_features(audio16k: np.ndarray | torch.Tensor, n_mels: int = 40) -> torch.Tensor:
    """``(..., n)`` 16 kHz audio -> ``(..., frames, n_mels)`` log-mels (25 ms windows, 10 ms hop), each utterance
    normalised to zero mean per band."""
    from ..data.audio import mel_spectrogram

    x = torch.as_tensor(audio16k, dtype=torch.float32)
    mel = mel_spectrogram(x, SPEAKER_RATE, 400, 160, n_mels, power=2.0)  # (..., n_mels, frames)
    log = torch.log(mel.clamp(min=1e-6)).transpose(-1, -2)  # (..., frames, n_mels)
    return log - log.mean(-2, keepdim=True)


def _windows(feats: torch.Tensor) -> torch.Tensor:
    """``(frames, n_mels)`` -> ``(W, <=160, n_mels)`` windows of 1.6 s every 0.8 s (one, shorter, if the clip is)."""
    if len(feats) <= WINDOW_FRAMES:
        return feats[None]
    starts = range(0, len(feats) - WINDOW_FRAMES + 1, WINDOW_FRAMES // 2)
    return torch.stack([feats[s : s + WINDOW_FRAMES] for s in starts])  # (W, 160, n_mels)


@torch.no_grad()
def dvector(encoder: SpeakerEncoder, audio16k: np.ndarray) -> torch.Tensor:
    """The unit d-vector ``(dim,)`` (on the CPU) of an utterance: windows of 1.6 s, hop 0.8 s, embeddings averaged;
    the encoder runs on its own device."""
    device = next(encoder.parameters()).device
    e = encoder(_windows(speaker_features(audio16k, encoder.cfg.n_mels)).to(device)).mean(0).cpu()
    return e / e.norm().clamp(min=1e-8)


@torch.no_grad()
def dvectors(encoder: SpeakerEncoder, clips: list[np.ndarray], batch: int = 256) -> torch.Tensor:
    """:func:`dvector` of many 16 kHz clips ``(N, dim)``, full-length windows batched through the LSTM together (on
    the encoder's device; the result on the CPU)."""
    device = next(encoder.parameters()).device
    full, short = [], []  # (clip, window) of 160-frame windows; clips shorter than one window go alone
    for i, clip in enumerate(clips):
        w = _windows(speaker_features(clip, encoder.cfg.n_mels))
        (full if w.shape[1] == WINDOW_FRAMES else short).append((i, w))
    sums = torch.zeros(len(clips), encoder.cfg.dim)
    counts = torch.zeros(len(clips), 1)
    if full:
        owner = torch.cat([torch.full((len(w),), i) for i, w in full])
        windows = torch.cat([w for _, w in full])  # (W, 160, n_mels)
        for s in range(0, len(windows), batch):
            sums.index_add_(0, owner[s : s + batch], encoder(windows[s : s + batch].to(device)).cpu())
            counts.index_add_(0, owner[s : s + batch], torch.ones(len(windows[s : s + batch]), 1))
    for i, w in short:
        sums[i], counts[i] = encoder(w.to(device))[0].cpu(), 1.0
    e = sums / counts.clamp(min=1)
    return e / e.norm(dim=-1, keepdim=True).clamp(min=1e-8)


def read_reference(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """The reference as 16 kHz float32 (at most 10 s), and what the record keeps of it; or one line of why not."""
    import soxr

    from ..data.audio import _open

    with _open(path) as f:
        rate, frames = f.samplerate, f.frames
        if rate < MIN_RATE:
            raise GenlabError(f"{path}: sampled at {rate} Hz; a voice reference needs {MIN_RATE} Hz or more "
                              "(a lower rate has lost the upper half of the voice)")
        audio = f.read(min(frames, int(MAX_SECONDS * rate)), dtype="float32", always_2d=True).mean(axis=1)
    seconds = frames / rate
    if seconds < MIN_SECONDS:
        raise GenlabError(f"{path}: {seconds:.1f} s of audio; a voice reference needs {MIN_SECONDS:g}-"
                          f"{MAX_SECONDS:g} s of speech")
    if not np.isfinite(audio).all():
        raise GenlabError(f"{path}: contains NaN or infinite samples")
    peak = float(np.abs(audio).max())
    if peak < 1e-3:
        raise GenlabError(f"{path}: silent (peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS); record some speech")
    clipped = float(np.mean(np.abs(audio) >= 0.999))
    if clipped > 0.002:
        raise GenlabError(f"{path}: clipped ({clipped * 100:.1f} % of samples at full scale); record it quieter")
    hop = rate // 100
    n = len(audio) // hop
    rms = np.sqrt((audio[: n * hop].reshape(n, hop) ** 2).mean(1))  # 10 ms frames
    active = float(np.mean(rms > max(rms.max() * 0.03, 10 ** (-55 / 20)))) * n / 100  # seconds of signal
    if active < 1.5:
        raise GenlabError(f"{path}: only {active:.1f} s above the noise floor; a voice reference needs speech")
    audio16 = soxr.resample(audio, rate, SPEAKER_RATE).astype(np.float32) if rate != SPEAKER_RATE else audio
    with open(path, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    return audio16, {"reference_sha256": digest, "reference_seconds": round(min(seconds, MAX_SECONDS), 2),
                     "reference_rate": rate, "reference_name": os.path.basename(os.fspath(path))}


def held_out_references(n_speakers: int) -> list[tuple[str, np.ndarray, list[np.ndarray]]]:
    """References to clone from the real speakers the codec corpus holds out (never heard by the speaker encoder or
    the acoustic model): per speaker with three clips of 1 s or more (the first ``n_speakers`` by name), its name,
    a reference of 4-10 s (its first clips joined, the last one kept apart) and all its clips, 16 kHz float32.
    Needs ``genlab data codec``."""
    from ..codec.data import load as load_codec

    by_speaker: dict[str, list[np.ndarray]] = {}
    for c, audio in load_codec(SPEAKER_RATE).test_clips(min_seconds=1.0):
        by_speaker.setdefault(c["speaker"], []).append(audio)
    out = []
    for s in sorted(s for s, clips in by_speaker.items() if len(clips) >= 3)[:n_speakers]:
        clips = by_speaker[s]
        ref, i = clips[0], 1
        while len(ref) < 4 * SPEAKER_RATE and i < len(clips) - 1:
            ref, i = np.concatenate([ref, clips[i]]), i + 1
        out.append((s, ref[: int(MAX_SECONDS * SPEAKER_RATE)], clips))
    return out
