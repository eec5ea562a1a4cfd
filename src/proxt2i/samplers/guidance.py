"""Proximal classifier-free guidance, as a wrapper over callables (never inside a backbone). The one
implementation: generation, bench, GRPO and R0 all sample through guided_model.

ProxT2I combines conditional and unconditional prox outputs as CFG does for scores:
prox_w = prox_u + w (prox_c - prox_u). With prox = y - sqrt(lam) eps this is exactly CFG on eps,
which is how it is computed: one batched pass of 2B rows (cond; uncond), combined on eps.
w = 1 is the conditional model (the unconditional pass is skipped); w = 0 the unconditional one.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from ..errors import UsageError
from ..parameterization import expand_like, prox_from_eps, score_from_eps_model
from ..schedule import Schedule, VPSchedule

# net(x [B, ...], t [B], lam [B], prompts: list of B str) -> eps [B, ...]; "" is the unconditional prompt
TextEpsNet = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, list], torch.Tensor]


def check_guidance_scale(w: float) -> None:
    if not (w >= 0.0) or w != w:
        raise UsageError(f"guidance scale must be >= 0, got {w}")


def combine_guidance(p_c, p_u, t, scale: float, interval=None) -> torch.Tensor:
    """p_u + w (p_c - p_u), with w = 1 outside the guidance interval. p_c, p_u [B, ...]; t [B]."""
    w = torch.full_like(t, scale)
    if interval is not None:
        inside = (t >= interval[0]) & (t <= interval[1])
        w = torch.where(inside, w, torch.ones_like(w))
    return p_u + expand_like(w, p_c) * (p_c - p_u)


def guided_eps(net: TextEpsNet, prompts: list[str], scale: float, interval: Optional[tuple[float, float]] = None):
    """eps_w(x, t, lam) = eps_u + w (eps_c - eps_u) for these B prompts, cond and uncond as one batch of 2B.
    interval (t_lo, t_hi): guidance only for t in [t_lo, t_hi], w = 1 elsewhere (Kynkaanniemi et al. 2024)."""
    check_guidance_scale(scale)
    b = len(prompts)
    both = list(prompts) + [""] * b

    def eps(x, t, lam):
        if scale == 1.0:
            return net(x, t, lam, prompts)
        e = net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([lam, lam]), both)
        return combine_guidance(e[:b], e[b:], t, scale, interval)

    return eps


def guided_model(net: TextEpsNet, objective: str, prompts: list[str], guidance_scale: float, guidance_interval=None,
                 schedule: Schedule | None = None) -> Callable:
    """The network as the callable its samplers take, guided: prox(y, t, lam) = y - sqrt(lam) eps_w for
    prox models, score(x, t) = -eps_w(x, t, 0) / sqrt(1 - alpha(t)) on `schedule` for score models."""
    eps = guided_eps(net, prompts, guidance_scale, guidance_interval)
    if objective == "prox":
        return lambda y, t, lam: prox_from_eps(y, eps(y, t, lam), lam)
    if objective != "score":
        raise UsageError(f"objective must be 'prox' or 'score', got {objective!r}")
    return score_from_eps_model(lambda x, t: eps(x, t, torch.zeros_like(t)), schedule or VPSchedule())


# ------------------------------------------------------------------------------------ reward guidance
# w(t) / W over the prox time t of the new state: every step, late steps more (1 - t), or the last step only
REWARD_GUIDANCE_SCHEDULES = ("constant", "late", "final")


def check_reward_guidance_schedule(kind: str) -> None:
    if kind not in REWARD_GUIDANCE_SCHEDULES:
        raise UsageError(f"unknown reward-guidance schedule {kind!r}; choose one of: {', '.join(REWARD_GUIDANCE_SCHEDULES)}")


def reward_guidance_factor(kind: str, t: torch.Tensor) -> torch.Tensor:
    """The schedule's factor [B] in [0, 1] at prox times t [B]."""
    check_reward_guidance_schedule(kind)
    if kind == "constant":
        return torch.ones_like(t)
    if kind == "late":
        return (1.0 - t).clamp(0.0, 1.0)
    return (t <= 0).to(t.dtype)


def reward_guided_prox(prox: Callable, direction: Callable, kind: str = "late", schedule: Schedule | None = None) -> Callable:
    """Training-free reward guidance over a prox callable: after each prox step, x <- x + f(t) d(x0_hat), where
    x0_hat [B, ...] is the clean estimate of the new state (Tweedie, with the score the prox step implies:
    grad log p_t(x) = (x - y) / lam), d(x0_hat) [B, ...] the reward ascent direction (e.g. per-row normalised
    reward gradients, weighted; pipeline.reward_direction) and f the schedule's factor. The network is not
    differentiated: each guided step costs one pass of d (a decode and the rewards, forward and backward)."""
    check_reward_guidance_schedule(kind)
    schedule = schedule or VPSchedule()

    def guided(y, t, lam):
        x = prox(y, t, lam)
        f = reward_guidance_factor(kind, t)
        if not bool((f > 0).any()):
            return x
        a = expand_like(schedule.alpha(t.double()), x).to(x.dtype)
        score = (x - y) / expand_like(lam, x).to(x.dtype)
        x0_hat = (x + (1.0 - a) * score) / a.sqrt()
        return x + expand_like(f.to(x.dtype), x) * direction(x0_hat.detach())

    return guided
