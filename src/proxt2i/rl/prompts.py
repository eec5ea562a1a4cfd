"""Prompt sources of the fine-tuning runs, and the prompts of each step (a pure function of seed and step)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UsageError, read_lines

# named prompt sources: the shipped evaluation sets, and fresh captions in the training grammar
# (data/caption_writer.caption) of held-in or held-out faces that exclude every prompt of the shipped
# sets (train on these, evaluate on the shipped ones); the same pair for PhotoFaces: the `photofaces` set of
# `proxt2i data prompts`, and fresh prompts of its grammar (another seed) without any of them
PROMPT_SOURCES = ("synthfaces", "synthfaces-heldout", "heldin", "heldout", "paraphrase", "photofaces", "photofaces-train")
FRESH_PROMPT_SEED, FRESH_PROMPT_COUNT = 31_337, 2048


def load_prompt_source(source: str) -> list[str]:
    """A prompt FILE (one per line) or a named source (PROMPT_SOURCES)."""
    from ..data.caption_writer import caption
    from ..data.prompts import PROMPT_SETS, load_prompts, make_prompts

    if source in PROMPT_SETS:
        return load_prompts(source)
    if source in ("photofaces", "photofaces-train"):
        from ..data.photo_captions import photo_prompts

        evaluation = photo_prompts(256)
        if source == "photofaces":
            return evaluation
        held = {p.lower() for p in evaluation}
        return [p for p in photo_prompts(FRESH_PROMPT_COUNT, FRESH_PROMPT_SEED) if p.lower() not in held]
    if source in ("synthfaces", "synthfaces-heldout"):
        shipped = {p for name in PROMPT_SETS for p in load_prompts(name)}
        kind = "heldin" if source == "synthfaces" else "heldout"
        return [p for p in make_prompts(kind, FRESH_PROMPT_COUNT, FRESH_PROMPT_SEED, writer=caption) if p not in shipped]
    path = Path(source)
    if not path.exists():
        raise UsageError(f"prompts {source!r}: not a file nor one of {', '.join(PROMPT_SOURCES)}")
    prompts = read_lines(path, "prompt file")
    if not prompts:
        raise UsageError(f"prompt file {source!r} has no prompts")
    return prompts


def step_prompts(prompts: list[str], count: int, seed: int, step: int) -> list[str]:
    """The `count` prompts of step `step`: a pure function of (seed, step); distinct when possible."""
    rng = np.random.default_rng([seed, step, 7])
    idx = rng.choice(len(prompts), size=count, replace=count > len(prompts))
    return [prompts[i] for i in idx]
