"""How far each attribute family can be trusted: the readers' agreement with themselves under a mirror
image and under small crops, and (for PhotoFaces exports, which record each item's crop) the framing
reading against the known crop.

Agreement for a family is over the images where both readings are sure; `sure` is the share of images
where the reading of the original is. A family whose reading flips under a 5% crop cannot be learnt from
or scored by.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

from .attributes import PHOTO_FAMILIES, mirrored
from .readers import FaceReader
from .reading import read_face

CROP_KEEP = (0.9, 0.97)  # side of the small crops, as a fraction of the image


def small_crop(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random crop keeping CROP_KEEP of the side, resized back to the image's size."""
    h, w = image.shape[:2]
    keep = rng.uniform(*CROP_KEEP)
    ch, cw = int(h * keep), int(w * keep)
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return np.asarray(Image.fromarray(image[y:y + ch, x:x + cw]).resize((w, h), Image.LANCZOS))


def _agreement(pairs: list[tuple[dict, dict]]) -> dict:
    out = {}
    for f in PHOTO_FAMILIES:
        both = [(a[f], b[f]) for a, b in pairs if a.get(f) is not None and b.get(f) is not None]
        out[f] = round(float(np.mean([x == y for x, y in both])), 4) if both else None
    return out


def reliability(images: Sequence[np.ndarray], reader: FaceReader | None = None, seed: int = 0, crops: int = 2,
                crop_scales: Sequence[float] | None = None) -> dict:
    """Per family: value counts, `sure` share, agreement under the mirror image and under `crops` small
    crops per image. crop_scales: each image's generator crop side / 1024 (PhotoFaces items' JSON), to rank
    the framing reading against the truth (Spearman correlation of face fraction with 1 / scale)."""
    if crop_scales is not None and len(crop_scales) != len(images):
        raise ValueError(f"{len(crop_scales)} crop scales for {len(images)} images")
    reader = reader or FaceReader()
    rng = np.random.default_rng(seed)
    originals, flips, cropped, fractions, scales = [], [], [], [], []
    no_face = 0
    for i, image in enumerate(images):
        r = read_face(reader, image)
        if r.face is None:
            no_face += 1
            continue
        originals.append(r.attributes)
        fractions.append(r.measurements["face_fraction"])
        if crop_scales is not None:
            scales.append(crop_scales[i])
        flip = read_face(reader, np.ascontiguousarray(image[:, ::-1]))
        if flip.face is not None:
            flips.append((r.attributes, mirrored(flip.attributes)))
        for _ in range(crops):
            c = read_face(reader, small_crop(image, rng))
            if c.face is not None:
                cropped.append((r.attributes, c.attributes))
    counts = {f: {} for f in PHOTO_FAMILIES}
    for attrs in originals:
        for f, v in attrs.items():
            key = "unsure" if v is None else v
            counts[f][key] = counts[f].get(key, 0) + 1
    n = max(1, len(originals))
    report = {"images": len(images), "no_face": no_face, "values": counts,
              "sure": {f: round(1 - counts[f].get("unsure", 0) / n, 4) for f in PHOTO_FAMILIES},
              "flip_agreement": _agreement(flips), "crop_agreement": _agreement(cropped)}
    if len(scales) > 2:
        report["framing_vs_crop_spearman"] = round(_spearman(np.array(fractions), 1 / np.array(scales)), 4)
    return report


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])
