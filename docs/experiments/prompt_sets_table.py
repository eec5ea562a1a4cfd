"""Markdown tables from the JSON lines of docs/experiments/prompt_sets.sh: alignment / FD per model and set,
and alignment per family. Usage: python docs/experiments/prompt_sets_table.py LABEL=FILE.jsonl ..."""

from __future__ import annotations

import json
import sys

from proxt2i.data.attributes import FAMILIES

SETS = ("heldin", "heldout", "paraphrase")


def main(args: list[str]) -> None:
    runs = {}
    for arg in args:
        label, _, path = arg.partition("=")
        runs[label] = {r["set"]: r for r in map(json.loads, open(path))}
    print("| model | " + " | ".join(f"{s} alignment / FD" for s in SETS) + " | paraphrase - heldin |")
    print("|---|" + "---|" * (len(SETS) + 1))
    for label, rows in runs.items():
        cells = [f"{rows[s]['alignment']:.3f} / {rows[s]['fd']:.3f}" if s in rows else "" for s in SETS]
        gap = f"{rows['paraphrase']['alignment'] - rows['heldin']['alignment']:+.3f}" if {"heldin", "paraphrase"} <= set(rows) else ""
        print(f"| {label} | " + " | ".join(cells) + f" | {gap} |")
    print()
    print("| model, set | " + " | ".join(FAMILIES) + " |")
    print("|---|" + "---|" * len(FAMILIES))
    for label, rows in runs.items():
        for s in SETS:
            if s in rows:
                fam = rows[s]["alignment_per_family"]
                print(f"| {label}, {s} | " + " | ".join(f"{fam[f]:.2f}" if fam.get(f) is not None else "" for f in FAMILIES) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
