"""Measurements that say whether the evaluator can be trusted (`proxt2i evaluator check`).

- accuracy: recogniser per-family accuracy on fresh renders (a seed training never uses), for the
  test split, the held-out compositions, and 32 px renders upsampled to the evaluator resolution.
- contrastive: CLIP-score analogue on matched vs shuffled captions, and in-batch retrieval top-1.
- trust: alignment and FD on fresh renders, on the same renders with shuffled prompts, and FD
  under increasing blur and noise.
- autoencoder ceiling: per-family accuracy on renders passed through a generator's autoencoder
  (encode, decode), and the alignment that implies on the shipped prompt sets: what a model that
  reproduced the renders in that latent space would score (a reference, not a hard cap).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .evaluator import Evaluator
from .features import recognise, reference_features, render
from .metrics import clip_similarity, evaluate_images
from .preprocess import as_float_images
from .stats import frechet_distance, gaussian_stats

CHECK_SEED = 777_002
BLUR_SIGMAS = (1.0, 1.5, 2.0, 3.0)  # px at the evaluator resolution
NOISE_STDS = (0.05, 0.1, 0.2, 0.3)  # on [0, 1] pixel values


def per_family_accuracy(ev: Evaluator, images, attrs: list[dict[str, str]]) -> dict[str, float]:
    _, logits = recognise(ev, ev.prepare(images))
    out = {}
    for family, values in ev.families.items():
        labels = torch.tensor([values.index(a[family]) for a in attrs])
        out[family] = float((logits[family].argmax(-1) == labels).float().mean())
    return out


def shuffled(prompts: list[str]) -> list[str]:
    """Each image gets the next image's prompt (a deterministic derangement)."""
    return prompts[1:] + prompts[:1]


def contrastive_check(ev: Evaluator, images, captions: list[str], chunk: int = 256) -> dict:
    """Mean cosine and clip score for matched / shuffled captions; image->text top-1 among `chunk`."""
    x = ev.prepare(images)
    with torch.no_grad():
        cos = clip_similarity(x, captions, ev)
        cos_shuf = clip_similarity(x, shuffled(captions), ev)
        hits = 0
        for i in range(0, len(captions), chunk):
            img = ev.contrastive.embed_images(x[i : i + chunk].to(ev.device))
            txt = ev.contrastive.embed_text(*(t.to(ev.device) for t in ev.tokenizer(captions[i : i + chunk])))
            hits += int(((img @ txt.T).argmax(1).cpu() == torch.arange(img.shape[0])).sum())
    return {
        "cosine_matched": float(cos.mean()),
        "cosine_shuffled": float(cos_shuf.mean()),
        "clip_score_matched": float(100 * cos.clamp_min(0).mean()),
        "clip_score_shuffled": float(100 * cos_shuf.clamp_min(0).mean()),
        f"retrieval_top1_of_{chunk}": hits / len(captions),
    }


def check_evaluator(ev: Evaluator, num: int = 1024, seed: int = CHECK_SEED) -> dict:
    """Accuracy per family (test, heldout, 32 px) and contrastive numbers on `num` fresh renders."""
    accuracy = {}
    for name, split, size in (("test", "test", ev.resolution), ("heldout", "heldout", ev.resolution), ("test_32px", "test", 32)):
        images, attrs, captions = render(num, seed, size, split)
        accuracy[name] = per_family_accuracy(ev, images, attrs)
        if name == "test":
            contrastive = contrastive_check(ev, images, captions)
    return {
        "num": num,
        "seed": seed,
        "accuracy": accuracy,
        "min_accuracy": {name: min(acc.values()) for name, acc in accuracy.items()},
        "contrastive": contrastive,
    }


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """[N, 3, H, W] -> same, separable Gaussian blur (std `sigma` px, radius 3 sigma, reflect padding)."""
    r = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).repeat(3, 1, 1)  # [3, 1, 2r + 1]
    y = F.pad(x, (r, r, r, r), mode="reflect")
    y = F.conv2d(y, k[:, :, None, :], groups=3)
    return F.conv2d(y, k[:, :, :, None], groups=3)


def add_noise(x: torch.Tensor, std: float, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (x + std * torch.randn(x.shape, generator=gen)).clamp(0, 1)


def feature_fd(ev: Evaluator, x: torch.Tensor, reference: torch.Tensor) -> float:
    """Frechet distance of the recogniser features of x [N, 3, R, R] to reference features [M, F]."""
    return frechet_distance(gaussian_stats(recognise(ev, x)[0]), gaussian_stats(reference))


def trust_check(ev: Evaluator, num: int = 256, seed: int = CHECK_SEED) -> dict:
    """Evaluate fresh renders as if generated: as they are, with shuffled prompts (metrics that
    depend on prompts), blurred and noised (FD), against the default reference."""
    images, _, captions = render(num, seed, ev.resolution)
    x = ev.prepare(images)
    reference = reference_features(ev)
    keys = ("alignment", "alignment_all", "fd", "precision", "recall", "clip_score")
    fresh = evaluate_images(x, captions, ev)
    shuf = evaluate_images(x, shuffled(captions), ev)
    return {
        "num": num,
        "seed": seed,
        "reference_num": int(reference.shape[0]),
        "fresh": {k: fresh[k] for k in keys},
        "shuffled_prompts": {k: shuf[k] for k in ("alignment", "alignment_all", "clip_score")},
        "blur_fd": {str(s): feature_fd(ev, gaussian_blur(x, s), reference) for s in BLUR_SIGMAS},
        "noise_fd": {str(s): feature_fd(ev, add_noise(x, s), reference) for s in NOISE_STDS},
    }


def autoencoder_ceiling(ev: Evaluator, autoencoder, size: int, num: int = 512, seed: int = CHECK_SEED,
                        batch_size: int = 256) -> dict:
    """Per-family recogniser accuracy on `num` renders at `size` px before and after a round trip
    through `autoencoder` (encode to the posterior mean, decode), and the round trip's alignment
    reference on the shipped held-in / held-out / paraphrase prompt sets: the per-family accuracies weighted by how
    often each family is prompted there (alignment is a micro-average over prompted attributes)."""
    from collections import Counter

    from ..data.prompts import PROMPT_SETS, load_prompts
    from .metrics import all_prompt_labels

    images, attrs, _ = render(num, seed, size, "test")
    x = as_float_images(images)
    with torch.no_grad():
        rec = torch.cat([autoencoder.decode(autoencoder.encode(x[i : i + batch_size])).clamp(0, 1).cpu()
                         for i in range(0, num, batch_size)])
    direct, through = per_family_accuracy(ev, x, attrs), per_family_accuracy(ev, rec, attrs)
    ceiling = {}
    for name in PROMPT_SETS:
        counts = Counter(family for labels in all_prompt_labels(ev, load_prompts(name)) for family in labels)
        ceiling[name] = sum(through[f] * n for f, n in counts.items()) / sum(counts.values())
    return {"num": num, "seed": seed, "size": size, "accuracy_direct": direct, "accuracy_autoencoder": through,
            "alignment_ceiling": ceiling}
