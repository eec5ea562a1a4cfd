"""The models inside the package: every shipped name loads, generates and lists its recipe."""

import json

import pytest
import torch

from proxt2i.cli import main
from proxt2i.pipeline import ProxT2IPipeline
from proxt2i.shipped import DEFAULT_MODEL, SHIPPED
from proxt2i.training.recipe import recipe_stages


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_model_generates_from_its_name(name):
    pipe = ProxT2IPipeline.from_pretrained(name)
    images = pipe(["a smiling woman with long red hair and glasses"] * 2, num_steps=2, seed=0, output_type="tensor")
    assert images.shape == (2, 3, pipe.config["image_size"], pipe.config["image_size"])
    assert torch.isfinite(images).all() and images.min() >= 0 and images.max() <= 1
    assert images.std() > 0.05  # a face, not a blank or constant image


def test_models_lists_every_stage_of_each_recipe(capsys):
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["models"]}
    assert set(rows) == set(SHIPPED) and rows[DEFAULT_MODEL]["default"]
    for row in rows.values():
        assert row["built"] and row["parameters"] > 1e6 and row["size_mb"] <= 25
        training = [st for st in recipe_stages(row["recipe"]) if "finetune" not in st]  # a fine-tune lists its base's runs
        assert training and training[-1]["config"]["objective"] == row["objective"]
    assert main(["models"]) == 0
    assert "steps x batch 32" in capsys.readouterr().out


def test_default_model_is_the_forward_process_fine_tune_of_the_pretrained_prox_model():
    from proxt2i.cli import build_parser

    assert build_parser("generate").parse_args(["generate", "a smiling man"]).model == DEFAULT_MODEL == "synthfaces-prox-nft"
    pipe = ProxT2IPipeline.from_pretrained()  # no name: the same default as `proxt2i generate`
    recipe = pipe.config["recipe"]
    assert pipe.objective == "prox" and recipe["finetune"]["algorithm"] == "nft" and recipe["base_model"] == "synthfaces-prox"
    assert recipe["steps_done"] == 300 and "--steps 300" in SHIPPED[DEFAULT_MODEL]["rebuild"]
    grpo = ProxT2IPipeline.from_pretrained("synthfaces-prox-grpo").config["recipe"]  # the earlier default stays addressable
    assert grpo["finetune"]["algorithm"] == "grpo"
    assert pipe.time_grid_for() == "quadratic"  # the grid it was fine-tuned on, kept as its default
    tuned, base = pipe.net.uvit.state_dict(), ProxT2IPipeline.from_pretrained("synthfaces-prox").net.uvit.state_dict()
    assert tuned.keys() == base.keys() and any(not torch.equal(tuned[k], base[k]) for k in base)


def test_the_distilled_model_samples_its_teachers_guidance_in_one_pass():
    pipe = ProxT2IPipeline.from_pretrained("synthfaces-prox-nft-distilled")
    recipe = pipe.config["recipe"]
    assert recipe["config"]["distill_guidance"] == 4.0 and recipe["config"]["init"] == "synthfaces-prox-nft"
    assert pipe.guidance_or_default(None) == 1.0 and pipe.time_grid_for() == "quadratic"
    calls = []
    net = pipe.net
    pipe.net = lambda y, t, lam, prompts: calls.append(len(prompts)) or net(y, t, lam, prompts)
    pipe(["a smiling man"] * 2, num_steps=3, output_type="tensor")
    assert calls == [2, 2, 2]  # one unguided pass per step (a guided model passes 4 rows: cond + uncond)


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_generators_read_every_parser_word(name):
    """Retrained on the six-form captions: the word-piece tokenizer, and no word the prompt parser knows is unseen."""
    from proxt2i.data import captions

    pipe = ProxT2IPipeline.from_pretrained(name)
    enc = pipe.net.text_encoder
    words = {w for phrases in captions.VALUE_PHRASES.values() for p in phrases for w in p.split()}
    words |= {w for mods in captions.MODIFIERS.values() for m in mods for w in m.split()}
    words |= set(captions.HEADS) | set(captions.STANDALONE) | captions.GLUE | captions.NOUNS | captions.NEGATIONS
    assert enc.tokenizer_kind == "pieces" and pipe.unseen_words(" ".join(sorted(words))) == []
    assert any("text_vocabulary_remap" in st for st in recipe_stages(pipe.config["recipe"]))  # how the old words were carried over
    # no word that has same-meaning words kept the shared mean row of the carry-over (docs/models.md, "Stage 8")
    norms = enc.embed.weight.detach().float()[2:].norm(dim=1)
    small = [w for w in sorted(words) if captions.same_meaning_words(w) and norms[enc.index[w] - 2] < norms.median() / 3]
    assert small == []


def test_the_consistency_distilled_competitor_samples_with_its_own_sampler_in_one_pass():
    pipe = ProxT2IPipeline.from_pretrained("synthfaces-lcm")
    recipe = pipe.config["recipe"]
    assert recipe["config"]["consistency"] == "distillation" and recipe["config"]["init"] == "synthfaces-score"
    assert pipe.objective == "score" and pipe.default_sampler == "consistency" and pipe.guidance_or_default(None) == 1.0
    calls = []
    net = pipe.net
    pipe.net = lambda y, t, lam, prompts: calls.append(len(prompts)) or net(y, t, lam, prompts)
    pipe(["a smiling man"] * 2, num_steps=3, output_type="tensor")
    assert calls == [2, 2, 2]
