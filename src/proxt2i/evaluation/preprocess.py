"""Bring images to the evaluator's input: float [N, 3, R, R] in [0, 1] at resolution R."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import UsageError
from ..imaging import resize_and_centre_crop_tensor, to_float_images

MIN_SIDE, MAX_SIDE = 32, 256


def as_float_images(images) -> torch.Tensor:
    """uint8 [N, H, W, 3] (numpy or torch) -> float [N, 3, H, W] in [0, 1]; float [N, 3, H, W] passes
    through (clamped to [0, 1], gradients kept inside the range)."""
    if not isinstance(images, (np.ndarray, torch.Tensor)):
        raise UsageError(f"images must be a numpy array or torch tensor, got {type(images).__name__}")
    if images.dtype in (np.uint8, torch.uint8):
        if images.ndim != 4 or images.shape[-1] != 3:
            raise UsageError(f"uint8 images must be [N, H, W, 3], got shape {tuple(images.shape)}")
        return to_float_images(images)
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images) if images.flags.writeable else images.copy())
    if not images.is_floating_point() or images.ndim != 4 or images.shape[1] != 3:
        raise UsageError(f"images must be uint8 [N, H, W, 3] or float [N, 3, H, W] in [0, 1], got {images.dtype} {tuple(images.shape)}")
    return images.float().clamp(0.0, 1.0)


def check_size(h: int, w: int) -> None:
    """Square images with side in [32, 256] pixels, else UsageError."""
    if h != w or not MIN_SIDE <= h <= MAX_SIDE:
        raise UsageError(f"images must be square with a side of {MIN_SIDE}-{MAX_SIDE} px, got {h}x{w}")


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Square [N, 3, H, H] -> [N, 3, size, size], bilinear with antialias (a no-op at the same size)."""
    return resize_and_centre_crop_tensor(x, size, mode="bilinear")


def to_model_input(images, resolution: int) -> torch.Tensor:
    """Any accepted image batch -> float [N, 3, resolution, resolution] in [0, 1]."""
    x = as_float_images(images)
    check_size(x.shape[-2], x.shape[-1])
    return resize(x, resolution)
