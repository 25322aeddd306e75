"""The audio watermark every clip genlab speaks carries, and its detector.

A keyed spread-spectrum mark in the short-time magnitude spectrum (Kirovski & Malvar 2003, "Spread-spectrum
watermarking of audio signals", IEEE TSP 51(4): chips of a few tenths of a dB in the log-magnitude of time-frequency
tiles, a correlation detector). At 16 kHz the band ``f_lo .. f_hi`` is cut into ~80 sub-bands (2 FFT bins wide at
the bottom, 2.5 % of their frequency above that) and time into blocks of 64 ms. The key, a seeded ±1 matrix
``w[band, block mod period]``, scales every tile by ``exp(a * w)``::

    Y(f, t) = X(f, t) * exp(a[b(f), j(t)] * w[b(f), j(t) mod P])          (phase untouched)

Strength. ``a`` is set per tile by "water-filling" under a distortion budget: ``a = min(alpha_max, lam / E)`` with
``E`` the tile's energy and ``lam`` found by bisection so that the error energy is ``target_sisdr_db`` below the
signal (loud tiles, which dominate the error, get less; quiet ones up to ``alpha_max``). The mark is computed at
16 kHz and added, resampled, to the audio at its own rate, so nothing above 8 kHz changes.

Detection. The audio is resampled to 16 kHz; each tile's mean log-power is whitened (minus the mean of its 8
neighbouring bands, minus half the mean of its two neighbouring blocks, minus its band's mean over time, clipped at
``clip_mad`` robust deviations) and weighted like the embedder's strength (tiles louder than the
``weight_quantile``-th percentile carry a weaker mark: weight ``E_q / E``), giving ``r``; tiles sharing a key entry
are summed, ``R_e``; the score is the self-normalised correlation ``z = sum_e w_e R_e / sqrt(sum_e R_e^2)``. For
audio made without the key, ``w`` is a Rademacher sequence independent of ``R`` (whitening and weights are
functions of the audio alone), so by Hoeffding's inequality ``P(z >= t) <= exp(-t^2/2)`` whatever the audio. The
detector searches every block phase and key column (cropping), and speed changes of +-12 % (which scale time and
frequency alike: the audio is resampled by each candidate factor); the threshold is the union bound over all ``n``
tries: ``t = sqrt(2 ln(n / fpr))``, so the false-positive rate per file is at most ``fpr`` by construction, not by
calibration. Long files are scored in windows of ``window_seconds`` (more tries).

The key is public inside genlab (anyone can run the detector); it is a provenance signal, not a secret.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class WatermarkConfig:
    key: str = "genlab-tts-v1"
    f_lo: float = 300.0  # Hz: the marked band (MP3 and Opus at 32 kbps keep it)
    f_hi: float = 7000.0
    min_band_hz: float = 62.5  # two FFT bins: the narrowest sub-band
    band_ratio: float = 1.025  # above that, each sub-band is 2.5 % of its frequency
    n_fft: int = 512  # at 16 kHz: 32 ms (a 64 ms window smears each tile's gain into its neighbours: audible)
    hop: int = 128
    block_hops: int = 8  # 64 ms blocks
    period: int = 32  # key columns: the pattern repeats every 2.048 s
    alpha_max: float = 0.6  # at most +-0.6 in log-magnitude (5.2 dB), in the quietest tiles
    target_sisdr_db: float = 24.5  # the distortion budget; the estimate is conservative: measured SI-SDR ~26 dB
    clip_mad: float = 1.5  # detector: whitened tiles are clipped at this many robust deviations (heavy tails)
    time_highpass: float = 0.5  # detector: minus this times the mean of the tile's two neighbouring blocks
    weight_quantile: float = 85.0  # detector: tiles louder than this percentile weigh E_q / E (their mark is weaker)
    max_speed_change: float = 0.12  # the detector searches speed factors exp(+-0.12)
    scale_step: float = 0.01
    phase_step: int = 2  # hops between tried block phases
    window_seconds: float = 10.0
    max_seconds: float = 120.0  # the detector reads at most this much of a file
    fpr: float = 1e-3  # false-positive rate per file, guaranteed by the union bound


@dataclass
class Detection:
    detected: bool
    score: float  # the best z over every try
    threshold: float
    p_value: float  # union bound: P(score this high | audio not marked with this key) <= p_value
    tries: int
    speed: float  # the speed factor at the best try (1.0: none)
    seconds: float  # audio examined

    def as_dict(self) -> dict:
        return asdict(self)


def band_edges(cfg: WatermarkConfig) -> np.ndarray:
    """Sub-band edges in Hz: ``min_band_hz`` wide at the bottom, ``band_ratio`` apart above that."""
    edges = [cfg.f_lo]
    while edges[-1] < cfg.f_hi:
        edges.append(edges[-1] + max(cfg.min_band_hz, (cfg.band_ratio - 1.0) * edges[-1]))
    return np.array(edges[:-1] if edges[-1] > cfg.f_hi + 1 else edges)


class Watermark:
    """A keyed watermark: :meth:`embed` marks audio, :meth:`detect` finds the mark."""

    def __init__(self, cfg: WatermarkConfig | None = None):
        self.cfg = cfg = cfg or WatermarkConfig()
        self.edges = band_edges(cfg)
        self.n_bands = len(self.edges) - 1
        seed = int.from_bytes(hashlib.sha256(cfg.key.encode()).digest()[:8], "little")
        self.key = np.random.default_rng(seed).choice([-1.0, 1.0], (self.n_bands, cfg.period))  # (bands, P)
        freqs = np.fft.rfftfreq(cfg.n_fft, 1 / SAMPLE_RATE)
        band = np.searchsorted(self.edges, freqs, side="right") - 1
        band[(freqs < self.edges[0]) | (freqs >= self.edges[-1])] = -1
        self.bin_band = band  # (F,) sub-band of each FFT bin, -1 outside
        self.bins = np.flatnonzero(band >= 0)
        self.pool = np.zeros((self.n_bands, len(freqs)), np.float32)  # (bands, F) mean over a band's bins
        self.pool[band[self.bins], self.bins] = 1.0
        self.pool /= self.pool.sum(1, keepdims=True)
        self.window = torch.hann_window(cfg.n_fft)

    @property
    def key_id(self) -> str:
        return hashlib.sha256(self.key.tobytes()).hexdigest()[:16]

    # ---------------------------------------------------------------------------------------------------------
    # Embedding

    def _stft(self, x: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return torch.stft(x, self.cfg.n_fft, self.cfg.hop, window=self.window, return_complex=True)  # (F, T)

    def _strength(self, tile_energy: np.ndarray, signs: np.ndarray, total: float) -> np.ndarray:
        """Water-filling: ``a = min(alpha_max, lam / E)`` with the error ``sum (e^{a w} - 1)^2 E`` at the budget."""
        budget = total * 10 ** (-self.cfg.target_sisdr_db / 10)
        energy = np.maximum(tile_energy, 1e-20)

        def error(lam: float) -> float:
            a = np.minimum(self.cfg.alpha_max, lam / energy)
            return float((np.expm1(a * signs) ** 2 * tile_energy).sum())

        lo, hi = 0.0, float(self.cfg.alpha_max * energy.max())  # at hi every tile gets alpha_max
        if error(hi) <= budget:
            return np.full_like(energy, self.cfg.alpha_max)
        for _ in range(40):  # bisection on lam (the error grows with lam)
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if error(mid) <= budget else (lo, mid)
        return np.minimum(self.cfg.alpha_max, lo / energy)

    def mark_16k(self, x: np.ndarray, start_sample: int = 0) -> np.ndarray:
        """The mark to add to 16 kHz audio ``(n,)`` that starts ``start_sample`` samples into a stream."""
        cfg = self.cfg
        X = self._stft(x)  # (F, T)
        power = X.abs().numpy().astype(np.float64) ** 2
        T = power.shape[1]
        block = (start_sample // cfg.hop + np.arange(T)) // cfg.block_hops  # (T,) block index of each frame
        first = block[0]
        n_blocks = block[-1] - first + 1
        tiles = np.zeros((self.n_bands, n_blocks))  # (bands, blocks) energy of each tile
        np.add.at(tiles.T, block - first, (self.pool > 0).astype(np.float64).dot(power).T)
        signs = self.key[:, (first + np.arange(n_blocks)) % cfg.period]  # (bands, blocks)
        a = self._strength(tiles, signs, float(power.sum()))
        log_gain = np.zeros_like(power)  # (F, T)
        log_gain[self.bins] = (a * signs)[self.bin_band[self.bins]][:, block - first]
        gain = torch.from_numpy(np.expm1(log_gain)).to(X.dtype)  # Y - X = X (e^g - 1)
        d = torch.istft(X * gain, cfg.n_fft, cfg.hop, window=self.window, length=len(x))
        return d.numpy()

    def embed(self, audio: np.ndarray, sample_rate: int, start_sample: int = 0) -> np.ndarray:
        """Mark float ``(n,)`` mono audio at any rate; ``start_sample`` (at ``sample_rate``) continues a stream, so
        chunks marked one after another carry one unbroken pattern. Returns float32 ``(n,)``, clipped to [-1, 1]."""
        import soxr

        x = np.asarray(audio, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"embed takes mono audio (n,), got shape {x.shape}")
        if len(x) < self.cfg.n_fft * sample_rate // SAMPLE_RATE or not np.any(x):
            return x.copy()
        if sample_rate == SAMPLE_RATE:
            d = self.mark_16k(x, start_sample)
        else:
            x16 = soxr.resample(x, sample_rate, SAMPLE_RATE, quality="VHQ")
            d16 = self.mark_16k(x16, round(start_sample * SAMPLE_RATE / sample_rate))
            d = soxr.resample(d16, SAMPLE_RATE, sample_rate, quality="VHQ")
            d = np.pad(d, (0, max(0, len(x) - len(d))))[: len(x)]
        return np.clip(x + d, -1.0, 1.0).astype(np.float32)

    # ---------------------------------------------------------------------------------------------------------
    # Detection

    def _tile_scores(self, x: np.ndarray) -> np.ndarray:
        """Per-frame mean log-power of each sub-band of 16 kHz audio: ``(bands, T)``."""
        power = self._stft(x).abs().numpy() ** 2  # (F, T)
        floor = max(float(power.max()) * 1e-10, 1e-20)
        return self.pool @ np.log(power + floor)  # (bands, T)

    def _correlate(self, frames: np.ndarray, phase: int) -> np.ndarray:
        """Scores ``z`` of every key column shift for blocks starting at frame ``phase``: ``(P,)``."""
        cfg = self.cfg
        n_blocks = (frames.shape[1] - phase) // cfg.block_hops
        if n_blocks < 2:
            return np.zeros(cfg.period)
        used = frames[:, phase : phase + n_blocks * cfg.block_hops]
        L = used.reshape(self.n_bands, n_blocks, cfg.block_hops).mean(2)  # (bands, blocks)
        keep = L > L.max() - math.log(1e6)  # tiles within 60 dB of the loudest
        # Whiten: minus the mean of the 4 bands on either side (the spectral envelope) and half the mean of the two
        # neighbouring blocks (its drift over time), then minus the band's mean.
        k = 4
        padded = np.pad(L, ((k, k), (0, 0)), mode="edge")
        csum = np.cumsum(np.pad(padded, ((1, 0), (0, 0))), axis=0)
        around = (csum[2 * k + 1 :] - csum[: -2 * k - 1] - L) / (2 * k)  # (bands, blocks)
        r = L - around
        beside = np.pad(r, ((0, 0), (1, 1)), mode="edge")
        r = r - cfg.time_highpass * 0.5 * (beside[:, :-2] + beside[:, 2:])  # the envelope's drift over time
        r = np.where(keep, r, 0.0)
        count = np.maximum(keep.sum(1, keepdims=True), 1)
        r = np.where(keep, r - r.sum(1, keepdims=True) / count, 0.0)
        if keep.any():  # a robust M-estimate: valleys between harmonics make heavy tails that would drown the mark
            spread = 1.4826 * float(np.median(np.abs(r[keep]))) + 1e-9
            r = np.clip(r, -cfg.clip_mad * spread, cfg.clip_mad * spread)
            loud = np.percentile(L[keep], cfg.weight_quantile)  # the embedder gave louder tiles a weaker mark
            r = r * np.minimum(1.0, np.exp(loud - L))
        R = np.zeros((self.n_bands, cfg.period))  # (bands, P) tiles summed per key column
        np.add.at(R.T, np.arange(n_blocks) % cfg.period, r.T)
        norm = math.sqrt(float((R**2).sum()))
        if norm == 0.0:
            return np.zeros(cfg.period)
        # Column shift c: block j carries key column (j + c) mod P.
        # z[c] = sum_m sum_b w[b, (m + c) mod P] R[b, m]: a circular cross-correlation along the key's columns.
        spectrum = (np.fft.rfft(R, axis=1).conj() * np.fft.rfft(self.key, axis=1)).sum(0)
        return np.fft.irfft(spectrum, cfg.period) / norm

    def speeds(self) -> np.ndarray:
        """Speed factors tried, nearest to 1 first: ``exp(k * scale_step)`` for ``|k * scale_step| <= max``."""
        n = int(round(self.cfg.max_speed_change / self.cfg.scale_step))
        k = np.array(sorted(range(-n, n + 1), key=abs))
        return np.exp(k * self.cfg.scale_step)

    def tries_per_window(self) -> int:
        return len(self.speeds()) * len(range(0, self.cfg.block_hops, self.cfg.phase_step)) * self.cfg.period

    def threshold(self, tries: int) -> float:
        """The score that fewer than ``fpr`` unmarked files reach: ``tries * exp(-t^2 / 2) = fpr``."""
        return math.sqrt(2 * math.log(tries / self.cfg.fpr))

    def _window_score(self, x16: np.ndarray, stop_at: float) -> tuple[float, float]:
        """Best ``z`` over speeds, phases and key shifts of one 16 kHz window, and its speed. Stops at the first try
        reaching ``stop_at`` (the decision is the same as the maximum's: the threshold counted every try)."""
        import soxr

        best, best_speed = -np.inf, 1.0
        for s in self.speeds():
            # Audio played s times faster has its frequencies and rate of blocks scaled by s: stretch it back.
            xs = x16 if s == 1.0 else soxr.resample(x16, SAMPLE_RATE, SAMPLE_RATE * s, quality="HQ")
            frames = self._tile_scores(xs)
            for phase in range(0, self.cfg.block_hops, self.cfg.phase_step):
                z = float(self._correlate(frames, phase).max())
                if z > best:
                    best, best_speed = z, float(s)
                if best >= stop_at:
                    return best, best_speed
        return best, best_speed

    def detect(self, audio: np.ndarray, sample_rate: int) -> Detection:
        """Look for the mark in float mono audio ``(n,)`` at any rate."""
        import soxr

        x = np.asarray(audio, dtype=np.float32)
        if sample_rate != SAMPLE_RATE:
            x = soxr.resample(x, sample_rate, SAMPLE_RATE, quality="HQ")
        x = x[: int(self.cfg.max_seconds * SAMPLE_RATE)]
        win = int(self.cfg.window_seconds * SAMPLE_RATE)
        starts = list(range(0, max(1, len(x) - win // 2), win))  # a short tail is scored with the window before
        tries = len(starts) * self.tries_per_window()
        t = self.threshold(tries)
        best, speed = -np.inf, 1.0
        for start in starts:
            piece = x[start : start + win] if start + win <= len(x) or start == 0 else x[max(0, len(x) - win) :]
            z, s = self._window_score(piece, stop_at=t)
            if z > best:
                best, speed = z, s
            if best >= t:
                break
        best = float(best) if np.isfinite(best) else 0.0
        p = min(1.0, tries * math.exp(-0.5 * max(best, 0.0) ** 2))
        return Detection(bool(best >= t), round(best, 3), round(t, 3), p, tries, round(speed, 4),
                         round(len(x) / SAMPLE_RATE, 3))


_DEFAULT: Watermark | None = None


def default() -> Watermark:
    """genlab's watermark (the key every TTS output is marked with)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Watermark()
    return _DEFAULT


def embed(audio: np.ndarray, sample_rate: int, start_sample: int = 0) -> np.ndarray:
    return default().embed(audio, sample_rate, start_sample)


def detect(audio: np.ndarray, sample_rate: int) -> Detection:
    return default().detect(audio, sample_rate)


def detect_file(path) -> Detection:
    """Read any audio file (mixed to mono, at its own rate) and look for the mark."""
    from ..data.audio import _open

    with _open(path) as f:
        rate = f.samplerate
        n = min(f.frames, int(default().cfg.max_seconds * rate))
        audio = f.read(n, dtype="float32", always_2d=True).mean(axis=1)
    if len(audio) == 0:
        from ..errors import GenlabError

        raise GenlabError(f"{path}: contains no audio samples")
    return detect(audio, rate)
