"""Audio in: read any file soundfile understands, mix down to mono, resample to 16 kHz, and compute Whisper's
log-mel spectrogram (Radford et al. 2022, section 2.2: 25 ms windows, 10 ms hop, 80 or 128 mel bins,
log10, clipped to 8 below the maximum, scaled to about [-1, 1]).

The mel filterbank is computed here (Slaney's mel scale with area normalisation, as librosa does by default)
rather than read from openai-whisper's ``mel_filters.npz``; the tests check it against that file.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import GenlabError

SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms window
HOP_LENGTH = 160  # 10 ms hop: 100 frames per second
CHUNK_LENGTH = 30  # seconds in one Whisper window
N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE  # 480,000 samples
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3,000 mel frames in one window
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH  # 100
N_SAMPLES_PER_TOKEN = HOP_LENGTH * 2  # the encoder's second conv has stride 2
TIME_PRECISION = N_SAMPLES_PER_TOKEN / SAMPLE_RATE  # 0.02 s per timestamp token / audio position


def _sf():
    import soundfile

    return soundfile


def _open(path: str | os.PathLike):
    """Open ``path`` with soundfile, turning every failure into one line that names the file."""
    sf = _sf()
    path = os.fspath(path)
    if not os.path.exists(path):
        raise GenlabError(f"{path}: no such audio file")
    if os.path.isdir(path):
        raise GenlabError(f"{path}: is a directory, not an audio file")
    if os.path.getsize(path) == 0:
        raise GenlabError(f"{path}: empty file (0 bytes), not audio")
    try:
        return sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise GenlabError(f"{path}: not a readable audio file ({reason})") from None


def _check_finite(audio: np.ndarray, path: str) -> None:
    if not np.isfinite(audio).all():
        bad = int((~np.isfinite(audio)).sum())
        raise GenlabError(f"{path}: {bad} samples are NaN or infinite; the audio is corrupt")


def load_audio(path: str | os.PathLike, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file as float32 mono at ``sr`` Hz, shape ``(n_samples,)``, values in [-1, 1].

    The file is decoded, downmixed and resampled in blocks (:func:`stream_audio`) into one preallocated array,
    so a long 44.1 kHz stereo file never sits in memory at its own rate: the peak is the 16 kHz result plus a block.
    """
    with _open(path) as f:
        rate, frames = f.samplerate, f.frames
    if frames == 0:
        raise GenlabError(f"{path}: contains no audio samples (frames=0)")
    expected = int(np.ceil(frames * sr / rate))
    audio = np.empty(expected + sr, dtype=np.float32)  # headroom: a resampler may emit a few extra samples
    n = 0
    for block in stream_audio(path, sr):
        if n + len(block) > len(audio):
            audio = np.concatenate([audio[:n], np.empty(len(block) + sr, np.float32)])
        audio[n : n + len(block)] = block
        n += len(block)
    if n == 0:
        raise GenlabError(f"{path}: contains no audio samples (frames={frames})")
    return audio[:n]


def stream_audio(
    path: str | os.PathLike, sr: int = SAMPLE_RATE, block_seconds: float = 30.0
) -> Iterator[np.ndarray]:
    """Yield float32 mono blocks at ``sr`` Hz, reading the file piece by piece so memory stays bounded."""
    import soxr

    path_s = os.fspath(path)
    with _open(path_s) as f:
        rate = f.samplerate
        if f.frames == 0:
            raise GenlabError(f"{path_s}: contains no audio samples")
        resampler = soxr.ResampleStream(rate, sr, 1, dtype="float32", quality="HQ") if rate != sr else None
        block = max(1, int(block_seconds * rate))
        while True:
            try:
                data = f.read(block, dtype="float32", always_2d=True)  # (n, channels)
            except (RuntimeError, ValueError) as e:
                raise GenlabError(f"{path_s}: cannot decode audio ({str(e).splitlines()[0]})") from None
            last = data.shape[0] < block
            mono = data.mean(axis=1, dtype=np.float32)
            _check_finite(mono, path_s)
            out = resampler.resample_chunk(mono, last=last) if resampler is not None else mono
            if len(out):
                yield np.ascontiguousarray(out, dtype=np.float32)
            if last:
                return


def save_recording(path: str | os.PathLike, audio: np.ndarray, sr: int) -> None:
    """Write a recording genlab did not make (a corpus clip shown beside its clone) as 16-bit WAV. Audio a model
    generates is written only by genlab.provenance.record's marked writer."""
    _sf().write(os.fspath(path), np.asarray(audio, dtype=np.float32), sr, subtype="PCM_16")


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds from the header, without decoding the samples."""
    with _open(path) as f:
        return f.frames / f.samplerate


def pad_or_trim(array, length: int = N_SAMPLES, axis: int = -1):
    """Zero-pad or cut ``array`` (numpy or torch) along ``axis`` to ``length``: the encoder sees exactly 30 s."""
    if torch.is_tensor(array):
        if array.shape[axis] > length:
            array = array.index_select(axis, torch.arange(length, device=array.device))
        if array.shape[axis] < length:
            pad = [0, 0] * array.ndim
            pad[(array.ndim - 1 - (axis % array.ndim)) * 2 + 1] = length - array.shape[axis]
            array = F.pad(array, pad)
        return array
    if array.shape[axis] > length:
        array = array.take(indices=range(length), axis=axis)
    if array.shape[axis] < length:
        widths = [(0, 0)] * array.ndim
        widths[axis] = (0, length - array.shape[axis])
        array = np.pad(array, widths)
    return array


# ---------------------------------------------------------------------------------------------------------------
# Mel filterbank: Slaney's auditory scale (linear below 1 kHz, logarithmic above), triangles of unit area.


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asanyarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asanyarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@functools.lru_cache(maxsize=4)
def mel_filters(n_mels: int = 80, sr: int = SAMPLE_RATE, n_fft: int = N_FFT) -> np.ndarray:
    """The ``(n_mels, n_fft // 2 + 1)`` float32 filterbank that turns a power spectrum into mel bands."""
    fft_freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2), n_mels + 2))  # band edges in Hz
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]  # (n_mels + 2, n_freqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))  # (n_mels, n_freqs) triangles
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]  # unit area per band ("slaney" norm)
    return weights.astype(np.float32)


@functools.lru_cache(maxsize=8)
def _mel_tensor(n_mels: int, device: str) -> torch.Tensor:
    return torch.from_numpy(mel_filters(n_mels)).to(device)


def log_mel_spectrogram(
    audio: np.ndarray | torch.Tensor | str | os.PathLike, n_mels: int = 80, padding: int = 0, device=None
) -> torch.Tensor:
    """Whisper's log-mel spectrogram of 16 kHz audio: ``(n_samples,)`` -> ``(n_mels, n_samples // 160)``.

    ``padding`` zero samples are appended first (Whisper pads 30 s so the last window is complete). A batch
    ``(B, n_samples)`` gives ``(B, n_mels, frames)``.
    """
    if isinstance(audio, (str, os.PathLike)):
        audio = load_audio(audio)
    if not torch.is_tensor(audio):
        audio = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    audio = audio.float()
    if device is not None:
        audio = audio.to(device)
    if padding > 0:
        audio = F.pad(audio, (0, padding))
    window = torch.hann_window(N_FFT, device=audio.device)
    stft = torch.stft(audio, N_FFT, HOP_LENGTH, window=window, return_complex=True)  # (..., 201, frames + 1)
    power = stft[..., :-1].abs() ** 2  # drop the last frame: frames = n_samples // hop
    mel = _mel_tensor(n_mels, str(audio.device)) @ power  # (..., n_mels, frames)
    log_spec = torch.clamp(mel, min=1e-10).log10()
    # Dynamic range of 8 (80 dB) below the loudest bin, per clip.
    peak = log_spec.amax(dim=(-2, -1), keepdim=True)
    log_spec = torch.maximum(log_spec, peak - 8.0)
    return (log_spec + 4.0) / 4.0


# ---------------------------------------------------------------------------------------------------------------
# A general mel spectrogram (any rate, window, hop, bands) for the codec's losses and metrics; Whisper's log-mel
# above keeps its own fixed constants.


@functools.lru_cache(maxsize=32)
def _mel_matrix(n_mels: int, sample_rate: int, n_fft: int, device: str) -> torch.Tensor:
    return torch.from_numpy(mel_filters(n_mels, sample_rate, n_fft)).to(device)


def mel_spectrogram(audio: torch.Tensor, sample_rate: int, n_fft: int, hop_length: int, n_mels: int,
                    power: float = 1.0, center: bool = True) -> torch.Tensor:
    """Mel spectrogram of ``(..., n_samples)`` audio: ``(..., n_mels, frames)``, Slaney mel bands up to Nyquist.

    A Hann window of ``n_fft`` samples every ``hop_length``; ``power`` 1 gives magnitudes, 2 power (no log: the
    caller chooses its compression). With ``center`` the signal is reflect-padded by ``n_fft // 2`` on both sides
    (``torch.stft``'s convention), so there are ``n_samples // hop_length + 1`` frames.
    """
    audio = audio.float()
    window = torch.hann_window(n_fft, device=audio.device)
    stft = torch.stft(audio.reshape(-1, audio.shape[-1]), n_fft, hop_length, window=window, center=center,
                      return_complex=True)  # (N, n_fft // 2 + 1, frames)
    spec = stft.abs() if power == 1.0 else stft.abs() ** power
    mel = _mel_matrix(n_mels, sample_rate, n_fft, str(audio.device)) @ spec  # (N, n_mels, frames)
    return mel.reshape(*audio.shape[:-1], n_mels, mel.shape[-1])
