"""The reward protocol: reward(images float [B, 3, H, W] in [0, 1], prompts: list[str]) -> [B]."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from ..errors import UsageError

RewardFn = Callable[[torch.Tensor, Sequence[str]], torch.Tensor]


def check_images(images: torch.Tensor, prompts: Sequence[str]) -> None:
    if not torch.is_tensor(images) or images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise UsageError(f"rewards take float images [B, 3, H, W] in [0, 1], got {getattr(images, 'shape', type(images).__name__)}")
    if len(prompts) != images.shape[0]:
        raise UsageError(f"got {images.shape[0]} images but {len(prompts)} prompts")
