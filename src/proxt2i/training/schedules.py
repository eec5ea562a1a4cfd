"""Learning-rate schedules of the diffusion training loop.

The VAE trainer (training/vae.py: warm-up over 200 steps times a linear decay to 0.1 x, through
LambdaLR) and the evaluator trainer (evaluation/train.py learning_rate: the same warm-up and cosine
shape as lr_at, but computed as lr * (step + 1) / warmup, which rounds differently from lr_at in the
last bit) keep their own formulas: their trained weights must stay bit-identical.
"""

from __future__ import annotations

import math

from .presets import TrainConfig


def lr_at(step: int, cfg: TrainConfig) -> float:
    """The learning rate of training step `step` (0-based): linear warm-up to cfg.lr over cfg.lr_warmup
    steps, then constant (lr_decay='constant') or decayed to 0 at step cfg.steps ('linear', 'cosine').
    A pure function of (step, cfg), so a resumed run continues the same schedule."""
    if step < cfg.lr_warmup or cfg.lr_decay == "constant":
        return cfg.lr * min(1.0, (step + 1) / max(cfg.lr_warmup, 1))
    done = min(1.0, (step - cfg.lr_warmup) / max(cfg.steps - cfg.lr_warmup, 1))
    if cfg.lr_decay == "linear":
        return cfg.lr * (1.0 - done)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * done))
