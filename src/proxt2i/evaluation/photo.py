"""The PhotoFaces evaluator: every feature comes from a real pretrained face network (faces/, dlib).

- face_rate: the share of images where dlib's detector finds a face (a photoreal face is recognisable);
- fd: Frechet distance between the 128-d face descriptors (dlib's ResNet, trained for identity) of the
  images and of reference images (a PhotoFaces export or curated set), over the images with a face;
- precision / recall: k-NN manifold precision and recall in the same space;
- diversity: within-prompt identity spread (mean pairwise descriptor distance; dlib calls < 0.6 the same person);
- alignment: per family the share of images whose prompt names it and whose reader reads that value
  (an image with no face, or a reading the rule is unsure of, counts as a miss); `alignment` is the mean
  over the families the prompts name, `alignment_all` the share of images with every named family right.

Trust checks (`trust_check`, `proxt2i evaluator photo-check`): one half of a real set against the other,
the same images with shuffled captions, and FD under blur and noise.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..data.photo_captions import parse_photo_prompt
from ..errors import UsageError
from ..faces import PHOTO_FAMILIES, FaceReader, read_face
from .check import add_noise, gaussian_blur, shuffled
from .metrics import within_prompt_diversity
from .stats import frechet_distance, gaussian_stats, precision_recall

PR_K = 3
REFERENCE_NUM = 512  # reference images read for the statistics (dlib reads about 10 per second per core)
BLUR_SIGMAS = (1.0, 2.0, 4.0)  # px at 256
NOISE_STDS = (0.05, 0.1, 0.2)  # of the [0, 1] range


def read_all(reader: FaceReader, images: Sequence[np.ndarray]):
    """Readings (with descriptors) of uint8 RGB images [H, W, 3]."""
    return [read_face(reader, im, descriptor=True) for im in images]


def descriptors(readings) -> torch.Tensor:
    """[n_with_face, 128] descriptors of the readings that found a face."""
    rows = [r.descriptor for r in readings if r.descriptor is not None]
    return torch.from_numpy(np.stack(rows)) if rows else torch.zeros(0, 128)


def parse_prompts(prompts: Sequence[str]) -> list[dict[str, str]]:
    """The families each prompt names; a prompt the PhotoFaces parser cannot read is refused, naming it."""
    parsed = []
    for i, prompt in enumerate(prompts):
        try:
            parsed.append(parse_photo_prompt(prompt))
        except UsageError as err:
            raise UsageError(f"prompt {i + 1} ({prompt!r}): {err}") from None
    return parsed


def alignment(readings, targets: list[dict[str, str]]) -> dict:
    """Per family over the images whose prompt names it: alignment (read back as named; no face or an unsure
    reading is a miss), sure (the reader answered) and, over the sure readings only, alignment_when_sure. The
    last two tell a model that did not draw the value from a reader that could not tell."""
    hits: dict[str, list[bool]] = {}
    sure: dict[str, list[bool]] = {}
    all_right = []
    for reading, target in zip(readings, targets):
        right = [reading.attributes.get(f) == v for f, v in target.items()]
        for (f, _), ok in zip(target.items(), right):
            hits.setdefault(f, []).append(ok)
            sure.setdefault(f, []).append(reading.attributes.get(f) is not None)
        if target:
            all_right.append(all(right))
    families = [f for f in PHOTO_FAMILIES if f in hits]
    per_family = {f: float(np.mean(hits[f])) for f in families}
    when_sure = {f: float(np.sum(hits[f]) / np.sum(sure[f])) for f in families if any(sure[f])}
    return {"alignment": float(np.mean(list(per_family.values()))) if per_family else None,
            "alignment_all": float(np.mean(all_right)) if all_right else None,
            "alignment_per_family": per_family, "named_per_family": {f: len(hits[f]) for f in per_family},
            "sure_per_family": {f: float(np.mean(sure[f])) for f in families},
            "alignment_when_sure_per_family": when_sure}


def feature_scores(fake: torch.Tensor, real: torch.Tensor, k: int = PR_K) -> dict:
    """fd, precision and recall of descriptors `fake` against `real` (None where a set is too small)."""
    out = {"fd": None, "precision": None, "recall": None}
    if len(fake) >= 2 and len(real) >= 2:
        out["fd"] = frechet_distance(gaussian_stats(fake.double().numpy()), gaussian_stats(real.double().numpy()))
    if len(fake) > k and len(real) > k:
        out["precision"], out["recall"] = precision_recall(real, fake, k)
    return out


def evaluate_photo_images(images: Sequence[np.ndarray], prompts: Sequence[str], reference: Sequence[np.ndarray] | torch.Tensor,
                          reader: FaceReader | None = None, targets: list[dict[str, str]] | None = None) -> dict:
    """Score uint8 RGB images against their prompts. reference: reference images, or their descriptors [M, 128];
    targets: parse_prompts(prompts), when the caller has it already."""
    if len(images) != len(prompts):
        raise UsageError(f"{len(images)} images but {len(prompts)} prompts")
    targets = parse_prompts(prompts) if targets is None else targets
    reader = reader or FaceReader()
    readings = read_all(reader, images)
    real = reference if isinstance(reference, torch.Tensor) else descriptors(read_all(reader, reference))
    fake = descriptors(readings)
    with_face = [p for p, r in zip(prompts, readings) if r.descriptor is not None]
    return {"n": len(images), "face_rate": sum(r.face is not None for r in readings) / max(1, len(images)),
            **feature_scores(fake, real), "reference_num": len(real),
            "diversity": within_prompt_diversity(fake, with_face) if len(fake) else None,
            **alignment(readings, targets)}


def _as_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255


def _as_uint8(x: torch.Tensor) -> list[np.ndarray]:
    return list((x.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy())


def trust_check(images: Sequence[np.ndarray], captions: Sequence[str], reader: FaceReader | None = None,
                blur_sigmas: Sequence[float] = BLUR_SIGMAS, noise_stds: Sequence[float] = NOISE_STDS) -> dict:
    """On real images (same size) with their captions: the second half scored against the first half as is,
    with shuffled captions, blurred (sigma in px) and noised (std of the [0, 1] range). A trustworthy evaluator
    gives the real half a high alignment and a low FD, collapses alignment under shuffling and raises FD
    monotonically under each corruption."""
    if len(images) < 2 * (PR_K + 2):
        raise UsageError(f"the trust check needs at least {2 * (PR_K + 2)} images, got {len(images)}")
    reader = reader or FaceReader()
    half = len(images) // 2
    reference = descriptors(read_all(reader, images[:half]))
    test, test_captions = list(images[half:]), list(captions[half:])
    x = _as_tensor(test)

    def score(imgs, caps):
        r = evaluate_photo_images(imgs, caps, reference, reader)
        return {k: r[k] for k in ("face_rate", "fd", "precision", "recall", "alignment", "alignment_all")}

    return {"n_reference": half, "n_test": len(test), "real": score(test, test_captions),
            "shuffled_captions": score(test, shuffled(test_captions)),
            "blur": {str(s): score(_as_uint8(gaussian_blur(x, s)), test_captions) for s in blur_sigmas},
            "noise": {str(s): score(_as_uint8(add_noise(x, s)), test_captions) for s in noise_stds}}


def read_images(source, limit: int | None = None) -> tuple[list[np.ndarray], list[str]]:
    """(uint8 RGB images, captions) of the first `limit` records of webdataset shards or an imagefolder."""
    import itertools

    from ..data.readers import read_pairs

    pairs = list(itertools.islice(read_pairs(source), limit))
    if not pairs:
        raise UsageError(f"{source}: no images")
    return [p[0] for p in pairs], [p[1] for p in pairs]


def evaluate_photo_folder(folder, reference, reference_num: int = REFERENCE_NUM) -> dict:
    """evaluate_photo_images over an imagefolder of generated images (refused when incomplete, as
    `proxt2i evaluate` refuses one), against the first `reference_num` images of `reference`."""
    from .folder import check_folder_complete

    check_folder_complete(folder)
    images, prompts = read_images(folder)
    targets = parse_prompts(prompts)  # refuse an unreadable prompt before reading the reference
    reader = FaceReader()
    real = descriptors(read_all(reader, read_images(reference, reference_num)[0]))
    return {**evaluate_photo_images(images, prompts, real, reader, targets), "reference": str(reference)}
