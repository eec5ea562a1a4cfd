"""The face stages of curation, with real pretrained face models (faces/, the optional `photo` extra):

- the face filter, in the spirit of FaceCaption-15M: exactly one face (counting detections of at least
  `min_face_score`), its jaw at least `min_face_fraction` of the image width, its detector score at least
  `min_face_score`; colour images only. Reasons: greyscale, no_face, several_faces, small_face, low_face_score;
- the attribute captioner: the PhotoFaces families the readers are sure of, written as a caption in the
  SynthFaces grammar (data/photo_captions.py), seeded by the record's source and row (all of them, or for
  PARTIAL_SHARE of the captions a random subset); reason no_attributes when the
  readers are sure of none (an image is never captioned from a guess).
"""

from __future__ import annotations

import zlib

import numpy as np

from ..data.photo_captions import photo_caption
from ..faces import FaceReader, read_face
from .checks import decode
from .config import CurateConfig

PARTIAL_SHARE = 0.3  # captions naming a random subset of the families the readers are sure of
FACE_REASONS = ("greyscale", "no_face", "several_faces", "small_face", "low_face_score", "no_attributes")


def is_greyscale(image) -> bool:
    """A PIL image with one channel, or three equal ones."""
    if image.mode in ("L", "LA", "1", "I", "I;16", "F"):
        return True
    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    return bool(np.abs(rgb[..., 0] - rgb[..., 1]).max() <= 2 and np.abs(rgb[..., 1] - rgb[..., 2]).max() <= 2)


def face_reason(reading, cfg: CurateConfig) -> str | None:
    """Why the filter drops an image with this reading (None: it passes)."""
    faces = [f for f in reading.faces if f.score >= cfg.min_face_score]
    if not reading.faces:
        return "no_face"
    if len(faces) > 1:
        return "several_faces"
    if not faces:
        return "low_face_score"
    if reading.measurements["face_fraction"] < cfg.min_face_fraction:
        return "small_face"
    return None


class FaceStage:
    """Filters (and with `face_captions`, recaptions) the part's remaining items."""

    def __init__(self, cfg: CurateConfig):
        self.cfg = cfg
        self.reader = FaceReader(min_score=min(0.0, cfg.min_face_score))

    def __call__(self, row: dict) -> dict:
        for item in row["items"]:
            if item.get("reason"):
                continue
            image = decode(item["image"])[0]
            if is_greyscale(image):
                item["reason"] = "greyscale"
                continue
            reading = read_face(self.reader, np.asarray(image.convert("RGB")))
            reason = face_reason(reading, self.cfg)
            if reason:
                item["reason"] = reason
                continue
            face = reading.face
            item["face"] = {"score": round(face.score, 3), "fraction": round(reading.measurements["face_fraction"], 3)}
            if self.cfg.face_captions:
                sure = {f: v for f, v in reading.attributes.items() if v is not None}
                if not sure:
                    item["reason"] = "no_attributes"
                    continue
                rng = np.random.default_rng([zlib.crc32(item["source"].encode()), item["row"]])
                named = list(sure)
                if len(named) > 1 and rng.random() < PARTIAL_SHARE:  # some captions name a few families, as prompts do
                    named = [named[i] for i in sorted(rng.permutation(len(named))[:int(rng.integers(1, len(named)))])]
                item["text"] = photo_caption(sure, rng, named)
                item["face_attributes"] = sure
                item["face_named"] = named
        return row
