"""Alignment per training caption form: is a prompt set hard because of its grammar or its words?

For each form of data/caption_writer.py (classic, noun phrase, relative, tags, lead, subjectless) and for the
full training mixture, writes 256 prompts with the held-in set's attributes and named families
(data/prompts.make_prompts("heldin", writer=...)), generates one image per prompt at 4 steps and evaluates
it: one JSON object per line, like docs/experiments/prompt_sets.sh. The classic form uses only the classic
writer's words; the other forms use every word the parser knows, so classic against mixture separates the
vocabulary from the grammar, and mixture against the paraphrase set (new frames, same words) measures the grammar.

    python docs/experiments/caption_forms.py --model synthfaces-prox-nft --out outputs/forms > forms.jsonl
    python docs/experiments/caption_forms.py --table forms.jsonl
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from proxt2i.data.caption_writer import CAPTION_FORMS, caption
from proxt2i.data.prompts import make_prompts

FAMILIES = ("skin", "face_shape", "hair_color", "hair_style", "eye_color", "expression", "eyewear", "headwear",
            "facial_hair", "earrings", "background")


def form_prompts(form: str | None) -> list[str]:
    """256 prompts of the held-in attributes written in `form` (None: the training mixture)."""
    return make_prompts("heldin", writer=lambda attrs, rng, named: caption(attrs, rng, named, form=form))


def measure(model: str, out: Path, extra: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for form in (*CAPTION_FORMS, None):
        name = form or "mixture"
        prompts = out / f"{name.replace(' ', '-')}.txt"
        prompts.write_text("\n".join(form_prompts(form)) + "\n")
        images = out / name.replace(" ", "-")
        subprocess.run(["proxt2i", "generate", "--prompts", str(prompts), "--num", "1", "--steps", "4", "--seed", "0",
                        "--model", model, "--out", str(images), "--overwrite", *extra], check=True, stdout=subprocess.DEVNULL)
        report = json.loads(subprocess.run(["proxt2i", "evaluate", str(images), "--json"], check=True,
                                           capture_output=True, text=True).stdout)
        print(json.dumps({"set": name, "model": model, **report}), flush=True)


def table(path: str) -> None:
    rows = [json.loads(line) for line in open(path)]
    print("| form | alignment | FD | " + " | ".join(FAMILIES) + " |")
    print("|---|---|---|" + "---|" * len(FAMILIES))
    for r in rows:
        fam = r["alignment_per_family"]
        print(f"| {r['set']} | {r['alignment']:.3f} | {r['fd']:.3f} | "
              + " | ".join(f"{fam[f]:.2f}" if fam.get(f) is not None else "" for f in FAMILIES) + " |")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="synthfaces-prox-nft")
    parser.add_argument("--out", type=Path, help="folder for the prompt files and images")
    parser.add_argument("--table", help="print a markdown table of a JSON-lines file this script wrote, and stop")
    args, extra = parser.parse_known_args(argv)
    if args.table:
        table(args.table)
    elif args.out is None:
        parser.error("--out is required unless --table is given")
    else:
        measure(args.model, args.out, extra)


if __name__ == "__main__":
    main(sys.argv[1:])
