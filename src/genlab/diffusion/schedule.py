"""The forward (noising) process of a variance-preserving diffusion, and the views the samplers need of it.

Ho et al. 2020 define x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps with abar_t = prod_{s<=t} (1 - beta_s), over
``num_train_timesteps`` discrete steps t = 0 .. T-1. Two other views of the same process:

- the model target: epsilon (Ho et al. 2020) or velocity v = alpha eps - sigma x0 (Salimans & Ho 2022);
- sigma space (Karras et al. 2022): x = x0 + sigma eps with sigma_t = sqrt((1 - abar_t) / abar_t), so that
  x = x_t / alpha_t; the Euler and Heun samplers integrate there.

Numbers follow diffusers (betas and abar in float32, the sigma <-> t interpolation in float64) so that
schedules, noised samples and sampler trajectories agree with its schedulers to float32 rounding.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch

from ..errors import GenlabError

ScheduleName = Literal["linear", "cosine"]
PredictionType = Literal["epsilon", "v_prediction"]
SCHEDULES = ("linear", "cosine")
PREDICTION_TYPES = ("epsilon", "v_prediction")


def betas_for(schedule: str, num_train_timesteps: int = 1000, beta_start: float = 1e-4,
              beta_end: float = 0.02) -> torch.Tensor:
    """Per-step noise variances beta_t, (T,) float32: "linear" (Ho et al. 2020) or "cosine" (Nichol & Dhariwal 2021)."""
    if schedule == "linear":
        return torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float32)
    if schedule == "cosine":
        # Nichol & Dhariwal 2021 eq. 17: abar(t) = cos^2((t/T + s) / (1 + s) * pi/2) with s = 0.008, and betas
        # capped at 0.999 so that the last step stays invertible (diffusers' "squaredcos_cap_v2").
        def abar(u: float) -> float:
            return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

        T = num_train_timesteps
        betas = [min(1 - abar((i + 1) / T) / abar(i / T), 0.999) for i in range(T)]
        return torch.tensor(betas, dtype=torch.float32)
    raise GenlabError(f"unknown noise schedule {schedule!r}: choose one of {', '.join(SCHEDULES)}")


def check_prediction_type(prediction_type: str) -> str:
    if prediction_type not in PREDICTION_TYPES:
        raise GenlabError(f"unknown prediction_type {prediction_type!r}: choose one of {', '.join(PREDICTION_TYPES)}")
    return prediction_type


def split_prediction(model_output: torch.Tensor, x_t: torch.Tensor, alpha, sigma,
                     prediction_type: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0, eps) implied by a model output at x_t = alpha x0 + sigma eps (alpha^2 + sigma^2 = 1)."""
    if prediction_type == "epsilon":
        return (x_t - sigma * model_output) / alpha, model_output
    if prediction_type == "v_prediction":
        # v = alpha eps - sigma x0 (Salimans & Ho 2022, sec. 4) inverts to these two lines.
        return alpha * x_t - sigma * model_output, alpha * model_output + sigma * x_t
    raise GenlabError(f"unknown prediction_type {prediction_type!r}: choose one of {', '.join(PREDICTION_TYPES)}")


def make_prediction(x0: torch.Tensor, eps: torch.Tensor, alpha, sigma, prediction_type: str) -> torch.Tensor:
    """The model output (the training target) for a given (x0, eps) at noise level (alpha, sigma)."""
    if prediction_type == "epsilon":
        return eps
    if prediction_type == "v_prediction":
        return alpha * eps - sigma * x0
    raise GenlabError(f"unknown prediction_type {prediction_type!r}: choose one of {', '.join(PREDICTION_TYPES)}")


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, ..., 1) so that a per-sample scalar broadcasts over ``like`` (B, ...)."""
    return values.reshape(-1, *([1] * (like.dim() - 1))) if values.dim() > 0 else values


class NoiseSchedule:
    """betas, abar and sigmas of a discrete VP diffusion (Ho et al. 2020), with the conversions between views."""

    def __init__(self, schedule: str = "linear", num_train_timesteps: int = 1000, beta_start: float = 1e-4,
                 beta_end: float = 0.02):
        self.schedule = schedule
        self.num_train_timesteps = num_train_timesteps
        self.betas = betas_for(schedule, num_train_timesteps, beta_start, beta_end)  # (T,) float32
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)  # abar_t, (T,) float32 like diffusers
        self.sigmas = ((1 - self.alphas_cumprod) / self.alphas_cumprod) ** 0.5  # (T,) increasing in t
        self.log_sigmas = np.log(self.sigmas.numpy()).astype(np.float64)

    # --- the forward process, indexed by integer training timesteps t (B,) ---

    def alpha_sigma(self, t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """sqrt(abar_t) and sqrt(1 - abar_t), shaped (B, 1, ...) to broadcast over ``like`` (B, ...)."""
        abar = self.alphas_cumprod.to(like.device, like.dtype)[torch.as_tensor(t).to(like.device).long()]
        return _per_sample(abar**0.5, like), _per_sample((1 - abar) ** 0.5, like)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps (Ho et al. 2020, eq. 4)."""
        alpha, sigma = self.alpha_sigma(t, x0)
        return alpha * x0 + sigma * noise

    def velocity(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0 (Salimans & Ho 2022)."""
        alpha, sigma = self.alpha_sigma(t, x0)
        return alpha * noise - sigma * x0

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, prediction_type: str) -> torch.Tensor:
        """What a model with this ``prediction_type`` is trained to output at x_t."""
        alpha, sigma = self.alpha_sigma(t, x0)
        return make_prediction(x0, noise, alpha, sigma, check_prediction_type(prediction_type))

    def loss(self, model, x0: torch.Tensor, prediction_type: str) -> torch.Tensor:
        """The denoising loss of Ho et al. 2020 (Algorithm 1, with any prediction type): a uniform timestep and a
        Gaussian noise per example, ``mse(model(x_t, t), target)``. ``model(x_t, t)`` is any denoiser (a UNet, a
        video UNet, a text-conditioned UNet with its context bound)."""
        t = torch.randint(0, self.num_train_timesteps, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        x_t = self.add_noise(x0, noise, t)
        return torch.nn.functional.mse_loss(model(x_t, t).float(), self.target(x0, noise, t, prediction_type))

    def pred_x0(self, model_output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                prediction_type: str) -> torch.Tensor:
        """x0 implied by a model output at x_t (eps -> x0 or v -> x0)."""
        alpha, sigma = self.alpha_sigma(t, x_t)
        return split_prediction(model_output, x_t, alpha, sigma, prediction_type)[0]

    def pred_eps(self, model_output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                 prediction_type: str) -> torch.Tensor:
        """eps implied by a model output at x_t (identity for epsilon, v -> eps)."""
        alpha, sigma = self.alpha_sigma(t, x_t)
        return split_prediction(model_output, x_t, alpha, sigma, prediction_type)[1]

    def eps_to_v(self, eps: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """v from eps at x_t, via x0 = (x_t - sigma eps) / alpha."""
        alpha, sigma = self.alpha_sigma(t, x_t)
        return make_prediction((x_t - sigma * eps) / alpha, eps, alpha, sigma, "v_prediction")

    # --- sigma space (Karras et al. 2022): continuous t <-> sigma, interpolated like diffusers ---

    def sigma_to_t(self, sigma: np.ndarray | float) -> np.ndarray:
        """Fractional training timestep whose sigma is ``sigma``: linear interpolation in log sigma."""
        log_sigma = np.log(np.maximum(np.asarray(sigma, dtype=np.float64), 1e-10))
        low = np.clip(np.searchsorted(self.log_sigmas, log_sigma, side="right") - 1, 0, len(self.log_sigmas) - 2)
        lo, hi = self.log_sigmas[low], self.log_sigmas[low + 1]
        w = np.clip((lo - log_sigma) / (lo - hi), 0, 1)
        return (1 - w) * low + w * (low + 1)

    def t_to_sigma(self, t: np.ndarray | float) -> np.ndarray:
        """sigma at a fractional training timestep: the inverse of :meth:`sigma_to_t` (log-linear in t)."""
        return np.exp(np.interp(np.asarray(t, dtype=np.float64), np.arange(len(self.log_sigmas)), self.log_sigmas))

    def karras_sigmas(self, num_steps: int, rho: float = 7.0) -> np.ndarray:
        """Karras et al. 2022, eq. 5: sigma_max^(1/rho) -> sigma_min^(1/rho) linearly, raised to rho; (n,) float64."""
        sigma_min, sigma_max = float(self.sigmas[0]), float(self.sigmas[-1])
        ramp = np.linspace(0, 1, num_steps)
        return (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
