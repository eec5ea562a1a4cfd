"""training.text: the SynthFaces vocabulary and the 'synthfaces-contrastive' text encoder spec."""

import pytest
import torch

from proxt2i.errors import UsageError
from proxt2i.training.text import load_text_encoder, synthfaces_vocabulary


def test_synthfaces_vocabulary_covers_every_prompt_set_and_every_parser_word():
    """The vocabulary training builds (the default call) holds every word of the three shipped sets,
    the paraphrase set included although no paraphrase is a training caption, and every parser word."""
    from proxt2i.data import captions
    from proxt2i.data.prompts import PROMPT_SETS, load_prompts
    from proxt2i.text_split import prompt_words

    vocab = set(synthfaces_vocabulary())
    for name in PROMPT_SETS:
        missing = {w for p in load_prompts(name) for w in prompt_words(p)} - vocab
        assert not missing, (name, missing)
    parser = {w for phrases in captions.VALUE_PHRASES.values() for p in phrases for w in p.split()}
    parser |= {w for words in captions.MODIFIERS.values() for m in words for w in m.split()}
    parser |= set(captions.HEADS) | set(captions.STANDALONE) | captions.GLUE | captions.NOUNS | captions.NEGATIONS
    assert parser - vocab == set() and len(vocab) == len(parser)


def test_contrastive_text_encoder_is_the_evaluators_tower_frozen_and_saved_with_the_model(tmp_path):
    import json

    from proxt2i.evaluation.evaluator import load_evaluator
    from proxt2i.models.io import load_model_folder
    from proxt2i.training.presets import resolve_config
    from proxt2i.training.run import train

    enc = load_text_encoder("synthfaces-contrastive")
    prompts = ["a smiling person with red hair", ""]
    out = enc.encode(prompts)
    tokens, mask, pooled = load_evaluator().encode_text(prompts)
    assert torch.allclose(out.tokens, tokens, atol=1e-6) and torch.equal(out.mask, mask) and torch.allclose(out.pooled, pooled, atol=1e-6)
    assert out.mask[1].sum() == 1  # the empty prompt: <bos> only
    assert not any(p.requires_grad for p in enc.parameters())
    final = train(resolve_config("test-tiny", [f"out={tmp_path / 'run'}", "steps=2", "text_encoder=synthfaces-contrastive"]), progress=False)
    assert json.loads((final / "config.json").read_text())["text_encoder"]["type"] == "contrastive"
    net = load_model_folder(final).net
    assert torch.allclose(net.text_encoder.encode(prompts).pooled, out.pooled, atol=1e-2)  # float16 in the folder


def test_other_specs_go_to_the_models_loader_with_its_messages():
    with pytest.raises(UsageError, match="not understood; use 'clip:DIR', 't5:DIR' or 'clip:DIR\\+t5:DIR'"):
        load_text_encoder("bert:/x")
    with pytest.raises(UsageError, match="not understood"):
        load_text_encoder("synthfaces-contrastive+bert:/x")
