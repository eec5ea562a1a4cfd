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
from ..schedule import (
    Schedule,
    VPSchedule,
    check_backward_grid,
    check_mode,
    check_num_steps,
    prox_weight,
    step_sizes,
    uniform_grid,
)


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


def batch_randn(shape, generator, device=None, dtype=None) -> torch.Tensor:
    """N(0, I) of shape [B, ...]. generator: None, one torch.Generator, or a list of B generators (one per
    row, so that an image's noise does not depend on what else is in the batch)."""
    if isinstance(generator, (list, tuple)):
        if len(generator) != shape[0]:
            raise UsageError(f"got {len(generator)} generators for a batch of {shape[0]}")
        return torch.stack([torch.randn(shape[1:], generator=g, dtype=dtype) for g in generator]).to(device)
    return torch.randn(shape, generator=generator, device=device, dtype=dtype)


def pda_step_input(x: torch.Tensor, gamma: float, noise: torch.Tensor, mode: str):
    """One PDA step's prox input y and weight lam from the current state x [B, ...] and noise z."""
    if mode == "hybrid":
        return (1.0 + gamma / 2.0) * x + gamma**0.5 * noise, gamma
    return (x + gamma**0.5 * noise) / (1.0 - gamma / 2.0), gamma / (1.0 - gamma / 2.0)


def checked_output(out, x: torch.Tensor, step: int, what: str = "prox") -> torch.Tensor:
    """out, unless it is not a finite tensor of x's shape (then one clear error naming `what` and the step)."""
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise UsageError(f"{what} returned the wrong shape {shape} at step {step}; it must return the shape of its input {tuple(x.shape)}")
    if not torch.isfinite(out).all():
        raise UsageError(f"{what} returned NaN or inf at step {step}; check the model and its inputs")
    return out


def checked_prox_output(out, y: torch.Tensor, step: int) -> torch.Tensor:
    return checked_output(out, y, step, "prox")


def pda_sample(
    prox: ProxFn,
    x_T: torch.Tensor,
    num_steps: int,
    mode: str = "hybrid",
    generator: Optional[torch.Generator] = None,
    schedule: Optional[Schedule] = None,
    grid: Optional[torch.Tensor] = None,
    return_trajectory: bool = False,
    callback: Optional[Callable[[int, torch.Tensor], None]] = None,
    noise_scales: Optional[Sequence[float]] = None,
):
    """Sample with PDA from x_T [B, ...] (a draw of N(0, I)) in num_steps prox evaluations.

    prox(y, t, lam) -> x with y [B, ...] and t, lam [B]. generator: one torch.Generator or a list of B. grid: increasing times [N + 1] from 0 to 1
    (default uniform t_k = k/N). Returns x_0 [B, ...], or a PDATrajectory if return_trajectory.
    callback(k, x_k) is called after every step. noise_scales: one factor per step in sampling order
    multiplying that step's noise (default 1; R0 trains with random factors). Raises UsageError for bad input.
    """
    check_mode(mode)
    check_num_steps(num_steps)
    schedule = schedule or VPSchedule()
    if grid is None:
        grid = uniform_grid(num_steps)
    else:
        grid = torch.as_tensor(grid, dtype=torch.float64)
        if grid.dim() != 1 or len(grid) != num_steps + 1 or not bool((grid[1:] > grid[:-1]).all()):
            raise UsageError(f"grid must be an increasing 1-D tensor of num_steps + 1 = {num_steps + 1} times")
    gammas = step_sizes(schedule, grid)
    if mode == "backward":
        check_backward_grid(gammas)
    if not torch.is_tensor(x_T) or x_T.dim() < 1:
        raise UsageError("x_T must be a tensor of shape [B, ...]")

    if noise_scales is not None and len(noise_scales) != num_steps:
        raise UsageError(f"noise_scales needs one factor per step ({num_steps}), got {len(noise_scales)}")
    batch = x_T.shape[0]
    x = x_T
    traj = PDATrajectory(xs=[x], ys=[], ts=[], lams=[], gammas=[])
    for k in range(num_steps - 1, -1, -1):
        gamma = float(gammas[k])
        noise = batch_randn(x.shape, generator, device=x.device, dtype=x.dtype)
        if noise_scales is not None:
            noise = float(noise_scales[num_steps - 1 - k]) * noise
        y, lam = pda_step_input(x, gamma, noise, mode)
        t_vec = torch.full((batch,), float(grid[k]), device=x.device, dtype=x.dtype)
        lam_vec = torch.full((batch,), lam, device=x.device, dtype=x.dtype)
        x = checked_prox_output(prox(y, t_vec, lam_vec), y, num_steps - k)
        if return_trajectory:
            traj.xs.append(x)
            traj.ys.append(y)
            traj.ts.append(float(grid[k]))
            traj.lams.append(lam)
            traj.gammas.append(gamma)
        if callback is not None:
            callback(k, x)
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
