"""Conversions between epsilon, prox and score parameterisations, as thin wrappers.

A prox network predicts epsilon with prox(y) = y - sqrt(lam) * eps (ProxDM's
parameterisation: the loss on eps is balanced across lam). A score network predicts
epsilon with score(x, t) = -eps / sqrt(1 - alpha(t)). The backbones never see the schedule.

Shapes: y, x, eps [B, ...]; t, lam [B] (broadcast over the trailing dimensions).
"""

from __future__ import annotations

from typing import Callable

import torch

from .schedule import Schedule

ProxFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def expand_like(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """[B] -> [B, 1, ..., 1] broadcastable against x of shape [B, ...]."""
    return v.reshape(v.shape[0], *([1] * (x.dim() - 1))).to(x.dtype)


def prox_from_eps(y: torch.Tensor, eps: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """prox(y) = y - sqrt(lam) * eps."""
    return y - expand_like(lam, y).sqrt() * eps


def eps_from_prox(y: torch.Tensor, x: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """Inverse of prox_from_eps: eps = (y - x) / sqrt(lam)."""
    return (y - x) / expand_like(lam, y).sqrt()


def prox_from_eps_model(eps_model: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> ProxFn:
    """Wrap a network eps_model(y, t, lam) -> eps into a prox(y, t, lam) callable."""

    def prox(y, t, lam):
        return prox_from_eps(y, eps_model(y, t, lam), lam)

    return prox


def score_from_eps_model(eps_model: EpsFn, schedule: Schedule) -> ScoreFn:
    """Wrap an eps-prediction network eps(x, t) into score(x, t) = -eps / sqrt(1 - alpha(t))."""

    def score(x, t):
        sigma = expand_like((1.0 - schedule.alpha(t)).sqrt(), x)
        return -eps_model(x, t) / sigma

    return score


def clean_from_eps(x: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """Tweedie's clean estimate x0 = (x - sqrt(1 - alpha_t) eps) / sqrt(alpha_t), [B, ...] (t [B])."""
    a = expand_like(schedule.alpha(t.double()), x).to(x.dtype)
    return (x - (1.0 - a).sqrt() * eps) / a.sqrt()


def eps_from_score_model(score_model: ScoreFn, schedule: Schedule) -> EpsFn:
    """Inverse of score_from_eps_model: eps(x, t) = -sqrt(1 - alpha(t)) * score(x, t)."""

    def eps(x, t):
        sigma = expand_like((1.0 - schedule.alpha(t)).sqrt(), x)
        return -sigma * score_model(x, t)

    return eps
