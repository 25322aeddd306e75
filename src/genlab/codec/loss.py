"""The codec's losses and its quality metrics.

Reconstruction (the decoder must give the waveform back):

- :func:`multiscale_stft_loss` — spectral convergence plus log-magnitude L1 over several STFT resolutions
  (Yamamoto et al. 2020, Parallel WaveGAN, eqs. 5-7);
- :func:`mel_distance` — L1 between log mel spectrograms at seven window sizes (32 to 2048 samples) with as many
  mel bands as each window resolves (5 to 320): the multi-scale mel loss of DAC (Kumar et al. 2023, section 3.4)
  and the "multi-scale mel distance" every codec paper reports, so the same function is a loss and a metric;
- :func:`frequency_loss` — EnCodec's frequency-domain term (Défossez et al. 2022 eq. 2): L1 plus squared L2 between
  linear-magnitude mel spectrograms at seven scales, which weighs loud tiles (the harmonic peaks) where the log-mel
  L1 weighs every tile alike;
- a plain L1 on the waveform (EnCodec's time-domain term, Défossez et al. 2022 eq. 1).

Adversarial (EnCodec section 3.4): hinge or least-squares GAN losses over the discriminator's logits, and the
relative feature-matching loss (their eq. 4).

Metrics: :func:`si_sdr` (Le Roux et al. 2019).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.audio import mel_spectrogram

MEL_WINDOWS = (32, 64, 128, 256, 512, 1024, 2048)
MEL_BANDS = (5, 10, 20, 40, 80, 160, 320)
STFT_WINDOWS = (2048, 1024, 512, 256, 128, 64)


def _stft_magnitude(x: Tensor, n_fft: int) -> Tensor:
    window = torch.hann_window(n_fft, device=x.device)
    spec = torch.stft(x.reshape(-1, x.shape[-1]).float(), n_fft, n_fft // 4, window=window, return_complex=True)
    return spec.abs().clamp_min(1e-7)  # (N, n_fft // 2 + 1, frames)


def multiscale_stft_loss(x_hat: Tensor, x: Tensor, n_ffts: tuple[int, ...] = STFT_WINDOWS) -> Tensor:
    """Mean over resolutions of ``||S - S_hat||_F / ||S||_F + mean |log S - log S_hat|`` (Yamamoto et al. 2020)."""
    total = x.new_zeros((), dtype=torch.float32)
    for n_fft in n_ffts:
        s, s_hat = _stft_magnitude(x, n_fft), _stft_magnitude(x_hat, n_fft)
        convergence = torch.linalg.norm(s - s_hat) / torch.linalg.norm(s).clamp_min(1e-7)
        total = total + convergence + F.l1_loss(s_hat.log(), s.log())
    return total / len(n_ffts)


def mel_distance(x_hat: Tensor, x: Tensor, sample_rate: int, windows: tuple[int, ...] = MEL_WINDOWS,
                 bands: tuple[int, ...] = MEL_BANDS) -> Tensor:
    """Mean over scales of ``|log10 mel(x) - log10 mel(x_hat)|`` (magnitudes floored at 1e-5; DAC's mel loss).

    Works on any leading shape ``(..., T)``; returns a scalar (the mean over everything).
    """
    total = x.new_zeros((), dtype=torch.float32)
    for n_fft, n_mels in zip(windows, bands):
        m = mel_spectrogram(x, sample_rate, n_fft, n_fft // 4, n_mels).clamp_min(1e-5).log10()
        m_hat = mel_spectrogram(x_hat, sample_rate, n_fft, n_fft // 4, n_mels).clamp_min(1e-5).log10()
        total = total + F.l1_loss(m_hat, m)
    return total / len(windows)


FREQUENCY_WINDOWS = tuple(2**i for i in range(5, 12))  # EnCodec's e = 5..11: 32 to 2048 samples


def frequency_loss(x_hat: Tensor, x: Tensor, sample_rate: int, windows: tuple[int, ...] = FREQUENCY_WINDOWS,
                   n_mels: int = 64, alpha: float = 1.0) -> Tensor:
    """EnCodec's eq. 2: mean over scales of ``mean |S - S_hat| + alpha * mean (S - S_hat)^2``, with ``S`` the 64-band
    mel spectrogram of linear magnitudes (window 2^i, hop a quarter of it) of the STFT normalised by its window's
    L2 norm, so that a sinusoid has the same magnitude at every scale (torchaudio's ``normalized=True``). The mean
    runs over every band, those a short window cannot resolve (zero on both sides) included, as in EnCodec."""
    total = x.new_zeros((), dtype=torch.float32)
    for n_fft in windows:
        norm = torch.hann_window(n_fft, device=x.device).norm()
        m = mel_spectrogram(x, sample_rate, n_fft, n_fft // 4, n_mels) / norm
        m_hat = mel_spectrogram(x_hat, sample_rate, n_fft, n_fft // 4, n_mels) / norm
        total = total + F.l1_loss(m_hat, m) + alpha * F.mse_loss(m_hat, m)
    return total / len(windows)


def si_sdr(estimate: Tensor, reference: Tensor, eps: float = 1e-8) -> Tensor:
    """Scale-invariant signal-to-distortion ratio in dB over the last axis (Le Roux et al. 2019, eqs. 2-3).

    Both signals are made zero-mean; the reference is scaled by ``alpha = <s_hat, s> / ||s||^2`` to best match the
    estimate, and ``SI-SDR = 10 log10(||alpha s||^2 / ||alpha s - s_hat||^2)``.
    """
    s = reference.double() - reference.double().mean(-1, keepdim=True)
    s_hat = estimate.double() - estimate.double().mean(-1, keepdim=True)
    alpha = (s_hat * s).sum(-1, keepdim=True) / ((s * s).sum(-1, keepdim=True) + eps)
    target = alpha * s
    return (10 * torch.log10((target.pow(2).sum(-1) + eps) / ((target - s_hat).pow(2).sum(-1) + eps))).float()


# -----------------------------------------------------------------------------------------------------------------
# Adversarial losses over a multi-scale discriminator's outputs: lists (one per scale) of logits / feature maps.


def discriminator_loss(real: list[Tensor], fake: list[Tensor], kind: str = "hinge") -> Tensor:
    """Hinge: ``mean(relu(1 - D(x))) + mean(relu(1 + D(x_hat)))`` (EnCodec eq. 3's critic side); LSGAN (Mao et al.
    2017): ``mean((D(x) - 1)^2) + mean(D(x_hat)^2)``. Averaged over scales."""
    total = real[0].new_zeros((), dtype=torch.float32)
    for r, f in zip(real, fake):
        r, f = r.float(), f.float()
        if kind == "hinge":
            total = total + F.relu(1 - r).mean() + F.relu(1 + f).mean()
        else:
            total = total + (r - 1).pow(2).mean() + f.pow(2).mean()
    return total / len(real)


def generator_loss(fake: list[Tensor], kind: str = "hinge") -> Tensor:
    """Hinge: ``mean(relu(1 - D(x_hat)))`` (EnCodec eq. 3); LSGAN: ``mean((D(x_hat) - 1)^2)``. Averaged over scales."""
    total = fake[0].new_zeros((), dtype=torch.float32)
    for f in fake:
        f = f.float()
        total = total + (F.relu(1 - f).mean() if kind == "hinge" else (f - 1).pow(2).mean())
    return total / len(fake)


def feature_matching_loss(real: list[list[Tensor]], fake: list[list[Tensor]]) -> Tensor:
    """EnCodec eq. 4: mean over scales k and layers l of ``||D_k^l(x) - D_k^l(x_hat)||_1 / mean(|D_k^l(x)|)``."""
    total, n = real[0][0].new_zeros((), dtype=torch.float32), 0
    for real_maps, fake_maps in zip(real, fake):
        for r, f in zip(real_maps, fake_maps):
            r = r.detach().float()
            total = total + F.l1_loss(f.float(), r) / r.abs().mean().clamp_min(1e-5)
            n += 1
    return total / n
