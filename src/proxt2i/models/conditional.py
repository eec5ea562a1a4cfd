"""The generator network as trained and sampled: a text encoder feeding a U-ViT.

eps = net(y [B, C, H, W], t [B], lam [B], prompts: list[str]). The empty prompt "" is the
unconditional input used by classifier-free guidance (trained with text dropout).
For the score baseline (uvit.config.use_lam False) lam is ignored. A backbone trained with
preconditioning (uvit.config.precondition) runs inside ProxPrecond on the model's schedule.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..schedule import Schedule, VPSchedule
from .precond import ProxPrecond


class TextConditionedUViT(nn.Module):
    def __init__(self, uvit: nn.Module, text_encoder: nn.Module, schedule: Schedule | None = None):
        super().__init__()
        self.uvit, self.text_encoder = uvit, text_encoder
        self.precond = ProxPrecond(schedule or VPSchedule()) if uvit.config.precondition else None

    def forward(self, y: torch.Tensor, t: torch.Tensor, lam: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        return self.eps_from_encoding(y, t, lam, self.text_encoder.encode(list(prompts)))

    def eps_from_encoding(self, y: torch.Tensor, t: torch.Tensor, lam: torch.Tensor, enc) -> torch.Tensor:
        """eps from already encoded prompts (a TextEncoding of B rows)."""
        if self.precond is None:
            return self.uvit(y, t, lam, enc.tokens, enc.mask, enc.pooled)
        return self.precond(self.uvit, y, t, lam, enc.tokens, enc.mask, enc.pooled)


class TextMemo:
    """net(y, t, lam, prompts) with each prompt list encoded once: for a sampling run, where the
    weights are fixed and every step repeats the same prompts. Not for training (no re-encoding after
    an update)."""

    def __init__(self, net: TextConditionedUViT):
        self.net, self.cache = net, {}

    def __call__(self, y: torch.Tensor, t: torch.Tensor, lam: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        key = tuple(prompts)
        if key not in self.cache:
            self.cache[key] = self.net.text_encoder.encode(list(prompts))
        return self.net.eps_from_encoding(y, t, lam, self.cache[key])
