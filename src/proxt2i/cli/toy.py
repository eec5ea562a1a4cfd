"""`proxt2i toy`: the exact-prox 2-D testbed (ProxDM Fig. 1)."""

from __future__ import annotations

import json

# the subcommands this module adds, with their one-line help (cli/__init__ lists them without importing anything heavy)
COMMANDS = {"toy": "compare samplers with exact prox / score on a 2-D point-set target (W2 vs steps)"}


def register(sub) -> None:
    from ..config import seed_value

    p = sub.add_parser(
        "toy",
        help=COMMANDS["toy"],
        description=(
            "Sample 1000 points with PDA-hybrid, PDA-backward, Euler-Maruyama (with and without a final "
            "denoising step) and the probability-flow ODE at several step counts, using the exact score and "
            "exact proximal operator of a 2-D point-set target, and report the exact 2-Wasserstein distance "
            "to the target. PDA-backward is undefined (null) where a step has gamma >= 2."
        ),
    )
    p.add_argument("--steps", type=int, nargs="+", default=[3, 5, 10, 20, 40], help="step counts (default: 3 5 10 20 40)")
    p.add_argument("--num-samples", type=int, default=1000, help="points per sampler, a multiple of 200 (default 1000)")
    p.add_argument("--seed", type=seed_value, default=0, help="seed for x_T and the sampler noise (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--plot", metavar="FILE", help="save a PNG with samples and W2-vs-steps curves")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --plot FILE")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..atomic import check_output_file
    from ..errors import UsageError, check_output_path
    from ..toy import format_table, plot_toy, run_toy

    if any(n < 1 for n in args.steps):
        raise UsageError(f"--steps must all be >= 1, got {args.steps}")
    if args.num_samples < 200 or args.num_samples % 200:
        raise UsageError(f"--num-samples must be a positive multiple of 200 (the target's point count), got {args.num_samples}")
    if any(n > 1000 for n in args.steps):
        raise UsageError(f"--steps must all be <= 1000, got {args.steps}")
    if args.plot:
        check_output_path(args.plot, "--plot")
        check_output_file(args.plot, args.overwrite)  # before the run
    result = run_toy(steps=tuple(args.steps), num_samples=args.num_samples, seed=args.seed)
    if args.plot:
        plot_toy(result, args.plot, show_steps=args.steps[min(1, len(args.steps) - 1)])
    if args.json:
        print(json.dumps({"steps": list(result.steps), "w2": result.w2, "floor": result.floor}))
    else:
        print(format_table(result))
        if args.plot:
            print(f"plot written to {args.plot}")
    return 0
