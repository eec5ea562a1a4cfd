"""SynthFaces renderer, captions, parser, splits and prompt sets. Tiny images, whole file in seconds."""

import numpy as np
import pytest

from proxt2i.data.attributes import heldout_pairs_in
from proxt2i.data.captions import vocabulary
from proxt2i.data.prompts import PROMPT_COUNT, load_prompts, make_prompts
from proxt2i.data.synthfaces import (
    ATTRIBUTES,
    HELDOUT_PAIRS,
    SynthFacesStream,
    attributes_to_labels,
    caption,
    item_attributes,
    item_caption,
    item_rng,
    parse_prompt,
    render_batch,
    render_face,
    sample_attributes,
)
from proxt2i.errors import UsageError

BASE = {f: v[0] for f, v in ATTRIBUTES.items()}


def test_attribute_table_shape():
    assert len(ATTRIBUTES) >= 9
    for family, values in ATTRIBUTES.items():
        assert 2 <= len(values) <= 8 and len(set(values)) == len(values), family
    for pair in HELDOUT_PAIRS:
        for family, value in pair:
            assert value in ATTRIBUTES[family]
    assert attributes_to_labels({"hair_color": "blue", "skin": "pale"}) == {"hair_color": 5, "skin": 0}


def test_render_is_deterministic_per_index():
    images, attrs, captions = render_batch(7, 0, 5, 32)
    again, attrs2, captions2 = render_batch(7, 0, 5, 32)
    assert images.dtype == np.uint8 and images.shape == (5, 32, 32, 3)
    assert np.array_equal(images, again) and attrs == attrs2 and captions == captions2
    single, attrs3, captions3 = render_batch(7, 3, 1, 32)
    assert np.array_equal(single[0], images[3]) and attrs3[0] == attrs[3] and captions3[0] == captions[3]
    other, _, _ = render_batch(8, 0, 5, 32)
    assert not np.array_equal(other, images)
    # attributes and captions do not depend on the image size
    _, attrs_big, captions_big = render_batch(7, 0, 5, 48)
    assert attrs_big == attrs and captions_big == captions


@pytest.mark.parametrize("family", list(ATTRIBUTES))
def test_every_value_changes_pixels(family):
    renders = []
    for value in ATTRIBUTES[family]:
        attrs = {**BASE, family: value}
        renders.append(render_face(attrs, 32, np.random.default_rng(0)).astype(np.int16))
    for i in range(len(renders)):
        for j in range(i):
            diff = np.abs(renders[i] - renders[j]).mean()
            assert diff > 0.3, f"{family}: {ATTRIBUTES[family][i]} vs {ATTRIBUTES[family][j]} differ by {diff:.2f}"


def test_render_rejects_bad_attributes_and_sizes():
    rng = np.random.default_rng(0)
    with pytest.raises(UsageError, match="purple.*hair_color"):
        render_face({**BASE, "hair_color": "purple"}, 32, rng)
    with pytest.raises(UsageError, match="hat_colour"):
        render_face({**BASE, "hat_colour": "red"}, 32, rng)
    with pytest.raises(UsageError, match="32..256"):
        render_face(BASE, 16, rng)
    with pytest.raises(UsageError, match="split"):
        render_batch(0, 0, 1, 32, split="valid")


def test_caption_parse_round_trip():
    rng = np.random.default_rng(123)
    lengths = set()
    for _ in range(4000):
        attrs = sample_attributes(rng)
        text, named = caption(attrs, rng)
        assert parse_prompt(text) == {f: attrs[f] for f in named}, text
        lengths.add(len(named))
    assert lengths == set(range(1, len(ATTRIBUTES) + 1))


def test_caption_names_requested_families():
    rng = np.random.default_rng(5)
    attrs = sample_attributes(rng)
    text, named = caption(attrs, rng, named=["eyewear", "background"])
    assert set(named) == {"eyewear", "background"}
    assert parse_prompt(text) == {"eyewear": attrs["eyewear"], "background": attrs["background"]}


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("a smiling woman with long red hair and sunglasses, green background",
         {"expression": "smiling", "hair_style": "long", "hair_color": "red", "eyewear": "sunglasses", "background": "green"}),
        ("A Grinning, blue-eyed person wearing spectacles and a beanie",
         {"expression": "smiling", "eye_color": "blue", "eyewear": "glasses", "headwear": "beanie"}),
        ("a blonde with a beard", {"hair_color": "blond", "facial_hair": "beard"}),
        ("clean-shaven, no hat, no earrings, no glasses",
         {"facial_hair": "none", "headwear": "none", "earrings": "none", "eyewear": "none"}),
        ("dark-skinned square-jawed person with a red afro against a purple backdrop",
         {"skin": "dark", "face_shape": "square", "hair_color": "red", "hair_style": "afro", "background": "purple"}),
        ("a portrait", {}),
    ],
)
def test_parse_examples(prompt, expected):
    assert parse_prompt(prompt) == expected


def test_parse_rejects_unknown_and_inconsistent_prompts():
    with pytest.raises(UsageError, match="wizard, wand"):
        parse_prompt("a wizard with a wand")
    assert issubclass(UsageError, ValueError)
    with pytest.raises(UsageError, match="'round' .*glasses"):
        parse_prompt("round glasses")
    with pytest.raises(UsageError, match="hair_color is named twice"):
        parse_prompt("blue hair and red hair")
    with pytest.raises(UsageError, match="no sunglasses"):
        parse_prompt("a person with no sunglasses")
    with pytest.raises(UsageError, match="'red' at the end"):
        parse_prompt("a person in red")


def test_vocabulary_words_parse_to_their_value():
    for family, values in vocabulary().items():
        for value, words in values.items():
            assert words, (family, value)
            for word in words:
                text = word.split("/")[0]  # "blue eyes/eyed/eye" -> "blue eyes"
                assert parse_prompt(text).get(family) == value, (word, text)


def test_heldout_pairs_never_in_training_split():
    for split in ("train", "test"):
        for index in range(3000):
            attrs, must = item_attributes(11, split, index)
            assert not heldout_pairs_in(attrs) and must == ()
            text = item_caption(attrs, must, item_rng(11, split, index, 2))
            assert not heldout_pairs_in(parse_prompt(text)), text


def test_heldout_split_names_a_heldout_pair():
    seen = set()
    for index in range(400):
        attrs, must = item_attributes(0, "heldout", index)
        text = item_caption(attrs, must, item_rng(0, "heldout", index, 2))
        pairs = heldout_pairs_in(parse_prompt(text))
        assert pairs, text
        seen.update(pairs)
    assert seen == set(HELDOUT_PAIRS)


def test_full_split_has_every_composition():
    counts = {pair: 0 for pair in HELDOUT_PAIRS}
    for index in range(2000):
        for pair in heldout_pairs_in(item_attributes(0, "full", index)[0]):
            counts[pair] += 1
    assert all(n > 10 for n in counts.values()), counts


def test_prompt_files_are_shipped_and_current():
    for name in ("heldin", "heldout"):
        prompts = load_prompts(name)
        assert len(prompts) == PROMPT_COUNT == len(set(prompts))
        assert prompts == make_prompts(name), f"{name}.txt is stale: run `proxt2i data make-prompts`"
        for prompt in prompts:
            pairs = heldout_pairs_in(parse_prompt(prompt))
            assert bool(pairs) == (name == "heldout"), prompt
    shuffled = load_prompts("heldout", num=5, seed=3)
    assert shuffled == load_prompts("heldout", num=5, seed=3) and set(shuffled) <= set(load_prompts("heldout"))
    with pytest.raises(UsageError, match="prompt set"):
        load_prompts("heldover")


def test_stream_matches_render_batch():
    items = list(SynthFacesStream(seed=2, size=32, split="heldout", num=3))
    images, attrs, captions = render_batch(2, 0, 3, 32, "heldout")
    assert [it["text"] for it in items] == captions and [it["attrs"] for it in items] == attrs
    first = items[0]["image"]
    assert first.shape == (3, 32, 32) and 0.0 <= first.min() and first.max() <= 1.0
    assert np.array_equal((first.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), images[0])
