"""Speedup the paper's way: the smallest NFE at which each sampler reaches a quality level fixed in advance."""

from __future__ import annotations

import math

from .config import ALIGNMENT_FRACTION, FD_FACTOR, PROX_REFERENCE, objective_of


def nfe_to_reach(points, target: float, higher_is_better: bool) -> float | None:
    """Smallest NFE at which a metric reaches `target`, from measured (nfe, value) points.

    The first point (in increasing NFE) that reaches the target; between it and the point before,
    linear interpolation of the value in log NFE. The first point itself if it already reaches the
    target (an upper bound: fewer NFE were not measured). None if no point reaches it."""
    pts = sorted((float(n), float(v)) for n, v in points if v is not None)
    prev = None
    for n, v in pts:
        if (v >= target) if higher_is_better else (v <= target):
            if prev is None:
                return n
            n0, v0 = prev
            frac = (target - v0) / (v - v0)
            return math.exp(math.log(n0) + frac * (math.log(n) - math.log(n0)))
        prev = (n, v)
    return None


METRICS = {"alignment": (True, ALIGNMENT_FRACTION), "fd": (False, FD_FACTOR)}


def speedup(results: list[dict], prox_sampler: str = PROX_REFERENCE, alignment_fraction: float = ALIGNMENT_FRACTION,
            fd_factor: float = FD_FACTOR) -> dict:
    """Per prompt set and metric: the target level, every sampler's NFE to reach it, the best score
    sampler and speedup = best score NFE / prox_sampler NFE (None where either never reaches it).
    results: rows with sampler, steps, nfe, prompt_set, alignment, fd."""
    factors = {"alignment": alignment_fraction, "fd": fd_factor}
    out = {"levels": {"alignment": f"{alignment_fraction} x best score-sampler alignment at its largest step count",
                      "fd": f"{fd_factor} x best score-sampler FD at its largest step count",
                      "nfe_rule": "first measured point reaching the level, interpolated linearly in log NFE",
                      "prox_sampler": prox_sampler}}
    for pset in dict.fromkeys(r["prompt_set"] for r in results):
        rows = [r for r in results if r["prompt_set"] == pset]
        score_rows = [r for r in rows if objective_of(r["sampler"]) == "score"]
        if not score_rows:
            out[pset] = None
            continue
        ref_steps = max(r["steps"] for r in score_rows)
        samplers = list(dict.fromkeys(r["sampler"] for r in rows))
        out[pset] = {"reference_steps": ref_steps}
        for metric, (higher, _) in METRICS.items():
            ref = [r[metric] for r in score_rows if r["steps"] == ref_steps and r[metric] is not None]
            if not ref:
                out[pset][metric] = None
                continue
            best = max(ref) if higher else min(ref)
            target = factors[metric] * best
            reach = {s: nfe_to_reach([(r["nfe"], r[metric]) for r in rows if r["sampler"] == s], target, higher) for s in samplers}
            score_reach = {s: v for s, v in reach.items() if objective_of(s) == "score" and v is not None}
            best_score = min(score_reach, key=score_reach.get) if score_reach else None
            p = reach.get(prox_sampler)
            out[pset][metric] = {
                "best_at_reference": best, "target": target, "nfe_to_target": reach, "best_score_sampler": best_score,
                "speedup": (score_reach[best_score] / p) if (best_score and p) else None,
                "speedup_vs": {s: v / p for s, v in score_reach.items()} if p else {},
            }
    return out
