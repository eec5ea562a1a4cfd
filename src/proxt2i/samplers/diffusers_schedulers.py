"""The score baseline driven by diffusers schedulers (DDIM, DPM-Solver++ 2M / 2M SDE, UniPC, Euler).

A plain function over an eps callable, like every other sampler here: the stateful scheduler object
is built, used and dropped inside one call.

Discrete <-> continuous time. Discrete timestep i in 0..999 is continuous time t_i = (i + 1) / 1000,
and the scheduler's cumulative alphas are the project's VP schedule at those times,
alpha_bar_i = alpha(t_i) = exp(-int_0^{t_i} beta), given to diffusers as `trained_betas`
(beta_i = 1 - alpha(t_i) / alpha(t_{i-1})). Then the scheduler and the network agree exactly on the
noise level of every timestep. DDPM's linear betas 1e-4..0.02 over 1000 steps (betas="linear") are
the same process up to discretisation: |alpha_bar_i - alpha(t_i)| < 1e-3 for all i (tested).

Timestep spacing: "trailing" (Lin et al. 2024, "Common diffusion noise schedules and sample steps
are flawed", Table 2). Its first timestep is 999, t = 1, where x_T ~ N(0, I) is the right start;
"leading" starts at 1000 - 1000/N (t = 0.75 at N = 4, where alpha is 60x larger than at t = 1)
and "linspace" rounds unevenly; both are worse at few steps (measured on the Gaussian target in
tests/test_diffusers_schedulers.py). Every scheduler ends at t = 0 (DDIM: set_alpha_to_one;
the others: final_sigmas_type="zero").

Noise: SDE schedulers get their noise from `batch_randn` with one generator per row, so image i
depends only on its own generator, as for the project's samplers.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Callable, Optional

import torch

from ..errors import UsageError
from ..extras import require
from ..parameterization import EpsFn, ScoreFn, eps_from_score_model
from ..schedule import Schedule, VPSchedule, check_num_steps
from .common import as_grid, batch_randn, checked_output

NUM_TRAIN_TIMESTEPS = 1000
TIMESTEP_SPACING = "trailing"
SPACINGS = ("trailing", "leading", "linspace")


def _diffusers():
    return require("diffusers", "hf", "a diffusers sampler (ddim, dpm-solver++-2m, dpm-solver++-2m-sde, unipc, euler-diffusers)")


def _ddim(**kw):
    return _diffusers().DDIMScheduler(clip_sample=False, set_alpha_to_one=True, steps_offset=0, **kw)


def _dpm(algorithm_type: str) -> Callable:
    def make(**kw):
        return _diffusers().DPMSolverMultistepScheduler(algorithm_type=algorithm_type, solver_order=2, final_sigmas_type="zero", **kw)

    return make


def _unipc(**kw):
    return _diffusers().UniPCMultistepScheduler(solver_order=2, final_sigmas_type="zero", **kw)


def _euler(**kw):
    return _diffusers().EulerDiscreteScheduler(final_sigmas_type="zero", **kw)


# scheduler name -> constructor (keyword arguments: the shared noise-schedule configuration)
SCHEDULERS: dict[str, Callable] = {
    "ddim": _ddim,
    "dpm-solver++-2m": _dpm("dpmsolver++"),
    "dpm-solver++-2m-sde": _dpm("sde-dpmsolver++"),
    "unipc": _unipc,
    "euler": _euler,
}
STOCHASTIC = {"dpm-solver++-2m-sde"}


def continuous_time(timestep) -> float:
    """Discrete timestep i (0..999) -> the network's continuous time t = (i + 1) / 1000."""
    return (float(timestep) + 1.0) / NUM_TRAIN_TIMESTEPS


@lru_cache(maxsize=8)
def vp_betas(schedule: Optional[Schedule] = None, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> tuple[float, ...]:
    """beta_i = 1 - alpha(t_i) / alpha(t_{i-1}) with t_i = (i + 1) / T (t_{-1} = 0): their cumulative
    product is alpha(t_i) exactly. [T] floats in (0, 1)."""
    schedule = schedule or VPSchedule()
    t = torch.arange(num_train_timesteps + 1, dtype=torch.float64) / num_train_timesteps
    return tuple((1.0 - torch.exp(-schedule.beta_integral(t[:-1], t[1:]))).tolist())


def make_scheduler(name: str, num_steps: int, betas: str = "vp", timestep_spacing: str = TIMESTEP_SPACING,
                   schedule: Optional[Schedule] = None, device=None):
    """A fresh diffusers scheduler with its timesteps set for num_steps steps.

    betas: "vp" (the project's schedule, exact; default) or "linear" (DDPM's linspace(1e-4, 0.02)).
    """
    if name not in SCHEDULERS:
        raise UsageError(f"unknown diffusers scheduler {name!r}; choose one of: {', '.join(SCHEDULERS)}")
    if timestep_spacing not in SPACINGS:
        raise UsageError(f"unknown timestep spacing {timestep_spacing!r}; choose one of: {', '.join(SPACINGS)}")
    check_num_steps(num_steps)
    if num_steps > NUM_TRAIN_TIMESTEPS:
        raise UsageError(f"diffusers schedulers take at most {NUM_TRAIN_TIMESTEPS} steps, got {num_steps}")
    kw = dict(num_train_timesteps=NUM_TRAIN_TIMESTEPS, prediction_type="epsilon", timestep_spacing=timestep_spacing)
    if betas == "vp":
        kw["trained_betas"] = list(vp_betas(schedule))
    elif betas == "linear":
        kw.update(beta_schedule="linear", beta_start=1e-4, beta_end=0.02)
    else:
        raise UsageError(f"betas must be 'vp' or 'linear', got {betas!r}")
    sched = SCHEDULERS[name](**kw)
    with warnings.catch_warnings():  # diffusers calls np.array on a tensor (a NumPy 2 DeprecationWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        sched.set_timesteps(num_steps, device=device)
    return sched


def diffusers_sample(
    eps_fn: EpsFn,
    x_T: torch.Tensor,
    num_steps: int,
    *,
    scheduler: str,
    generator=None,
    callback: Optional[Callable[[dict], None]] = None,
    return_trajectory: bool = False,
    schedule: Optional[Schedule] = None,
    betas: str = "vp",
    timestep_spacing: str = TIMESTEP_SPACING,
):
    """Sample x_0 [B, ...] from x_T [B, ...] (a draw of N(0, I)) with the diffusers scheduler named `scheduler`.

    eps_fn(x, t) -> eps prediction, x [B, ...], t [B] continuous times in (0, 1]. One eps_fn call per
    step (num_steps in all). generator: None, one torch.Generator or a list of B (used only by the
    SDE scheduler). callback(info) after every step, info["x"] in the scheduler's variable (for Euler
    that is x * sqrt(1 + sigma^2), sigma-space). return_trajectory: the list of states instead.
    Raises UsageError for bad input.
    """
    if not torch.is_tensor(x_T) or x_T.dim() < 1:
        raise UsageError("x_T must be a tensor of shape [B, ...]")
    sched = make_scheduler(scheduler, num_steps, betas, timestep_spacing, schedule, device=x_T.device)
    batch = x_T.shape[0]
    # Euler works in sigma-space: x = x_T * init_noise_sigma, and the network sees scale_model_input(x).
    x = x_T * float(sched.init_noise_sigma)
    xs = [x]
    for i, timestep in enumerate(sched.timesteps):
        x_in = sched.scale_model_input(x, timestep)
        t_vec = torch.full((batch,), continuous_time(timestep), device=x.device, dtype=x.dtype)
        eps = checked_output(eps_fn(x_in, t_vec), x, i + 1, "eps_fn")
        kw = {}
        if scheduler in STOCHASTIC:
            kw["variance_noise"] = batch_randn(x.shape, generator, device=x.device, dtype=x.dtype)
        x = sched.step(eps, timestep, x, **kw).prev_sample
        if return_trajectory:
            xs.append(x)
        if callback is not None:
            callback({"i": i, "timestep": int(timestep), "x": x})
    return xs if return_trajectory else x


def diffusers_score_sample(score: ScoreFn, x_T: torch.Tensor, grid, *, scheduler: str, generator=None, callback=None,
                           return_trajectory: bool = False, schedule: Optional[Schedule] = None):
    """The registry's form of diffusers_sample: a score(x, t) callable, turned into eps = -sqrt(1 - alpha) score
    on `schedule`. The scheduler walks its own timesteps (trailing spacing), so only the grid's step count is used."""
    schedule = schedule or VPSchedule()
    return diffusers_sample(eps_from_score_model(score, schedule), x_T, len(as_grid(grid, increasing=False)) - 1,
                            scheduler=scheduler, generator=generator, callback=callback, return_trajectory=return_trajectory,
                            schedule=schedule)
