"""Exponential moving average of weights, used by training, GRPO and R0."""

from __future__ import annotations

import copy

import torch

from .presets import TrainConfig


def frozen_children(module: torch.nn.Module) -> set[str]:
    """Names of the direct children with parameters of which none is trained (a frozen Hugging Face text
    encoder, the contrastive tower): rebuilt from their own folders, never averaged or checkpointed."""
    frozen = set()
    for name, child in module.named_children():
        params = list(child.parameters())
        if params and not any(p.requires_grad for p in params):
            frozen.add(name)
    return frozen


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` with requires_grad off (an EMA, a reference policy) that shares the frozen children instead of copying
    them: at the paper's size a T5-XL copy is 4.9 GB that never changes."""
    memo = {id(getattr(model, name)): getattr(model, name) for name in frozen_children(model)}
    return copy.deepcopy(model, memo).requires_grad_(False)


def ema_decay(step: int, cfg: TrainConfig) -> float:
    """The EMA decay after training step `step` (0-based): cfg.ema, or with warm-up min(ema, (1 + step) / (10 + step))."""
    return min(cfg.ema, (1 + step) / (10 + step)) if cfg.ema_warmup else cfg.ema


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for the trained parameters (in ema's dtype; a frozen one
    would stay as it is, so it is skipped); buffers are copied."""
    for e, p in zip(ema.parameters(), model.parameters()):
        if p.requires_grad:
            e.lerp_(p.detach().to(e.dtype), 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)
