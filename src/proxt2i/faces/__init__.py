"""Real pretrained face models (dlib's detector, 68 landmarks and 128-d descriptor; the optional `photo`
extra) and the PhotoFaces attributes read from them: the readers shared by curation (face filter,
attribute captions), the PhotoFaces evaluator and its rewards."""

from .attributes import PHOTO_ATTRIBUTES, PHOTO_FAMILIES, mirrored, read_attributes
from .measure import measure
from .readers import READ_SIZE, Face, FaceReader, to_read_size
from .reading import FaceReading, read_face

__all__ = ["PHOTO_ATTRIBUTES", "PHOTO_FAMILIES", "mirrored", "read_attributes", "measure", "READ_SIZE", "Face", "FaceReader",
           "to_read_size", "FaceReading", "read_face"]
