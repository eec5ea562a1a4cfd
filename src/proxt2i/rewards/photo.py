"""PhotoFaces rewards from real pretrained face models (faces/, dlib). Not differentiable: for GRPO and R0-style
best-of-N, not for reward gradients.

- photo-alignment: the share of the families a prompt names that the face readers read back from the image;
  0 for an image with no face. A prompt naming no family scores 1 for an image with a face.
- photo-face: how face-like the image is to dlib's HOG detector: its best score, floored at -1 (0 is the
  detector's own threshold; the generator's faces score 1.5-2.5). Dense where photo-alignment is 0 for every image of a model that does not
  make detectable faces yet."""

from __future__ import annotations

from typing import Sequence

import torch

from ..evaluation.photo import parse_prompts
from ..faces import FaceReader, read_face
from ..faces.readers import to_read_size
from ..imaging import to_uint8_images
from .protocol import check_images


class PhotoReward:
    """Scores each image (uint8 RGB) against its prompt's target through the face readers, one float per image [B]."""

    def __init__(self, device: str = "cpu"):
        self.reader = FaceReader()
        self.device = device

    def targets(self, prompts: Sequence[str]) -> list:
        """What score() compares each image with (here the prompts themselves), read once per call."""
        return list(prompts)

    def score(self, image, target) -> float:
        raise NotImplementedError

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        check_images(images, prompts)
        targets = self.targets(prompts)
        scores = [self.score(image, target) for image, target in zip(to_uint8_images(images.detach().float().cpu()), targets)]
        return torch.tensor(scores, dtype=torch.float32, device=images.device)


class PhotoAlignmentReward(PhotoReward):

    def targets(self, prompts: Sequence[str]) -> list[dict[str, str]]:
        return parse_prompts(prompts)  # refuses an unreadable prompt before any image is read

    def score(self, image, target: dict[str, str]) -> float:
        reading = read_face(self.reader, image)
        if reading.face is None:
            return 0.0
        if not target:
            return 1.0
        return sum(reading.attributes.get(f) == v for f, v in target.items()) / len(target)


class PhotoFaceReward(PhotoReward):

    def score(self, image, target) -> float:
        return self.reader.best_score(to_read_size(image), floor=-1.0)
