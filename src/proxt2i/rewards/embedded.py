"""The embedded rewards: offline, from the SynthFaces evaluator in proxt2i/assets/evaluator.

  alignment      mean log p(prompted attribute | image) from the recogniser (<= 0; differentiable)
  alignment-acc  fraction of the prompted attributes the recogniser reads back (the alignment metric, per image)
  alignment-prob mean p(prompted attribute | image): the expected alignment-acc, in [0, 1]; unlike the
                 log-probability it is not dominated by one confidently wrong attribute
  clip           the contrastive model's image-text cosine, in [-1, 1]
  brightness     mean pixel value in [0, 1]: deliberately hackable, for tests and reward-hacking demos
"""

from __future__ import annotations

import torch

from .protocol import check_images


def _evaluator():
    from ..evaluation.evaluator import load_evaluator

    return load_evaluator()


def alignment(images, prompts):
    from ..evaluation.metrics import alignment_reward

    check_images(images, prompts)
    return alignment_reward(images, list(prompts), _evaluator())


def _per_family(images, prompts, score):
    """mean over the prompted families of score(logits [B, V], target [B]) -> [B] (0 where none is prompted)."""
    from ..evaluation.metrics import all_prompt_labels, label_matrix

    check_images(images, prompts)
    ev = _evaluator()
    targets = label_matrix(ev, all_prompt_labels(ev, list(prompts)))
    _, logits = ev.recogniser(ev.prepare(images).to(ev.device))
    total = torch.zeros(len(prompts), device=ev.device)
    asked = torch.zeros(len(prompts), device=ev.device)
    for k, lg in logits.items():
        t = targets[k].to(lg.device)
        total = total + torch.where(t >= 0, score(lg, t.clamp_min(0)), torch.zeros_like(total))
        asked = asked + (t >= 0).float()
    return (total / asked.clamp_min(1.0)).to(images.device)


def alignment_accuracy(images, prompts):
    with torch.no_grad():
        return _per_family(images, prompts, lambda lg, t: (lg.argmax(-1) == t).float())


def alignment_probability(images, prompts):
    return _per_family(images, prompts, lambda lg, t: lg.softmax(-1).gather(1, t[:, None])[:, 0])


def clip(images, prompts):
    from ..evaluation.metrics import clip_similarity

    check_images(images, prompts)
    return clip_similarity(images, list(prompts), _evaluator())


def brightness(images, prompts):
    check_images(images, prompts)
    return images.float().mean(dim=(1, 2, 3))
