"""Samplers: turn a trained denoiser into samples, all under one contract (DESIGN 3.2, diffusers' without mixins).

Every sampler has ``set_timesteps(num_steps)``, which fills ``.timesteps`` (the training timesteps at which the
model is evaluated, in order) and resets the sampler's state; ``scale_model_input(x, t)``; ``step(model_output,
t, x, generator=None) -> x_prev``; ``add_noise(x0, noise, t)``; ``init_noise_sigma``; and ``prediction_type``
("epsilon" or "v_prediction"). After each step ``pred_original_sample`` holds the sampler's current estimate of
x0. The loop is the same for all of them and is written out in :func:`sample_loop`.

Two families:

- VP samplers (DDPM, DDIM, DPM-Solver++) keep x_t = alpha x0 + sigma eps; the model input is x itself and the
  timesteps are integers.
- Sigma-space samplers (Euler, Heun; Karras et al. 2022) keep x = x0 + sigma eps, feed the model
  x / sqrt(sigma^2 + 1) (which is x_t) and pass it a fractional timestep: the training timestep whose sigma is
  the sampler's sigma, interpolated in log sigma as diffusers does.

Timestep spacing defaults follow diffusers per scheduler: "leading" for DDPM and DDIM (t = 0, k, 2k, ... with
k = T // n; so 50 DDIM steps start at t = 980), "linspace" for DPM-Solver++ (n + 1 points from 0 to T - 1, the
last dropped), and Karras sigmas (rho = 7) between sigma(T - 1) and sigma(0) for Euler and Heun. "trailing"
(Lin et al. 2024: start exactly at t = T - 1) is available for the VP samplers.

Where genlab departs from diffusers: clipping of x0 is off by default (diffusers' DDPM and DDIM clip to [-1, 1]);
every sampler walks its timesteps with an explicit counter and refuses a ``t`` other than the next one, instead of
looking ``t`` up by value (diffusers' look-up goes wrong when Karras timesteps round to duplicates); DPM-Solver++
with Karras sigmas rounds its timesteps for every schedule (diffusers truncates them for the cosine schedule);
Euler has no "churn" (Karras Alg. 2 with S_churn = 0, which is Alg. 1's deterministic update).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
import torch

from ..errors import GenlabError
from .schedule import NoiseSchedule, check_prediction_type, split_prediction

SPACINGS = ("leading", "trailing", "linspace")


def spaced_timesteps(spacing: str, num_train_timesteps: int, num_steps: int, skip_zero: bool = False) -> np.ndarray:
    """Descending integer timesteps (n,) chosen among 0 .. T-1, spaced like diffusers' ``timestep_spacing``.

    ``skip_zero`` is DPM-Solver's variant: lay n + 1 points and drop the last (t = 0), since its last step jumps
    to sigma = 0 by itself.
    """
    T, n = num_train_timesteps, _check_steps(num_steps, num_train_timesteps)
    points = n + 1 if skip_zero else n
    if spacing == "leading":
        t = (np.arange(points) * (T // points))[::-1]
    elif spacing == "linspace":
        t = np.linspace(0, T - 1, points).round()[::-1]
    elif spacing == "trailing":
        return np.round(np.arange(T, 0, -T / n)).astype(np.int64) - 1
    else:
        raise GenlabError(f"unknown timestep_spacing {spacing!r}: choose one of {', '.join(SPACINGS)}")
    t = t[:-1] if skip_zero else t
    return t.copy().astype(np.int64)


def _check_steps(num_steps: int, num_train_timesteps: int) -> int:
    if not 1 <= num_steps <= num_train_timesteps:
        raise GenlabError(f"number of sampling steps must be between 1 and {num_train_timesteps} (the training "
                          f"timesteps), got {num_steps}")
    return num_steps


def _randn(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like ``like``, drawn on the generator's device (so seeds give the same noise
    on CPU and GPU) and moved to ``like``'s device."""
    device = generator.device if generator is not None else like.device
    return torch.randn(like.shape, generator=generator, device=device, dtype=like.dtype).to(like.device)


def _sigma_space_x0(model_output: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor,
                    prediction_type: str) -> torch.Tensor:
    """x0 from a model output at x = x0 + sigma eps (the model saw x_t = x / sqrt(sigma^2 + 1))."""
    if prediction_type == "epsilon":
        return x - sigma * model_output
    # v at x_t with alpha = 1/sqrt(sigma^2+1), sigma_t = sigma alpha: x0 = alpha x_t - sigma_t v.
    return model_output * (-sigma / (sigma**2 + 1) ** 0.5) + x / (sigma**2 + 1)


class Sampler:
    """Bookkeeping shared by every sampler: the timesteps, the step counter and the contract's defaults."""

    name = "sampler"

    def __init__(self, schedule: NoiseSchedule, prediction_type: str = "epsilon"):
        self.schedule = schedule
        self.prediction_type = check_prediction_type(prediction_type)
        self.init_noise_sigma: float | torch.Tensor = 1.0
        self.timesteps: torch.Tensor | None = None
        self.step_index = 0
        self.pred_original_sample: torch.Tensor | None = None

    @property
    def display_name(self) -> str:
        return self.name

    def _start(self, timesteps: torch.Tensor) -> None:
        self.timesteps = timesteps
        self.step_index = 0
        self.pred_original_sample = None

    def _index(self, t) -> int:
        """The index of the model evaluation at ``t``, which must be the next one in ``.timesteps``."""
        if self.timesteps is None:
            raise GenlabError(f"{self.name} sampler: call set_timesteps(num_steps) before sampling")
        i = self.step_index
        if i >= len(self.timesteps):
            raise GenlabError(f"{self.name} sampler: all {len(self.timesteps)} steps are done; call set_timesteps "
                              "again to sample anew")
        expected, got = float(self.timesteps[i]), float(torch.as_tensor(t).flatten()[0])
        if got != expected:
            raise GenlabError(f"{self.name} sampler: step {i} expects t={expected:g}, got t={got:g}; pass the "
                              "entries of sampler.timesteps in order")
        return i

    def scale_model_input(self, x: torch.Tensor, t) -> torch.Tensor:
        return x

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t for integer training timesteps t (B,), in this sampler's space (VP here)."""
        return self.schedule.add_noise(x0, noise, t)


class _SpacedVP(Sampler):
    """What DDPM and DDIM share: integer timesteps spaced like diffusers, optional x0 clipping, and abar at the
    current and the next timestep (abar = 1 past the last one)."""

    def __init__(self, schedule: NoiseSchedule, prediction_type: str = "epsilon", clip_sample: bool = False,
                 clip_sample_range: float = 1.0, timestep_spacing: str = "leading"):
        super().__init__(schedule, prediction_type)
        self.clip_sample, self.clip_sample_range = clip_sample, clip_sample_range
        self.timestep_spacing = timestep_spacing

    def set_timesteps(self, num_steps: int) -> None:
        T = self.schedule.num_train_timesteps
        self._start(torch.from_numpy(spaced_timesteps(self.timestep_spacing, T, num_steps)))

    def _abars(self, t) -> tuple[int, torch.Tensor, torch.Tensor]:
        """(integer t, abar_t, abar_prev) for the evaluation at ``t``, which must be the next one."""
        i = self._index(t)
        t = int(self.timesteps[i])
        prev_t = int(self.timesteps[i + 1]) if i + 1 < len(self.timesteps) else -1
        abar = self.schedule.alphas_cumprod
        return t, abar[t], (abar[prev_t] if prev_t >= 0 else torch.tensor(1.0))

    def _clip(self, x0: torch.Tensor) -> torch.Tensor:
        return x0.clamp(-self.clip_sample_range, self.clip_sample_range) if self.clip_sample else x0


class DDPM(_SpacedVP):
    """Ancestral sampling, Ho et al. 2020 Algorithm 2, with the "fixed_small" posterior variance beta~_t (eq. 7)."""

    name = "ddpm"

    def step(self, model_output: torch.Tensor, t, x: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        t, abar_t, abar_prev = self._abars(t)
        # With fewer steps than training timesteps, one step spans t -> prev_t: its alpha is the ratio of abars.
        alpha_t = abar_t / abar_prev
        beta_t = 1 - alpha_t
        x0 = self._clip(split_prediction(model_output, x, abar_t**0.5, (1 - abar_t) ** 0.5, self.prediction_type)[0])
        # Posterior q(x_{t-1} | x_t, x0): mean mu~_t (eq. 7), variance beta~_t = (1 - abar_prev)/(1 - abar_t) beta_t.
        mean = (abar_prev**0.5 * beta_t / (1 - abar_t)) * x0 + (alpha_t**0.5 * (1 - abar_prev) / (1 - abar_t)) * x
        self.pred_original_sample = x0
        self.step_index += 1
        if t == 0:
            return mean
        variance = torch.clamp((1 - abar_prev) / (1 - abar_t) * beta_t, min=1e-20)
        return mean + variance**0.5 * _randn(model_output, generator)


class DDIM(_SpacedVP):
    """Denoising diffusion implicit models, Song et al. 2021 eq. 12; eta = 0 is deterministic, eta = 1 is DDPM's."""

    name = "ddim"

    def __init__(self, schedule: NoiseSchedule, prediction_type: str = "epsilon", eta: float = 0.0,
                 clip_sample: bool = False, clip_sample_range: float = 1.0, timestep_spacing: str = "leading"):
        super().__init__(schedule, prediction_type, clip_sample, clip_sample_range, timestep_spacing)
        self.eta = eta

    def step(self, model_output: torch.Tensor, t, x: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        _, abar_t, abar_prev = self._abars(t)
        x0, eps = split_prediction(model_output, x, abar_t**0.5, (1 - abar_t) ** 0.5, self.prediction_type)
        x0 = self._clip(x0)
        # sigma_t(eta) of eq. 16: eta times the DDPM posterior standard deviation.
        std = self.eta * ((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev)) ** 0.5
        x_prev = abar_prev**0.5 * x0 + (1 - abar_prev - std**2) ** 0.5 * eps
        if self.eta > 0:
            x_prev = x_prev + std * _randn(model_output, generator)
        self.pred_original_sample = x0
        self.step_index += 1
        return x_prev


def _vp(sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(alpha_t, sigma_t) of the VP process at sigma-space level sigma: alpha = 1/sqrt(1 + sigma^2)."""
    alpha = 1 / (sigma**2 + 1) ** 0.5
    return alpha, sigma * alpha


class DPMSolverPP2M(Sampler):
    """DPM-Solver++(2M), Lu et al. 2022 Algorithm 2: multistep second order in log-SNR on the data prediction."""

    name = "dpmpp-2m"

    def __init__(self, schedule: NoiseSchedule, prediction_type: str = "epsilon", use_karras_sigmas: bool = False,
                 timestep_spacing: str = "linspace"):
        super().__init__(schedule, prediction_type)
        self.use_karras_sigmas, self.timestep_spacing = use_karras_sigmas, timestep_spacing
        self.sigmas: torch.Tensor | None = None  # (n + 1,) step boundaries, ending in 0
        self.eval_sigmas: torch.Tensor | None = None  # (n,) the sigma of each model evaluation
        self.prev_x0: torch.Tensor | None = None  # the previous step's data prediction (the "multistep" memory)

    @property
    def display_name(self) -> str:
        return "DPM++ 2M Karras" if self.use_karras_sigmas else "DPM++ 2M"

    def set_timesteps(self, num_steps: int) -> None:
        s = self.schedule
        if self.use_karras_sigmas:
            _check_steps(num_steps, s.num_train_timesteps)
            sigmas = s.karras_sigmas(num_steps)
            timesteps = np.round(s.sigma_to_t(sigmas)).astype(np.int64)  # the model gets the nearest trained t
        else:
            timesteps = spaced_timesteps(self.timestep_spacing, s.num_train_timesteps, num_steps, skip_zero=True)
            sigmas = s.sigmas.numpy()[timesteps]
        # The last step goes to sigma = 0: it returns the data prediction itself.
        self.sigmas = torch.from_numpy(np.concatenate([sigmas, [0.0]]).astype(np.float32))  # (n + 1,)
        self.eval_sigmas = self.sigmas[:-1]
        self.prev_x0 = None
        self._start(torch.from_numpy(timesteps))

    def step(self, model_output: torch.Tensor, t, x: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        i = self._index(t)
        alpha_s, sigma_s = _vp(self.sigmas[i])
        alpha_t, sigma_t = _vp(self.sigmas[i + 1])
        lambda_s, lambda_t = torch.log(alpha_s) - torch.log(sigma_s), torch.log(alpha_t) - torch.log(sigma_t)
        h = lambda_t - lambda_s
        x0 = split_prediction(model_output, x, alpha_s, sigma_s, self.prediction_type)[0]
        # First order (DPM-Solver++(1), i.e. DDIM) on the first step, which has no history, and on the last, where
        # sigma_t = 0 makes h infinite; second order in between (eq. for D1 with r = h_prev / h).
        x_prev = sigma_t / sigma_s * x - alpha_t * (torch.exp(-h) - 1.0) * x0
        if self.prev_x0 is not None and i < len(self.timesteps) - 1:
            alpha_p, sigma_p = _vp(self.sigmas[i - 1])
            r = (lambda_s - (torch.log(alpha_p) - torch.log(sigma_p))) / h
            d1 = (1.0 / r) * (x0 - self.prev_x0)  # finite-difference derivative of x0 in lambda, times h
            x_prev = x_prev - 0.5 * (alpha_t * (torch.exp(-h) - 1.0)) * d1
        self.prev_x0 = x0
        self.pred_original_sample = x0
        self.step_index += 1
        return x_prev

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x at the sampler's level for timestep t: the scheduled sigma if t is scheduled, else the trained one."""
        sigma = _per_sample_sigmas(self, t, x0)
        alpha, sigma_t = _vp(sigma)
        return alpha * x0 + sigma_t * noise


def _per_sample_sigmas(sampler: DPMSolverPP2M | _SigmaSpace, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Sigma for each timestep in t (B,), shaped (B, 1, ...): the sampler's own sigma where t is one of its
    timesteps (Karras sigmas differ slightly from the trained ones), else the training sigma at t."""
    out = []
    for ti in torch.as_tensor(t).flatten().tolist():
        hit = [] if sampler.timesteps is None else (sampler.timesteps == ti).nonzero().flatten().tolist()
        if hit:
            out.append(float(sampler.eval_sigmas[hit[0]]))
        else:
            out.append(float(sampler.schedule.t_to_sigma(ti)))
    sigma = torch.tensor(out, dtype=like.dtype, device=like.device)
    return sigma.reshape(-1, *([1] * (like.dim() - 1)))


class _SigmaSpace(Sampler):
    """Common part of Euler and Heun: n sigmas (Karras by default) plus a final 0, and fractional timesteps."""

    def __init__(self, schedule: NoiseSchedule, prediction_type: str = "epsilon", use_karras_sigmas: bool = True):
        super().__init__(schedule, prediction_type)
        self.use_karras_sigmas = use_karras_sigmas
        self.sigmas: torch.Tensor | None = None  # (n + 1,) step boundaries, ending in 0
        self.eval_sigmas: torch.Tensor | None = None  # the sigma of each model evaluation

    def _sigma_schedule(self, num_steps: int) -> tuple[np.ndarray, np.ndarray]:
        """(sigmas (n + 1,) float32 ending in 0, timesteps (n,) float32), as diffusers' "linspace" + Karras."""
        s = self.schedule
        T = s.num_train_timesteps
        _check_steps(num_steps, T)
        timesteps = np.linspace(0, T - 1, num_steps, dtype=np.float32)[::-1].copy()
        if self.use_karras_sigmas:
            sigmas = s.karras_sigmas(num_steps)
            timesteps = s.sigma_to_t(sigmas)
        else:
            sigmas = np.interp(timesteps, np.arange(T), s.sigmas.numpy())  # linear in sigma, like diffusers
        sigmas = np.concatenate([sigmas, [0.0]]).astype(np.float32)
        return sigmas, timesteps.astype(np.float32)

    def scale_model_input(self, x: torch.Tensor, t) -> torch.Tensor:
        """x_t = x / sqrt(sigma^2 + 1): the VP input the model was trained on."""
        sigma = self.eval_sigmas[self._index(t)]
        return x / (sigma**2 + 1) ** 0.5

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x = x0 + sigma eps at the sigma of timestep t (Karras et al. 2022, sec. 2)."""
        return x0 + noise * _per_sample_sigmas(self, t, x0)


class Euler(_SigmaSpace):
    """Euler's method on the probability-flow ODE dx/dsigma = (x - D(x))/sigma, Karras et al. 2022 Alg. 2 with
    S_churn = 0, on Karras sigmas (rho = 7)."""

    name = "euler"

    def set_timesteps(self, num_steps: int) -> None:
        sigmas, timesteps = self._sigma_schedule(num_steps)
        self.sigmas = torch.from_numpy(sigmas)  # (n + 1,)
        self.eval_sigmas = self.sigmas[:-1]  # the sigma of each model evaluation, (n,)
        self.init_noise_sigma = self.sigmas.max()
        self._start(torch.from_numpy(timesteps))

    def step(self, model_output: torch.Tensor, t, x: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        i = self._index(t)
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        x0 = _sigma_space_x0(model_output, x, sigma, self.prediction_type)
        d = (x - x0) / sigma
        self.pred_original_sample = x0
        self.step_index += 1
        return x + d * (sigma_next - sigma)


class Heun(_SigmaSpace):
    """Heun's second-order method, Karras et al. 2022 Algorithm 1, on Karras sigmas (rho = 7).

    Each step sigma_i -> sigma_{i+1} takes two model evaluations (an Euler predictor, then a trapezoidal
    corrector at sigma_{i+1}) except the last one to sigma = 0, which is plain Euler: 2n - 1 evaluations for n
    steps. ``.timesteps`` lists every evaluation, so entries after the first come in pairs (as in diffusers'
    HeunDiscreteScheduler): even indices are predictors, odd ones correctors.
    """

    name = "heun"

    def set_timesteps(self, num_steps: int) -> None:
        sigmas, timesteps = self._sigma_schedule(num_steps)
        self.sigmas = torch.from_numpy(sigmas)  # (n + 1,), one per step boundary
        evals = (torch.arange(2 * num_steps - 1) + 1) // 2  # evaluation k happens at boundary (k + 1) // 2
        self.eval_sigmas = self.sigmas[evals]  # (2n - 1,)
        self.init_noise_sigma = self.sigmas.max()
        # Predictor/corrector memory: the step's start point, its slope and its size.
        self.x_start: torch.Tensor | None = None
        self.d_start: torch.Tensor | None = None
        self._start(torch.from_numpy(timesteps)[evals])

    def step(self, model_output: torch.Tensor, t, x: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        k = self._index(t)
        self.step_index += 1
        if k % 2 == 0:  # predictor: an Euler step sigma_i -> sigma_{i+1}
            sigma, sigma_next = self.sigmas[k // 2], self.sigmas[k // 2 + 1]
            x0 = _sigma_space_x0(model_output, x, sigma, self.prediction_type)
            d = (x - x0) / sigma
            self.pred_original_sample = x0
            if sigma_next > 0:
                self.x_start, self.d_start = x, d
            return x + d * (sigma_next - sigma)
        # corrector: average the slopes at both ends and redo the step from its start
        sigma, sigma_next = self.sigmas[k // 2], self.sigmas[k // 2 + 1]
        x0 = _sigma_space_x0(model_output, x, sigma_next, self.prediction_type)
        d = (self.d_start + (x - x0) / sigma_next) / 2
        x_prev = self.x_start + d * (sigma_next - sigma)
        self.x_start = self.d_start = None
        self.pred_original_sample = x0
        return x_prev


# User-facing names -> (class, fixed options). An explicit table: no look-up of classes by string.
SAMPLERS: dict[str, tuple[type[Sampler], dict]] = {
    "ddpm": (DDPM, {}),
    "ddim": (DDIM, {}),
    "dpmpp-2m": (DPMSolverPP2M, {}),
    "dpmpp-2m-karras": (DPMSolverPP2M, {"use_karras_sigmas": True}),
    "euler": (Euler, {}),
    "heun": (Heun, {}),
}


def make_sampler(name: str, schedule: NoiseSchedule, **kw) -> Sampler:
    """The sampler called ``name`` (ddpm, ddim, dpmpp-2m, dpmpp-2m-karras, euler, heun) over ``schedule``."""
    if name not in SAMPLERS:
        raise GenlabError(f"unknown sampler {name!r}: choose one of {', '.join(SAMPLERS)}")
    cls, fixed = SAMPLERS[name]
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "schedule")]
    for key in kw:
        if key not in allowed:
            raise GenlabError(f"sampler {name!r} has no option {key!r}: its options are {', '.join(allowed)}")
    return cls(schedule, **{**kw, **fixed})


def sample_loop(model_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], sampler: Sampler,
                shape: tuple[int, ...], generator: torch.Generator | None = None,
                callback: Callable | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """Draw samples (B, ...) = ``shape``: noise at the sampler's top level, then one ``step`` per timestep.

    ``model_fn(x_scaled, t)`` gets the model input (B, ...) and the timesteps (B,) and returns the model output;
    ``callback(i, t, x, x0_pred)`` sees every step. Call ``sampler.set_timesteps(n)`` first.
    """
    if sampler.timesteps is None:
        raise GenlabError(f"{sampler.name} sampler: call set_timesteps(num_steps) before sample_loop")
    gen_device = generator.device if generator is not None else torch.device(device or "cpu")
    device = torch.device(device) if device is not None else gen_device
    x = torch.randn(shape, generator=generator, device=gen_device).to(device) * sampler.init_noise_sigma
    for i, t in enumerate(sampler.timesteps):
        model_output = model_fn(sampler.scale_model_input(x, t), t.to(device).expand(shape[0]))
        x = sampler.step(model_output, t, x, generator=generator)
        if callback is not None:
            callback(i, t, x, sampler.pred_original_sample)
    return x


def guided(model: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor], cond: torch.Tensor,
           uncond: torch.Tensor, scale: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Classifier-free guidance (Ho & Salimans 2022, eq. 6) as a denoiser for :func:`sample_loop`, so every sampler
    gets it: ``model(x, t, c)`` runs on ``[x; x]`` with ``[cond; uncond]`` in one batch and the result is
    ``out_u + scale * (out_c - out_u)``.

    ``cond`` and ``uncond`` ``(B, ...)`` are what the model is conditioned on (a text's token states; ``uncond`` those
    of the empty prompt, or of a negative prompt). ``scale`` is diffusers' and Stable Diffusion's: 1 is the
    conditional model alone, 0 the unconditional one (Ho & Salimans' w is ``scale - 1``). The combination is linear
    in the model output, so it serves epsilon and v prediction alike. At scale 1 or 0 only one half is evaluated.
    """
    if scale < 0:
        raise GenlabError(f"guidance scale must be >= 0, got {scale:g}")

    def denoiser(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if scale == 1:
            return model(x, t, cond)
        if scale == 0:
            return model(x, t, uncond)
        out_c, out_u = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([cond, uncond])).chunk(2)
        return out_u + scale * (out_c - out_u)

    return denoiser
