"""Recogniser outputs over image batches, and reference features of fresh SynthFaces renders.

"Features" here are the recogniser's fidelity features (multi-scale stage means, see
recogniser.py), the input of the Frechet distance and precision / recall.
"""

from __future__ import annotations

import hashlib
import json
import warnings

import numpy as np
import torch

from ..data.synthfaces import render_batch
from .evaluator import Evaluator

# Fresh renders for the reference statistics and for checks: a seed the training never uses.
REFERENCE_SEED = 777_001
REFERENCE_NUM = 2048
RENDER_CHUNK = 256


def recognise(ev: Evaluator, x: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """float [N, 3, R, R] in [0, 1] -> fidelity features [N, F], {family: logits [N, V]} (on the CPU), without
    gradients, in chunks of batch_size on the evaluator's device."""
    feats, logits = [], {k: [] for k in ev.families}
    with torch.no_grad():
        for chunk in x.split(batch_size):
            f, lg = ev.recogniser(chunk.to(ev.device))
            feats.append(f.cpu())
            for k, v in lg.items():
                logits[k].append(v.cpu())
    return torch.cat(feats), {k: torch.cat(v) for k, v in logits.items()}


def render(num: int, seed: int, size: int, split: str = "test") -> tuple[np.ndarray, list[dict], list[str]]:
    """Renders 0..num-1 of (seed, split): uint8 [num, size, size, 3], attribute dicts, captions."""
    images, attrs, captions = [], [], []
    for start in range(0, num, RENDER_CHUNK):
        im, at, cap = render_batch(seed, start, min(RENDER_CHUNK, num - start), size, split=split)
        images.append(im)
        attrs += at
        captions += cap
    return np.concatenate(images), attrs, captions


def renderer_fingerprint(size: int = 64) -> str:
    """Hash of 8 reference renders (pixels and attributes): it changes when the SynthFaces renderer
    or attribute sampling changes, which makes a shipped reference (and maybe the models) stale."""
    images, attrs, _ = render_batch(REFERENCE_SEED, 0, 8, size, split="test")
    h = hashlib.sha256(images.tobytes())
    h.update(json.dumps(attrs, sort_keys=True).encode())
    return h.hexdigest()[:16]


_REFERENCE_CACHE: dict[tuple, torch.Tensor] = {}


def shipped_reference_is_current(ev: Evaluator) -> bool:
    """True if the evaluator's stored reference was rendered by the renderer in use now."""
    key = (id(ev), "fingerprint")
    if key not in _REFERENCE_CACHE:
        meta = ev.config.get("reference", {})
        current = meta.get("fingerprint") == renderer_fingerprint(meta.get("size", ev.resolution))
        if not current:
            warnings.warn(
                f"the evaluator in {ev.path} was built from an older SynthFaces renderer: its reference is "
                "recomputed from fresh renders; rebuild it with `proxt2i evaluator train`",
                stacklevel=3,
            )
        _REFERENCE_CACHE[key] = current
    return _REFERENCE_CACHE[key]


def reference_features(ev: Evaluator, num: int = REFERENCE_NUM, seed: int = REFERENCE_SEED) -> torch.Tensor:
    """Fidelity features [num, F] of fresh renders 0..num-1 at `seed` (test split, evaluator
    resolution). Uses the evaluator's stored reference when it covers them and the renderer has not
    changed since, else renders them (cached in memory for this process)."""
    meta = ev.config.get("reference", {})
    if ev.reference is not None and meta.get("seed") == seed and num <= ev.reference.shape[0] and shipped_reference_is_current(ev):
        return ev.reference[:num]
    key = (id(ev), num, seed)
    if key not in _REFERENCE_CACHE:
        images, _, _ = render(num, seed, ev.resolution)
        _REFERENCE_CACHE[key] = recognise(ev, ev.prepare(images))[0]
    return _REFERENCE_CACHE[key]
