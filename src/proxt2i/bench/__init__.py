"""`proxt2i bench`, quality versus steps: the prox samplers against the best score-based samplers (docs/benchmark.md).

The chain generate -> evaluate, run over samplers x step counts x prompt sets:

    for sampler, steps, prompt_set:
        images = pipeline(prompts of the set, steps, guidance, sampler, seeds seed + i)   # same x_T per image
        row    = evaluate_images(images, prompts)  +  steps, nfe, sec_per_image

NFE counts network evaluations, guidance included: with w != 1 each step is one batched cond + uncond
pass, 2 NFE; with w = 1 it is 1 NFE. Every sampler here (PDA, Euler-Maruyama, PF-ODE Euler and the
diffusers multistep solvers) makes one guided evaluation per step.

Speedup (the paper's way, ProxT2I Sec. 5): a quality level fixed in advance, then for every sampler the
smallest NFE that reaches it, and speedup = (best score sampler's NFE) / (pda-hybrid's NFE), separately
for alignment and FD and for each prompt set. The level is relative to the score samplers' best at their
largest step count (50 in the standard run): alignment >= ALIGNMENT_FRACTION x the best alignment,
FD <= FD_FACTOR x the best FD. NFE-to-level: the first measured point that reaches the level,
interpolated linearly in log NFE against the point before it (the first point itself when it already
reaches the level: then the NFE is an upper bound).

config.py (BenchConfig, presets, the quality levels, NFE), run.py (generate and score every configuration),
speedup.py (NFE to a quality level), report.py (results.md and the two figures), overhead.py (time per step
inside and outside the network).
"""

from .config import (ALIGNMENT_FRACTION, ALL_SAMPLERS, DEFAULT_NUM_PROMPTS, DEFAULT_STEPS, FD_FACTOR, PRESETS, PROMPT_SETS,
                     PROX_REFERENCE, BenchConfig, nfe, objective_of, undefined_reason)
from .overhead import TimedNetwork, sampler_overhead
from .report import format_markdown, plot_quality, plot_sampler_grid, write_outputs
from .run import run_bench
from .speedup import METRICS, nfe_to_reach, speedup

__all__ = ["BenchConfig", "PRESETS", "ALL_SAMPLERS", "DEFAULT_STEPS", "DEFAULT_NUM_PROMPTS", "PROMPT_SETS", "ALIGNMENT_FRACTION",
           "FD_FACTOR", "PROX_REFERENCE", "METRICS", "nfe", "objective_of", "undefined_reason", "run_bench", "nfe_to_reach",
           "speedup", "format_markdown", "plot_quality", "plot_sampler_grid", "write_outputs", "TimedNetwork", "sampler_overhead"]
