"""SynthFaces metrics for generated images and their prompts.

- Alignment (the GenEval idea, exact here): parse each prompt into named attributes, read them back
  with the recogniser, count matches. Per family, overall (micro-average over prompted attributes)
  and `alignment_all` (fraction of images with every prompted attribute read back).
- alignment_reward: its soft, differentiable version, the mean log-probability of the prompted values.
- Fidelity: Frechet distance (FD) of recogniser features against fresh renders, and k-NN precision /
  recall (Kynkaanniemi et al. 2019).
- diversity: within-prompt spread, the mean pairwise distance of the recogniser features of the images that
  share a prompt (the mode-collapse signal of reward fine-tuning), averaged over prompts with >= 2 images.
- clip_score: the contrastive model's image-text cosine, x100 and clamped at 0 per image (the
  torchmetrics CLIPScore convention), averaged. clip_similarity is the raw differentiable cosine.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..data.synthfaces import parse_prompt
from ..errors import UsageError
from .evaluator import Evaluator, load_evaluator
from .features import REFERENCE_NUM, recognise, reference_features
from .stats import frechet_distance, gaussian_stats, precision_recall

PR_K = 3  # neighbourhood size of the precision / recall manifolds (the paper's default)


def prompt_labels(ev: Evaluator, prompt: str) -> dict[str, int]:
    """Named attributes of one prompt as {family: class label}; UsageError on words outside the vocabulary."""
    labels = {}
    for family, value in parse_prompt(prompt).items():
        values = ev.families.get(family, ())
        if value not in values:
            raise UsageError(f"the evaluator does not know {family}={value!r}; it predates the data: rebuild it with `proxt2i evaluator train`")
        labels[family] = values.index(value)
    return labels


def all_prompt_labels(ev: Evaluator, prompts: Sequence[str]) -> list[dict[str, int]]:
    out = []
    for i, prompt in enumerate(prompts):
        try:
            out.append(prompt_labels(ev, prompt))
        except UsageError as err:
            raise UsageError(f"prompt {i} ({prompt!r}): {err}") from None
    return out


def label_matrix(ev: Evaluator, targets: list[dict[str, int]]) -> dict[str, torch.Tensor]:
    """{family: int64 [N]} with the prompted label, -1 where the prompt does not name the family."""
    return {k: torch.tensor([t.get(k, -1) for t in targets], dtype=torch.long) for k in ev.families}


def alignment_scores(predicted: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict:
    """predicted, targets: {family: int64 [N]} (targets -1 = not prompted) -> alignment (overall),
    alignment_per_family ({family: fraction or None if never prompted}), alignment_all."""
    hits = {k: (predicted[k] == t) & (t >= 0) for k, t in targets.items()}
    asked = {k: t >= 0 for k, t in targets.items()}
    per_family = {k: (float(hits[k].sum() / asked[k].sum()) if asked[k].any() else None) for k in targets}
    n_hits = sum(int(h.sum()) for h in hits.values())
    n_asked = sum(int(a.sum()) for a in asked.values())
    any_asked = torch.stack(list(asked.values())).any(0)
    all_hit = torch.stack([h | ~asked[k] for k, h in hits.items()]).all(0) & any_asked
    return {
        "alignment": n_hits / n_asked if n_asked else None,
        "alignment_per_family": per_family,
        "alignment_all": float(all_hit.sum() / any_asked.sum()) if any_asked.any() else None,
    }


def alignment_reward(images: torch.Tensor, prompts: Sequence[str], evaluator: Evaluator | None = None) -> torch.Tensor:
    """Differentiable alignment: mean over the prompted families of log p(prompted value | image).
    images float [B, 3, H, W] in [0, 1] (or uint8 [B, H, W, 3]), side 32-256 -> [B], <= 0 (0 for a
    prompt that names no attribute)."""
    ev = evaluator or load_evaluator()
    targets = label_matrix(ev, all_prompt_labels(ev, prompts))
    _, logits = ev.recogniser(ev.prepare(images).to(ev.device))
    total = torch.zeros(len(prompts), device=next(iter(logits.values())).device)
    count = torch.zeros_like(total)
    for k, lg in logits.items():
        t = targets[k].to(lg.device)
        logp = lg.log_softmax(-1).gather(1, t.clamp_min(0)[:, None])[:, 0]
        total = total + torch.where(t >= 0, logp, torch.zeros_like(logp))
        count = count + (t >= 0).float()
    return total / count.clamp_min(1.0)


def clip_similarity(images: torch.Tensor, prompts: Sequence[str], evaluator: Evaluator | None = None) -> torch.Tensor:
    """Differentiable contrastive image-text cosine similarity: images as in alignment_reward -> [B] in [-1, 1]."""
    ev = evaluator or load_evaluator()
    ids, mask = ev.tokenizer(list(prompts))
    img = ev.contrastive.embed_images(ev.prepare(images).to(ev.device))
    return (img * ev.contrastive.embed_text(ids.to(img.device), mask.to(img.device))).sum(-1)


def clip_score(x: torch.Tensor, prompts: Sequence[str], ev: Evaluator, batch_size: int = 256) -> float:
    """100 * mean over images of max(cosine, 0), without gradients. x: float [N, 3, R, R]."""
    with torch.no_grad():
        cos = torch.cat([clip_similarity(x[i : i + batch_size], prompts[i : i + batch_size], ev) for i in range(0, len(prompts), batch_size)])
    return float(100.0 * cos.clamp_min(0).mean())


def within_prompt_diversity(features: torch.Tensor, prompts: Sequence) -> float | None:
    """Mean over distinct prompts with >= 2 images of the mean pairwise distance between their features
    (features [N, F], row i made from prompts[i]: strings or any group keys); None when no prompt has two images."""
    rows: dict[str, list[int]] = {}
    for i, p in enumerate(prompts):
        rows.setdefault(p, []).append(i)
    spreads = []
    for idx in rows.values():
        if len(idx) >= 2:
            f = features[idx].float()
            spreads.append(float(torch.cdist(f, f).sum() / (len(idx) * (len(idx) - 1))))
    return sum(spreads) / len(spreads) if spreads else None


def evaluate_images(images, prompts: Sequence[str], evaluator: Evaluator | None = None, reference_num: int = REFERENCE_NUM, batch_size: int = 256) -> dict:
    """Score generated images against their prompts.

    images: uint8 [N, H, W, 3] or float [N, 3, H, W] in [0, 1], square, side 32-256; prompts: N strings.
    Returns {n, alignment, alignment_per_family, alignment_all, fd, precision, recall, diversity, clip_score,
    reference_num}; fd needs N >= 2, precision / recall N > 3 and diversity a prompt with >= 2 images, else None. Precision / recall use
    the first min(N, reference_num) reference renders, so both sets have equal size when possible.
    """
    ev = evaluator or load_evaluator()
    prompts = list(prompts)
    if len(prompts) != len(images):
        raise UsageError(f"got {len(images)} images but {len(prompts)} prompts")
    if not prompts:
        raise UsageError("nothing to evaluate: no images")
    if reference_num < 2:
        raise UsageError(f"reference_num must be >= 2, got {reference_num}")
    targets = label_matrix(ev, all_prompt_labels(ev, prompts))
    with torch.no_grad():
        x = ev.prepare(images)
    feats, logits = recognise(ev, x, batch_size)
    out = {"n": len(prompts)}
    out.update(alignment_scores({k: v.argmax(-1) for k, v in logits.items()}, targets))
    ref = reference_features(ev, reference_num)
    out["fd"] = frechet_distance(gaussian_stats(feats), gaussian_stats(ref)) if len(prompts) >= 2 else None
    if len(prompts) > PR_K:
        out["precision"], out["recall"] = precision_recall(ref[: len(prompts)].float(), feats, PR_K)
    else:
        out["precision"] = out["recall"] = None
    out["diversity"] = within_prompt_diversity(feats, prompts)
    out["clip_score"] = clip_score(x, prompts, ev, batch_size)
    out["reference_num"] = reference_num
    return out
