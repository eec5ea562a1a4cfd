"""Score-based baselines over any score(x, t) callable (use parameterization.score_from_eps_model
to drive them with an eps-prediction network).

Over the same grid as PDA, walking k = N-1 .. 0 from t_{k+1} to t_k with gamma_k = int beta
(the forward / explicit counterparts of PDA-hybrid):

- Euler-Maruyama on the reverse SDE: x_k = (1 + gamma/2) x + gamma * score(x, t_{k+1}) + sqrt(gamma) z
- with a final denoising step: the last step (to t = 0) adds no noise (Song et al. 2021)
- probability-flow ODE, Euler: x_k = (1 + gamma/2) x + gamma/2 * score(x, t_{k+1})
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from ..errors import UsageError
from ..parameterization import ScoreFn
from .pda import batch_randn, checked_output
from ..schedule import Schedule, VPSchedule, check_num_steps, step_sizes, uniform_grid


def checked_score_output(out, x: torch.Tensor, step: int) -> torch.Tensor:
    return checked_output(out, x, step, "score")


def _reverse_walk(
    score: ScoreFn,
    x_T: torch.Tensor,
    num_steps: int,
    noise_scale: float,
    drift_score_weight: float,
    denoise_final: bool,
    generator: Optional[torch.Generator],
    schedule: Optional[Schedule],
    grid: Optional[torch.Tensor],
    return_trajectory: bool,
    callback: Optional[Callable[[int, torch.Tensor], None]],
):
    schedule = schedule or VPSchedule()
    grid = uniform_grid(num_steps) if grid is None else torch.as_tensor(grid, dtype=torch.float64)
    if grid.dim() != 1 or len(grid) != num_steps + 1:
        raise UsageError(f"grid must be a 1-D tensor of num_steps + 1 = {num_steps + 1} times")
    gammas = step_sizes(schedule, grid)
    batch = x_T.shape[0]
    x, xs = x_T, [x_T]
    for k in range(num_steps - 1, -1, -1):
        gamma = float(gammas[k])
        t_vec = torch.full((batch,), float(grid[k + 1]), device=x.device, dtype=x.dtype)
        s = checked_score_output(score(x, t_vec), x, num_steps - k)
        x_next = (1.0 + gamma / 2.0) * x + drift_score_weight * gamma * s
        if noise_scale > 0 and not (denoise_final and k == 0):
            noise = batch_randn(x.shape, generator, device=x.device, dtype=x.dtype)
            x_next = x_next + (noise_scale * gamma) ** 0.5 * noise
        x = x_next
        if return_trajectory:
            xs.append(x)
        if callback is not None:
            callback(k, x)
    return xs if return_trajectory else x


def euler_maruyama_sample(
    score: ScoreFn,
    x_T: torch.Tensor,
    num_steps: int,
    denoise_final: bool = False,
    generator: Optional[torch.Generator] = None,
    schedule: Optional[Schedule] = None,
    grid: Optional[torch.Tensor] = None,
    return_trajectory: bool = False,
    callback=None,
):
    """Reverse-SDE Euler-Maruyama from x_T [B, ...]; num_steps score evaluations. Returns x_0 [B, ...]
    (or the list of states x_N .. x_0). denoise_final: take the last step without noise."""
    check_num_steps(num_steps)
    return _reverse_walk(score, x_T, num_steps, 1.0, 1.0, denoise_final, generator, schedule, grid, return_trajectory, callback)


def pf_ode_euler_sample(
    score: ScoreFn,
    x_T: torch.Tensor,
    num_steps: int,
    generator: Optional[torch.Generator] = None,
    schedule: Optional[Schedule] = None,
    grid: Optional[torch.Tensor] = None,
    return_trajectory: bool = False,
    callback=None,
):
    """Probability-flow ODE with Euler steps from x_T [B, ...]; deterministic given x_T.
    generator is accepted for a uniform signature and unused."""
    check_num_steps(num_steps)
    return _reverse_walk(score, x_T, num_steps, 0.0, 0.5, False, generator, schedule, grid, return_trajectory, callback)
