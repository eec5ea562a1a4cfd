"""The SynthFaces text encoders a training run can ask for: the embedded encoder's vocabulary, gathered
from the SynthFaces data, and the spec 'synthfaces-contrastive', the shipped evaluator's text tower.

They sit here, not in models/, because they need the data and the evaluator, which are above the models.
"""

from __future__ import annotations

import functools

import torch.nn as nn

from ..models import text as model_text
from ..models.text import ContrastiveTextEncoder
from ..text_split import prompt_words

SYNTHFACES_CONTRASTIVE = "synthfaces-contrastive"


def synthfaces_contrastive_text_encoder() -> ContrastiveTextEncoder:
    """The shipped evaluator's contrastive text tower as a frozen text encoder (a copy of its weights)."""
    from ..evaluation.evaluator import load_evaluator

    c = load_evaluator().contrastive
    enc = ContrastiveTextEncoder(list(c.cfg.vocab), c.cfg.text_dim, c.cfg.text_depth, c.cfg.text_heads, c.cfg.max_len)
    enc.tower.load_state_dict({k: v.detach().float().cpu() for k, v in c.text.state_dict().items()})
    return enc.requires_grad_(False)


def load_text_encoder(spec: str, max_length: int | None = None, dtype=None) -> nn.Module:
    """From a spec string: 'synthfaces-contrastive', or any spec of models.text.load_text_encoder
    ('clip:/dir', 't5:/dir', 'clip:/dir+t5:/dir'); either side of a '+' may be 'synthfaces-contrastive'.
    max_length: the token limit of each Hugging Face encoder (None: its own); dtype: their weights' (None: float32)."""
    if spec == SYNTHFACES_CONTRASTIVE:
        return synthfaces_contrastive_text_encoder()
    return model_text.load_text_encoder(spec, load_part=load_text_encoder, max_length=max_length, dtype=dtype)


def synthfaces_vocabulary(num_captions: int = 20000, seed: int = 0) -> list[str]:
    """Every word of the SynthFaces caption language (sorted), gathered from generated training captions
    and the heldin / heldout prompt sets: the embedded encoder's vocabulary. (Every word the prompt
    parser knows is among them: tests/test_captions.py.)"""
    return list(_caption_words(num_captions, seed))


@functools.lru_cache(maxsize=4)  # a pure function of its arguments, and a few seconds of caption writing
def _caption_words(num_captions: int, seed: int) -> tuple[str, ...]:
    import numpy as np

    from ..data.prompts import load_prompts
    from ..data.synthfaces import caption, sample_attributes

    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    for _ in range(num_captions):
        seen.update(prompt_words(caption(sample_attributes(rng, split="full"), rng)[0]))
    for name in ("heldin", "heldout"):
        for p in load_prompts(name):
            seen.update(prompt_words(p))
    return tuple(sorted(seen))
