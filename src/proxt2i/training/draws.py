"""The (t, lam) distribution for proximal matching (ProxDM; method.md Sec. 3).

Draw a step count N from candidates with weights N^power (default {5, 10, 20, 50, 100, 1000}, power 1/3),
a discrete t = k/N with k uniform in 0..N-1 (t = 0 included: the last sampling step lands there),
gamma = int_t^{t + 1/N} beta, and lam for the chosen discretization. The network sees both t and lam.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import UsageError
from ..schedule import Schedule, VPSchedule, backward_undefined_reason, check_mode, grid_power, prox_weight

DEFAULT_STEP_CANDIDATES: tuple[int, ...] = (5, 10, 20, 50, 100, 1000)


@dataclass(frozen=True)
class TimeLamDraw:
    """t, lam, gamma: [B] float64; num_steps: [B] int64 (the grid each t lies on); t_next: [B] float64, the
    grid point after t (the state a sampler steps from: gamma = int_t^t_next beta)."""

    t: torch.Tensor
    lam: torch.Tensor
    gamma: torch.Tensor
    num_steps: torch.Tensor
    t_next: torch.Tensor


def draw_t_lam(
    batch: int,
    generator: torch.Generator | None = None,
    candidates: tuple[int, ...] = DEFAULT_STEP_CANDIDATES,
    power: float = 1.0 / 3.0,
    mode: str = "hybrid",
    schedule: Schedule | None = None,
    grids: tuple[str, ...] = ("uniform",),
) -> TimeLamDraw:
    """Draw [B] training times and prox weights on the sampling grids of the candidate step counts.
    grids: time-grid kinds (schedule.time_grid: uniform, quadratic, power:R); each draw lies on one of
    them, chosen uniformly, so that the network is trained where a sampler on that grid queries it."""
    check_mode(mode)
    schedule = schedule or VPSchedule()
    if not grids:
        raise UsageError("candidate grids must name at least one time grid (uniform, quadratic, power:R)")
    powers = [grid_power(kind) for kind in grids]
    if not candidates or any(int(n) < 1 for n in candidates):
        raise UsageError(f"step candidates must be integers >= 1, got {candidates}")
    cands = torch.tensor([int(n) for n in candidates], dtype=torch.int64)
    weights = cands.double() ** power
    idx = torch.multinomial(weights / weights.sum(), batch, replacement=True, generator=generator)
    n = cands[idx]
    k = (torch.rand(batch, generator=generator, dtype=torch.float64) * n).floor().clamp(max=n - 1)
    if len(powers) == 1 and powers[0] == 1.0:  # the uniform grid alone: k / N exactly (no power), so these draws match a plain uniform grid bit for bit
        t, t_next = k / n, k / n + 1.0 / n
    else:
        p = torch.tensor(powers, dtype=torch.float64)[torch.randint(len(powers), (batch,), generator=generator)]
        t, t_next = (k / n) ** p, ((k + 1) / n) ** p
    gamma = schedule.beta_integral(t, t_next)
    if mode == "backward" and backward_undefined_reason(gamma):
        raise UsageError(
            "backward-mode training needs gamma < 2 on every candidate grid; drop step counts below 10 "
            "from the candidates or train for mode='hybrid'"
        )
    return TimeLamDraw(t=t, lam=prox_weight(gamma, mode), gamma=gamma, num_steps=n, t_next=t_next)
