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


def method_of(row: dict) -> str:
    """A row's curve label: its method (rows of older results.json files name only the sampler)."""
    return row.get("method", row["sampler"])


def family_of(row: dict) -> str:
    """"prox", "score" or "few-step" (older rows: the sampler's objective)."""
    return row.get("family") or objective_of(row["sampler"])


def speedup(results: list[dict], prox_sampler: str = PROX_REFERENCE, alignment_fraction: float = ALIGNMENT_FRACTION,
            fd_factor: float = FD_FACTOR) -> dict:
    """Per prompt set and metric: the target level (set by the score model's samplers at their largest step count),
    every method's NFE to reach it, the best score sampler, the best method of any other family, and
    speedup = that method's NFE / prox_sampler's NFE (None where either never reaches it); speedup_vs against
    every method. results: rows with method (or sampler), family, steps, nfe, prompt_set, alignment, fd."""
    factors = {"alignment": alignment_fraction, "fd": fd_factor}
    out = {"levels": {"alignment": f"{alignment_fraction} x best score-sampler alignment at its largest step count",
                      "fd": f"{fd_factor} x best score-sampler FD at its largest step count",
                      "nfe_rule": "first measured point reaching the level, interpolated linearly in log NFE",
                      "prox_sampler": prox_sampler}}
    for pset in dict.fromkeys(r["prompt_set"] for r in results):
        rows = [r for r in results if r["prompt_set"] == pset]
        score_rows = [r for r in rows if family_of(r) == "score"]
        if not score_rows:
            out[pset] = None
            continue
        ref_steps = max(r["steps"] for r in score_rows)
        methods = list(dict.fromkeys(method_of(r) for r in rows))
        family = {method_of(r): family_of(r) for r in rows}
        out[pset] = {"reference_steps": ref_steps}
        for metric, (higher, _) in METRICS.items():
            ref = [r[metric] for r in score_rows if r["steps"] == ref_steps and r[metric] is not None]
            if not ref:
                out[pset][metric] = None
                continue
            best = max(ref) if higher else min(ref)
            target = factors[metric] * best
            reach = {s: nfe_to_reach([(r["nfe"], r[metric]) for r in rows if method_of(r) == s], target, higher) for s in methods}
            others = {s: v for s, v in reach.items() if s != prox_sampler and v is not None}
            score_reach = {s: v for s, v in others.items() if family[s] == "score"}
            few_reach = {s: v for s, v in others.items() if family[s] == "few-step"}
            best_score = min(score_reach, key=score_reach.get) if score_reach else None
            best_few = min(few_reach, key=few_reach.get) if few_reach else None
            p = reach.get(prox_sampler)
            out[pset][metric] = {
                "best_at_reference": best, "target": target, "nfe_to_target": reach, "best_score_sampler": best_score,
                "speedup": (score_reach[best_score] / p) if (best_score and p) else None,
                "best_few_step_model": best_few, "speedup_vs_few_step": (few_reach[best_few] / p) if (best_few and p) else None,
                "speedup_vs": {s: v / p for s, v in others.items()} if p else {},
            }
    return out
