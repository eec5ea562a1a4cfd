"""Word splitting of prompts and captions. Three rules, because each defines the inputs of something
already trained or shipped; they differ on hyphens and apostrophes only (all lower-case; every other
character separates words):

    text                    embedded_words              caption_words             prompt_words
    "A red-haired man."     a, red-haired, man          a, red, haired, man       a, red, haired, man
    "the man's cap"         the, man, s, cap            the, man's, cap           the, man, cap
    "don't"                 don, t                      don't                     don't

- embedded_words: the embedded text encoder's tokens and the vocabulary a training run builds from its
  captions (models/text.py EmbeddedTextEncoder, training/factories.py training_vocabulary).
- caption_words: the evaluator's word tokenizer, hence also the contrastive text tower used as a text
  encoder (models/tokenizer.py Tokenizer and build_vocab, evaluation/train.py caption_vocab).
- prompt_words: the SynthFaces prompt parser (data/captions.py), which also drops every "'s".
"""

from __future__ import annotations

import re

_HYPHENATED = re.compile(r"[a-z0-9][a-z0-9\-]*")  # a word starts with a letter or digit; hyphens stay inside it
_WITH_APOSTROPHES = re.compile(r"[a-z0-9']+")


def embedded_words(text: str) -> list[str]:
    """Lower-case words of letters, digits and hyphens: 'A red-haired man' -> ['a', 'red-haired', 'man']."""
    return _HYPHENATED.findall(text.lower())


def caption_words(text: str) -> list[str]:
    """Lower-case words of letters, digits and apostrophes; hyphens split words:
    'A red-haired, bald man.' -> ['a', 'red', 'haired', 'bald', 'man']."""
    return _WITH_APOSTROPHES.findall(text.lower().replace("-", " "))


def prompt_words(text: str) -> list[str]:
    """caption_words with every "'s" removed first: "the man's red-haired friend" -> ['the', 'man', 'red', 'haired', 'friend']."""
    return caption_words(text.lower().replace("'s", ""))
