"""Preview figures of SynthFaces: a grid of samples with their captions (docs/images/synthfaces_grid.png)."""

from __future__ import annotations

import textwrap

import numpy as np
from PIL import Image

from ..atomic import atomic_save_image
from .synthfaces import render_batch


def save_grid(path, seed: int = 0, rows: int = 4, cols: int = 6, size: int = 96, split: str = "train", start: int = 0) -> None:
    """Save a PNG of rows x cols items (start, start+1, ...) of (seed, split), each above its
    caption. The PNG is palette-quantised (256 colours) to stay small."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images, _, captions = render_batch(seed, start, rows * cols, size, split)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.75, rows * 2.45), squeeze=False)
    for ax, image, text in zip(axes.ravel(), images, captions):
        ax.imshow(image, interpolation="nearest" if size < 96 else "antialiased")
        ax.set_axis_off()
        ax.text(0.5, -0.04, textwrap.fill(text, 32, max_lines=5, placeholder=" ..."), transform=ax.transAxes,
                fontsize=5.8, ha="center", va="top")
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.07, wspace=0.06, hspace=0.62)
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    plt.close(fig)
    atomic_save_image(Image.fromarray(rgb).quantize(256, method=Image.Quantize.MEDIANCUT), path)
