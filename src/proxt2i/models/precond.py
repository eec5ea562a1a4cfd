"""Preconditioning of a prox backbone (EDM-style: a wrapper that receives the schedule; the backbone never sees it).

The training input y = x_t + sqrt(lam) n is, given x_0, sqrt(alpha_t) x_0 plus Gaussian noise of variance
s^2 = 1 - alpha_t + lam, and E[n | y, x_0] = sqrt(lam) / s * (that noise / s). So the backbone predicts the
*total* unit noise of y, as a score model does at noise level s, from the input scaled to unit variance
(y / sqrt(1 + lam)), and the returned eps = sqrt(lam) / s * backbone. The (t, lam)-dependent scale is then
exact instead of learned, and the text-dependent part of the target is not shrunk by sqrt(lam) / s (which
is small on most draws). docs/models.md has the measurements.
"""

from __future__ import annotations

import torch

from ..schedule import Schedule


def prox_output_scale(t: torch.Tensor, lam: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """sqrt(lam / (1 - alpha_t + lam)) [B]: the share of y's noise a prox removes."""
    alpha = schedule.alpha(t.double())
    lam = lam.double()
    return torch.sqrt(lam / (1.0 - alpha + lam).clamp_min(1e-12)).float()


class ProxPrecond:
    """eps(y, t, lam, *cond) = prox_output_scale * backbone(y / sqrt(1 + lam), t, lam, *cond), y [B, C, H, W]."""

    def __init__(self, schedule: Schedule):
        self.schedule = schedule

    def output_scale(self, t: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        return prox_output_scale(t, lam, self.schedule)

    def __call__(self, backbone, y: torch.Tensor, t: torch.Tensor, lam: torch.Tensor, *cond) -> torch.Tensor:
        b = y.shape[0]
        out = backbone(y.float() / torch.sqrt(1.0 + lam.float()).view(b, 1, 1, 1), t, lam, *cond)
        return (out.float() * self.output_scale(t, lam).view(b, 1, 1, 1)).to(y.dtype)
