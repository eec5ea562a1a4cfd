"""Score a folder of generated images in the Hugging Face imagefolder layout: image files plus a
`metadata.jsonl` with one {"file_name": "00000.png", "text": "..."} object per line.

Reading (and its errors: missing folder, bad lines, missing or unreadable images) is
`proxt2i.data.readers`; this module adds the evaluator's own checks: image size and prompt vocabulary.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..data.readers import read_imagefolder_records
from ..errors import UsageError
from .evaluator import Evaluator, load_evaluator
from .features import REFERENCE_NUM
from .metrics import evaluate_images, prompt_labels
from .preprocess import MAX_SIDE, MIN_SIDE, as_float_images, resize


def read_image_folder(folder: str | os.PathLike, ev: Evaluator) -> tuple[torch.Tensor, list[str]]:
    """Images resized to the evaluator resolution, float [N, 3, R, R] in [0, 1], and their prompts.
    UsageError naming the file for an image that is not square with a side of 32-256 px, or a
    prompt with words outside the SynthFaces vocabulary."""
    images, prompts = [], []
    for row in read_imagefolder_records(folder):
        where = Path(folder) / row["file_name"]
        try:
            prompt_labels(ev, row["text"])
        except UsageError as err:
            raise UsageError(f"{where}: {err}") from None
        h, w = row["image"].shape[:2]
        if h != w or not MIN_SIDE <= h <= MAX_SIDE:
            raise UsageError(f"{where}: image is {w}x{h} px; images must be square with a side of {MIN_SIDE}-{MAX_SIDE} px")
        images.append(resize(as_float_images(row["image"][None]), ev.resolution))
        prompts.append(row["text"])
    return torch.cat(images), prompts


def evaluate_folder(folder: str | os.PathLike, evaluator: Evaluator | None = None, reference_num: int = REFERENCE_NUM, batch_size: int = 256) -> dict:
    """evaluate_images over an imagefolder (see metrics.evaluate_images for the keys)."""
    ev = evaluator or load_evaluator()
    images, prompts = read_image_folder(folder, ev)
    return evaluate_images(images, prompts, ev, reference_num, batch_size)
