"""SynthFaces captions and the prompt parser, over one controlled vocabulary.

`caption` writes varied natural text naming a chosen subset of a face's attribute families;
`parse_prompt` maps text back to {family: value}. For every caption,
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

import numpy as np

from ..errors import UsageError
from ..text_split import prompt_words
from .attributes import ATTRIBUTES, FAMILIES, check_attributes

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
    tokens = prompt_words(prompt)
    out: dict[str, str] = {}
    unknown: list[str] = []
    problems: list[str] = []
    pending: list[str] = []  # modifiers waiting for a head noun

    def assign(fv: tuple[str, str], word: str) -> None:
        family, value = fv
        if out.get(family, value) != value:
            problems.append(f"{family} is named twice ({out[family]!r} and {value!r} from {word!r})")
        out[family] = value

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


# ---------------------------------------------------------------- caption writer

def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _hair_words(attrs, named, rng) -> tuple[str | None, str | None]:
    """(adjective, noun phrase) for the named hair families."""
    colour = _pick(rng, HAIR_COLOUR_WORDS[attrs["hair_color"]]) if "hair_color" in named else None
    style = attrs["hair_style"] if "hair_style" in named else None
    if style in ("long", "short"):
        phrase = f"{style} {colour} hair" if colour else f"{style} hair"
        adj = f"{style}-haired" if not colour else None
    elif style == "bun":
        phrase = _pick(rng, (f"{colour} hair in a bun", _article(f"{colour} bun"))) if colour else _pick(rng, ("hair in a bun", "a bun", "a top knot"))
        adj = None
    elif style == "afro":
        phrase = _article(f"{colour} afro") if colour else "an afro"
        adj = None
    else:
        phrase = f"{colour} hair" if colour else None
        adj = f"{colour}-haired" if colour and colour != "brunette" else None
    return adj, phrase


HAIR_COLOUR_WORDS = {
    "black": ("black", "jet black"), "brown": ("brown", "brunette", "chestnut"), "blond": ("blond", "blonde", "golden"),
    "red": ("red", "ginger", "auburn"), "grey": ("grey", "gray", "silver", "white"), "blue": ("blue",),
}
SKIN_WORDS = {"pale": ("pale", "fair"), "tan": ("tan", "olive", "tanned"), "brown": ("brown",), "dark": ("dark",)}
ADJECTIVES = {  # family -> value -> adjectives placed before the noun
    "expression": {
        "neutral": ("serious", "expressionless", "calm"), "smiling": ("smiling", "grinning", "happy", "beaming"),
        "sad": ("sad", "frowning", "unhappy"), "surprised": ("surprised", "astonished", "shocked"),
    },
    "facial_hair": {"none": ("clean-shaven",), "moustache": ("moustached", "mustachioed"), "beard": ("bearded",)},
    "eyewear": {"glasses": ("bespectacled",)},
    "headwear": {"none": ("bareheaded",)},
}
WITH = {  # family -> value -> phrases after "with"
    "expression": {
        "neutral": ("a neutral expression", "a serious expression", "a blank expression"),
        "smiling": ("a big smile", "a smile", "a grin"),
        "sad": ("a sad expression", "a frown", "a sad look"),
        "surprised": ("a surprised expression", "a shocked look", "an astonished look"),
    },
    "facial_hair": {
        "none": ("no facial hair",), "moustache": ("a moustache", "a mustache"), "beard": ("a beard", "a full beard"),
    },
    "eyewear": {"none": ("no glasses", "no eyewear")},
    "headwear": {"none": ("no hat", "no headwear")},
    "earrings": {"none": ("no earrings",)},
}
WEAR = {  # family -> value -> phrases after "wearing"
    "eyewear": {"glasses": ("glasses", "spectacles", "eyeglasses"), "sunglasses": ("sunglasses", "shades", "dark glasses")},
    "headwear": {"cap": ("a cap", "a baseball cap"), "beanie": ("a beanie", "a knitted hat", "a woolly hat"), "headband": ("a headband",)},
    "earrings": {"earrings": ("earrings", "hoop earrings", "gold earrings")},
}
PREFIXES = ("", "", "", "a photo of ", "a portrait of ", "a close-up portrait of ", "an illustration of ", "a drawing of ", "a headshot of ", "a picture of ")
NOUN_WORDS = ("person", "person", "character", "individual")


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def choose_named(rng: np.random.Generator) -> list[str]:
    """A random subset of families to name: short (1-3), medium (4-6) or long (7-11) captions."""
    u = rng.random()
    lo, hi = (1, 3) if u < 0.35 else (4, 6) if u < 0.75 else (7, len(FAMILIES))
    k = int(rng.integers(lo, hi + 1))
    return [FAMILIES[i] for i in rng.permutation(len(FAMILIES))[:k]]


def _realise(family: str, attrs: dict[str, str], named, rng: np.random.Generator) -> tuple[str, str]:
    """(slot, words) for one named family; slot is "adj" (before the noun), "with", "wear" or
    "background". The two hair families are realised together, under "hair_color"."""
    v = attrs[family]
    if family == "hair_color":
        adj, phrase = _hair_words(attrs, named, rng)
        return ("adj", adj) if adj and rng.random() < 0.35 else ("with", phrase)
    if family == "background":
        return "background", v
    if family == "skin":
        if rng.random() < 0.5:
            return "adj", f"{_pick(rng, SKIN_WORDS[v][:2])}-skinned"  # not "tanned-skinned"
        w = _pick(rng, SKIN_WORDS[v])
        return "with", _pick(rng, (f"{w} skin", _article(f"{w} complexion")))
    if family == "face_shape":
        return ("adj", f"{v}-faced") if rng.random() < 0.4 else ("with", _article(f"{v} face"))
    if family == "eye_color":
        return ("adj", f"{v}-eyed") if rng.random() < 0.3 else ("with", f"{v} eyes")
    adj_options = ADJECTIVES.get(family, {}).get(v)
    if adj_options and rng.random() < 0.5:
        return "adj", _pick(rng, adj_options)
    if v in WEAR.get(family, {}):
        return "wear", _pick(rng, WEAR[family][v])
    return "with", _pick(rng, WITH[family][v])


BACKGROUND_CLAUSES = (", {} background", " on a {} background", " against a {} backdrop", " in front of a {} background")


def caption(attrs: dict[str, str], rng: np.random.Generator, named=None) -> tuple[str, tuple[str, ...]]:
    """(text, named families). named: families the text must name (all of them, in random order);
    None draws a random subset. parse_prompt(text) == {f: attrs[f] for f in named families}."""
    check_attributes(attrs)
    named = list(choose_named(rng) if named is None else named)
    for f in named:
        if f not in ATTRIBUTES:
            raise UsageError(f"unknown attribute family {f!r}; families: {', '.join(FAMILIES)}")
    slots: dict[str, list[str]] = {"adj": [], "with": [], "wear": [], "background": []}
    hair_done = False
    for i in rng.permutation(len(named)):
        family = "hair_color" if named[i] == "hair_style" else named[i]  # hair words come as one
        if family == "hair_color":
            if hair_done:
                continue
            hair_done = True
        slot, words = _realise(family, attrs, named, rng)
        slots[slot].append(words)
    adjs, withs, wears, background = slots["adj"], slots["with"], slots["wear"], slots["background"]

    if rng.random() < 0.15:  # tag list: "smiling, red hair, sunglasses, green background"
        parts = [w.removeprefix("a ").removeprefix("an ") for w in adjs + withs + wears]
        parts += [f"{b} background" for b in background]
        return ", ".join(parts[i] for i in rng.permutation(len(parts))), tuple(named)
    prefix = _pick(rng, PREFIXES)
    if prefix or rng.random() < 0.9:
        text = prefix + _article(" ".join([*adjs, _pick(rng, NOUN_WORDS)]))
    else:
        text = " ".join([*adjs, "someone"])
    if withs:
        text += " with " + _join(withs)
    if wears:
        text += (", wearing " if withs else " wearing ") + _join(wears)
    for b in background:
        text += _pick(rng, BACKGROUND_CLAUSES).format(b)
    return text, tuple(named)


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
