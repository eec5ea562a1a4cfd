"""The models inside the package: every shipped name loads, generates and lists its recipe."""

import json

import pytest
import torch

from proxt2i.cli import main
from proxt2i.pipeline import ProxT2IPipeline
from proxt2i.shipped import DEFAULT_MODEL, SHIPPED


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
        assert row["recipe"]["config"]["objective"] == row["objective"]
    assert main(["models"]) == 0
    assert "steps x batch 32" in capsys.readouterr().out
