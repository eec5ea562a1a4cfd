"""The reward registry and the weighted sum of rewards named on the command line.

REWARDS maps a name to a loader `loader(directory or None, device) -> reward`; the CLI syntax
`NAME[:DIR][=WEIGHT],...` (e.g. `alignment=1.0,clip=0.5` or `pickscore:/models/pickscore`) is parsed by
parse_reward_spec and built by combine_rewards into one weighted sum.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from ..errors import UsageError
from .embedded import alignment, alignment_accuracy, alignment_probability, brightness, clip
from .hugging_face import AestheticReward, CLIPReward, ImageRewardModel
from .protocol import RewardFn


def _embedded(fn: RewardFn, name: str):
    def load(directory, device="cpu"):
        if directory:
            raise UsageError(f"reward {name!r} is embedded and takes no folder; write just {name}")
        return fn

    return load


REWARDS: dict[str, Callable] = {
    "alignment": _embedded(alignment, "alignment"),
    "alignment-acc": _embedded(alignment_accuracy, "alignment-acc"),
    "alignment-prob": _embedded(alignment_probability, "alignment-prob"),
    "clip": _embedded(clip, "clip"),
    "brightness": _embedded(brightness, "brightness"),
    "pickscore": lambda d, device="cpu": CLIPReward(d, "pickscore", device),
    "clipscore": lambda d, device="cpu": CLIPReward(d, "clipscore", device),
    "hpsv2": lambda d, device="cpu": CLIPReward(d, "hpsv2", device),
    "aesthetic": lambda d, device="cpu": AestheticReward(d, device),
    "imagereward": lambda d, device="cpu": ImageRewardModel(d, device),
    "photo-alignment": lambda d, device="cpu": _photo(d, "PhotoAlignmentReward", device),  # the real face readers; the [photo] extra
    "photo-face": lambda d, device="cpu": _photo(d, "PhotoFaceReward", device),
}


def _photo(directory, kind: str, device: str):
    from . import photo

    if directory:
        raise UsageError("the photo rewards use the readers of the [photo] extra and take no folder")
    return getattr(photo, kind)(device)


def parse_reward_spec(spec: str) -> dict[str, float]:
    """'alignment=1.0,clip=0.5' or 'pickscore:/models/ps' -> {'alignment': 1.0, 'clip': 0.5} / {'pickscore:/models/ps': 1.0}.
    Each item is NAME[:DIR][=WEIGHT] (weight 1 when omitted); names are checked against REWARDS."""
    if not isinstance(spec, str) or not spec.strip():
        raise UsageError(f"empty reward; give NAME[=WEIGHT],... with NAME one of: {', '.join(REWARDS)}")
    out: dict[str, float] = {}
    for item in spec.split(","):
        item = item.strip()
        key, eq, raw = item.rpartition("=") if "=" in item else (item, "", "")
        if not key:
            raise UsageError(f"bad reward item {item!r}; write NAME[:DIR][=WEIGHT]")
        weight = 1.0
        if eq:
            try:
                weight = float(raw)
            except ValueError:
                raise UsageError(f"bad weight {raw!r} for reward {key!r}; write NAME=WEIGHT with a number") from None
            if not math.isfinite(weight):
                raise UsageError(f"reward weight for {key!r} must be finite, got {raw}")
            if weight < 0:
                raise UsageError(f"reward weight for {key!r} must be >= 0, got {raw} (rewards are maximised; to penalise "
                                 "something, use a reward that scores its absence)")
        name = key.split(":", 1)[0]
        if name not in REWARDS:
            raise UsageError(f"unknown reward {name!r}; choose from: {', '.join(REWARDS)} (real models as NAME:DIR)")
        if key in out:
            raise UsageError(f"reward {key!r} given twice")
        out[key] = weight
    return out


class CombinedReward:
    """sum_k w_k reward_k(images, prompts). terms(...) gives the unweighted parts for logging."""

    def __init__(self, parts: dict[str, tuple[float, RewardFn]]):
        self.parts = parts

    def terms(self, images, prompts) -> dict[str, torch.Tensor]:
        return {name: fn(images, prompts).float() for name, (_, fn) in self.parts.items()}

    def total(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.parts[name][0] * v for name, v in terms.items())

    def __call__(self, images, prompts) -> torch.Tensor:
        return self.total(self.terms(images, prompts))


DIFFERENTIABLE_HINT = "alignment, alignment-prob, clip, brightness, or a real model"


def reward_gradient(terms: dict[str, torch.Tensor], weights: dict[str, float], images: torch.Tensor, scale: str | None,
                    needed_for: str) -> torch.Tensor:
    """sum_k w_k g_k [B, ...], g_k = d mean(reward_k) / d images, each g_k first scaled so that no reward dominates by
    its units: scale "batch" divides by its norm over the whole batch, "row" by each image's RMS (one image's step
    never depends on another's), None keeps it raw. terms: name -> [B] rewards computed from `images`;
    needed_for completes the refusal of a reward without a gradient ("R0 needs ...")."""
    total = torch.zeros_like(images)
    names = list(terms)
    for i, name in enumerate(names):
        if not terms[name].requires_grad:
            raise UsageError(f"reward {name!r} is not differentiable in the images; {needed_for} ({DIFFERENTIABLE_HINT})")
        (g,) = torch.autograd.grad(terms[name].mean(), images, retain_graph=i < len(names) - 1)
        if scale == "batch":
            g = g / g.norm().clamp_min(1e-12)
        elif scale == "row":
            g = g / g.pow(2).flatten(1).mean(1).sqrt().clamp_min(1e-12).view(-1, *[1] * (g.dim() - 1))
        total = total + weights[name] * g
    return total


def combine_rewards(weights: dict[str, float] | str, device="cpu") -> CombinedReward:
    """Build the weighted sum from {NAME[:DIR]: weight} (or a spec string); loads each model now."""
    if isinstance(weights, str):
        weights = parse_reward_spec(weights)
    if not weights:
        raise UsageError(f"no reward given; choose from: {', '.join(REWARDS)}")
    parts = {}
    for key, w in weights.items():
        name, _, directory = key.partition(":")
        if name not in REWARDS:
            raise UsageError(f"unknown reward {name!r}; choose from: {', '.join(REWARDS)} (real models as NAME:DIR)")
        parts[key] = (float(w), REWARDS[name](directory or None, device))
    return CombinedReward(parts)
