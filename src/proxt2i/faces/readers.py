"""Real pretrained face models, loaded from the files inside their wheels (nothing is downloaded):

- dlib's HOG + linear SVM frontal face detector (built into dlib-bin; Boost Software License);
- dlib's 68-point landmark predictor (face_recognition_models: trained on iBUG 300-W, whose images are for
  non-commercial research only);
- dlib's ResNet face descriptor, 128-d, trained for identity (face_recognition_models; dlib's model, CC0).

`face_recognition_models` is located with importlib and never imported: its __init__ needs pkg_resources.
All of this is the optional extra `photo` (docs/photofaces.md lists each licence).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..extras import require

EXTRA = "photo"
READ_SIZE = 256  # images are resized so that their short side is this before reading: HOG needs faces >= ~80 px
LANDMARKS_FILE = "shape_predictor_68_face_landmarks.dat"
DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"


def model_file(name: str) -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise UsageError(f"the face readers need face_recognition_models: pip install 'proxt2i[{EXTRA}]'")
    path = Path(spec.origin).parent / "models" / name
    if not path.is_file():
        raise UsageError(f"face_recognition_models is installed but {path} is missing; reinstall it")
    return path


@dataclass
class Face:
    """One detected face in READ_SIZE pixel coordinates: box (x0, y0, x1, y1), the detector's SVM score
    (about -0.5..3; higher is surer) and 68 landmarks [68, 2] (x, y)."""
    box: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]


def to_read_size(image: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] (or [H, W], greyscale) -> uint8 RGB whose short side is READ_SIZE (Lanczos)."""
    from PIL import Image

    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    h, w = image.shape[:2]
    scale = READ_SIZE / min(h, w)
    if scale == 1:
        return np.ascontiguousarray(image[..., :3])
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(np.ascontiguousarray(image[..., :3])).resize(size, Image.LANCZOS))


class FaceReader:
    """Detector, landmarks and descriptor, loaded once. `min_score`: the detector's threshold (dlib's own is 0)."""

    def __init__(self, min_score: float = 0.0):
        self.dlib = require("dlib", EXTRA, "the face readers")
        self.detector = self.dlib.get_frontal_face_detector()
        self.predictor = self.dlib.shape_predictor(str(model_file(LANDMARKS_FILE)))
        self._descriptor = None
        self.min_score = min_score

    def faces(self, image: np.ndarray) -> list[Face]:
        """Faces in `image` (uint8 RGB at READ_SIZE: see to_read_size), largest first."""
        rects, scores, _ = self.detector.run(image, 0, self.min_score)
        found = []
        for rect, score in zip(rects, scores):
            shape = self.predictor(image, rect)
            points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)
            found.append(Face((rect.left(), rect.top(), rect.right(), rect.bottom()), float(score), points))
        return sorted(found, key=lambda f: -f.width)

    def best_score(self, image: np.ndarray, floor: float = -1.0) -> float:
        """The detector's highest score in `image` (uint8 RGB at READ_SIZE), `floor` when nothing scores above it.
        dlib's HOG score is a margin: >= 0 is a detection at its own threshold, so this keeps rising as a
        blob becomes a face, where the detection itself is all or nothing."""
        _, scores, _ = self.detector.run(image, 0, floor)
        return float(max(scores, default=floor))

    def descriptor(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The 128-d identity descriptor of `face` (unit-scale; same person < 0.6 apart, dlib's rule), float32."""
        if self._descriptor is None:
            self._descriptor = self.dlib.face_recognition_model_v1(str(model_file(DESCRIPTOR_FILE)))
        x0, y0, x1, y1 = face.box
        points = [self.dlib.point(int(x), int(y)) for x, y in face.landmarks]
        shape = self.dlib.full_object_detection(self.dlib.rectangle(x0, y0, x1, y1), points)
        return np.asarray(self._descriptor.compute_face_descriptor(image, shape), dtype=np.float32)
