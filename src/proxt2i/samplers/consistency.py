"""Multistep consistency sampling (Song et al. 2023, Algorithm 1) over a score(x, t) callable.

A consistency model maps any noisy x_t straight to its clean end x_0. Here the network is the same
eps-prediction U-ViT as the score baseline, read as the consistency function by Tweedie's formula,
f(x, t) = (x + (1 - a_t) score(x, t)) / sqrt(a_t) = (x - sqrt(1 - a_t) eps) / sqrt(a_t) (a_t the VP alpha),
trained so that f is constant along each trajectory (training/losses.py: consistency_pair, consistency_loss).

Walking the grid down from t_N = 1: x0 = f(x, t_k), then x = sqrt(a) x0 + sqrt(1 - a) z at t_{k-1}
(fresh noise), until the last evaluation at t_1 returns x0. N steps = N network evaluations. On a plain
score model this is the "predict x0, re-noise" ancestral sampler; it is exact only for a consistency model.
"""

from __future__ import annotations

from typing import Optional

import torch

from ..parameterization import ScoreFn, clean_from_eps, expand_like
from ..schedule import Schedule, VPSchedule
from .common import as_grid, batch_randn, check_start
from .score import score_step


def clean_estimate(score: ScoreFn, x: torch.Tensor, t: float, step: int, schedule: Schedule) -> torch.Tensor:
    """Tweedie's x0 [B, ...] from score(x, t), through eps = -sqrt(1 - a_t) score."""
    t_b = torch.full((x.shape[0],), t, dtype=torch.float64)
    eps = -expand_like((1.0 - schedule.alpha(t_b)).sqrt(), x).to(x.dtype) * score_step(score, x, t, step)
    return clean_from_eps(x, eps, t_b, schedule)


def consistency_sample(score: ScoreFn, x_T: torch.Tensor, grid, *, generator=None, callback=None,
                       return_trajectory: bool = False, schedule: Optional[Schedule] = None):
    """Consistency sampling from x_T [B, ...] on `grid` (samplers/common.py): N evaluations, at t_N .. t_1.
    Returns x_0 [B, ...] (or the list of states x_N, x_{N-1}, .., x_0; the intermediate ones re-noised).
    callback info also has "x0": the clean estimate of the step."""
    grid = as_grid(grid, increasing=False)
    check_start(x_T)
    schedule = schedule or VPSchedule()
    num_steps = len(grid) - 1
    x, xs = x_T, [x_T]
    for k in range(num_steps, 0, -1):
        x0 = clean_estimate(score, x, float(grid[k]), num_steps - k + 1, schedule)
        t_next = float(grid[k - 1])
        if t_next > 0:
            a = float(schedule.alpha(torch.tensor(t_next, dtype=torch.float64)))
            x = a**0.5 * x0 + (1.0 - a) ** 0.5 * batch_randn(x.shape, generator, device=x.device, dtype=x.dtype)
        else:
            x = x0
        if return_trajectory:
            xs.append(x)
        if callback is not None:
            callback({"i": num_steps - k, "k": k - 1, "t": t_next, "x": x, "x0": x0})
    return xs if return_trajectory else x
