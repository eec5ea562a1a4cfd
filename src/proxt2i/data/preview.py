"""Preview figures of SynthFaces: a grid of samples with their captions (docs/images/synthfaces_grid.png)."""

from __future__ import annotations

from ..imaging import save_captioned_grid
from .synthfaces import render_batch


def save_grid(path, seed: int = 0, rows: int = 4, cols: int = 6, size: int = 96, split: str = "train", start: int = 0) -> None:
    """Save a PNG of rows x cols items (start, start+1, ...) of (seed, split), each above its
    caption. The PNG is palette-quantised (256 colours) to stay small."""
    images, _, captions = render_batch(seed, start, rows * cols, size, split)
    save_captioned_grid(images, captions, path, cols, smooth=size >= 96)
