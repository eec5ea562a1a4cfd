"""Within-prompt diversity, the mode-collapse monitor of reward fine-tuning (ProxT2I reports collapse to
near-identical images under the aesthetic reward; method.md Sec. 5).

diversity = mean over prompts of the mean pairwise Euclidean distance between the recogniser
features (evaluation/features.py) of that prompt's G images. The monitor keeps the first value as
the baseline and flags collapse when the current value falls below `threshold` times it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..errors import UsageError


def group_diversity(features: torch.Tensor, group_size: int) -> float:
    """features [P * G, F], prompt-major -> mean over the P groups of the mean pairwise distance (G >= 2):
    `proxt2i evaluate`'s within-prompt diversity with the groups as the prompts."""
    from ..evaluation.metrics import within_prompt_diversity

    if group_size < 2:
        raise UsageError("diversity needs at least 2 images per prompt")
    return within_prompt_diversity(features, [i // group_size for i in range(len(features))])


def recogniser_features(images: torch.Tensor) -> torch.Tensor:
    """Recogniser fidelity features [B, F] of images [B, 3, H, W] in [0, 1] (the shipped evaluator)."""
    from ..evaluation.evaluator import load_evaluator
    from ..evaluation.features import recognise

    ev = load_evaluator()
    return recognise(ev, ev.prepare(images.detach().cpu()))[0]


@dataclass
class DiversityMonitor:
    """update(value) -> relative diversity (value / baseline); `collapsed` once it drops below threshold."""

    threshold: float = 0.5
    baseline: Optional[float] = None
    collapsed: bool = False

    def update(self, value: float) -> float:
        if self.baseline is None:
            self.baseline = max(value, 1e-12)
        rel = value / self.baseline
        self.collapsed = rel < self.threshold
        return rel
