"""Forward noising processes and time grids.

The samplers only ever ask a schedule for ``alpha(t)`` and for the integral of beta
over a step (the step size ``gamma``), so a new schedule is a new class with those
two methods; the samplers do not change.

Times are floats or tensors in [0, 1]; t = 0 is data, t = 1 is (nearly) pure noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

import torch

from .errors import UsageError

Mode = Literal["hybrid", "backward"]
MODES: tuple[str, ...] = ("hybrid", "backward")


class Schedule(Protocol):
    """What samplers and losses need from a forward process."""

    def beta(self, t: torch.Tensor) -> torch.Tensor: ...

    def beta_integral(self, t_lo: torch.Tensor, t_hi: torch.Tensor) -> torch.Tensor: ...

    def alpha(self, t: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class VPSchedule:
    """VP SDE dX = -beta(t)/2 X dt + sqrt(beta(t)) dW with linear beta(t) = b0 + (b1 - b0) t.

    x_t = sqrt(alpha(t)) x_0 + sqrt(1 - alpha(t)) noise, alpha(t) = exp(-int_0^t beta).
    With the defaults (0.1, 20) this is the DDPM process with linear betas 1e-4..0.02
    over 1000 steps in the continuous limit.
    """

    beta_min: float = 0.1
    beta_max: float = 20.0

    def beta(self, t):
        return self.beta_min + (self.beta_max - self.beta_min) * t

    def beta_integral(self, t_lo, t_hi):
        """int_{t_lo}^{t_hi} beta(s) ds (the step size gamma of the step t_hi -> t_lo)."""
        b0, db = self.beta_min, self.beta_max - self.beta_min
        return b0 * (t_hi - t_lo) + 0.5 * db * (t_hi * t_hi - t_lo * t_lo)

    def alpha(self, t):
        if isinstance(t, torch.Tensor):
            return torch.exp(-self.beta_integral(torch.zeros_like(t), t))
        return math.exp(-self.beta_integral(0.0, t))


SCHEDULES = {"vp": VPSchedule}  # the "type" of a model folder's config.json "schedule"


def schedule_to_config(schedule: Schedule) -> dict:
    """{"type": NAME, field: value, ...}: how a model folder records its forward process."""
    for name, cls in SCHEDULES.items():
        if type(schedule) is cls:
            return {"type": name, **{f: getattr(schedule, f) for f in cls.__dataclass_fields__}}
    raise UsageError(f"schedule {schedule!r} has no config name; register its class in schedule.SCHEDULES")


def schedule_from_config(spec, where: str = "config.json") -> Schedule:
    """The schedule a model folder's "schedule" entry names (absent: the default VP schedule). Refuses
    unknown types, unknown keys and values the class cannot honour, in one line naming `where`."""
    if spec is None:
        return VPSchedule()
    if not isinstance(spec, dict) or spec.get("type") not in SCHEDULES:
        kind = spec.get("type") if isinstance(spec, dict) else spec
        raise UsageError(f"{where}: unknown schedule type {kind!r}; supported: {', '.join(SCHEDULES)}")
    cls = SCHEDULES[spec["type"]]
    fields = dict(spec)
    del fields["type"]
    unknown = set(fields) - set(cls.__dataclass_fields__)
    if unknown:
        raise UsageError(f"{where}: unknown schedule keys {sorted(unknown)}; valid keys: {sorted(cls.__dataclass_fields__)}")
    for key, value in fields.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UsageError(f"{where}: schedule {key} must be a finite number, got {value!r}")
    schedule = cls(**{k: float(v) for k, v in fields.items()})
    if isinstance(schedule, VPSchedule) and not (0 <= schedule.beta_min <= schedule.beta_max and schedule.beta_max > 0):
        raise UsageError(f"{where}: the VP schedule needs 0 <= beta_min <= beta_max and beta_max > 0, got {fields}")
    return schedule


def uniform_grid(num_steps: int, dtype=torch.float64) -> torch.Tensor:
    """Time grid t_k = k / N for k = 0..N, shape [N + 1], increasing (sampling walks it backwards)."""
    check_num_steps(num_steps)
    return torch.arange(num_steps + 1, dtype=dtype) / num_steps


def grid_power(kind: str) -> float:
    """The exponent R of a named time grid t_k = (k/N)^R: "uniform" 1, "quadratic" 2, "power:R" R > 0.
    Raises UsageError for any other name."""
    if kind == "uniform":
        return 1.0
    if kind == "quadratic":
        return 2.0
    if kind.startswith("power:"):
        try:
            power = float(kind.split(":", 1)[1])
        except ValueError:
            power = -1.0
        if power > 0:
            return power
        raise UsageError(f"time grid {kind!r}: the power must be a number > 0, e.g. power:1.5")
    raise UsageError(f"unknown time grid {kind!r}; use uniform, quadratic or power:R")


def time_grid(num_steps: int, kind: str = "uniform", dtype=torch.float64) -> torch.Tensor:
    """Sampling grid [N + 1], increasing from 0 to 1. kind: "uniform" (t_k = k / N), "quadratic"
    (t_k = (k / N)^2: small steps near the data, a large first step; DDIM's "quad" spacing), or
    "power:R" (t_k = (k / N)^R, R > 0)."""
    power = grid_power(kind)
    grid = uniform_grid(num_steps, dtype)
    return grid if power == 1.0 else grid**power


def check_num_steps(num_steps) -> None:
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise UsageError(f"num_steps must be an integer >= 1, got {num_steps!r}")
    if num_steps > 100_000:
        raise UsageError(f"num_steps={num_steps} is absurdly large; use at most 100000")


def step_sizes(schedule: Schedule, grid: torch.Tensor) -> torch.Tensor:
    """gamma_k = int_{t_k}^{t_{k+1}} beta, shape [N], for an increasing grid of shape [N + 1]."""
    return schedule.beta_integral(grid[:-1], grid[1:])


def prox_weight(gamma, mode: str):
    """lambda of the prox step for step size gamma: hybrid gamma, backward gamma / (1 - gamma/2)."""
    check_mode(mode)
    if mode == "hybrid":
        return gamma
    return gamma / (1.0 - gamma / 2.0)


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise UsageError(f"unknown PDA mode {mode!r}; choose one of: {', '.join(MODES)}")


def backward_undefined_reason(gammas: torch.Tensor) -> str | None:
    """Why PDA-backward cannot run with these step sizes [N] (it divides by 1 - gamma/2, so every gamma
    must be < 2), or None where it can."""
    worst = float(gammas.max())
    return None if worst < 2.0 else f"undefined: largest step has gamma = {worst:.3f} >= 2"


def check_backward_grid(gammas: torch.Tensor) -> None:
    """Refuse a backward grid with any step gamma >= 2, naming the remedies."""
    reason = backward_undefined_reason(gammas)
    if reason:
        raise UsageError(
            f"PDA-backward is {reason.replace('undefined: ', 'undefined on this grid: its ')} "
            f"(it divides by 1 - gamma/2). Use more steps (about 10 or more on the default "
            f"schedule) or mode='hybrid', which works at any step count."
        )
