"""Score-based baselines over any score(x, t) callable (use parameterization.score_from_eps_model
to drive them with an eps-prediction network).

Over the same grid as PDA, walking k = N-1 .. 0 from t_{k+1} to t_k with gamma_k = int beta
(the forward / explicit counterparts of PDA-hybrid):

- Euler-Maruyama on the reverse SDE: x_k = (1 + gamma/2) x + gamma * score(x, t_{k+1}) + sqrt(gamma) z
- with a final denoising step: the last step (to t = 0) adds no noise (Song et al. 2021)
- probability-flow ODE, Euler: x_k = (1 + gamma/2) x + gamma/2 * score(x, t_{k+1})
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch

from ..errors import UsageError
from ..parameterization import ScoreFn
from ..schedule import Schedule, VPSchedule, step_sizes
from .common import as_grid, batch_randn, batch_vector, check_start, checked_output


def reverse_drift(x: torch.Tensor, s: torch.Tensor, gamma: float, score_weight: float = 1.0) -> torch.Tensor:
    """(1 + gamma/2) x + w gamma s: the deterministic part of an explicit reverse step (w = 1: the SDE,
    w = 1/2: the probability-flow ODE). The mean of Euler-Maruyama's next state."""
    return (1.0 + gamma / 2.0) * x + score_weight * gamma * s


def score_step(score: ScoreFn, x: torch.Tensor, t: float, step: int) -> torch.Tensor:
    """score(x, t) with t broadcast to [B], checked (step: 1-based, for the error message)."""
    return checked_output(score(x, batch_vector(t, x)), x, step, "score")


def _reverse_walk(score: ScoreFn, x_T: torch.Tensor, grid, noise_scale: float, score_weight: float, denoise_final: bool,
                  generator, schedule: Optional[Schedule], return_trajectory: bool, callback: Optional[Callable[[dict], None]],
                  noise_scales: Optional[Sequence[float]] = None):
    grid = as_grid(grid, increasing=False)
    check_start(x_T)
    num_steps = len(grid) - 1
    if noise_scales is not None and len(noise_scales) != num_steps:
        raise UsageError(f"noise_scales needs one factor per step ({num_steps}), got {len(noise_scales)}")
    gammas = step_sizes(schedule or VPSchedule(), grid)
    x, xs = x_T, [x_T]
    for k in range(num_steps - 1, -1, -1):
        gamma = float(gammas[k])
        s = score_step(score, x, float(grid[k + 1]), num_steps - k)
        x_next = reverse_drift(x, s, gamma, score_weight)
        if noise_scale > 0 and not (denoise_final and k == 0):
            noise = batch_randn(x.shape, generator, device=x.device, dtype=x.dtype)
            if noise_scales is not None:
                noise = float(noise_scales[num_steps - 1 - k]) * noise
            x_next = x_next + (noise_scale * gamma) ** 0.5 * noise
        x = x_next
        if return_trajectory:
            xs.append(x)
        if callback is not None:
            callback({"i": num_steps - 1 - k, "k": k, "t": float(grid[k]), "x": x})
    return xs if return_trajectory else x


def euler_maruyama_sample(score: ScoreFn, x_T: torch.Tensor, grid, *, denoise_final: bool = False, generator=None,
                          callback=None, return_trajectory: bool = False, schedule: Optional[Schedule] = None,
                          noise_scales: Optional[Sequence[float]] = None):
    """Reverse-SDE Euler-Maruyama from x_T [B, ...] on `grid` (samplers/common.py); N score evaluations.
    Returns x_0 [B, ...] (or the list of states x_N .. x_0). denoise_final: take the last step without noise.
    noise_scales: one factor per step in sampling order multiplying that step's noise (default 1; R0)."""
    return _reverse_walk(score, x_T, grid, 1.0, 1.0, denoise_final, generator, schedule, return_trajectory, callback, noise_scales)


def pf_ode_euler_sample(score: ScoreFn, x_T: torch.Tensor, grid, *, generator=None, callback=None,
                        return_trajectory: bool = False, schedule: Optional[Schedule] = None):
    """Probability-flow ODE with Euler steps from x_T [B, ...]; deterministic given x_T (generator unused)."""
    return _reverse_walk(score, x_T, grid, 0.0, 0.5, False, generator, schedule, return_trajectory, callback)
