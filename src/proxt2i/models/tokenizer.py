"""Word-level tokenizer over the SynthFaces caption vocabulary.

Lower-cased words of letters, digits and apostrophes; hyphens split words ("red-haired" -> "red",
"haired", as the SynthFaces prompt parser does); other punctuation is dropped. Every sequence starts with <bos>, so an empty prompt still has one token. Words outside
the vocabulary become <unk>; sequences are truncated / padded to a fixed length `max_len`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from ..text_split import caption_words  # the evaluator's rule

PAD, UNK, BOS = "<pad>", "<unk>", "<bos>"
SPECIALS = (PAD, UNK, BOS)  # ids 0, 1, 2


def build_vocab(texts: Iterable[str]) -> tuple[str, ...]:
    """Specials, then every word seen in `texts`, sorted (deterministic for a given word set)."""
    words = {w for t in texts for w in caption_words(t)}
    return SPECIALS + tuple(sorted(words - set(SPECIALS)))


@dataclass(frozen=True)
class Tokenizer:
    vocab: tuple[str, ...]
    max_len: int

    def __post_init__(self):
        if self.vocab[: len(SPECIALS)] != SPECIALS:
            raise ValueError(f"vocab must start with {SPECIALS}")
        object.__setattr__(self, "_index", {w: i for i, w in enumerate(self.vocab)})

    def ids(self, text: str) -> list[int]:
        """Token ids of one text, <bos> first, truncated to max_len."""
        index = self._index
        unk = index[UNK]
        return ([index[BOS]] + [index.get(w, unk) for w in caption_words(text)])[: self.max_len]

    def unknown_words(self, text: str) -> list[str]:
        """The words of `text` that map to <unk>."""
        return [w for w in caption_words(text) if w not in self._index]

    def __call__(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """texts -> (ids int64 [B, max_len], mask bool [B, max_len]); True marks real tokens."""
        ids = torch.zeros(len(texts), self.max_len, dtype=torch.long)
        for i, text in enumerate(texts):
            row = self.ids(text)
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return ids, ids != 0
