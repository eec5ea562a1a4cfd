"""Alignment per training caption form: is a prompt set hard because of its grammar or its words?

For each form of data/caption_writer.py (classic, noun phrase, relative, tags, lead, subjectless) and for the
full training mixture, writes 256 prompts with the held-in set's attributes and named families
(data/prompts.make_prompts("heldin", writer=...)), generates one image per prompt at 4 steps and evaluates
it: one JSON object per line, like docs/experiments/prompt_sets.sh. The classic form uses only the classic
writer's words; the other forms use every word the parser knows, so classic against mixture separates the
vocabulary from the grammar, and mixture against the paraphrase set (new frames, same words) measures the grammar.

    python docs/experiments/caption_forms.py --model synthfaces-prox-nft --out outputs/forms > forms.jsonl
    python docs/experiments/caption_forms.py --table forms.jsonl
    python docs/experiments/caption_forms.py --phrases outputs/forms/{noun-phrase,relative,tags,lead,subjectless}

--phrases pools image folders and prints, per phrase that named a family (data/captions.naming_phrases), how
often the evaluator read the prompted value, as JSON lines from the worst phrase to the best. With
--vocab CONFIG (a model's config.json, e.g. `git show 4e80758:src/proxt2i/assets/models/synthfaces-prox/config.json`),
two last lines pool the phrases with a word outside that model's text vocabulary and those without.
--share PHRASE ... prints the percentage of 20000 training captions (split "train", seed 0) that contain each phrase.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from proxt2i.data.attributes import FAMILIES
from proxt2i.data.caption_writer import CAPTION_FORMS, caption
from proxt2i.data.captions import naming_phrases
from proxt2i.data.prompts import make_prompts
from proxt2i.evaluation.evaluator import load_evaluator
from proxt2i.evaluation.features import recognise
from proxt2i.evaluation.folder import read_image_folder
from proxt2i.evaluation.metrics import prompt_labels


def form_prompts(form: str | None) -> list[str]:
    """256 prompts of the held-in attributes written in `form` (None: the training mixture)."""
    return make_prompts("heldin", writer=lambda attrs, rng, named: caption(attrs, rng, named, form=form))


def measure(model: str, out: Path, extra: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for form in (*CAPTION_FORMS, None):
        name = form or "mixture"
        images = out / name.replace(" ", "-")
        prompts = images.with_suffix(".txt")
        prompts.write_text("\n".join(form_prompts(form)) + "\n")
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


def phrases(folders: list[str], vocab_config: str | None) -> None:
    ev = load_evaluator()
    hits: dict[tuple[str, str], list[bool]] = {}
    for folder in folders:
        images, prompts = read_image_folder(folder, ev)
        predicted = {k: v.argmax(1) for k, v in recognise(ev, images)[1].items()}
        for i, prompt in enumerate(prompts):
            named = naming_phrases(prompt)
            for family, label in prompt_labels(ev, prompt).items():
                hits.setdefault((family, named[family]), []).append(int(predicted[family][i]) == label)
    rows = sorted(((sum(h) / len(h), len(h), f, p) for (f, p), h in hits.items()))
    for accuracy, n, family, phrase in rows:
        print(json.dumps({"family": family, "phrase": phrase, "n": n, "accuracy": round(accuracy, 3)}))
    if vocab_config:
        vocab = set(json.loads(Path(vocab_config).read_text())["text_encoder"]["vocab"])
        for outside in (True, False):
            pooled = [h for (_, p), hs in hits.items() for h in hs if any(w not in vocab for w in p.split()) == outside]
            print(json.dumps({"phrases": "with a word outside the vocabulary" if outside else "inside the vocabulary",
                              "n": len(pooled), "accuracy": round(sum(pooled) / max(len(pooled), 1), 3)}))


def share(phrases: list[str], num: int = 20000) -> None:
    import numpy as np

    from proxt2i.data.synthfaces import sample_attributes
    from proxt2i.text_split import prompt_words

    rng = np.random.default_rng(0)
    counts = dict.fromkeys(phrases, 0)
    for _ in range(num):
        text = " " + " ".join(prompt_words(caption(sample_attributes(rng, "train"), rng)[0])) + " "
        for p in phrases:
            counts[p] += f" {' '.join(prompt_words(p))} " in text
    print(json.dumps({p: round(100 * c / num, 2) for p, c in counts.items()}))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="synthfaces-prox-nft")
    parser.add_argument("--out", type=Path, help="folder for the prompt files and images")
    parser.add_argument("--table", help="print a markdown table of a JSON-lines file this script wrote, and stop")
    parser.add_argument("--phrases", nargs="+", metavar="FOLDER", help="per-phrase accuracy over these image folders, and stop")
    parser.add_argument("--vocab", metavar="CONFIG", help="with --phrases: split by this model config's text vocabulary")
    parser.add_argument("--share", nargs="+", metavar="PHRASE", help="percentage of training captions naming each phrase, and stop")
    args, extra = parser.parse_known_args(argv)
    if args.share:
        share(args.share)
    elif args.phrases:
        phrases(args.phrases, args.vocab)
    elif args.table:
        table(args.table)
    elif args.out is None:
        parser.error("--out is required unless --table is given")
    else:
        measure(args.model, args.out, extra)


if __name__ == "__main__":
    main(sys.argv[1:])
