"""One image through the readers: its faces, and for the largest one its measurements and attributes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .attributes import read_attributes
from .measure import measure
from .readers import Face, FaceReader, to_read_size


@dataclass
class FaceReading:
    """faces: every detected face, largest first (READ_SIZE coordinates); for the largest: measurements,
    attributes ({family: value or None}) and, when asked for, the 128-d descriptor."""
    faces: list[Face]
    measurements: dict = field(default_factory=dict)
    attributes: dict = field(default_factory=dict)
    descriptor: np.ndarray | None = None

    @property
    def face(self) -> Face | None:
        return self.faces[0] if self.faces else None


def read_face(reader: FaceReader, image: np.ndarray, descriptor: bool = False) -> FaceReading:
    """image: uint8 RGB [H, W, 3] (or [H, W]) of any size."""
    image = to_read_size(image)
    faces = reader.faces(image)
    if not faces:
        return FaceReading(faces)
    m = measure(image, faces[0])
    return FaceReading(faces, m, read_attributes(m), reader.descriptor(image, faces[0]) if descriptor else None)
