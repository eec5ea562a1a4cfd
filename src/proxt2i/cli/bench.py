"""`proxt2i bench`: quality versus steps of the prox samplers against score samplers, the speedup at a
fixed quality level, and (--overhead) the samplers' own cost per step (docs/benchmark.md)."""

from __future__ import annotations

import json

# the subcommands this module adds, with their one-line help (cli/__init__ lists them without importing anything heavy)
COMMANDS = {"bench": "quality vs steps: prox samplers against DDIM / DPM-Solver++ / UniPC / Euler score samplers; speedup"}


def register(sub) -> None:
    from ..bench import ALIGNMENT_FRACTION, FD_FACTOR, PRESETS, BenchConfig
    from ..config import add_config_arguments

    p = sub.add_parser(
        "bench",
        help=COMMANDS["bench"],
        description=(
            "Generate the held-in and held-out prompt sets (same seeds for every sampler) with each sampler at each "
            "step count, score them with the SynthFaces evaluator, and report alignment, FD, CLIP score and seconds "
            f"per image against NFE (guidance included: w != 1 costs 2 NFE per step). Speedup at a fixed quality "
            f"level (alignment {ALIGNMENT_FRACTION} x, FD {FD_FACTOR} x the best score sampler at its largest step "
            "count) = best score sampler's NFE / pda-hybrid's NFE, and the same against the best few-step model "
            "(--few-step-models synthfaces-lcm,...: each sampled with its own sampler and guidance, e.g. a consistency "
            "model with the consistency sampler, one pass per step). Writes results.json, results.md, "
            "quality_vs_nfe.png and sampler_grid.png to --out. --overhead instead times each sampler's cost per "
            "step beyond the network and images/s at 4 steps (batch 1 and 32, CPU and CUDA if present). "
            "Options may also be given as key=value after a preset name (e.g. proxt2i bench quick steps=2,4)."
        ),
    )
    add_config_arguments(p, BenchConfig, presets=PRESETS)
    quick = PRESETS["quick"]
    p.add_argument("--out", default="outputs/bench", help="output folder, built beside and swapped in when complete (default outputs/bench)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier bench folder at --out as a whole (only a folder with "
                                                             "results.json or overhead.json, whose overhead.json is kept; any other "
                                                             "non-empty folder is never replaced); with --overhead, replace overhead.json")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--quick", action="store_true",
                   help=f"the preset quick: {quick.num_prompts} prompts per set, steps {','.join(map(str, quick.steps))}, "
                        f"samplers {','.join(quick.samplers)} (explicit options still win)")
    p.add_argument("--overhead", action="store_true", help="time sampler overhead per step and images/s instead (prints JSON)")
    p.add_argument("--repeats", type=int, default=3, help="--overhead: timed runs per measurement (default 3)")
    p.set_defaults(func=run)


def bench_config(args):
    """The BenchConfig of parsed `bench` arguments (--quick = the preset quick)."""
    from ..bench import PRESETS, BenchConfig
    from ..config import config_from_args
    from ..errors import UsageError

    words = list(args.settings)
    if args.quick:
        if words and "=" not in words[0]:
            raise UsageError(f"--quick and the preset {words[0]!r} both name a preset; give one")
        words = ["quick", *words]
    return config_from_args(BenchConfig, args, presets=PRESETS, words=words)


def run(args) -> int:
    import shutil
    from pathlib import Path

    from ..bench import format_markdown, run_bench, sampler_overhead, write_outputs
    from ..config import print_config
    from ..errors import UsageError, check_output_path

    cfg = bench_config(args)
    if args.print_config:
        print_config(cfg)
        return 0
    from ..atomic import atomic_write_json, check_output_file, check_output_folder, marked_by, output_lock, replace_folder

    out = check_output_path(args.out, "--out", folder=True)
    ours = marked_by(*BENCH_MARKERS)
    if args.overhead:
        if args.repeats < 1:
            raise UsageError(f"--repeats must be >= 1, got {args.repeats}")
        check_output_file(out / "overhead.json", args.overwrite)  # one file, beside the other outputs of the folder
        with output_lock(out):
            result = sampler_overhead(cfg, repeats=args.repeats, progress=True)
            atomic_write_json(out / "overhead.json", result)
        print(json.dumps(result))
        return 0
    check_output_folder(out, args.overwrite, ours, "bench folder (results.json)")
    with replace_folder(out, overwrite=args.overwrite, is_ours=ours, what="bench folder (results.json)") as tmp:
        report, grid = run_bench(cfg, progress=True)
        paths = write_outputs(report, grid, tmp)
        if (out / "overhead.json").is_file():  # a separate measurement (--overhead) that lives beside the results: kept
            shutil.copy2(out / "overhead.json", tmp / "overhead.json")
    if args.json:
        print(json.dumps(report))
    else:
        print(format_markdown(report))
        print("wrote " + ", ".join(str(out / Path(p).name) for p in paths.values()))
    return 0


# files that make a folder a bench output, which --overwrite may replace
BENCH_MARKERS = ("results.json", "overhead.json")
