"""Samplers: step-by-step parity with diffusers' schedulers, exactness on a 1-D Gaussian mixture, and bad input.

The mixture test gives each sampler the exact noisy-data score of a known distribution (so the only errors left
are the sampler's own discretisation and Monte-Carlo noise) and checks that the samples have the mixture's mean,
variance and mode weights.
"""

import math

import numpy as np
import pytest
import torch

from genlab.diffusion.samplers import DDIM, DDPM, SAMPLERS, make_sampler, sample_loop
from genlab.diffusion.schedule import NoiseSchedule, make_prediction
from genlab.errors import GenlabError

diffusers = pytest.importorskip("diffusers")

DIFFUSERS_NAME = {"linear": "linear", "cosine": "squaredcos_cap_v2"}


def _ref(cls, schedule, prediction_type, **kw):
    return cls(beta_schedule=DIFFUSERS_NAME[schedule], beta_start=1e-4, beta_end=0.02, prediction_type=prediction_type,
               **kw)


# (case id, genlab name, genlab options, diffusers scheduler factory, diffusers step options, steps)
CASES = [
    ("ddpm", "ddpm", {}, lambda s, p: _ref(diffusers.DDPMScheduler, s, p, clip_sample=False), {"gen": True}, 50),
    ("ddim-eta0", "ddim", {}, lambda s, p: _ref(diffusers.DDIMScheduler, s, p, clip_sample=False), {"eta": 0.0}, 50),
    ("ddim-eta1", "ddim", {"eta": 1.0}, lambda s, p: _ref(diffusers.DDIMScheduler, s, p, clip_sample=False),
     {"eta": 1.0, "gen": True}, 50),
    ("ddim-trailing", "ddim", {"timestep_spacing": "trailing"},
     lambda s, p: _ref(diffusers.DDIMScheduler, s, p, clip_sample=False, timestep_spacing="trailing"), {}, 25),
    ("dpmpp-2m", "dpmpp-2m", {}, lambda s, p: _ref(diffusers.DPMSolverMultistepScheduler, s, p,
                                                    algorithm_type="dpmsolver++", solver_order=2), {}, 12),
    ("dpmpp-2m-karras", "dpmpp-2m-karras", {},
     lambda s, p: _ref(diffusers.DPMSolverMultistepScheduler, s, p, algorithm_type="dpmsolver++", solver_order=2,
                       use_karras_sigmas=True), {}, 20),
    ("euler", "euler", {}, lambda s, p: _ref(diffusers.EulerDiscreteScheduler, s, p, use_karras_sigmas=True), {}, 25),
    ("euler-plain", "euler", {"use_karras_sigmas": False},
     lambda s, p: _ref(diffusers.EulerDiscreteScheduler, s, p), {}, 25),
    ("heun", "heun", {}, lambda s, p: _ref(diffusers.HeunDiscreteScheduler, s, p, use_karras_sigmas=True), {}, 15),
]


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_parity_with_diffusers(case, schedule, prediction_type):
    case_id, name, options, make_ref, ref_step_kw, steps = case
    ours = make_sampler(name, NoiseSchedule(schedule), prediction_type=prediction_type, **options)
    ref = make_ref(schedule, prediction_type)
    ours.set_timesteps(steps)
    ref.set_timesteps(steps)

    # Timesteps: what the model is evaluated at.
    assert ours.timesteps.dtype == ref.timesteps.dtype
    if case_id == "dpmpp-2m-karras" and schedule == "cosine":
        # diffusers truncates the fractional Karras timesteps for the cosine schedule; genlab rounds them.
        assert set((ours.timesteps - ref.timesteps).tolist()) <= {0, 1}
    else:
        torch.testing.assert_close(ours.timesteps, ref.timesteps, rtol=0, atol=1e-4)
    assert float(ours.init_noise_sigma) == pytest.approx(float(ref.init_noise_sigma), rel=1e-6)

    g = torch.Generator().manual_seed(0)
    shape = (2, 3, 4, 4)
    x0, noise = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    for j in (0, len(ours.timesteps) // 2, len(ours.timesteps) - 1):
        if (ours.timesteps == ours.timesteps[j]).sum() > 1 or (ref.timesteps == ref.timesteps[j]).sum() > 1:
            continue  # a repeated timestep names no single noise level (Heun's pairs are the same level, though)
        t = ours.timesteps[j].repeat(shape[0])
        torch.testing.assert_close(ours.add_noise(x0, noise, t), ref.add_noise(x0, noise, ref.timesteps[j].repeat(2)),
                                   rtol=1e-5, atol=1e-5)

    # A full trajectory over a fixed sequence of fake model outputs that also depend on the (scaled) input, so a
    # wrong scale_model_input or a wrong step shows up.
    fake = [torch.randn(shape, generator=g) for _ in ours.timesteps]
    if hasattr(ref, "set_begin_index"):
        # Count steps from 0 like genlab: diffusers' look-up by value starts at the second copy of a repeated
        # first timestep (cosine + Karras repeats t = 998), skipping a step.
        ref.set_begin_index(0)
    x_ours = x_ref = torch.randn(shape, generator=g) * ours.init_noise_sigma
    g_ours, g_ref = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    step_kw = {k: v for k, v in ref_step_kw.items() if k != "gen"}
    if ref_step_kw.get("gen"):
        step_kw["generator"] = g_ref
    for i, (t, t_ref) in enumerate(zip(ours.timesteps, ref.timesteps)):
        in_ours, in_ref = ours.scale_model_input(x_ours, t), ref.scale_model_input(x_ref, t_ref)
        torch.testing.assert_close(in_ours, in_ref, rtol=1e-5, atol=1e-5)
        x_ours = ours.step(fake[i] + 0.1 * in_ours, t, x_ours, generator=g_ours)
        out = ref.step(fake[i] + 0.1 * in_ref, t_ref, x_ref, **step_kw)
        x_ref = out.prev_sample
        torch.testing.assert_close(x_ours, x_ref, rtol=1e-5, atol=1e-5, msg=lambda m, i=i: f"step {i}: {m}")
        if getattr(out, "pred_original_sample", None) is not None:
            torch.testing.assert_close(ours.pred_original_sample, out.pred_original_sample, rtol=1e-5, atol=1e-5)


def test_ddim_eta_one_is_ddpm():
    """Song et al. 2021: with eta = 1 on all T timesteps, DDIM's update is DDPM's ancestral step."""
    s = NoiseSchedule("linear")
    ddpm, ddim = DDPM(s), DDIM(s, eta=1.0)
    ddpm.set_timesteps(1000)
    ddim.set_timesteps(1000)
    x_a = x_b = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    g_a, g_b = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    for t in ddpm.timesteps:
        out = 0.3 * x_a  # a simple model; same input on both sides
        x_a = ddpm.step(out, t, x_a, generator=g_a)
        x_b = ddim.step(out, t, x_b, generator=g_b)
    torch.testing.assert_close(x_a, x_b, rtol=1e-4, atol=1e-5)


# --- a 1-D Gaussian mixture with its exact noisy score ---

WEIGHTS, MEANS, STDS = torch.tensor([0.3, 0.7]), torch.tensor([-2.0, 1.5]), torch.tensor([0.5, 0.3])
TRUE_MEAN = float((WEIGHTS * MEANS).sum())
TRUE_VAR = float((WEIGHTS * (STDS**2 + MEANS**2)).sum()) - TRUE_MEAN**2
# P(x > 0) under the mixture.
TRUE_POS = float((WEIGHTS * 0.5 * torch.erfc(-MEANS / (STDS * math.sqrt(2)))).sum())


def exact_model(schedule: NoiseSchedule, prediction_type: str):
    """The exact eps (or v) prediction at x_t for the mixture: eps = -sqrt(1 - abar) * grad log p_t(x_t)."""

    def model_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        # The timestep may be fractional (sigma-space samplers): read its noise level off the schedule.
        sigma = torch.from_numpy(schedule.t_to_sigma(t.double().numpy())).reshape(-1, 1)  # (B, 1)
        abar = 1 / (1 + sigma**2)
        a, s = abar.sqrt(), (1 - abar).sqrt()
        x = x_t.double()  # (B, 1)
        w, mu, std = WEIGHTS.double(), MEANS.double(), STDS.double()  # (K,)
        var = a**2 * std**2 + s**2  # (B, K): p_t = sum_k w_k N(a mu_k, a^2 std_k^2 + s^2)
        logp = torch.log(w) - 0.5 * torch.log(2 * math.pi * var) - (x - a * mu) ** 2 / (2 * var)  # (B, K)
        resp = torch.softmax(logp, dim=1)  # (B, K) posterior over components
        score = (resp * -(x - a * mu) / var).sum(dim=1, keepdim=True)  # (B, 1)
        eps = -s * score
        x0 = (x - s * eps) / a
        return make_prediction(x0, eps, a, s, prediction_type).float()

    return model_fn


# Karras sigmas run on the linear schedule: on the cosine one sigma_max is 2e4 (its last beta is capped at 0.999),
# so rho = 7 spends most steps at useless noise levels (Euler at 100 steps then loses 5 % of the variance, exactly
# as diffusers' EulerDiscreteScheduler does; the parity test above covers that combination).
MIXTURE_CASES = [("ddpm", 1000, "linear", "epsilon"), ("ddim", 100, "cosine", "v_prediction"),
                 ("dpmpp-2m", 50, "cosine", "epsilon"), ("dpmpp-2m-karras", 50, "linear", "v_prediction"),
                 ("euler", 100, "linear", "epsilon"), ("heun", 50, "linear", "v_prediction")]


@pytest.mark.parametrize("name,steps,schedule_name,prediction_type", MIXTURE_CASES, ids=[c[0] for c in MIXTURE_CASES])
def test_mixture_moments(name, steps, schedule_name, prediction_type):
    torch.set_num_threads(1)
    schedule = NoiseSchedule(schedule_name)
    sampler = make_sampler(name, schedule, prediction_type=prediction_type)
    sampler.set_timesteps(steps)
    n = 20_000
    seen = []
    x = sample_loop(exact_model(schedule, prediction_type), sampler, (n, 1), torch.Generator().manual_seed(0),
                    callback=lambda i, t, x, x0: seen.append(i))
    assert seen == list(range(len(sampler.timesteps)))
    x = x.double().flatten()
    assert bool(torch.isfinite(x).all())
    # Monte-Carlo standard errors at n = 20k: mean 0.012, variance ~0.6 %, P(x > 0) 0.003.
    assert abs(x.mean().item() - TRUE_MEAN) < 0.05
    assert abs(x.var().item() / TRUE_VAR - 1) < 0.05
    assert abs((x > 0).double().mean().item() - TRUE_POS) < 0.015
    # The right component shape, not only the moments: the spread of the larger mode.
    assert abs(x[x > 0].std().item() / STDS[1].item() - 1) < 0.1


# --- bad input ---


def test_unknown_sampler_lists_choices():
    with pytest.raises(GenlabError, match="unknown sampler 'plms': choose one of ddpm, ddim, dpmpp-2m"):
        make_sampler("plms", NoiseSchedule())
    assert set(SAMPLERS) >= {"ddpm", "ddim", "dpmpp-2m", "euler", "heun"}


def test_bad_options_and_misuse():
    s = NoiseSchedule()
    with pytest.raises(GenlabError, match="has no option 'eta'"):
        make_sampler("euler", s, eta=0.5)
    with pytest.raises(GenlabError, match="prediction_type"):
        make_sampler("ddim", s, prediction_type="sample")
    with pytest.raises(GenlabError, match="timestep_spacing"):
        make_sampler("ddpm", s, timestep_spacing="sideways").set_timesteps(10)
    with pytest.raises(GenlabError, match="between 1 and 1000"):
        make_sampler("heun", s).set_timesteps(1001)
    sampler = make_sampler("dpmpp-2m", s)
    with pytest.raises(GenlabError, match="set_timesteps"):
        sampler.step(torch.zeros(1), 999, torch.zeros(1))
    sampler.set_timesteps(5)
    with pytest.raises(GenlabError, match="expects t="):
        sampler.step(torch.zeros(1), int(sampler.timesteps[1]), torch.zeros(1))
    assert make_sampler("dpmpp-2m-karras", s).display_name == "DPM++ 2M Karras"


def test_set_timesteps_resets_state():
    s = NoiseSchedule()
    model = exact_model(s, "epsilon")
    for name in ("dpmpp-2m", "heun"):
        sampler = make_sampler(name, s)
        sampler.set_timesteps(6)
        gen = torch.Generator().manual_seed(3)
        first = sample_loop(model, sampler, (8, 1), gen)
        sampler.set_timesteps(4)
        sampler.set_timesteps(6)  # a fresh run after another: no history may leak in
        second = sample_loop(model, sampler, (8, 1), torch.Generator().manual_seed(3))
        torch.testing.assert_close(first, second, rtol=0, atol=0)
        assert len(sampler.timesteps) == (11 if name == "heun" else 6)
        assert np.all(np.diff(sampler.timesteps.numpy()) <= 0)


def test_add_noise_uses_trained_levels_off_schedule():
    """Timesteps that are not (yet) scheduled noise at the trained level of t, in each sampler's own space."""
    s = NoiseSchedule("linear")
    x0, noise = torch.ones(3, 2), torch.full((3, 2), 0.5)
    t = torch.tensor([0, 400, 999])
    sigma = s.sigmas[t].reshape(-1, 1)
    torch.testing.assert_close(make_sampler("euler", s).add_noise(x0, noise, t), x0 + sigma * noise)
    vp = s.add_noise(x0, noise, t)
    for name in ("ddpm", "ddim", "dpmpp-2m"):
        torch.testing.assert_close(make_sampler(name, s).add_noise(x0, noise, t), vp, rtol=1e-5, atol=1e-6)
    # Sigma space is the VP space scaled by 1/alpha: x = x_t / sqrt(abar).
    torch.testing.assert_close(make_sampler("heun", s).add_noise(x0, noise, t) * s.alphas_cumprod[t].reshape(-1, 1)
                               ** 0.5, vp, rtol=1e-5, atol=1e-6)
