"""A PhotoFaces reward from real pretrained face models: the share of the families a prompt names that the
face readers (faces/, dlib) read back from the image; 0 for an image with no face. A prompt naming no
family scores 1 for an image with a face. Not differentiable: for GRPO and R0-style best-of-N, not for
reward gradients."""

from __future__ import annotations

from typing import Sequence

import torch

from ..evaluation.photo import parse_prompts
from ..faces import FaceReader, read_face
from ..imaging import to_uint8_images
from .protocol import check_images


class PhotoAlignmentReward:

    def __init__(self, device: str = "cpu"):
        self.reader = FaceReader()
        self.device = device

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        check_images(images, prompts)
        targets = parse_prompts(prompts)
        scores = []
        for image, target in zip(to_uint8_images(images.detach().float().cpu()), targets):
            reading = read_face(self.reader, image)
            if reading.face is None:
                scores.append(0.0)
            elif not target:
                scores.append(1.0)
            else:
                scores.append(sum(reading.attributes.get(f) == v for f, v in target.items()) / len(target))
        return torch.tensor(scores, dtype=torch.float32, device=images.device)
