"""SynthFaces: a procedurally drawn, face-centric text-to-image dataset whose captions have known truth.

Public API (other modules import these names from here):
  ATTRIBUTES, HELDOUT_PAIRS, SPLITS             families/values, held-out compositions, splits
  sample_attributes(rng, split) -> attrs        one face's attributes
  render_face(attrs, size, rng) -> uint8 [size, size, 3]
  render_batch(seed, start, count, size, split) -> (uint8 [N, size, size, 3], attrs list, captions list)
  attributes_to_labels(attrs) -> {family: class index}
  caption(attrs, rng, named=None) -> (text, named families)
  parse_prompt(prompt) -> {family: value}      raises UsageError on unknown words
  SynthFacesStream(seed, size, split)           endless torch IterableDataset of {"image", "text", "attrs"}

Item i of (seed, split) is a pure function of (seed, split, i): its attributes, pixels and caption
each come from their own generator seeded by (seed, split id, i, stream), so an item is the same
alone or in any batch, and its caption does not depend on the image size.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import UsageError
from ..imaging import to_float_images
from .attributes import (
    ATTRIBUTES,
    FAMILIES,
    HELDOUT_PAIRS,
    SPLITS,
    attributes_to_labels,
    check_attributes,
    check_split,
    heldout_pairs_in,
    labels_to_attributes,
    sample_attributes,
    sample_heldout_attributes,
)
from .caption_writer import caption
from .captions import parse_prompt
from .render import MAX_SIZE, MIN_SIZE, render_face

__all__ = [
    "ATTRIBUTES", "FAMILIES", "HELDOUT_PAIRS", "SPLITS", "MIN_SIZE", "MAX_SIZE",
    "attributes_to_labels", "labels_to_attributes", "check_attributes", "heldout_pairs_in",
    "sample_attributes", "render_face", "render_batch", "render_item", "caption", "parse_prompt",
    "SynthFacesStream",
]

ATTRS_STREAM, PIXELS_STREAM, CAPTION_STREAM = 0, 1, 2


def item_rng(seed: int, split: str, index: int, stream: int) -> np.random.Generator:
    """The generator for one stream (attributes, pixels, caption) of item `index`."""
    return np.random.default_rng([seed, SPLITS[split], index, stream])


def item_attributes(seed: int, split: str, index: int):
    """(attrs, families the caption must name). Held-out items must name their held-out pair."""
    rng = item_rng(seed, split, index, ATTRS_STREAM)
    if split == "heldout":
        attrs, pair = sample_heldout_attributes(rng)
        return attrs, tuple(f for f, _ in pair)
    return sample_attributes(rng, split), ()


def item_caption(attrs: dict[str, str], must_name: tuple[str, ...], rng: np.random.Generator) -> str:
    """A caption naming a random subset of families that always includes must_name."""
    named = None
    if must_name:
        extra = [f for f in FAMILIES if f not in must_name]
        k = int(rng.integers(0, 5))
        named = list(must_name) + [extra[i] for i in rng.permutation(len(extra))[:k]]
    return caption(attrs, rng, named)[0]


def render_item(seed: int, split: str, index: int, size: int):
    """(uint8 [size, size, 3], attrs, caption) of one item."""
    attrs, must_name = item_attributes(seed, split, index)
    image = render_face(attrs, size, item_rng(seed, split, index, PIXELS_STREAM))
    text = item_caption(attrs, must_name, item_rng(seed, split, index, CAPTION_STREAM))
    return image, attrs, text


def check_range(seed: int, start: int, count: int, size: int, split: str) -> None:
    """Raise UsageError on a bad split, negative seed/start/count or a size outside MIN_SIZE..MAX_SIZE."""
    check_split(split)
    if seed < 0 or start < 0:
        raise UsageError(f"seed and start must be >= 0, got seed={seed}, start={start}")
    if count < 0:
        raise UsageError(f"count must be >= 0, got {count}")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise UsageError(f"image size must be in {MIN_SIZE}..{MAX_SIZE}, got {size}")


def render_batch(seed: int, start: int, count: int, size: int, split: str = "train"):
    """Items start..start+count-1: (images uint8 [N, size, size, 3], attrs list, captions list)."""
    check_range(seed, start, count, size, split)
    images = np.empty((count, size, size, 3), dtype=np.uint8)
    attrs, captions = [], []
    for j in range(count):
        images[j], a, t = render_item(seed, split, start + j, size)
        attrs.append(a)
        captions.append(t)
    return images, attrs, captions


class SynthFacesStream(torch.utils.data.IterableDataset):
    """Items start, start+1, ... (endless unless num is set) as dicts
    {"image": float32 [3, H, W] in [0, 1], "text": str, "attrs": dict, "index": int}.
    DataLoader workers take interleaved indices, so any worker count yields the same items."""

    def __init__(self, seed: int = 0, size: int = 64, split: str = "train", start: int = 0, num: int | None = None):
        check_range(seed, start, 0, size, split)
        self.seed, self.size, self.split, self.start, self.num = seed, size, split, start, num

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        index = self.start + worker
        stop = None if self.num is None else self.start + self.num
        while stop is None or index < stop:
            image, attrs, text = render_item(self.seed, self.split, index, self.size)
            yield {"image": to_float_images(image), "text": text, "attrs": attrs, "index": index}
            index += workers
