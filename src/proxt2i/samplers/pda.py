"""Proximal diffusion algorithm (PDA): reverse-time sampling with proximal (backward) steps.

Over a grid 0 = t_0 < ... < t_N = 1, walking k = N-1 .. 0 with gamma_k = int_{t_k}^{t_{k+1}} beta
(ProxDM, arXiv 2507.08956, Sec. 3; method.md Sec. 2):

- hybrid:   y = (1 + gamma/2) x_{k+1} + sqrt(gamma) z,          lam = gamma
- backward: y = (x_{k+1} + sqrt(gamma) z) / (1 - gamma/2),      lam = gamma / (1 - gamma/2)

and x_k = prox_{lam, t_k}(y). Noise enters every y, including the last; nothing is added
after the final prox, which lands at t = 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch

from ..errors import UsageError
from ..parameterization import ProxFn, expand_like
from ..schedule import Schedule, VPSchedule, check_backward_grid, check_mode, prox_weight, step_sizes, uniform_grid
from .common import as_grid, batch_randn, batch_vector, check_start, checked_output


@dataclass
class PDATrajectory:
    """Everything a PDA run visited. xs: [N + 1] tensors x_N .. x_0; ys: [N] prox inputs y_{N-1} .. y_0;
    ts: [N] prox times t_{N-1} .. t_0; lams, gammas: [N] in the same order (floats)."""

    xs: list
    ys: list
    ts: list
    lams: list
    gammas: list

    @property
    def sample(self) -> torch.Tensor:
        return self.xs[-1]


def hybrid_drift(x: torch.Tensor, gamma: float) -> torch.Tensor:
    """(1 + gamma/2) x: the forward (explicit) half of a hybrid step, also the mean of the next prox input."""
    return (1.0 + gamma / 2.0) * x


def pda_step_input(x: torch.Tensor, gamma, noise: torch.Tensor, mode: str):
    """One PDA step's prox input y and weight lam from the current state x [B, ...] and noise z; gamma a float
    or a tensor broadcastable against x (one step size per sample)."""
    if mode == "hybrid":
        return hybrid_drift(x, gamma) + gamma**0.5 * noise, gamma
    return (x + gamma**0.5 * noise) / (1.0 - gamma / 2.0), gamma / (1.0 - gamma / 2.0)


def prox_step(prox: ProxFn, y: torch.Tensor, t: float, lam: float, step: int) -> torch.Tensor:
    """prox(y, t, lam) with t and lam broadcast to [B], checked (step: 1-based, for the error message)."""
    return checked_output(prox(y, batch_vector(t, y), batch_vector(lam, y)), y, step, "prox")


def pda_sample(
    prox: ProxFn,
    x_T: torch.Tensor,
    grid,
    *,
    mode: str = "hybrid",
    generator: Optional[torch.Generator] = None,
    callback: Optional[Callable[[dict], None]] = None,
    return_trajectory: bool = False,
    schedule: Optional[Schedule] = None,
    noise_scales: Optional[Sequence[float]] = None,
):
    """Sample with PDA from x_T [B, ...] (a draw of N(0, I)) in N prox evaluations on `grid` (samplers/common.py).

    prox(y, t, lam) -> x with y [B, ...] and t, lam [B]. generator: one torch.Generator or a list of B.
    Returns x_0 [B, ...], or a PDATrajectory if return_trajectory. callback info adds "y" and "lam".
    noise_scales: one factor per step in sampling order multiplying that step's noise (default 1; R0
    trains with random factors). Raises UsageError for bad input.
    """
    check_mode(mode)
    grid = as_grid(grid)
    num_steps = len(grid) - 1
    gammas = step_sizes(schedule or VPSchedule(), grid)
    if mode == "backward":
        check_backward_grid(gammas)
    check_start(x_T)
    if noise_scales is not None and len(noise_scales) != num_steps:
        raise UsageError(f"noise_scales needs one factor per step ({num_steps}), got {len(noise_scales)}")
    x = x_T
    traj = PDATrajectory(xs=[x], ys=[], ts=[], lams=[], gammas=[])
    for k in range(num_steps - 1, -1, -1):
        gamma = float(gammas[k])
        noise = batch_randn(x.shape, generator, device=x.device, dtype=x.dtype)
        if noise_scales is not None:
            noise = float(noise_scales[num_steps - 1 - k]) * noise
        y, lam = pda_step_input(x, gamma, noise, mode)
        x = prox_step(prox, y, float(grid[k]), lam, num_steps - k)
        if return_trajectory:
            traj.xs.append(x)
            traj.ys.append(y)
            traj.ts.append(float(grid[k]))
            traj.lams.append(lam)
            traj.gammas.append(gamma)
        if callback is not None:
            callback({"i": num_steps - 1 - k, "k": k, "t": float(grid[k]), "x": x, "y": y, "lam": lam})
    return traj if return_trajectory else x


def gaussian_prox(mu: torch.Tensor, s2: float, schedule: Optional[Schedule] = None) -> ProxFn:
    """Exact prox of -lam log p_t for the target N(mu, s2 I), mu of shape [D] (a closed-form test oracle).

    p_t = N(sqrt(alpha) mu, v_t I) with v_t = alpha s2 + 1 - alpha, and
    prox(y) = (v_t y + lam m_t) / (v_t + lam).
    """
    schedule = schedule or VPSchedule()

    def prox(y, t, lam):
        a = schedule.alpha(t.double())
        v = expand_like(a * s2 + 1.0 - a, y)
        m = expand_like(a.sqrt(), y) * mu.to(y.dtype)
        lam_e = expand_like(lam, y)
        return ((v * y + lam_e * m) / (v + lam_e)).to(y.dtype)

    return prox


def gaussian_pda_moments(mu: float, s2: float, num_steps: int, mode: str, schedule: Optional[Schedule] = None):
    """Mean and variance (per coordinate) of PDA's output from x_N ~ N(0, 1) with the exact Gaussian prox.

    Every step is linear-Gaussian, so (mean, var) follow a short recursion: the closed form that
    pda_sample must reproduce empirically.
    """
    schedule = schedule or VPSchedule()
    grid = uniform_grid(num_steps)
    gammas = step_sizes(schedule, grid)
    if mode == "backward":
        check_backward_grid(gammas)
    m, v = 0.0, 1.0
    for k in range(num_steps - 1, -1, -1):
        g = float(gammas[k])
        if mode == "hybrid":
            my, vy = (1 + g / 2) * m, (1 + g / 2) ** 2 * v + g
        else:
            c = 1.0 / (1 - g / 2)
            my, vy = c * m, c * c * (v + g)
        lam = float(prox_weight(g, mode))
        a = float(schedule.alpha(torch.tensor(float(grid[k]), dtype=torch.float64)))
        vt = a * s2 + 1 - a
        w = vt / (vt + lam)
        m = w * my + (1 - w) * a**0.5 * mu
        v = w * w * vy
    return m, v
