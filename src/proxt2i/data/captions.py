"""SynthFaces captions and the prompt parser, over one controlled vocabulary.

`parse_prompt` maps text to {family: value}; `vocabulary` lists what it reads. The caption writers
(data/caption_writer.py, data/paraphrase.py) write text over these tables, and for every caption
parse_prompt(text) == {f: attrs[f] for f in named}.

Grammar of the parser (words lower-cased, hyphens and punctuation split off):
  * phrases of 1-3 words name a value outright: "smiling", "big smile", "sunglasses", "no hat";
  * modifiers ("red", "long", "pale", "round", ...) wait for the next head noun, which decides
    what they describe: "red hair" / "red-haired" -> hair_color, "green eyes" -> eye_color,
    "pale skin" -> skin, "round face" -> face_shape, "yellow background" -> background;
    a few modifiers also stand alone ("a blond person");
  * glue words ("a", "with", "wearing", ...) are ignored; nouns ("person", "portrait", ...) carry
    no attribute (SynthFaces has no gender family: "man", "woman" are nouns too);
  * anything else is an unknown word: UsageError names them all.
"""

from __future__ import annotations

import functools

from ..errors import UsageError
from ..text_split import prompt_words
from .attributes import ATTRIBUTES

# ---------------------------------------------------------------- vocabulary

# Words that name a value on their own. Several words per value = synonyms.
VALUE_PHRASES: dict[tuple[str, str], tuple[str, ...]] = {
    ("expression", "neutral"): ("neutral", "neutral expression", "expressionless", "serious", "calm", "straight faced", "blank expression"),
    ("expression", "smiling"): ("smiling", "smile", "big smile", "grinning", "grin", "happy", "beaming", "smiles"),
    ("expression", "sad"): ("sad", "frowning", "frown", "unhappy", "gloomy", "sad looking"),
    ("expression", "surprised"): ("surprised", "astonished", "shocked", "amazed", "open mouthed"),
    ("eyewear", "none"): ("no glasses", "without glasses", "no eyewear", "without eyewear", "no spectacles"),
    ("eyewear", "glasses"): ("glasses", "spectacles", "eyeglasses", "bespectacled", "clear glasses"),
    ("eyewear", "sunglasses"): ("sunglasses", "shades", "dark glasses", "sun glasses", "tinted glasses"),
    ("headwear", "none"): ("no hat", "without a hat", "without hat", "no headwear", "bareheaded", "bare headed"),
    ("headwear", "cap"): ("cap", "baseball cap", "ball cap"),
    ("headwear", "beanie"): ("beanie", "beanie hat", "knit hat", "knitted hat", "woolly hat", "wool hat", "toque"),
    ("headwear", "headband"): ("headband", "head band", "hairband"),
    ("facial_hair", "none"): ("clean shaven", "no facial hair", "without facial hair"),
    ("facial_hair", "moustache"): ("moustache", "mustache", "moustached", "mustached", "mustachioed"),
    ("facial_hair", "beard"): ("beard", "bearded", "full beard"),
    ("earrings", "none"): ("no earrings", "without earrings"),
    ("earrings", "earrings"): ("earrings", "earring", "hoop earrings", "gold earrings", "hoops"),
    ("hair_style", "bun"): ("top knot", "topknot", "in a bun"),
    ("hair_color", "red"): ("redhead",),
}

# head noun -> kind of thing it names (and a value it implies, if any)
HEADS: dict[str, tuple[str, tuple[str, str] | None]] = {
    "hair": ("hair", None), "haired": ("hair", None), "afro": ("hair", ("hair_style", "afro")),
    "bun": ("hair", ("hair_style", "bun")),
    "eyes": ("eyes", None), "eyed": ("eyes", None), "eye": ("eyes", None), "irises": ("eyes", None),
    "skin": ("skin", None), "skinned": ("skin", None), "complexion": ("skin", None),
    "face": ("face", None), "faced": ("face", None), "jaw": ("face", None), "jawed": ("face", None),
    "background": ("background", None), "backdrop": ("background", None), "backgrounds": ("background", None),
}

# head kind -> modifier word -> (family, value)
MODIFIERS: dict[str, dict[str, tuple[str, str]]] = {
    "hair": {
        **{w: ("hair_color", "black") for w in ("black", "jet black", "raven")},
        **{w: ("hair_color", "brown") for w in ("brown", "brunette", "chestnut")},
        **{w: ("hair_color", "blond") for w in ("blond", "blonde", "golden", "yellow")},
        **{w: ("hair_color", "red") for w in ("red", "ginger", "auburn", "orange")},
        **{w: ("hair_color", "grey") for w in ("grey", "gray", "silver", "white")},
        **{w: ("hair_color", "blue") for w in ("blue",)},
        "long": ("hair_style", "long"), "short": ("hair_style", "short"),
    },
    "eyes": {"blue": ("eye_color", "blue"), "green": ("eye_color", "green"), "brown": ("eye_color", "brown")},
    "skin": {
        "pale": ("skin", "pale"), "fair": ("skin", "pale"), "light": ("skin", "pale"),
        "tan": ("skin", "tan"), "tanned": ("skin", "tan"), "olive": ("skin", "tan"),
        "brown": ("skin", "brown"), "dark": ("skin", "dark"),
    },
    "face": {"round": ("face_shape", "round"), "oval": ("face_shape", "oval"), "square": ("face_shape", "square")},
    "background": {
        "white": ("background", "white"), "blue": ("background", "blue"), "green": ("background", "green"),
        "yellow": ("background", "yellow"), "pink": ("background", "pink"),
        "purple": ("background", "purple"), "violet": ("background", "purple"), "lilac": ("background", "purple"),
    },
}
# modifiers that name a hair colour when no head noun follows ("a blond person")
STANDALONE: dict[str, tuple[str, str]] = {
    "blond": ("hair_color", "blond"), "blonde": ("hair_color", "blond"),
    "brunette": ("hair_color", "brown"), "ginger": ("hair_color", "red"),
}
GLUE = frozenset(
    "a an the of with and wearing wears wear in on against has have having who is are looking "
    "plus also her his their pair front set some colour color colored coloured plain solid tone "
    "expression look looks style shape close up closeup showing shown very big slightly".split()
)
NOUNS = frozenset(
    "person someone individual character portrait photo photograph picture image headshot drawing "
    "illustration avatar render cartoon man woman boy girl guy lady people".split()
)
NEGATIONS = frozenset(("no", "without"))


def _phrase_table() -> dict[tuple[str, ...], tuple[str, str]]:
    table = {}
    for fv, phrases in VALUE_PHRASES.items():
        for p in phrases:
            table[tuple(p.split())] = fv
    return table


PHRASES = _phrase_table()
MODIFIER_PHRASES = {tuple(w.split()) for words in MODIFIERS.values() for w in words} | {(w,) for w in STANDALONE}
MAX_PHRASE = max(len(p) for p in (*PHRASES, *MODIFIER_PHRASES))


# ---------------------------------------------------------------- parser

def parse_prompt(prompt: str) -> dict[str, str]:
    """Prompt -> {family: value} for each family it names (others are free).

    Raises UsageError naming the unknown words, a modifier that describes nothing it can
    ("round glasses"), or a family named with two different values."""
    return {family: value for family, (value, _) in _parse(prompt).items()}


def naming_phrases(prompt: str) -> dict[str, str]:
    """Prompt -> {family: the words that named it} ("ginger", "red hair", "shades"); errors as parse_prompt."""
    return {family: words for family, (_, words) in _parse(prompt).items()}


def _parse(prompt: str) -> dict[str, tuple[str, str]]:
    """Prompt -> {family: (value, the words that named it first)}; errors as parse_prompt."""
    tokens = prompt_words(prompt)
    out: dict[str, tuple[str, str]] = {}
    unknown: list[str] = []
    problems: list[str] = []
    pending: list[str] = []  # modifiers waiting for a head noun

    def assign(fv: tuple[str, str], word: str) -> None:
        family, value = fv
        if family not in out:
            out[family] = (value, word)
        elif out[family][0] != value:
            problems.append(f"{family} is named twice ({out[family][0]!r} and {value!r} from {word!r})")

    def flush(before: str | None) -> None:
        for w in pending:
            if w in STANDALONE:
                assign(STANDALONE[w], w)
            else:
                kinds = [k for k, words in MODIFIERS.items() if w in words]
                where = f" before {before!r}" if before else " at the end"
                problems.append(f"{w!r}{where} does not say what it describes (say e.g. '{w} {kinds[0]}')")
        pending.clear()

    i = 0
    while i < len(tokens):
        for n in range(min(MAX_PHRASE, len(tokens) - i), 0, -1):
            phrase = tuple(tokens[i : i + n])
            if phrase in PHRASES:
                flush(" ".join(phrase))
                assign(PHRASES[phrase], " ".join(phrase))
                break
            if phrase in MODIFIER_PHRASES:
                pending.append(" ".join(phrase))
                break
        else:
            n, word = 1, tokens[i]
            if word in HEADS:
                kind, implied = HEADS[word]
                for w in pending:
                    if w in MODIFIERS[kind]:
                        assign(MODIFIERS[kind][w], f"{w} {word}")
                    else:
                        problems.append(f"{w!r} cannot describe {word!r} (words for {kind}: {', '.join(MODIFIERS[kind])})")
                pending.clear()
                if implied:
                    assign(implied, word)
            elif word in NEGATIONS:
                problems.append(
                    f"'{' '.join(tokens[i:i + 2])}' is not understood; negate a whole family: "
                    "no glasses, no hat, no facial hair, no earrings"
                )
                n = 2
            elif word in NOUNS:
                flush(word)
            elif word not in GLUE:
                unknown.append(word)
        i += n
    flush(None)
    if unknown:
        words = ", ".join(dict.fromkeys(unknown))
        raise UsageError(f"prompt has words outside the SynthFaces vocabulary: {words} (see `proxt2i data vocab`)")
    if problems:
        raise UsageError("; ".join(problems))
    return out


def vocabulary() -> dict[str, dict[str, list[str]]]:
    """family -> value -> the words and phrases parse_prompt reads as that value."""
    vocab = {f: {v: [] for v in values} for f, values in ATTRIBUTES.items()}
    for (f, v), phrases in VALUE_PHRASES.items():
        vocab[f][v] += phrases
    for kind, words in MODIFIERS.items():
        heads = [h for h, (k, _) in HEADS.items() if k == kind and HEADS[h][1] is None]
        for w, (f, v) in words.items():
            vocab[f][v].append(f"{w} {kind}" if len(heads) == 1 else f"{w} {'/'.join(heads)}")
    for h, (kind, implied) in HEADS.items():
        if implied:
            vocab[implied[0]][implied[1]].append(h)
    for w, (f, v) in STANDALONE.items():
        vocab[f][v].append(w)
    return vocab


# ---------------------------------------------------------------- words that say the same thing

def _meaning_groups() -> list[list[tuple[str, ...]]]:
    """Groups of phrases (word tuples) the parser reads the same way: one group per (family, value),
    gathering its value phrases, modifiers (under any head), implied heads and standalone words; one per
    head kind ("eyes", "irises", ...); and the attribute-free nouns."""
    by_value: dict[tuple[str, str], set[tuple[str, ...]]] = {}
    for fv, phrases in VALUE_PHRASES.items():
        by_value.setdefault(fv, set()).update(tuple(p.split()) for p in phrases)
    for words in MODIFIERS.values():
        for w, fv in words.items():
            by_value.setdefault(fv, set()).add(tuple(w.split()))
    for source in ({h: i for h, (_, i) in HEADS.items() if i}, STANDALONE):
        for w, fv in source.items():
            by_value.setdefault(fv, set()).add((w,))
    heads: dict[str, set[tuple[str, ...]]] = {}
    for h, (kind, implied) in HEADS.items():
        if implied is None:
            heads.setdefault(kind, set()).add((h,))
    groups = [*by_value.values(), *heads.values(), {(n,) for n in NOUNS}]
    return [sorted(g) for g in groups]


MEANING_GROUPS = _meaning_groups()


def same_meaning_words(word: str) -> tuple[str, ...]:
    """Other words that say what `word` says in some phrase of the parser's tables (sorted): in a group of
    same-meaning phrases, a one-word phrase is equivalent to a phrase's specific words (those used by this
    group only: "sun" of "sun glasses" ~ "sunglasses", "shades"; not "glasses"), and two equal-length
    phrases that differ in one position make those two words equivalent ("knit hat" ~ "knitted hat").
    Glue words have none: their role varies ("looking" of "sad looking"). Used to start a new word's text
    embedding from words a model already reads (training/factories.py)."""
    if word in GLUE:
        return ()
    groups_of = _groups_by_word()
    out: set[str] = set()
    for g in groups_of.get(word, ()):
        group = MEANING_GROUPS[g]
        for p in (p for p in group if word in p):
            i = p.index(word)
            specific = len(p) == 1 or groups_of[word] == {g}
            for q in group:
                if len(q) == 1 and specific and q[0] not in p:
                    out.add(q[0])
                elif len(q) == len(p) > 1 and q[i] != word and all(a == b for j, (a, b) in enumerate(zip(p, q)) if j != i):
                    out.add(q[i])
    out.discard(word)
    return tuple(sorted(out))


@functools.lru_cache(maxsize=1)  # the tables are constants
def _groups_by_word() -> dict[str, frozenset[int]]:
    index: dict[str, set[int]] = {}
    for g, group in enumerate(MEANING_GROUPS):
        for p in group:
            for w in p:
                index.setdefault(w, set()).add(g)
    return {w: frozenset(gs) for w, gs in index.items()}
