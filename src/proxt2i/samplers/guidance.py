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
