"""The standard SynthFaces prompt sets, shipped as src/proxt2i/assets/prompts/{heldin,heldout}.txt.

heldin:  256 distinct captions of training-distribution faces, each naming 2-6 families.
heldout: 256 distinct captions that each name both values of at least one held-out pair
         (attributes.HELDOUT_PAIRS) plus 0-4 other families.

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
from .captions import caption

PROMPT_SETS: dict[str, int] = {"heldin": 0, "heldout": 1}  # name -> id mixed into the seed
PROMPT_SEED = 20250  # the seed behind the shipped files
PROMPT_COUNT = 256


def check_prompt_set(name: str) -> str:
    if name not in PROMPT_SETS:
        raise UsageError(f"unknown prompt set {name!r}; choose from {', '.join(PROMPT_SETS)}")
    return name


def make_prompts(name: str, num: int = PROMPT_COUNT, seed: int = PROMPT_SEED) -> list[str]:
    """`num` distinct prompts of set `name`, a pure function of (name, num, seed)."""
    rng = np.random.default_rng([seed, PROMPT_SETS[check_prompt_set(name)]])
    prompts: dict[str, None] = {}
    while len(prompts) < num:
        if name == "heldout":
            attrs, pair = sample_heldout_attributes(rng)
            must, k = [f for f, _ in pair], int(rng.integers(0, 5))
        else:
            attrs, must, k = sample_attributes(rng, "train"), [], int(rng.integers(2, 7))
        others = [f for f in FAMILIES if f not in must]
        named = must + [others[i] for i in rng.permutation(len(others))[:k]]
        prompts[caption(attrs, rng, named)[0]] = None
    return list(prompts)


def prompt_file(name: str) -> Path:
    return Path(str(resources.files("proxt2i") / "assets" / "prompts" / f"{check_prompt_set(name)}.txt"))


def write_prompt_files(out_dir: str | Path | None = None) -> list[Path]:
    """Write heldin.txt and heldout.txt (one prompt per line) atomically; default: the package assets."""
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
    prompts = [line for line in read_text(path, "prompt file").split("\n") if line.strip()]
    if num is not None and not 1 <= num <= len(prompts):
        raise UsageError(f"--num must be in 1..{len(prompts)} for prompt set {name!r}, got {num}")
    if seed is not None:
        prompts = [prompts[i] for i in np.random.default_rng(seed).permutation(len(prompts))]
    return prompts[:num]
