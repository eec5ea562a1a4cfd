"""Word splitting of prompts and captions.

`prompt_words` is the rule: the SynthFaces prompt parser, the embedded text encoder's tokenizer
(tokenizer "pieces", every model trained since the paraphrase captions), its truncation check and the
unseen-word warning all split with it. Two older rules remain, each because something shipped was
trained on it; they differ on hyphens, apostrophes and letters outside a-z (all lower-case; every other character
separates words):

    text                    embedded_words              caption_words             prompt_words
    "A red-haired man."     a, red-haired, man          a, red, haired, man       a, red, haired, man
    "the man's cap"         the, man, s, cap            the, man's, cap           the, man, cap
    "don't"                 don, t                      don't                     don't
    "ein lächelnder Mann"   ein, l, chelnder, mann      ein, l, chelnder, mann    ein, lächelnder, mann

- embedded_words: the embedded text encoder of models saved with tokenizer "words" (models/text.py).
- caption_words: the evaluator's word tokenizer, hence also the contrastive text tower used as a text
  encoder (models/tokenizer.py Tokenizer and build_vocab, evaluation/train.py caption_vocab).
- prompt_words: caption_words with every "'s" dropped and letters of any script kept inside their word.

`known_pieces` splits a word the model never saw into words it did ("redhaired" -> red, haired).
"""

from __future__ import annotations

import re

_HYPHENATED = re.compile(r"[a-z0-9][a-z0-9\-]*")  # a word starts with a letter or digit; hyphens stay inside it
_WITH_APOSTROPHES = re.compile(r"[a-z0-9']+")
_ANY_LETTERS = re.compile(r"(?:[^\W_]|')+")  # letters of any script, digits, apostrophes: 'lächelnder' stays one word


def embedded_words(text: str) -> list[str]:
    """Lower-case words of letters, digits and hyphens: 'A red-haired man' -> ['a', 'red-haired', 'man']."""
    return _HYPHENATED.findall(text.lower())


def caption_words(text: str) -> list[str]:
    """Lower-case words of letters, digits and apostrophes; hyphens split words:
    'A red-haired, bald man.' -> ['a', 'red', 'haired', 'bald', 'man']."""
    return _WITH_APOSTROPHES.findall(text.lower().replace("-", " "))


def prompt_words(text: str) -> list[str]:
    """caption_words with every "'s" removed first, and letters of any script kept in their word (so that a
    warning names 'lächelnder', not 'l' and 'chelnder'): "the man's red-haired friend" -> ['the', 'man', 'red',
    'haired', 'friend']."""
    return _ANY_LETTERS.findall(text.lower().replace("'s", "").replace("-", " "))


MIN_PIECE = 3  # shorter pieces ("a", "no") would split almost any word into noise


def known_pieces(word: str, known) -> list[str | None]:
    """`word` as known words, longest first from the left; None stands for each run of letters no known
    word of MIN_PIECE or more letters covers: 'redhaired' -> ['red', 'haired'], 'smiley' -> ['smile', None],
    'astronaut' -> [None]. A known word is itself: ['cap']."""
    if word in known:
        return [word]
    pieces: list[str | None] = []
    i = 0
    while i < len(word):
        for j in range(len(word), i + MIN_PIECE - 1, -1):
            if word[i:j] in known:
                pieces.append(word[i:j])
                i = j
                break
        else:
            if not pieces or pieces[-1] is not None:
                pieces.append(None)
            i += 1
    return pieces
