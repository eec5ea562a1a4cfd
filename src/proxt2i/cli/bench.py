"""`proxt2i bench`: quality versus steps of the prox samplers against score samplers, the speedup at a
fixed quality level, and (--overhead) the samplers' own cost per step (docs/benchmark.md)."""

from __future__ import annotations

import json

# the subcommands this module adds, with their one-line help (cli/__init__ lists them without importing anything heavy)
COMMANDS = {"bench": "quality vs steps: prox samplers against DDIM / DPM-Solver++ / UniPC / Euler score samplers; speedup"}


def register(sub) -> None:
    from ..bench import ALIGNMENT_FRACTION, ALL_SAMPLERS, DEFAULT_NUM_PROMPTS, DEFAULT_STEPS, FD_FACTOR, QUICK

    p = sub.add_parser(
        "bench",
        help=COMMANDS["bench"],
        description=(
            "Generate the held-in and held-out prompt sets (same seeds for every sampler) with each sampler at each "
            "step count, score them with the SynthFaces evaluator, and report alignment, FD, CLIP score and seconds "
            f"per image against NFE (guidance included: w != 1 costs 2 NFE per step). Speedup at a fixed quality "
            f"level (alignment {ALIGNMENT_FRACTION} x, FD {FD_FACTOR} x the best score sampler at its largest step "
            "count) = best score sampler's NFE / pda-hybrid's NFE. Writes results.json, results.md, "
            "quality_vs_nfe.png and sampler_grid.png to --out. --overhead instead times each sampler's cost per "
            "step beyond the network and images/s at 4 steps (batch 1 and 32, CPU and CUDA if present)."
        ),
    )
    p.add_argument("--prox-model", default="synthfaces-prox", help="shipped name or folder of a prox model (default synthfaces-prox)")
    p.add_argument("--score-model", default="synthfaces-score", help="shipped name or folder of a score model (default synthfaces-score)")
    p.add_argument("--samplers", help=f"comma-separated samplers (default: all: {','.join(ALL_SAMPLERS)})")
    p.add_argument("--steps", help=f"comma-separated step counts (default {','.join(map(str, DEFAULT_STEPS))})")
    p.add_argument("--num-prompts", type=int, help=f"prompts per set, the first N of each file (default {DEFAULT_NUM_PROMPTS})")
    p.add_argument("--guidance", type=float, default=4.0, help="classifier-free guidance scale w >= 0; 1 = off (default 4)")
    p.add_argument("--seed", type=int, default=0, help="image i of a set uses seed + i, for every sampler (default 0)")
    p.add_argument("--batch-size", type=int, default=64, help="prompts per network batch (default 64)")
    p.add_argument("--reference-num", type=int, help="fresh renders behind FD (default 2048)")
    p.add_argument("--evaluator", metavar="DIR", help="evaluator folder (default: the shipped one)")
    p.add_argument("--out", default="outputs/bench", help="output folder (default outputs/bench)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--quick", action="store_true",
                   help=f"reduced run: {QUICK['num_prompts']} prompts per set, steps {','.join(map(str, QUICK['steps']))}, "
                        f"samplers {','.join(QUICK['samplers'])} (explicit options still win)")
    p.add_argument("--overhead", action="store_true", help="time sampler overhead per step and images/s instead (prints JSON)")
    p.add_argument("--repeats", type=int, default=3, help="--overhead: timed runs per measurement (default 3)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from ..bench import (ALL_SAMPLERS, DEFAULT_NUM_PROMPTS, DEFAULT_STEPS, QUICK, BenchConfig, format_markdown,
                         parse_list, run_bench, sampler_overhead, write_outputs)
    from ..errors import UsageError

    samplers = parse_list(args.samplers, str, "sampler") if args.samplers is not None else (QUICK["samplers"] if args.quick else ALL_SAMPLERS)
    steps = parse_list(args.steps, int, "step count") if args.steps is not None else (QUICK["steps"] if args.quick else DEFAULT_STEPS)
    num = args.num_prompts if args.num_prompts is not None else (QUICK["num_prompts"] if args.quick else DEFAULT_NUM_PROMPTS)
    cfg = BenchConfig(prox_model=args.prox_model, score_model=args.score_model, samplers=samplers, steps=steps, num_prompts=num,
                      guidance=args.guidance, seed=args.seed, batch_size=args.batch_size, reference_num=args.reference_num,
                      evaluator=args.evaluator)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out!r} exists and is not a folder")
    if args.overhead:
        from ..atomic import atomic_write_json

        if args.repeats < 1:
            raise UsageError(f"--repeats must be >= 1, got {args.repeats}")
        result = sampler_overhead(cfg, repeats=args.repeats, progress=True)
        atomic_write_json(out / "overhead.json", result)
        print(json.dumps(result))
        return 0
    report, grid = run_bench(cfg, progress=True)
    paths = write_outputs(report, grid, out)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_markdown(report))
        print("wrote " + ", ".join(paths.values()))
    return 0
