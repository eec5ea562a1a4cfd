"""SynthFaces attribute families, held-out compositions and attribute sampling.

Every face is one value per family. A value's position in its family's tuple is its class label,
so `ATTRIBUTES` doubles as the label space of the attribute recogniser.
"""

from __future__ import annotations

import numpy as np

from ..errors import UsageError

# family -> ordered values (index = class label). Every value is visible at 32 px.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "skin": ("pale", "tan", "brown", "dark"),
    "face_shape": ("round", "oval", "square"),
    "hair_color": ("black", "brown", "blond", "red", "grey", "blue"),
    "hair_style": ("short", "long", "bun", "afro"),
    "eye_color": ("blue", "green", "brown"),
    "expression": ("neutral", "smiling", "sad", "surprised"),
    "eyewear": ("none", "glasses", "sunglasses"),
    "headwear": ("none", "cap", "beanie", "headband"),
    "facial_hair": ("none", "moustache", "beard"),
    "earrings": ("none", "earrings"),
    "background": ("white", "blue", "green", "yellow", "pink", "purple"),
}

FAMILIES: tuple[str, ...] = tuple(ATTRIBUTES)

# Held-out compositions: no face of split "train" (or "test") has both values of any pair, so no
# training caption can name both. Split "heldout" draws every face with at least one pair.
HELDOUT_PAIRS: tuple[tuple[tuple[str, str], tuple[str, str]], ...] = (
    (("hair_color", "blue"), ("headwear", "cap")),
    (("expression", "surprised"), ("eyewear", "sunglasses")),
    (("facial_hair", "beard"), ("hair_style", "bun")),
    (("skin", "dark"), ("eye_color", "green")),
    (("hair_style", "afro"), ("background", "yellow")),
    (("face_shape", "square"), ("earrings", "earrings")),
    (("eyewear", "glasses"), ("headwear", "beanie")),
    (("hair_color", "red"), ("expression", "sad")),
)

# split -> id mixed into the per-item seed.
#   train    generator training: no held-out pair, ever
#   test     the training distribution, independent draws
#   heldout  every face has (and its caption names) at least one held-out pair
#   full     uniform over ALL combinations, held-out pairs included: for training *evaluators*
#            (attribute recogniser, CLIP-style model), which must not learn the train split's
#            anti-correlations (e.g. "earrings => not square"); never for training generators
SPLITS: dict[str, int] = {"train": 0, "test": 1, "heldout": 2, "full": 3}


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    return split


def check_attributes(attrs: dict[str, str], partial: bool = False) -> dict[str, str]:
    """Raise UsageError on an unknown family or value, or (unless partial) a missing family."""
    for family, value in attrs.items():
        if family not in ATTRIBUTES:
            raise UsageError(f"unknown attribute family {family!r}; families: {', '.join(FAMILIES)}")
        if value not in ATTRIBUTES[family]:
            raise UsageError(f"unknown value {value!r} for {family}; choose from {', '.join(ATTRIBUTES[family])}")
    missing = [f for f in FAMILIES if f not in attrs]
    if missing and not partial:
        raise UsageError(f"attributes miss families: {', '.join(missing)}")
    return attrs


def heldout_pairs_in(attrs: dict[str, str]) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """The held-out pairs whose two values are both present in attrs (partial attrs allowed)."""
    return [p for p in HELDOUT_PAIRS if all(attrs.get(f) == v for f, v in p)]


def _uniform(rng: np.random.Generator) -> dict[str, str]:
    u = rng.random(len(FAMILIES))
    return {f: ATTRIBUTES[f][int(x * len(ATTRIBUTES[f]))] for f, x in zip(FAMILIES, u)}


def sample_attributes(rng: np.random.Generator, split: str = "train") -> dict[str, str]:
    """One face's attributes. train/test: uniform over combinations without a held-out pair
    (rejection sampling). heldout: one held-out pair chosen uniformly, every other family uniform.
    full: uniform over all combinations."""
    if check_split(split) == "heldout":
        return sample_heldout_attributes(rng)[0]
    if split == "full":
        return _uniform(rng)
    while True:
        attrs = _uniform(rng)
        if not heldout_pairs_in(attrs):
            return attrs


def sample_heldout_attributes(rng: np.random.Generator):
    """(attrs, pair): attrs uniform except that the held-out `pair` (chosen uniformly) is forced."""
    pair = HELDOUT_PAIRS[int(rng.integers(len(HELDOUT_PAIRS)))]
    attrs = _uniform(rng)
    attrs.update(dict(pair))
    return attrs, pair


def attributes_to_labels(attrs: dict[str, str]) -> dict[str, int]:
    """family -> class index for every family present in attrs."""
    check_attributes(attrs, partial=True)
    return {f: ATTRIBUTES[f].index(v) for f, v in attrs.items()}


def labels_to_attributes(labels: dict[str, int]) -> dict[str, str]:
    """Inverse of attributes_to_labels."""
    return {f: ATTRIBUTES[f][int(i)] for f, i in labels.items()}
