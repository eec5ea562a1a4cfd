"""The SynthFaces evaluator: attribute alignment, Frechet distance, precision / recall and a
CLIP-score analogue, from a small recogniser and a small contrastive model trained on renders.

    from proxt2i.evaluation import load_evaluator, evaluate_folder, evaluate_images
    ev = load_evaluator()                       # shipped weights, no download
    evaluate_images(images, prompts)            # {n, alignment, alignment_per_family, fd, ...}
    tokens, mask, pooled = ev.encode_text(prompts)   # the contrastive text tower as text encoder
    alignment_reward(images, prompts)           # [B], differentiable
"""

from .evaluator import DEFAULT_DIR, Evaluator, load_evaluator
from .folder import evaluate_folder
from .metrics import alignment_reward, clip_similarity, evaluate_images
from .stats import GaussianStats, frechet_distance, gaussian_stats, precision_recall

__all__ = [
    "DEFAULT_DIR",
    "Evaluator",
    "load_evaluator",
    "evaluate_folder",
    "evaluate_images",
    "alignment_reward",
    "clip_similarity",
    "GaussianStats",
    "frechet_distance",
    "gaussian_stats",
    "precision_recall",
]
