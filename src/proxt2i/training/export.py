"""Checkpoint -> model folder: any training checkpoint, EMA or raw weights, as a folder `generate` can load.

The run's final export (OUT/final) is the EMA at the last step; this gives the same for an earlier step
(e.g. to measure quality during training) or the raw weights (which the EMA lags behind early on).
"""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import load_file

from ..errors import UsageError, read_json
from .checkpoint import latest_checkpoint

WEIGHTS = {"ema": "ema.safetensors", "raw": "model.safetensors"}


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder (OUT/checkpoints/step-XXXXXXXX) as given, or a run folder's newest checkpoint."""
    path = Path(path)
    if (path / "state.json").exists():
        return path
    newest = latest_checkpoint(path) if path.is_dir() else None
    if newest is None:
        raise UsageError(f"{path} is neither a checkpoint folder (with state.json) nor a training run with checkpoints")
    return newest


def export_checkpoint(checkpoint: str | Path, out: str | Path, weights: str = "ema") -> Path:
    """Write the checkpoint's `weights` ("ema" or "raw") as a model folder at `out` (atomically); returns `out`."""
    from ..pipeline import save_pipeline
    from .presets import config_from_dict, sampling_defaults
    from .recipe import checkpoint_init_recipe
    from .run import BatchSource, build_autoencoder, build_network, training_vocabulary

    if weights not in WEIGHTS:
        raise UsageError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    ckpt = find_checkpoint(checkpoint)
    state = read_json(ckpt / "state.json", "checkpoint state")
    if "config" not in state:
        raise UsageError(f"{ckpt / 'state.json'} has no training config; is it a proxt2i training checkpoint?")
    cfg = config_from_dict(state["config"])
    autoencoder = build_autoencoder(cfg.autoencoder).eval()
    # checkpoints store the embedded encoder's words; older ones did not, and then the data is read again
    vocab = state["vocabulary"] if "vocabulary" in state else training_vocabulary(BatchSource(cfg))
    net = build_network(cfg, autoencoder.latent_channels, cfg.image_size // autoencoder.downsample, vocab)
    try:
        net.load_state_dict(load_file(ckpt / WEIGHTS[weights]))
    except Exception as err:  # missing, truncated or mismatched file
        raise UsageError(f"cannot read {ckpt / WEIGHTS[weights]} ({str(err).strip().splitlines()[0]})") from None
    recipe = {"exported_from": str(ckpt), "steps": state.get("step"), "weights": weights, "config": state["config"],
              "wall_seconds": state.get("wall_seconds"),
              "init_recipe": checkpoint_init_recipe(state, cfg.init)}
    return save_pipeline(out, net.uvit, net.text_encoder, autoencoder, objective=cfg.objective,
                         image_size=cfg.image_size, recipe=recipe, sampling=sampling_defaults(cfg))
