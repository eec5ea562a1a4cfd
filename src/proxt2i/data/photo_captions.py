"""PhotoFaces captions and prompt parsing, in the SynthFaces caption grammar.

The families the face readers read that SynthFaces also has (expression, eyewear, facial hair, hair colour,
skin) are written by the SynthFaces caption writer (data/caption_writer.py: six grammatical forms, every
synonym) and read back by its parser. The photo-only families, head pose and framing, are clauses
of their own, placed before or after that text (background too: photos have light or dark backgrounds, not
SynthFaces' flat colours):

    "a grinning guy with sunglasses, facing left"      "tightly cropped, a person with a beard"

`parse_photo_prompt(caption)` recovers exactly the named families (tested over thousands of captions).
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import UsageError
from ..faces.attributes import PHOTO_ATTRIBUTES, PHOTO_ONLY, SHARED_FAMILIES
from .attributes import ATTRIBUTES
from .caption_writer import caption as synthfaces_caption
from .captions import parse_prompt

PHRASES: dict[tuple[str, str], tuple[str, ...]] = {
    ("pose", "left"): ("facing left", "turned to the left", "looking to the left", "head turned left", "in three-quarter view to the left"),
    ("pose", "frontal"): ("facing the camera", "looking straight ahead", "facing forward", "frontal view", "looking into the camera"),
    ("pose", "right"): ("facing right", "turned to the right", "looking to the right", "head turned right", "in three-quarter view to the right"),
    ("framing", "close-up"): ("tightly cropped", "face filling the frame", "zoomed in on the face", "tight crop"),
    ("framing", "wide"): ("head and shoulders in frame", "loosely framed", "shot from further away", "wide framing"),
    ("background", "light"): ("on a light background", "against a bright backdrop", "in front of a light background", "light background"),
    ("background", "dark"): ("on a dark background", "against a dark backdrop", "in front of a dark background", "dark background"),
}
_PATTERNS = sorted(((phrase, key) for key, phrases in PHRASES.items() for phrase in phrases), key=lambda x: -len(x[0]))
_FILLER = {f: values[0] for f, values in ATTRIBUTES.items()}  # values for families a caption does not name


def photo_caption(attrs: dict[str, str], rng: np.random.Generator, named=None) -> str:
    """A caption naming the families in `named` (default: every family in attrs) with the values in attrs."""
    named = list(attrs if named is None else named)
    for f in named:
        if f not in PHOTO_ATTRIBUTES or attrs.get(f) not in PHOTO_ATTRIBUTES[f]:
            raise UsageError(f"cannot caption {f}={attrs.get(f)!r}; families: {', '.join(PHOTO_ATTRIBUTES)}")
    shared = [f for f in named if f in SHARED_FAMILIES]
    clauses = [str(rng.choice(PHRASES[(f, attrs[f])])) for f in named if f in PHOTO_ONLY]
    body = synthfaces_caption({**_FILLER, **{f: attrs[f] for f in shared}}, rng, shared)[0] if shared else ""
    for clause in clauses:
        if not body:
            body = clause
        elif rng.random() < 0.7:
            body = f"{body.rstrip('.')}, {clause}"
        else:
            body = f"{clause}, {body}"
    return body


def parse_photo_prompt(prompt: str) -> dict[str, str]:
    """{family: value} that `prompt` names, over the PhotoFaces families. Words outside the vocabulary,
    or a SynthFaces family or value the face readers do not read (blue hair, a beanie), raise UsageError."""
    text = " " + re.sub(r"\s+", " ", prompt.lower()) + " "
    found: dict[str, str] = {}
    for phrase, (family, value) in _PATTERNS:
        pattern = rf"(?<![\w-]){re.escape(phrase)}(?![\w-])"
        if re.search(pattern, text):
            if found.get(family, value) != value:
                raise UsageError(f"prompt names two values of {family}: {found[family]} and {value}")
            found[family] = value
            text = re.sub(pattern, " , ", text)
    rest = parse_prompt(text)
    for family, value in rest.items():
        if family not in PHOTO_ATTRIBUTES or value not in PHOTO_ATTRIBUTES[family]:
            raise UsageError(f"PhotoFaces cannot read {family}={value} (readable: "
                             + "; ".join(f"{f}: {', '.join(v)}" for f, v in PHOTO_ATTRIBUTES.items()) + ")")
    return {**rest, **found}


PHOTO_PROMPT_SEED = 4242
PHOTO_PROMPT_SET = "photofaces"


def photo_prompts(num: int = 256, seed: int = PHOTO_PROMPT_SEED) -> list[str]:
    """`num` distinct prompts for PhotoFaces models, each naming 1-4 families with values drawn uniformly
    (the `photofaces` prompt set: `proxt2i data prompts photofaces`)."""
    rng = np.random.default_rng(seed)
    prompts: list[str] = []
    seen: set[str] = set()
    while len(prompts) < num:
        attrs = {f: str(rng.choice(values)) for f, values in PHOTO_ATTRIBUTES.items()}
        k = int(rng.integers(1, 5))
        named = [list(PHOTO_ATTRIBUTES)[i] for i in sorted(rng.permutation(len(PHOTO_ATTRIBUTES))[:k])]
        text = photo_caption(attrs, rng, named)
        if text.lower() not in seen:
            seen.add(text.lower())
            prompts.append(text)
    return prompts
