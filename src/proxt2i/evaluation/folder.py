"""Score a folder of generated images in the Hugging Face imagefolder layout: image files plus a
`metadata.jsonl` with one {"file_name": "00000.png", "text": "..."} object per line.

Reading (and its errors: missing folder, bad lines, missing or unreadable images) is
`proxt2i.data.readers`; this module adds the evaluator's own checks: a complete and consistent folder
(check_folder_complete: every row parses and has its image, no image without a row, no image listed twice,
so a half-written or mixed folder is refused instead of scored), image size and prompt vocabulary.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import torch

from ..data.readers import imagefolder_rows, read_imagefolder_records
from ..errors import UsageError
from .evaluator import Evaluator, load_evaluator
from .features import REFERENCE_NUM
from .metrics import evaluate_images, prompt_labels
from .preprocess import MAX_SIDE, MIN_SIDE, as_float_images, resize


# what counts as an image file when looking for images that metadata.jsonl does not list
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


def check_folder_complete(folder: str | os.PathLike) -> None:
    """Refuse (one UsageError line) an imagefolder that a kill or two writers left inconsistent: a row that
    does not parse or names a missing image (data.readers: the first, with its line), an image named on more
    than one row, or an image no row names (how many, and the first). Hidden files (an unfinished write's
    temporaries) are not images."""
    root = Path(folder)
    names = [os.path.normpath(row["file_name"]) for row in imagefolder_rows(root)]
    _refuse(root, [n for n, c in Counter(names).items() if c > 1], "image(s) named on more than one metadata.jsonl line")
    listed = set(names)
    _refuse(root, [n for n in image_files(root) if n not in listed], "image(s) that no metadata.jsonl row names")


def image_files(root: Path) -> list[str]:
    """Image files under `root` as normalised relative paths, sorted; hidden files and folders skipped."""
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if path.suffix.lower() in IMAGE_SUFFIXES and not any(part.startswith(".") for part in rel.parts) and path.is_file():
            found.append(os.path.normpath(rel))
    return sorted(found)


def _refuse(root: Path, problems: list[str], what: str) -> None:
    if problems:
        raise UsageError(f"{root} is not a complete imagefolder: {len(problems)} {what} (first: {problems[0]}); "
                         f"regenerate the folder, or fix metadata.jsonl")


def read_image_folder(folder: str | os.PathLike, ev: Evaluator) -> tuple[torch.Tensor, list[str]]:
    """Images resized to the evaluator resolution, float [N, 3, R, R] in [0, 1], and their prompts.
    UsageError for an incomplete or inconsistent folder (check_folder_complete), and naming the file for
    an image that is not square with a side of 32-256 px, or a prompt with words outside the SynthFaces vocabulary."""
    check_folder_complete(folder)
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
