"""The three word-splitting rules: each defines the inputs of something trained (embedded text encoder,
evaluator tokenizer, SynthFaces prompt parser), so their outputs are pinned here."""

import pytest

from proxt2i.text_split import caption_words, embedded_words, prompt_words

CASES = [  # text, embedded_words, caption_words, prompt_words
    ("A red-haired, bald man.", ["a", "red-haired", "bald", "man"], ["a", "red", "haired", "bald", "man"], ["a", "red", "haired", "bald", "man"]),
    ("blue-eyed", ["blue-eyed"], ["blue", "eyed"], ["blue", "eyed"]),
    ("the man's cap", ["the", "man", "s", "cap"], ["the", "man's", "cap"], ["the", "man", "cap"]),
    ("O'Neil'S hat", ["o", "neil", "s", "hat"], ["o'neil's", "hat"], ["o'neil", "hat"]),
    ("-x- a--b 3-4 well-", ["x-", "a--b", "3-4", "well-"], ["x", "a", "b", "3", "4", "well"], ["x", "a", "b", "3", "4", "well"]),
    ("café a_b", ["caf", "a", "b"], ["caf", "a", "b"], ["café", "a", "b"]),
    ("ein lächelnder Mann", ["ein", "l", "chelnder", "mann"], ["ein", "l", "chelnder", "mann"], ["ein", "lächelnder", "mann"]),
    ("", [], [], []),
]


@pytest.mark.parametrize("text, embedded, caption, prompt", CASES)
def test_each_rule(text, embedded, caption, prompt):
    assert embedded_words(text) == embedded
    assert caption_words(text) == caption
    assert prompt_words(text) == prompt
