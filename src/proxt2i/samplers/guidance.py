"""Proximal classifier-free guidance, as a wrapper over callables (never inside a backbone).

ProxT2I combines conditional and unconditional prox outputs as CFG does for scores:
prox_w = prox_u + w (prox_c - prox_u). With prox = y - sqrt(lam) eps this is exactly CFG on eps.
w = 1 is the conditional model; w = 0 the unconditional one.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from ..errors import UsageError
from ..parameterization import ProxFn, expand_like


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


def guided_prox(
    prox_cond: ProxFn,
    prox_uncond: ProxFn,
    scale: float,
    interval: Optional[tuple[float, float]] = None,
) -> ProxFn:
    """prox_w(y, t, lam) = prox_u + w (prox_c - prox_u).

    interval (t_lo, t_hi): apply guidance only for t in [t_lo, t_hi] (elsewhere w = 1, the
    conditional prox alone), the guidance-interval idea of Kynkaanniemi et al. 2024.
    """
    check_guidance_scale(scale)

    def prox(y: torch.Tensor, t: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        if scale == 1.0:
            return prox_cond(y, t, lam)
        return combine_guidance(prox_cond(y, t, lam), prox_uncond(y, t, lam), t, scale, interval)

    return prox


def batched_guided_prox(prox_both: Callable, scale: float, interval=None) -> ProxFn:
    """Guidance with one batched call: prox_both(y2, t2, lam2) evaluates [cond; uncond] stacked
    along the batch (2B) and returns [prox_c; prox_u]. Same formula as guided_prox."""
    check_guidance_scale(scale)

    def prox(y, t, lam):
        out = prox_both(torch.cat([y, y]), torch.cat([t, t]), torch.cat([lam, lam]))
        p_c, p_u = out.chunk(2)
        return combine_guidance(p_c, p_u, t, scale, interval)

    return prox
