"""Image conversions shared by every layer: uint8 <-> float, resize-and-centre-crop, PNG output.

Conventions: uint8 images are channels-last [..., H, W, 3] in 0..255 (numpy or torch); float images
are channels-first [..., 3, H, W] float32 in [0, 1]. Depends only on numpy, torch, PIL and atomic.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .atomic import atomic_save_image


def to_float_images(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 [..., H, W, 3] (numpy or torch) -> float32 [..., 3, H, W] in [0, 1] (x / 255, exactly).

    A numpy array is shared when it is writeable, else copied (torch cannot share read-only memory);
    negative strides are made contiguous, which torch.from_numpy needs."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images) if images.flags.writeable else images.copy())
    return images.movedim(-1, -3).float() / 255.0


def to_uint8_images(images: torch.Tensor) -> np.ndarray:
    """float [..., 3, H, W] in [0, 1] (clamped) -> uint8 numpy [..., H, W, 3], rounded to nearest."""
    return (images.clamp(0, 1) * 255).round().byte().movedim(-3, -1).cpu().numpy()


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """float [N, 3, H, W] in [0, 1] -> N PIL RGB images."""
    return [Image.fromarray(a) for a in to_uint8_images(images)]


def grid_image(images: torch.Tensor, cols: int = 4, pad: int = 2) -> Image.Image:
    """images [N, 3, H, W] in [0, 1] -> one PIL image: a grid of `cols` columns on white, `pad` px apart."""
    n, _, h, w = images.shape
    rows = (n + cols - 1) // cols
    canvas = torch.ones(3, rows * (h + pad) + pad, cols * (w + pad) + pad)
    for i in range(n):
        r, c = divmod(i, cols)
        canvas[:, pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = images[i]
    return Image.fromarray(to_uint8_images(canvas))


def save_grid(images: torch.Tensor, path, cols: int = 4, pad: int = 2) -> None:
    """grid_image of images [N, 3, H, W] in [0, 1], written atomically as a PNG."""
    atomic_save_image(grid_image(images, cols, pad), path)


def crop_geometry(h: int, w: int, short_side: int, crop: int) -> tuple[int, int, int, int]:
    """(new_h, new_w, top, left): resize so the short side is `short_side` (the long side rounded, and
    never below `crop`), then the offsets of a centred crop x crop window."""
    r = short_side / min(h, w)
    nh, nw = max(crop, round(h * r)), max(crop, round(w * r))
    return nh, nw, (nh - crop) // 2, (nw - crop) // 2


def resize_and_centre_crop(image: np.ndarray | Image.Image, short_side: int, crop: int | None = None) -> np.ndarray | Image.Image:
    """uint8 [H, W, 3] (numpy or PIL) -> [crop, crop, 3] of the same kind: the short side resized to
    `short_side` with PIL's bicubic filter, then a centre crop (crop defaults to short_side), so that
    non-square images keep their proportions. An image already crop x crop with crop == short_side is
    returned as it is."""
    crop = short_side if crop is None else crop
    pil = isinstance(image, Image.Image)
    w, h = image.size if pil else (image.shape[1], image.shape[0])
    if h == w == crop == short_side:
        return image
    nh, nw, top, left = crop_geometry(h, w, short_side, crop)
    im = (image if pil else Image.fromarray(image)).resize((nw, nh), Image.BICUBIC)
    im = im.crop((left, top, left + crop, top + crop))
    return im if pil else np.asarray(im)


def resize_and_centre_crop_tensor(x: torch.Tensor, short_side: int, crop: int | None = None, mode: str = "bilinear") -> torch.Tensor:
    """float [N, 3, H, W] -> [N, 3, crop, crop]: the short side resized to `short_side` (torch
    interpolation `mode` with antialias, differentiable), then a centre crop (crop defaults to
    short_side). A no-op when the output size equals the input size (an antialiased resize at scale 1
    is the identity)."""
    crop = short_side if crop is None else crop
    h, w = x.shape[-2:]
    if h == w == crop == short_side:
        return x
    nh, nw, top, left = crop_geometry(h, w, short_side, crop)
    x = F.interpolate(x, size=(nh, nw), mode=mode, antialias=True, align_corners=False)
    return x[..., top : top + crop, left : left + crop]


def save_captioned_grid(images, captions, path, cols: int, smooth: bool = True, width: int = 32, quantize: bool = True) -> None:
    """Save a PNG grid of uint8 images [N, H, W, 3] (rows of `cols`), each above its caption (wrapped at
    `width` characters, 5 lines at most); palette-quantised (256 colours) to stay small unless `quantize` is
    False (photos posterise). Written atomically."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.75, rows * 2.45), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, image, text in zip(axes.ravel(), images, captions):
        ax.imshow(image, interpolation="antialiased" if smooth else "nearest")
        ax.text(0.5, -0.04, textwrap.fill(text, width, max_lines=5, placeholder=" ..."), transform=ax.transAxes,
                fontsize=5.8, ha="center", va="top")
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.07, wspace=0.06, hspace=0.62)
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    plt.close(fig)
    image = Image.fromarray(rgb)
    atomic_save_image(image.quantize(256, method=Image.Quantize.MEDIANCUT) if quantize else image, path)
