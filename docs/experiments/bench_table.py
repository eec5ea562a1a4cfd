"""Markdown tables of alignment / FD per sampler and step count from a `proxt2i bench` results.json, the best
of each column in bold, plus the speedup summary. Usage:

    python docs/experiments/bench_table.py docs/bench-stage8/results.json [--steps 1,2,3,4,8,16]
"""

from __future__ import annotations

import argparse
import json


def _cell(row: dict | None, best_alignment: float, best_fd: float) -> str:
    if row is None:
        return "n/a"
    a, f = f"{row['alignment']:.3f}", f"{row['fd']:.2f}"
    a = f"**{a}**" if row["alignment"] == best_alignment else a
    f = f"**{f}**" if row["fd"] == best_fd else f
    return f"{a} / {f}"


def tables(results: dict, steps: list[int]) -> str:
    rows = results["results"]
    samplers = list(dict.fromkeys(r["sampler"] for r in rows))
    out = []
    for prompt_set in dict.fromkeys(r["prompt_set"] for r in rows):
        at = {(r["sampler"], r["steps"]): r for r in rows if r["prompt_set"] == prompt_set}
        out.append(f"| sampler | {prompt_set} " + " | ".join(f"{s} step{'s' if s > 1 else ''}" for s in steps) + " |")
        out.append("|---|" + "---|" * len(steps))
        best = {s: (max(r["alignment"] for (_, k), r in at.items() if k == s), min(r["fd"] for (_, k), r in at.items() if k == s))
                for s in steps}
        for name in samplers:
            out.append(f"| {name} | " + " | ".join(_cell(at.get((name, s)), *best[s]) for s in steps) + " |")
        out.append("")
        speed = results.get("speedup", {}).get(prompt_set)
        if speed:
            for metric in ("alignment", "fd"):
                m = speed[metric]
                nfe = {k: (f"{v:.1f}" if v is not None else "never") for k, v in m["nfe_to_target"].items()}
                out.append(f"- {metric} level {m['target']:.3f} (set by the best score sampler at {speed['reference_steps']} steps; "
                           f"the fastest score sampler to it: {m['best_score_sampler']}). NFE to reach it: " + ", ".join(f"{k} {v}" for k, v in nfe.items())
                           + (f"; speedup of the prox sampler {m['speedup']:.2f}x" if m.get("speedup") else ""))
            out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--steps", default="1,2,3,4,8,16")
    args = parser.parse_args()
    print(tables(json.load(open(args.results)), [int(s) for s in args.steps.split(",")]))


if __name__ == "__main__":
    main()
