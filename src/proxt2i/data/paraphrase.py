"""The paraphrase prompt set's grammar: the training vocabulary in frames training never writes.

Every paraphrase is a declarative sentence (or two) whose subject is followed directly by a verb:

    "The guy is smiling, wears shades and has long ginger hair."
    "A bearded woman has green irises, is on a lilac backdrop and wears a toque"
    "Some people are grinning and have a square jaw. Some people wear no glasses."

Training captions (data/caption_writer.py) put a verb only after "who", and their background clause
always ends the caption; here the background is one predicate among the others, in any position.
So no paraphrase has a training caption's frame, by construction; tests/test_captions.py checks it on
many thousands of captions. The descriptors (which words name which value) are the training writer's,
so the vocabulary is the same: only the grammar is new.
"""

from __future__ import annotations

import numpy as np

from .caption_writer import BACKGROUND_HEADS, BACKGROUND_WORDS, PLURAL_VERBS, Descriptor, _describe, _join, _noise, _noun_head, _pick

VERBS = frozenset(("is", "are", "has", "have", "wears", "wear", "looks", "look"))  # one follows each paraphrase's subject
BACKGROUND_PREDICATES = ("is on a {w} {h}", "is shown against a {w} {h}", "is in front of a {w} {h}", "is set against a plain {w} {h}")


def _background_predicate(attrs: dict, rng: np.random.Generator) -> str:
    return _pick(rng, BACKGROUND_PREDICATES).format(w=_pick(rng, BACKGROUND_WORDS[attrs["background"]]), h=_pick(rng, BACKGROUND_HEADS))


def _plural(predicate: str) -> str:
    first, _, rest = predicate.partition(" ")
    return f"{PLURAL_VERBS.get(first, first)} {rest}".strip()


def paraphrase(attrs: dict[str, str], rng: np.random.Generator, named: list[str]) -> str:
    """A paraphrase naming exactly the families `named`: parse_prompt(text) == {f: attrs[f] for f in named}."""
    families = []
    for i in rng.permutation(len(named)):
        family = "hair_color" if named[i] == "hair_style" else named[i]
        if family not in families:
            families.append(family)
    ds: list[Descriptor] = [_describe(f, attrs, named, rng) for f in families if f != "background"]
    standalone = [d.adjective for d in ds if d.standalone][:1]
    adjs = [d.adjective for d in ds if d.adjective and not d.standalone and rng.random() < 0.25]
    preds = [d.predicate for d in ds if d.adjective is None or (d.adjective not in standalone and d.adjective not in adjs)]
    preds = ["is smiling" if p == "smiles" else p for p in preds]  # "smile(s)" is also a noun: keep a verb of VERBS after the subject
    if "background" in families:
        preds.insert(int(rng.integers(len(preds) + 1)), _background_predicate(attrs, rng))
    if not preds:  # everything went before the noun: say one of them again as a predicate
        adjs, preds = adjs[1:], ["is " + adjs[0]] if adjs else ["has " + ds[0].noun_phrase]
    subject, noun = _noun_head(adjs, standalone, rng)
    if noun == "people":
        preds = [_plural(p) for p in preds]
    if len(preds) > 1 and rng.random() < 0.3:  # two sentences, the subject repeated
        cut = int(rng.integers(1, len(preds)))
        again = noun if noun == "someone" else f"the {noun}"
        text = f"{subject} {_join(preds[:cut], rng)}. {again.capitalize()} {_join(preds[cut:], rng)}"
    else:
        text = f"{subject} {_join(preds, rng)}"
    return _noise(text[:1].upper() + text[1:] if rng.random() < 0.5 else text, rng)
