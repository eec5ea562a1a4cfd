"""Attribute recogniser: a small CNN with one classification head per SynthFaces attribute family.

Two feature vectors come out besides the logits:
- the penultimate vector (the input of every head), [B, feature_dim];
- the fidelity features, [B, 288]: spatial means of the activations at the end of each stride-2
  stage (32, 16 and 8 px at R = 64). These feed the Frechet distance and precision / recall.
  The penultimate vector is trained to ignore blur and noise (the resize augmentation, and the
  task itself), so its Frechet distance barely moved under corruption (see docs/evaluation.md);
  the multi-scale stage means keep both the attribute content and the image statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..models.towers import ConvEncoder


@dataclass(frozen=True)
class RecogniserConfig:
    """families: ((family, (value, ...)), ...) in head order; value index = class label."""

    families: tuple[tuple[str, tuple[str, ...]], ...]
    resolution: int = 64
    widths: tuple[int, ...] = (32, 64, 96, 128)
    feature_dim: int = 256

    def to_json(self) -> dict:
        return {
            "families": {name: list(values) for name, values in self.families},
            "resolution": self.resolution,
            "widths": list(self.widths),
            "feature_dim": self.feature_dim,
        }

    @staticmethod
    def from_json(d: dict) -> "RecogniserConfig":
        return RecogniserConfig(
            families=tuple((name, tuple(values)) for name, values in d["families"].items()),
            resolution=int(d["resolution"]),
            widths=tuple(int(w) for w in d["widths"]),
            feature_dim=int(d["feature_dim"]),
        )


class Recogniser(nn.Module):
    """[B, 3, R, R] in [0, 1] -> (fidelity features [B, sum(widths[1:])], {family: logits [B, V]})."""

    def __init__(self, cfg: RecogniserConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = ConvEncoder(cfg.widths, cfg.feature_dim, cfg.resolution)
        self.heads = nn.ModuleDict({name: nn.Linear(cfg.feature_dim, len(values)) for name, values in cfg.families})

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        penultimate, fidelity = self.encoder.forward_with_stages(x)
        return fidelity, {name: head(penultimate) for name, head in self.heads.items()}

    def penultimate(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, R, R] -> [B, feature_dim], the input of the heads."""
        return self.encoder(x)


def classification_loss(logits: dict[str, torch.Tensor], labels: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum over families of the cross-entropy, per sample: [B]."""
    return sum(nn.functional.cross_entropy(logits[k], labels[k], reduction="none") for k in logits)
