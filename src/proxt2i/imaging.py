"""Image conversions shared by every layer: tensors in [0, 1] <-> PIL images and PNG grids."""

from __future__ import annotations

import torch


def to_pil(images: torch.Tensor) -> list:
    """images [N, 3, H, W] in [0, 1] -> N PIL images (rounded to uint8)."""
    from PIL import Image

    arr = (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in arr]


def save_grid(images: torch.Tensor, path, cols: int = 4, pad: int = 2) -> None:
    """images [N, 3, H, W] in [0, 1] -> one PNG grid, written atomically."""
    from PIL import Image

    from .atomic import atomic_save_image

    n, _, h, w = images.shape
    rows = (n + cols - 1) // cols
    canvas = torch.ones(3, rows * (h + pad) + pad, cols * (w + pad) + pad)
    for i in range(n):
        r, c = divmod(i, cols)
        canvas[:, pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = images[i]
    arr = (canvas.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    atomic_save_image(Image.fromarray(arr), path)
