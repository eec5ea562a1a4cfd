"""Training recipes as recorded in model folders and checkpoints: plain dicts, no torch (so that
`proxt2i models` lists models without importing it)."""

from __future__ import annotations

from ..errors import read_json


def model_recipe(name_or_path: str) -> dict | None:
    """The training recipe recorded in a model folder's config.json (None for "" or a folder without one)."""
    from ..shipped import resolve_model

    if not name_or_path:
        return None
    path = resolve_model(name_or_path) / "config.json"
    return read_json(path, "model config").get("recipe") if path.exists() else None


def checkpoint_init_recipe(state: dict, init: str) -> dict | None:
    """The init model's recipe as a checkpoint recorded it; checkpoints from before it was recorded
    fall back to reading the init model's folder as it is now."""
    return state["init_recipe"] if "init_recipe" in state else model_recipe(init)


def recipe_stages(recipe: dict) -> list[dict]:
    """A recipe and the recipes of the models it was initialised from (training: init_recipe) or fine-tuned
    from (GRPO / R0: base_recipe), oldest first."""
    stages = []
    while recipe:
        stages.insert(0, recipe)
        recipe = recipe.get("init_recipe") or recipe.get("base_recipe")
    return stages
