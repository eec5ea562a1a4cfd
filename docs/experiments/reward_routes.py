"""Reward routes against CPU minutes (docs/finetune.md, "Every route at one budget").

    python docs/experiments/reward_routes.py time OUT.json [--iterations K] [--routes A,B]
        runs K iterations of each route (or of the named ones) alone (2 threads, the settings of the compared
        runs) in a temporary folder and records the median seconds per iteration (the first iteration
        excluded) in OUT.json, keeping the routes already there
    python docs/experiments/reward_routes.py curves TIMES.json LABEL=ROUTE:RUN_DIR ... [--plot FILE.png]
        held-out alignment and FD of every evaluation in each run's log.jsonl (or, for a model folder or
        shipped name, its recorded final evaluation) against minutes = iterations x the route's seconds per
        iteration alone; prints a markdown table

Minutes are computed from timings taken alone because the compared runs shared the 2 cores with each
other at times; a run's own logged seconds then measure the sharing, not the route.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# the settings of the compared runs (docs/finetune.md); each route is timed with exactly these
ROUTES = {
    "grpo": ["finetune", "grpo", "--reward", "alignment-prob", "--lr", "5e-5", "--kl", "0.03", "--prompts-per-step", "8",
             "--inner-epochs", "2"],
    "grpo-branch": ["finetune", "grpo", "--reward", "alignment-prob", "--lr", "5e-5", "--kl", "0.03", "--prompts-per-step", "8",
                    "--inner-epochs", "2", "--branches", "2,2,2"],
    "nft": ["finetune", "nft", "--reward", "alignment-prob", "--lr", "2e-5"],
    "r0": ["finetune", "r0", "--reward", "alignment-prob"],
    "r0-score": ["finetune", "r0", "--reward", "alignment-prob", "--model", "synthfaces-score"],
}


def time_routes(out: Path, iterations: int, names: list[str]) -> None:
    """Times the named routes (all when empty) and adds them to OUT.json (kept routes stay as they are)."""
    result = json.loads(out.read_text()) if out.exists() else {}
    for name, args in ROUTES.items():
        if names and name not in names:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "proxt2i", *args, "--steps", str(iterations), "--threads", "2", "--eval-num", "1",
                            "--checkpoint-every", str(iterations), "--out", f"{tmp}/run", "--no-progress"],
                           check=True, stdout=subprocess.DEVNULL)
            rows = [json.loads(line) for line in Path(f"{tmp}/run/log.jsonl").read_text().splitlines()]
            seconds = [r["seconds"] for r in rows if "eval" not in r][1:]
        result[name] = {"seconds_per_iteration": statistics.median(seconds), "iterations_timed": len(seconds)}
        print(json.dumps({name: result[name]}), flush=True)
    out.write_text(json.dumps(result, indent=1) + "\n")


def curves(times: dict, runs: list[str], plot: str | None) -> None:
    table = {}
    for arg in runs:
        label, _, rest = arg.partition("=")
        route, _, run = rest.partition(":")
        per_it = times[route]["seconds_per_iteration"]
        if (Path(run) / "log.jsonl").exists():
            rows = [json.loads(line) for line in (Path(run) / "log.jsonl").read_text().splitlines()]
        else:  # a model folder (a shipped stage): its recorded final evaluation only
            from proxt2i.shipped import resolve_model

            recipe = json.loads((resolve_model(run) / "config.json").read_text())["recipe"]
            rows = [{"step": recipe["steps_done"], "eval": recipe["final_eval"]}]
        table[label] = [(r["step"] * per_it / 60, r["eval"]["alignment"], r["eval"]["fd"]) for r in rows if "eval" in r]
    print("| run | minutes (alone) | held-out alignment | FD |")
    print("|---|---:|---:|---:|")
    for label, points in table.items():
        for minutes, alignment, fd in points:
            print(f"| {label} | {minutes:.1f} | {alignment:.3f} | {fd:.3f} |")
    if plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
        for label, points in table.items():
            m, al, fd = zip(*points)
            a.plot(m, al, marker="o", label=label)
            b.plot(m, fd, marker="o", label=label)
        a.set(xlabel="CPU minutes (2 cores, alone)", ylabel="held-out alignment (256 prompts, 4 steps)")
        b.set(xlabel="CPU minutes (2 cores, alone)", ylabel="FD to renders (lower is better)")
        a.legend()
        fig.tight_layout()
        fig.savefig(plot, dpi=100)
        print(f"wrote {plot}")


def main(argv: list[str]) -> None:
    if argv[:1] == ["time"]:
        k = int(argv[argv.index("--iterations") + 1]) if "--iterations" in argv else 5
        names = argv[argv.index("--routes") + 1].split(",") if "--routes" in argv else []
        time_routes(Path(argv[1]), k, names)
    elif argv[:1] == ["curves"]:
        plot = argv[argv.index("--plot") + 1] if "--plot" in argv else None
        runs = [a for a in argv[2:] if "=" in a]
        curves(json.loads(Path(argv[1]).read_text()), runs, plot)
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
