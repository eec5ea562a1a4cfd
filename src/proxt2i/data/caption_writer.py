"""Training captions in many grammatical forms, over every word and phrase the prompt parser knows.

`caption(attrs, rng, named)` mixes six forms, so a model trained on them has read each synonym in
each position people put it:

    classic      "a portrait of a smiling person with red hair, wearing a cap"   (the shipped prompt sets' writer)
    noun phrase  "The bearded guy with long ginger hair plus a baseball cap, on a plain lilac background."
    relative     "a woman who is grinning, has green irises and wears shades"
    tags         "square jaw, Hoops, smiling, man, violet backdrop"
    lead         "with a frown and red haired, a character wearing a toque"
    subjectless  "wearing sun glasses, with a full beard"

with hyphenated and spaced compounds ("red-haired" / "red haired"), determiners or none, singular and
plural words, and case and punctuation noise. For every caption, parse_prompt(text) ==
{f: attrs[f] for f in named} (tested over many thousands).

What training never writes, by construction: a noun followed directly by a verb ("the man is
smiling", "a guy has red hair"). Verbs come only after "who". The paraphrase prompt set
(data/paraphrase.py) is built on exactly those frames, so it measures phrasings training never saw.
"""

from __future__ import annotations

import numpy as np

from ..errors import UsageError
from .attributes import ATTRIBUTES, FAMILIES, check_attributes

# Words that may stand before a noun, per (family, value). "-" marks a compound written hyphenated
# or spaced at random.
ADJECTIVES: dict[tuple[str, str], tuple[str, ...]] = {
    ("expression", "neutral"): ("neutral", "expressionless", "serious", "calm", "straight-faced"),
    ("expression", "smiling"): ("smiling", "grinning", "happy", "beaming"),
    ("expression", "sad"): ("sad", "frowning", "unhappy", "gloomy", "sad-looking"),
    ("expression", "surprised"): ("surprised", "astonished", "shocked", "amazed", "open-mouthed"),
    ("eyewear", "glasses"): ("bespectacled",),
    ("headwear", "none"): ("bareheaded", "bare-headed"),
    ("facial_hair", "none"): ("clean-shaven",),
    ("facial_hair", "moustache"): ("moustached", "mustached", "mustachioed"),
    ("facial_hair", "beard"): ("bearded",),
}
# Noun phrases ("with ...", "has ...", tags). Articles are part of the phrase; tags drop them.
NOUN_PHRASES: dict[tuple[str, str], tuple[str, ...]] = {
    ("expression", "neutral"): ("a neutral expression", "a serious expression", "a blank expression", "a calm look"),
    ("expression", "smiling"): ("a smile", "a big smile", "a grin", "a happy expression"),
    ("expression", "sad"): ("a frown", "a sad expression", "a sad look", "a gloomy look"),
    ("expression", "surprised"): ("a surprised expression", "a shocked look", "an astonished look", "an amazed expression"),
    ("eyewear", "none"): ("no glasses", "no eyewear", "no spectacles"),
    ("eyewear", "glasses"): ("glasses", "spectacles", "eyeglasses", "clear glasses", "a pair of glasses"),
    ("eyewear", "sunglasses"): ("sunglasses", "shades", "dark glasses", "sun glasses", "tinted glasses"),
    ("headwear", "none"): ("no hat", "no headwear"),
    ("headwear", "cap"): ("a cap", "a baseball cap", "a ball cap"),
    ("headwear", "beanie"): ("a beanie", "a beanie hat", "a knit hat", "a knitted hat", "a woolly hat", "a wool hat", "a toque"),
    ("headwear", "headband"): ("a headband", "a head band", "a hairband"),
    ("facial_hair", "none"): ("no facial hair",),
    ("facial_hair", "moustache"): ("a moustache", "a mustache"),
    ("facial_hair", "beard"): ("a beard", "a full beard"),
    ("earrings", "none"): ("no earrings",),
    ("earrings", "earrings"): ("earrings", "an earring", "hoop earrings", "gold earrings", "hoops"),
}
WITHOUT = {  # negations that follow a noun directly: "a man without glasses"
    ("eyewear", "none"): ("without glasses", "without eyewear"),
    ("headwear", "none"): ("without a hat", "without hat"),
    ("facial_hair", "none"): ("without facial hair",),
    ("earrings", "none"): ("without earrings",),
}
WEARABLE = frozenset(("eyewear", "headwear", "earrings"))
VERB_FORMS = ("smiles",)
POSSESSIVES = ("his", "her", "their")
PLURAL_VERBS = {"is": "are", "has": "have", "wears": "wear", "looks": "look", "smiles": "smile"}  # after "people who"  # expression smiling as a verb after "who"

HAIR_COLOURS = {
    "black": ("black", "jet-black", "raven"), "brown": ("brown", "brunette", "chestnut"),
    "blond": ("blond", "blonde", "golden", "yellow"), "red": ("red", "ginger", "auburn", "orange"),
    "grey": ("grey", "gray", "silver", "white"), "blue": ("blue",),
}
STANDALONE_HAIR = {"blond": ("blond", "blonde"), "brown": ("brunette",), "red": ("ginger",)}  # before a noun, no head
EYE_HEADS = ("eyes", "irises", "eye colour", "eye color")
SKIN_WORDS = {"pale": ("pale", "fair", "light"), "tan": ("tan", "tanned", "olive"), "brown": ("brown",), "dark": ("dark",)}
SKIN_HEADS = ("skin", "complexion", "skin tone")
SKIN_DEGREE = ("", "", "", "very ", "slightly ")
FACE_HEADS = {"round": ("face", "face shape"), "oval": ("face", "face shape"), "square": ("face", "face shape", "jaw")}
BACKGROUND_WORDS = {"white": ("white",), "blue": ("blue",), "green": ("green",), "yellow": ("yellow",),
                    "pink": ("pink",), "purple": ("purple", "violet", "lilac")}
BACKGROUND_HEADS = ("background", "backdrop")
BACKGROUND_CLAUSES = (", {w} {h}", " on a {w} {h}", " against a {w} {h}", " in front of a {w} {h}", " on a plain {w} {h}",
                      " against a solid {w} {h}", " set against a {w} coloured {h}", " on a {w} colored {h}", " in front of {w} backgrounds")
NOUNS = ("person", "person", "someone", "individual", "character", "man", "woman", "guy", "lady", "boy", "girl", "people")
PREFIXES = ("", "", "", "", "a photo of ", "a portrait of ", "a close-up portrait of ", "a closeup of ", "an illustration of ",
            "a drawing of ", "a headshot of ", "a picture of ", "an image of ", "a photograph of ", "a render of ",
            "a cartoon of ", "an avatar of ", "a close up photo of ", "a portrait showing ", "an image showing ")
TAG_HEADS = ("", "", "", "portrait, ", "headshot, ", "avatar, ", "photo, ")


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _compound(rng: np.random.Generator, text: str) -> str:
    """'red-haired' as written, or spaced ('red haired')."""
    return text.replace("-", " ") if rng.random() < 0.4 else text


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _bare(phrase: str) -> str:
    return phrase.removeprefix("a ").removeprefix("an ")


class Descriptor:
    """One named family (or the two hair families together) in the forms a caption can use.

    adjective: before the noun (or None); standalone: an adjective with no head noun that must sit
    right before the noun ("a blond man"); noun_phrase: after "with" / "has"; wear: after "wearing";
    background: a clause that ends a caption."""

    def __init__(self, adjective=None, noun_phrase=None, wear=None, predicate=None, background=None, standalone=False):
        self.adjective, self.noun_phrase, self.wear = adjective, noun_phrase, wear
        self.predicate, self.background, self.standalone = predicate, background, standalone

    def tag(self) -> str:
        if self.background:
            return self.background
        return _bare(self.noun_phrase) if self.noun_phrase and not self.standalone else self.adjective


def _hair(attrs: dict, named, rng) -> Descriptor:
    colour_named, style_named = "hair_color" in named, "hair_style" in named
    colour = _compound(rng, _pick(rng, HAIR_COLOURS[attrs["hair_color"]])) if colour_named else None
    style = attrs["hair_style"] if style_named else None
    if style in ("long", "short"):
        phrase = f"{style} {colour} hair" if colour else _pick(rng, (f"{style} hair", f"{style} hair", f"a {style} hair style"))
        adj = _compound(rng, f"{style}-haired") if not colour else None
    elif style == "bun":
        phrase = _pick(rng, (f"{colour} hair in a bun", _article(f"{colour} bun"))) if colour else _pick(
            rng, ("hair in a bun", "a bun", "a top knot", "a topknot"))
        if rng.random() < 0.3:  # "wears her hair in a bun"
            pos = _pick(rng, POSSESSIVES)
            return Descriptor(noun_phrase=phrase, predicate=f"wears {pos} {_bare(phrase)}")
        adj = None
    elif style == "afro":
        phrase = _article(f"{colour} afro") if colour else "an afro"
        adj = None
    else:
        phrase = f"{colour} {_pick(rng, ('hair', 'hair', 'hair colour'))}"
        adj = _compound(rng, f"{colour.replace(' ', '-')}-haired")
        if colour_named and attrs["hair_color"] == "red" and rng.random() < 0.1:  # the noun itself: "a smiling redhead"
            return Descriptor(adjective="redhead", noun_phrase=phrase, predicate="has " + phrase, standalone=True)
        if colour_named and attrs["hair_color"] in STANDALONE_HAIR and rng.random() < 0.3:
            return Descriptor(adjective=_pick(rng, STANDALONE_HAIR[attrs["hair_color"]]), noun_phrase=phrase,
                              predicate="has " + phrase, standalone=True)
    if adj and rng.random() < 0.4:
        return Descriptor(adjective=adj, predicate="is " + adj, noun_phrase=phrase)
    return Descriptor(noun_phrase=phrase, predicate=_pick(rng, ("has ", "has ", "wears ")) + phrase)


def _describe(family: str, attrs: dict, named, rng: np.random.Generator) -> Descriptor:
    v = attrs[family]
    if family == "hair_color":
        return _hair(attrs, named, rng)
    if family == "eye_color":
        head = _pick(rng, EYE_HEADS)
        adj = _compound(rng, f"{v}-eyed") if rng.random() < 0.3 else None
        return Descriptor(adjective=adj, noun_phrase=f"{v} {head}", predicate=f"is {adj}" if adj else f"has {v} {head}")
    if family == "skin":
        word = _pick(rng, SKIN_WORDS[v])
        if rng.random() < 0.35 and word != "tanned":  # not "tanned-skinned"
            adj = _compound(rng, f"{word}-skinned")
            return Descriptor(adjective=adj, noun_phrase=f"{word} skin", predicate="is " + adj)
        head = _pick(rng, SKIN_HEADS)
        phrase = f"{_pick(rng, SKIN_DEGREE)}{word} {head}"
        phrase = _article(phrase) if head == "complexion" else phrase
        return Descriptor(noun_phrase=phrase, predicate="has " + phrase)
    if family == "face_shape":
        head = _pick(rng, FACE_HEADS[v])
        if rng.random() < 0.4:
            adj = _compound(rng, f"{v}-{'jawed' if head == 'jaw' else 'faced'}")
            return Descriptor(adjective=adj, noun_phrase=_article(f"{v} {head}"), predicate="is " + adj)
        return Descriptor(noun_phrase=_article(f"{v} {head}"), predicate="has " + _article(f"{v} {head}"))
    if family == "background":
        words = (_pick(rng, BACKGROUND_WORDS[v]), _pick(rng, BACKGROUND_HEADS))
        return Descriptor(background=_pick(rng, BACKGROUND_CLAUSES).format(w=words[0], h=words[1]))
    fv = (family, v)
    adjective = ADJECTIVES.get(fv)
    if adjective and rng.random() < 0.5:
        adj = _compound(rng, _pick(rng, adjective))
        verb = _pick(rng, ("is ", "is ", "looks ")) if family == "expression" else "is "
        return Descriptor(adjective=adj, noun_phrase=_pick(rng, NOUN_PHRASES.get(fv, (None,))), predicate=verb + adj)
    if fv == ("expression", "smiling") and rng.random() < 0.15:
        return Descriptor(noun_phrase=_pick(rng, NOUN_PHRASES[fv]), predicate=_pick(rng, VERB_FORMS))
    if fv in WITHOUT and rng.random() < 0.3:
        phrase = _pick(rng, WITHOUT[fv])
        return Descriptor(noun_phrase=phrase, predicate="is " + phrase)
    phrase = _pick(rng, NOUN_PHRASES[fv])
    wear = phrase if family in WEARABLE and not phrase.startswith("no ") else None
    verb = _pick(rng, ("wears ", "is wearing ", "has ")) if wear else "has "
    if wear and phrase.startswith(("a ", "an ")) and rng.random() < 0.2:  # "wears her cap"
        return Descriptor(noun_phrase=phrase, wear=phrase, predicate=f"{verb}{_pick(rng, POSSESSIVES)} {_bare(phrase)}")
    return Descriptor(noun_phrase=phrase, wear=wear, predicate=verb + phrase)


def _join(parts: list[str], rng: np.random.Generator) -> str:
    if len(parts) == 1:
        return parts[0]
    last = _pick(rng, (" and ", " and ", ", and ", " plus ", " and also "))
    return ", ".join(parts[:-1]) + last + parts[-1]


def _noun_head(adjs: list[str], standalone: list[str], rng) -> tuple[str, str]:
    """('[det] adjectives [standalone] noun', noun): the determiner agrees with the first word; the
    standalone 'redhead' is the noun itself."""
    noun = _pick(rng, NOUNS)
    if standalone == ["redhead"]:
        noun, standalone = "redhead", []
    words = [*adjs, *standalone, noun]
    if noun == "people":
        det = _pick(rng, ("", "some", "the"))
    elif noun == "someone":
        det = ""
        if adjs or standalone:
            words[-1], det = "person", "a"
    else:
        det = _pick(rng, ("a", "a", "a", "the", ""))
    text = " ".join(words)
    if det == "a":
        return _article(text), words[-1]
    return f"{det} {text}".strip(), words[-1]


def _noun_phrase_form(ds: list[Descriptor], rng) -> str:
    adjs, standalone, withs, wears = [], [], [], []
    for d in ds:
        if d.background:
            continue
        if d.standalone and not standalone:
            standalone.append(d.adjective)
        elif d.adjective and not d.standalone and rng.random() < 0.6:
            adjs.append(d.adjective)
        elif d.wear and rng.random() < 0.6:
            wears.append(d.wear)
        else:
            withs.append(d.noun_phrase)
    withouts = [w for w in withs if w.startswith("without ")]  # "a man without glasses": no "with" before it
    withs = [w for w in withs if w not in withouts]
    text = _pick(rng, PREFIXES) + _noun_head(adjs, standalone, rng)[0]
    if withs:
        text += _pick(rng, (" with ", " with ", " having ", " shown with ")) + _join(withs, rng)
    if withouts:
        text += (", " if withs else " ") + _join(withouts, rng)
    if wears:
        text += _pick(rng, (", wearing ", " wearing ", " in ")) + _join(wears, rng)
    return text + "".join(d.background for d in ds if d.background)


def _relative_form(ds: list[Descriptor], rng) -> str:
    standalone = [d.adjective for d in ds if d.standalone][:1]
    preds = [d.predicate for d in ds if not d.background and d.adjective not in standalone]
    head, noun = _noun_head([], standalone, rng)
    if noun == "people":
        preds = [" ".join(PLURAL_VERBS.get(w, w) if i == 0 else w for i, w in enumerate(p.split())) for p in preds]
    text = _pick(rng, PREFIXES) + head + (" who " + _join(preds, rng) if preds else "")
    return text + "".join(d.background for d in ds if d.background)


def _tag_form(ds: list[Descriptor], rng) -> str:
    tags = [d.tag() for d in ds if not d.standalone] + [d.noun_phrase for d in ds if d.standalone]
    tags = [_bare(t.lstrip(", ").removeprefix("on a ").removeprefix("against a ").removeprefix("in front of a ")
                  .removeprefix("in front of ").removeprefix("set against a ")) for t in tags]
    if rng.random() < 0.3:
        tags.append(_pick(rng, NOUNS))
    order = rng.permutation(len(tags))
    sep = _pick(rng, (", ", ", ", ",", " , ", "; ", " | "))
    return _pick(rng, TAG_HEADS) + sep.join(tags[i] for i in order)


def _with(phrase: str) -> str:
    return phrase if phrase.startswith("without ") else "with " + phrase


def _lead_form(ds: list[Descriptor], rng) -> str:
    """One or two descriptors first, then the rest as a noun phrase: 'smiling, red-haired: a man in a cap'."""
    movable = [d for d in ds if not d.background and not d.standalone]
    if not movable:
        return _noun_phrase_form(ds, rng)
    k = 1 if len(movable) == 1 else int(rng.integers(1, 3))
    lead = [movable[i] for i in rng.permutation(len(movable))[:k]]
    rest = [d for d in ds if d not in lead]
    words = [_with(d.noun_phrase) if d.noun_phrase and (not d.adjective or rng.random() < 0.5) else d.adjective for d in lead]
    return ", ".join(words) + _pick(rng, (", ", ": ", " - ")) + _noun_phrase_form(rest, rng).lstrip(", ")


def _subjectless_form(ds: list[Descriptor], rng) -> str:
    parts = []
    for d in ds:
        if d.background:
            continue
        if d.wear and rng.random() < 0.5:
            parts.append("wearing " + d.wear)
        elif d.noun_phrase:
            parts.append(_with(d.noun_phrase))
        else:
            parts.append(d.adjective)
    background = "".join(d.background for d in ds if d.background)
    return (_join(parts, rng) + background) if parts else ""


FORMS = (("noun phrase", _noun_phrase_form, 0.27), ("relative", _relative_form, 0.15), ("tags", _tag_form, 0.14),
         ("lead", _lead_form, 0.09), ("subjectless", _subjectless_form, 0.05))
CLASSIC_SHARE = 1.0 - sum(p for _, _, p in FORMS)
CAPTION_FORMS = ("classic", *(name for name, _, _ in FORMS))


def _noise(text: str, rng: np.random.Generator) -> str:
    """Case and punctuation as people type them."""
    u = rng.random()
    if u < 0.25:
        text = text[:1].upper() + text[1:]
    elif u < 0.31:
        text = text.title()
    elif u < 0.33:
        text = text.upper()
    u = rng.random()
    if u < 0.15:
        text += "."
    elif u < 0.18:
        text += "!"
    if rng.random() < 0.04:
        text = text.replace(" ", "  ", 1)
    return text


# ---------------------------------------------------------------- the classic writer


def _classic_hair_words(attrs, named, rng) -> tuple[str | None, str | None]:
    """(adjective, noun phrase) for the named hair families."""
    colour = _pick(rng, CLASSIC_HAIR_WORDS[attrs["hair_color"]]) if "hair_color" in named else None
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


CLASSIC_HAIR_WORDS = {
    "black": ("black", "jet black"), "brown": ("brown", "brunette", "chestnut"), "blond": ("blond", "blonde", "golden"),
    "red": ("red", "ginger", "auburn"), "grey": ("grey", "gray", "silver", "white"), "blue": ("blue",),
}
CLASSIC_SKIN_WORDS = {"pale": ("pale", "fair"), "tan": ("tan", "olive", "tanned"), "brown": ("brown",), "dark": ("dark",)}
CLASSIC_ADJECTIVES = {  # family -> value -> adjectives placed before the noun
    "expression": {
        "neutral": ("serious", "expressionless", "calm"), "smiling": ("smiling", "grinning", "happy", "beaming"),
        "sad": ("sad", "frowning", "unhappy"), "surprised": ("surprised", "astonished", "shocked"),
    },
    "facial_hair": {"none": ("clean-shaven",), "moustache": ("moustached", "mustachioed"), "beard": ("bearded",)},
    "eyewear": {"glasses": ("bespectacled",)},
    "headwear": {"none": ("bareheaded",)},
}
CLASSIC_WITH = {  # family -> value -> phrases after "with"
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
CLASSIC_WEAR = {  # family -> value -> phrases after "wearing"
    "eyewear": {"glasses": ("glasses", "spectacles", "eyeglasses"), "sunglasses": ("sunglasses", "shades", "dark glasses")},
    "headwear": {"cap": ("a cap", "a baseball cap"), "beanie": ("a beanie", "a knitted hat", "a woolly hat"), "headband": ("a headband",)},
    "earrings": {"earrings": ("earrings", "hoop earrings", "gold earrings")},
}
CLASSIC_PREFIXES = ("", "", "", "a photo of ", "a portrait of ", "a close-up portrait of ", "an illustration of ", "a drawing of ", "a headshot of ", "a picture of ")
CLASSIC_NOUNS = ("person", "person", "character", "individual")


def _classic_join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def choose_named(rng: np.random.Generator) -> list[str]:
    """A random subset of families to name: short (1-3), medium (4-6) or long (7-11) captions."""
    u = rng.random()
    lo, hi = (1, 3) if u < 0.35 else (4, 6) if u < 0.75 else (7, len(FAMILIES))
    k = int(rng.integers(lo, hi + 1))
    return [FAMILIES[i] for i in rng.permutation(len(FAMILIES))[:k]]


def _classic_realise(family: str, attrs: dict[str, str], named, rng: np.random.Generator) -> tuple[str, str]:
    """(slot, words) for one named family; slot is "adj" (before the noun), "with", "wear" or
    "background". The two hair families are realised together, under "hair_color"."""
    v = attrs[family]
    if family == "hair_color":
        adj, phrase = _classic_hair_words(attrs, named, rng)
        return ("adj", adj) if adj and rng.random() < 0.35 else ("with", phrase)
    if family == "background":
        return "background", v
    if family == "skin":
        if rng.random() < 0.5:
            return "adj", f"{_pick(rng, CLASSIC_SKIN_WORDS[v][:2])}-skinned"  # not "tanned-skinned"
        w = _pick(rng, CLASSIC_SKIN_WORDS[v])
        return "with", _pick(rng, (f"{w} skin", _article(f"{w} complexion")))
    if family == "face_shape":
        return ("adj", f"{v}-faced") if rng.random() < 0.4 else ("with", _article(f"{v} face"))
    if family == "eye_color":
        return ("adj", f"{v}-eyed") if rng.random() < 0.3 else ("with", f"{v} eyes")
    adj_options = CLASSIC_ADJECTIVES.get(family, {}).get(v)
    if adj_options and rng.random() < 0.5:
        return "adj", _pick(rng, adj_options)
    if v in CLASSIC_WEAR.get(family, {}):
        return "wear", _pick(rng, CLASSIC_WEAR[family][v])
    return "with", _pick(rng, CLASSIC_WITH[family][v])


CLASSIC_BACKGROUND_CLAUSES = (", {} background", " on a {} background", " against a {} backdrop", " in front of a {} background")


def classic_caption(attrs: dict[str, str], rng: np.random.Generator, named=None) -> tuple[str, tuple[str, ...]]:
    """The writer of the shipped heldin / heldout prompt sets (and of every training caption before the
    other forms): (text, named families). named: families the text must name (all of them, in random order);
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
        slot, words = _classic_realise(family, attrs, named, rng)
        slots[slot].append(words)
    adjs, withs, wears, background = slots["adj"], slots["with"], slots["wear"], slots["background"]

    if rng.random() < 0.15:  # tag list: "smiling, red hair, sunglasses, green background"
        parts = [w.removeprefix("a ").removeprefix("an ") for w in adjs + withs + wears]
        parts += [f"{b} background" for b in background]
        return ", ".join(parts[i] for i in rng.permutation(len(parts))), tuple(named)
    prefix = _pick(rng, CLASSIC_PREFIXES)
    if prefix or rng.random() < 0.9:
        text = prefix + _article(" ".join([*adjs, _pick(rng, CLASSIC_NOUNS)]))
    else:
        text = " ".join([*adjs, "someone"])
    if withs:
        text += " with " + _classic_join(withs)
    if wears:
        text += (", wearing " if withs else " wearing ") + _classic_join(wears)
    for b in background:
        text += _pick(rng, CLASSIC_BACKGROUND_CLAUSES).format(b)
    return text, tuple(named)


# ---------------------------------------------------------------- the mixture

def _form_at(u: float) -> str:
    """The caption form a uniform draw u in [0, 1) picks with the training shares."""
    if u < CLASSIC_SHARE:
        return "classic"
    u -= CLASSIC_SHARE
    for name, _, share in FORMS[:-1]:
        if u < share:
            return name
        u -= share
    return FORMS[-1][0]


def caption(attrs: dict[str, str], rng: np.random.Generator, named=None, form: str | None = None) -> tuple[str, tuple[str, ...]]:
    """(text, named families). named: families the text must name (all of them, any order); None draws
    a random subset. form: one of CAPTION_FORMS to write in, or None to draw one with the training shares
    (the random stream is the same either way). parse_prompt(text) == {f: attrs[f] for f in named families}."""
    check_attributes(attrs)
    if form is not None and form not in CAPTION_FORMS:
        raise UsageError(f"unknown caption form {form!r}; forms: {', '.join(CAPTION_FORMS)}")
    named = list(choose_named(rng) if named is None else named)
    for f in named:
        if f not in ATTRIBUTES:
            raise UsageError(f"unknown attribute family {f!r}; families: {', '.join(FAMILIES)}")
    u = rng.random()  # drawn for a chosen form too, so the rest of the stream does not depend on it
    chosen = _form_at(u) if form is None else form
    if chosen == "classic":
        return _noise(classic_caption(attrs, rng, named)[0], rng), tuple(named)
    families = []
    for i in rng.permutation(len(named)):
        family = "hair_color" if named[i] == "hair_style" else named[i]  # hair words come as one
        if family not in families:
            families.append(family)
    ds = [_describe(f, attrs, named, rng) for f in families]
    text = next(write for name, write, _ in FORMS if name == chosen)(ds, rng)
    if not text.strip():
        text = _noun_phrase_form(ds, rng)
    return _noise(text, rng), tuple(named)
