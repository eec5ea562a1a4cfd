"""Generate and score every (sampler, steps, prompt set) of a BenchConfig."""

from __future__ import annotations

import time
from dataclasses import asdict

import torch

from .config import BenchConfig, load_pipelines, nfe, objective_of, undefined_reason
from .speedup import speedup


def run_bench(cfg: BenchConfig, evaluator=None, progress: bool = True) -> tuple[dict, dict]:
    """Generate and score every (sampler, steps, prompt set). Returns (report, grid) where report is
    {"config", "results": [row...], "skipped": [...], "speedup": {...}} and grid maps (sampler, steps)
    to image 0 of the first prompt set, float [3, H, W] in [0, 1]."""
    from tqdm import tqdm

    from ..data.prompts import load_prompts
    from ..evaluation import evaluate_images, load_evaluator
    from ..evaluation.features import REFERENCE_NUM

    pipes = load_pipelines(cfg.prox_model, cfg.score_model, cfg.samplers, cfg.device, cfg.dtype)
    ev = evaluator or load_evaluator(cfg.evaluator)
    reference_num = cfg.reference_num or REFERENCE_NUM
    prompts = {s: load_prompts(s, cfg.num_prompts) for s in cfg.prompt_sets}
    for sampler in cfg.samplers:  # warm-up: the first call pays for lazy imports (diffusers) and allocations
        if not undefined_reason(pipes[objective_of(sampler)], sampler, 1):
            pipes[objective_of(sampler)](prompts[cfg.prompt_sets[0]][:1], num_steps=1, guidance_scale=cfg.guidance,
                                         sampler=sampler, output_type="tensor")

    steps = sorted(cfg.steps)
    configs = [(s, n, p) for s in cfg.samplers for n in steps for p in cfg.prompt_sets]
    results, skipped, grid = [], [], {}
    for sampler, n, pset in tqdm(configs, desc="bench", disable=not progress):
        pipe = pipes[objective_of(sampler)]
        reason = undefined_reason(pipe, sampler, n)
        if reason:
            if pset == cfg.prompt_sets[0]:
                skipped.append({"sampler": sampler, "steps": n, "reason": reason})
            continue
        t0 = time.perf_counter()
        images = pipe(prompts[pset], num_steps=n, guidance_scale=cfg.guidance, sampler=sampler, seed=cfg.seed,
                      batch_size=cfg.batch_size, output_type="tensor")
        seconds = time.perf_counter() - t0
        m = evaluate_images(images, prompts[pset], ev, reference_num=reference_num)
        results.append({"sampler": sampler, "objective": objective_of(sampler), "steps": n, "nfe": nfe(n, cfg.guidance),
                        "guidance": cfg.guidance, "time_grid": pipe.time_grid_for(sampler), "prompt_set": pset, "n": m["n"], "alignment": m["alignment"],
                        "alignment_all": m["alignment_all"], "fd": m["fd"], "precision": m["precision"],
                        "recall": m["recall"], "clip_score": m["clip_score"], "sec_per_image": seconds / len(images)})
        if pset == cfg.prompt_sets[0]:
            grid[(sampler, n)] = images[0]
    config = asdict(cfg)
    config.update(samplers=list(cfg.samplers), steps=steps, prompt_sets=list(cfg.prompt_sets), reference_num=reference_num,
                  prox_model=cfg.prox_model, score_model=cfg.score_model,  # as given: a shipped name or the user's path
                  grid_prompt=prompts[cfg.prompt_sets[0]][0], torch_threads=torch.get_num_threads())
    report = {"config": config, "results": results, "skipped": skipped, "speedup": speedup(results)}
    return report, grid
