"""Exponential moving average of weights, used by training, GRPO and R0."""

from __future__ import annotations

import torch

from .presets import TrainConfig


def ema_decay(step: int, cfg: TrainConfig) -> float:
    """The EMA decay after training step `step` (0-based): cfg.ema, or with warm-up min(ema, (1 + step) / (10 + step))."""
    return min(cfg.ema, (1 + step) / (10 + step)) if cfg.ema_warmup else cfg.ema


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for parameters (in ema's dtype); buffers are copied."""
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach().to(e.dtype), 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)
