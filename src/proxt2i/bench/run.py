"""Generate and score every (sampler, steps, prompt set) of a BenchConfig."""

from __future__ import annotations

import time
from dataclasses import asdict

import torch

from .config import BenchConfig, bench_methods, nfe, undefined_reason
from .speedup import speedup


def run_bench(cfg: BenchConfig, evaluator=None, progress: bool = True) -> tuple[dict, dict]:
    """Generate and score every (method, steps, prompt set): the samplers, then the few-step models (bench_methods).
    Returns (report, grid) where report is {"config", "results": [row...], "skipped": [...], "speedup": {...}} and
    grid maps (method label, steps) to image 0 of the first prompt set, float [3, H, W] in [0, 1]."""
    from tqdm import tqdm

    from ..data.prompts import load_prompts
    from ..evaluation import evaluate_images, load_evaluator
    from ..evaluation.features import REFERENCE_NUM

    methods = bench_methods(cfg, cfg.device, cfg.dtype)
    ev = evaluator or load_evaluator(cfg.evaluator)
    reference_num = cfg.reference_num or REFERENCE_NUM
    prompts = {s: load_prompts(s, cfg.num_prompts) for s in cfg.prompt_sets}
    for m in methods:  # warm-up: the first call pays for lazy imports (diffusers) and allocations
        if not undefined_reason(m.pipe, m.sampler, 1):
            m.pipe(prompts[cfg.prompt_sets[0]][:1], num_steps=1, guidance_scale=m.guidance, sampler=m.sampler, output_type="tensor")

    steps = sorted(cfg.steps)
    configs = [(m, n, p) for m in methods for n in steps for p in cfg.prompt_sets]
    results, skipped, grid = [], [], {}
    for m, n, pset in tqdm(configs, desc="bench", disable=not progress):
        reason = undefined_reason(m.pipe, m.sampler, n)
        if reason:
            if pset == cfg.prompt_sets[0]:
                skipped.append({"sampler": m.sampler, "method": m.label, "steps": n, "reason": reason})
            continue
        t0 = time.perf_counter()
        images = m.pipe(prompts[pset], num_steps=n, guidance_scale=m.guidance, sampler=m.sampler, seed=cfg.seed,
                        batch_size=cfg.batch_size, output_type="tensor")
        seconds = time.perf_counter() - t0
        r = evaluate_images(images, prompts[pset], ev, reference_num=reference_num)
        results.append({"method": m.label, "family": m.family, "sampler": m.sampler, "objective": m.pipe.objective, "steps": n,
                        "nfe": nfe(n, m.guidance), "guidance": m.guidance, "time_grid": m.pipe.time_grid_for(m.sampler), "prompt_set": pset,
                        "n": r["n"], "alignment": r["alignment"], "alignment_all": r["alignment_all"], "fd": r["fd"],
                        "precision": r["precision"], "recall": r["recall"], "clip_score": r["clip_score"],
                        "sec_per_image": seconds / len(images)})
        if pset == cfg.prompt_sets[0]:
            grid[(m.label, n)] = images[0]
    config = asdict(cfg)
    config.update(samplers=list(cfg.samplers), few_step_models=list(cfg.few_step_models), methods=[m.label for m in methods], steps=steps, prompt_sets=list(cfg.prompt_sets), reference_num=reference_num,
                  prox_model=cfg.prox_model, score_model=cfg.score_model,  # as given: a shipped name or the user's path
                  grid_prompt=prompts[cfg.prompt_sets[0]][0], torch_threads=torch.get_num_threads())
    report = {"config": config, "results": results, "skipped": skipped, "speedup": speedup(results)}
    return report, grid
