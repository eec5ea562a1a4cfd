"""The standard SynthFaces prompt sets, shipped as src/proxt2i/assets/prompts/{heldin,heldout,paraphrase}.txt.

heldin:     256 distinct captions of training-distribution faces, each naming 2-6 families
            (the classic writer, one of the training caption forms).
heldout:    256 distinct captions that each name both values of at least one held-out pair
            (attributes.HELDOUT_PAIRS) plus 0-4 other families (the classic writer).
paraphrase: 256 distinct prompts of training-distribution faces naming 2-6 families, in the
            paraphrase grammar (data/paraphrase.py), whose frames no training caption has.

The files are the output of `make_prompts` (regenerate with `proxt2i data make-prompts`); a test
checks that the committed files still equal it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from ..errors import UsageError, read_text
from .attributes import FAMILIES, sample_attributes, sample_heldout_attributes
from .caption_writer import classic_caption
from .paraphrase import paraphrase

PROMPT_SETS: dict[str, int] = {"heldin": 0, "heldout": 1, "paraphrase": 2}  # name -> id mixed into the seed
PROMPT_SEED = 20250  # the seed behind the shipped files
PROMPT_COUNT = 256


def check_prompt_set(name: str) -> str:
    if name not in PROMPT_SETS:
        raise UsageError(f"unknown prompt set {name!r}; choose from {', '.join(PROMPT_SETS)}")
    return name


def make_prompts(name: str, num: int = PROMPT_COUNT, seed: int = PROMPT_SEED, writer=None) -> list[str]:
    """`num` distinct prompts of set `name`, a pure function of (name, num, seed). writer(attrs, rng,
    named) -> (text, named) replaces the set's own writer for heldin / heldout (the fine-tuning prompt
    sources use the training mixture, data/caption_writer.caption)."""
    rng = np.random.default_rng([seed, PROMPT_SETS[check_prompt_set(name)]])
    writer = writer or classic_caption
    prompts: dict[str, None] = {}
    while len(prompts) < num:
        if name == "heldout":
            attrs, pair = sample_heldout_attributes(rng)
            must, k = [f for f, _ in pair], int(rng.integers(0, 5))
        else:
            attrs, must, k = sample_attributes(rng, "train"), [], int(rng.integers(2, 7))
        others = [f for f in FAMILIES if f not in must]
        named = must + [others[i] for i in rng.permutation(len(others))[:k]]
        text = paraphrase(attrs, rng, named) if name == "paraphrase" else writer(attrs, rng, named)[0]
        prompts[text] = None
    return list(prompts)


def prompt_file(name: str) -> Path:
    return Path(str(resources.files("proxt2i") / "assets" / "prompts" / f"{check_prompt_set(name)}.txt"))


def write_prompt_files(out_dir: str | Path | None = None) -> list[Path]:
    """Write heldin.txt, heldout.txt and paraphrase.txt (one prompt per line) atomically; default: the package assets."""
    paths = []
    for name in PROMPT_SETS:
        path = prompt_file(name) if out_dir is None else Path(out_dir) / f"{name}.txt"
        atomic_write_text(path, "\n".join(make_prompts(name)) + "\n")
        paths.append(path)
    return paths


def load_prompts(name: str, num: int | None = None, seed: int | None = None) -> list[str]:
    """The shipped prompt set: in file order, or shuffled by `seed`; the first `num` of them."""
    path = prompt_file(name)
    if not path.is_file():
        raise UsageError(f"prompt file {path} is missing; run `proxt2i data make-prompts`")
    return select_prompts([line for line in read_text(path, "prompt file").split("\n") if line.strip()], name, num, seed)


def select_prompts(prompts: list[str], name: str, num: int | None = None, seed: int | None = None) -> list[str]:
    """`prompts` in order, or shuffled by `seed`; the first `num` of them (1..len, else UsageError naming the set)."""
    if num is not None and not 1 <= num <= len(prompts):
        raise UsageError(f"--num must be in 1..{len(prompts)} for prompt set {name!r}, got {num}")
    if seed is not None:
        prompts = [prompts[i] for i in np.random.default_rng(seed).permutation(len(prompts))]
    return prompts[:num]
