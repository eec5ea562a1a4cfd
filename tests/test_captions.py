"""Training captions in many forms, the paraphrase set's grammar, and the word pieces of the text path."""

import numpy as np
import pytest

from proxt2i.data import caption_writer as cw
from proxt2i.data import captions
from proxt2i.data.attributes import FAMILIES
from proxt2i.data.paraphrase import VERBS, paraphrase
from proxt2i.data.prompts import load_prompts, make_prompts
from proxt2i.data.synthfaces import caption, parse_prompt, sample_attributes
from proxt2i.errors import UsageError
from proxt2i.text_split import known_pieces, prompt_words

SUBJECTS = captions.NOUNS | {"redhead"}


def training_captions(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        attrs = sample_attributes(rng, "full")
        text, named = caption(attrs, rng)
        yield text, {f: attrs[f] for f in named}


def parser_words() -> set[str]:
    words = {w for phrases in captions.VALUE_PHRASES.values() for p in phrases for w in p.split()}
    words |= {w for mods in captions.MODIFIERS.values() for m in mods for w in m.split()}
    return words | set(captions.HEADS) | set(captions.STANDALONE) | captions.GLUE | captions.NOUNS | captions.NEGATIONS


@pytest.fixture(scope="module")
def corpus():
    return list(training_captions(20000))


def test_every_training_caption_parses_to_exactly_the_attributes_it_names(corpus):
    wrong = [(t, want) for t, want in corpus if parse_prompt(t) != want]
    assert not wrong, wrong[:3]


def test_naming_phrases_gives_the_words_that_named_each_family_and_they_read_as_its_value(corpus):
    assert captions.naming_phrases("a gloomy ginger guy with a mustache and tinted glasses") == {
        "expression": "gloomy", "hair_color": "ginger", "facial_hair": "mustache", "eyewear": "tinted glasses"}
    assert captions.naming_phrases("red-haired woman with red hair") == {"hair_color": "red haired"}
    for text, want in corpus[:3000]:
        named = captions.naming_phrases(text)
        assert named.keys() == want.keys(), text
        for family, words in named.items():
            assert set(words.split()) <= set(prompt_words(text)), (text, words)  # "green colored background" -> "green background"
            assert parse_prompt(words)[family] == want[family], (text, words)
    with pytest.raises(UsageError, match="outside the SynthFaces vocabulary: astronaut"):
        captions.naming_phrases("an astronaut")


@pytest.mark.parametrize("form", cw.CAPTION_FORMS)
def test_each_form_alone_keeps_the_invariant(form):
    rng = np.random.default_rng(7)
    for _ in range(1500):
        attrs = sample_attributes(rng, "full")
        text, named = caption(attrs, rng, form=form)
        assert parse_prompt(text) == {f: attrs[f] for f in named}, text


def test_a_chosen_form_writes_in_that_form_and_an_unknown_form_is_refused():
    attrs = sample_attributes(np.random.default_rng(3), "train")
    tags = caption(attrs, np.random.default_rng(0), named=list(FAMILIES[:4]), form="tags")[0]
    assert "," in tags or ";" in tags or "|" in tags
    with pytest.raises(UsageError, match="unknown caption form 'sonnet'"):
        caption(attrs, np.random.default_rng(0), form="sonnet")


def test_training_captions_use_every_word_and_phrase_the_parser_knows(corpus):
    texts = [" " + " ".join(prompt_words(t)) + " " for t, _ in corpus]
    words = {w for t in texts for w in t.split()}
    assert parser_words() - words == set()
    blob = "\n".join(texts)
    missing = [p for phrases in captions.VALUE_PHRASES.values() for p in phrases if f" {p} " not in blob]
    assert missing == []
    # every modifier with every head noun of its kind, but for compounds that contradict themselves
    # ("long afro": two hair styles) or that English does not say ("tanned-skinned", "round-jawed")
    left_out = {"long afro", "long bun", "short afro", "short bun", "tanned skinned", "round jaw", "round jawed", "oval jaw", "oval jawed"}
    combos = {f"{m} {h}" for kind, mods in captions.MODIFIERS.items() for m in mods
              for h, (k, _) in captions.HEADS.items() if k == kind}
    assert {c for c in combos - left_out if f" {c} " not in blob} == set()


def test_training_captions_vary_form_case_compounds_and_punctuation(corpus):
    texts = [t for t, _ in corpus]
    assert any("red-haired" in t.lower() for t in texts) and any("red haired" in t.lower() for t in texts)
    assert any("clean-shaven" in t.lower() for t in texts) and any("clean shaven" in t.lower() for t in texts)
    assert any(" who " in t.lower() for t in texts)  # relative clauses
    assert any(t.isupper() for t in texts) and any(t[:1].isupper() for t in texts) and any(t.endswith(".") for t in texts)
    assert any(t.lower().startswith("with ") for t in texts)  # no subject
    assert any(t.lower().split()[0] in ("smiling", "bearded", "bespectacled") for t in texts)  # leading with a family
    assert any("people who are" in t.lower() for t in texts) and any("some people" in t.lower() for t in texts)
    assert len(set(texts)) > 0.95 * len(texts)


def noun_verb_bigrams(text: str) -> list[tuple[str, str]]:
    w = prompt_words(text)
    return [(a, b) for a, b in zip(w, w[1:]) if a in SUBJECTS and b in VERBS]


def test_no_training_caption_has_a_paraphrase_frame_and_every_paraphrase_has_one(corpus):
    """By construction: training puts verbs only after "who"; every paraphrase's subject is followed by a verb."""
    assert [t for t, _ in corpus if noun_verb_bigrams(t)] == []
    assert all(noun_verb_bigrams(p) for p in load_prompts("paraphrase"))
    training = {" ".join(prompt_words(t)) for t, _ in corpus}
    assert not training & {" ".join(prompt_words(p)) for p in load_prompts("paraphrase")}


def test_paraphrases_parse_to_exactly_the_attributes_they_name():
    rng = np.random.default_rng(3)
    for _ in range(5000):
        attrs = sample_attributes(rng, "train")
        named = [FAMILIES[i] for i in rng.permutation(len(FAMILIES))[: int(rng.integers(1, 8))]]
        text = paraphrase(attrs, rng, named)
        assert parse_prompt(text) == {f: attrs[f] for f in named}, text


def test_the_shipped_paraphrase_set_is_its_generator_and_is_not_used_for_training():
    from proxt2i.rl.prompts import load_prompt_source

    shipped = load_prompts("paraphrase")
    assert shipped == make_prompts("paraphrase") and len(shipped) == 256 == len(set(shipped))
    fresh = set(load_prompt_source("synthfaces")) | set(load_prompt_source("synthfaces-heldout"))
    assert not fresh & set(shipped) and not fresh & set(load_prompts("heldin"))
    assert all(parse_prompt(p) for p in shipped)
    # the fine-tuning sources are written in the training grammar: some relative clauses, no paraphrase frames
    assert any(" who " in p.lower() for p in fresh) and not [p for p in fresh if noun_verb_bigrams(p)]


@pytest.mark.parametrize("word, known, pieces", [
    ("redhaired", {"red", "haired", "hair"}, ["red", "haired"]),
    ("smiley", {"smile", "smiling"}, ["smile", None]),
    ("astronaut", {"red"}, [None]),
    ("cap", {"cap"}, ["cap"]),
    ("xxredxxhair", {"red", "hair"}, [None, "red", None, "hair"]),
    ("noglasses", {"no", "glasses"}, [None, "glasses"]),  # pieces are at least 3 letters
])
def test_known_pieces(word, known, pieces):
    assert known_pieces(word, known) == pieces


def test_embedded_tokenizer_reads_compounds_as_their_words_and_old_folders_as_before():
    from proxt2i.models.text import EmbeddedTextEncoder, text_encoder_from_config, unseen_words

    enc = EmbeddedTextEncoder(["a", "haired", "man", "red", "smile"], dim=8, depth=1, heads=2, max_length=16)
    assert enc.tokens("A red-haired man") == enc.tokens("a red haired man") == enc.tokens("a redhaired man")
    assert enc.tokens("a smiley astronaut") == [enc.index["a"], enc.index["smile"], 1, 1]
    assert unseen_words(enc, "a smiley astronaut, a smiley man") == ["smiley", "astronaut"]
    cfg = enc.config()
    assert cfg["tokenizer"] == "pieces" and text_encoder_from_config(cfg).tokenizer_kind == "pieces"
    legacy = dict(cfg, vocab=["a", "red-haired", "man"])
    del legacy["tokenizer"]  # a folder saved before word pieces
    old = text_encoder_from_config(legacy)
    assert old.tokenizer_kind == "words" and old.tokens("a red-haired man") == [2, 3, 4]
    assert old.tokens("a red haired man") == [2, 1, 1, 4] and unseen_words(old, "a red haired man") == ["red", "haired"]


@pytest.mark.parametrize("word, expected", [
    ("hairband", ("headband",)), ("toque", ("beanie",)), ("violet", ("lilac", "purple")), ("irises", ("eye", "eyed", "eyes")),
    ("the", ()), ("looking", ()),  # glue: its role varies ("sad looking", "a man looking happy")
])
def test_same_meaning_words(word, expected):
    assert captions.same_meaning_words(word) == expected


def test_same_meaning_one_word_phrases_read_as_the_same_value():
    """Where a word and its equivalent are both one-word value phrases, the parser reads them alike; and
    "knit" of "knit hat" is equivalent to "knitted" of "knitted hat", not to the shared "hat"."""
    one_word = {p: fv for fv, phrases in captions.VALUE_PHRASES.items() for p in phrases if " " not in p}
    for w, fv in one_word.items():
        for e in captions.same_meaning_words(w):
            if e in one_word:
                assert one_word[e] == fv, (w, e)
    assert "knitted" in captions.same_meaning_words("knit") and "hat" not in captions.same_meaning_words("knit")
    assert "glasses" not in captions.same_meaning_words("sun") and "sunglasses" in captions.same_meaning_words("sun")
