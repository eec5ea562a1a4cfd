"""Checkpoint -> model folder: any training checkpoint, EMA or raw weights, as a folder `generate` can load.

The run's final export (OUT/final) is the EMA at the last step; this gives the same for an earlier step
(e.g. to measure quality during training) or the raw weights (which the EMA lags behind early on).
"""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import load_file

from ..errors import UsageError, read_json
from .checkpoint import latest_checkpoint, load_trained_state
from .ema import frozen_children

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


def export_checkpoint(checkpoint: str | Path, out: str | Path, weights: str = "ema", overwrite: bool = False) -> Path:
    """Write the checkpoint's `weights` ("ema" or "raw") as a model folder at `out` (atomically); returns `out`.
    An existing `out` must be a model folder and `overwrite` given."""
    from ..models.io import save_model_folder
    from .presets import config_from_dict, sampling_defaults
    from .recipe import checkpoint_init_recipe
    from .data import BatchSource
    from .factories import build_autoencoder, build_network, training_vocabulary

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
        load_trained_state(net, load_file(ckpt / WEIGHTS[weights]), frozen_children(net))
    except Exception as err:  # missing, truncated or mismatched file
        raise UsageError(f"cannot read {ckpt / WEIGHTS[weights]} ({str(err).strip().splitlines()[0]})") from None
    recipe = {"exported_from": str(ckpt), "steps": state.get("step"), "weights": weights, "config": state["config"],
              "wall_seconds": state.get("wall_seconds"),
              "init_recipe": checkpoint_init_recipe(state, cfg.init)}
    return save_model_folder(out, net.uvit, net.text_encoder, autoencoder, objective=cfg.objective,
                             image_size=cfg.image_size, recipe=recipe, sampling=sampling_defaults(cfg), overwrite=overwrite)


def check_same_latent_space(current, replacement, what: str) -> None:
    """UsageError unless `replacement` encodes exactly as `current` does (same kind, shape, encoder weights and
    latent scale and shift, compared at the float16 precision model folders store): a decoder-only fine-tune."""
    import torch

    def encoder_state(ae) -> dict:
        state = ae.state_dict()
        return {k: v.half() for k, v in state.items() if not k.startswith("decoder.")}

    a, b = encoder_state(current), encoder_state(replacement)
    same = current.config() | {"scale": 0, "shift": 0} == replacement.config() | {"scale": 0, "shift": 0} and a.keys() == b.keys()
    if not same or not all(torch.equal(a[k], b[k]) for k in a):
        raise UsageError(f"{what}: its encoder or latent scale differs from the model's, so the model's latents would decode "
                         "to something else; train a decoder for this model with `proxt2i train-vae --init VAE --decoder-only`")


def export_model(source: str | Path, out: str | Path, weights: str = "ema", autoencoder: str | None = None,
                 overwrite: bool = False) -> Path:
    """A model folder at `out` from a training checkpoint or run (`weights` EMA or raw), or from a model
    folder or shipped name (copied). autoencoder: a VAE folder whose decoder replaces the model's (its encoder
    must be the model's: check_same_latent_space); the recipe records it. Written atomically; returns `out`.
    An existing `out` must be a model folder and `overwrite` given (models.io.check_replaceable)."""
    from ..models.io import check_replaceable, load_model_folder, save_model_folder
    from ..shipped import SHIPPED, resolve_model
    from .vae import load_autoencoder_dir, resolve_vae_dir, vae_recipe

    check_replaceable(Path(out), overwrite)  # before any work
    path = Path(source)
    if str(source) not in SHIPPED and not (path / "uvit.safetensors").exists():
        if autoencoder is None:
            return export_checkpoint(source, out, weights, overwrite)
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:  # the checkpoint as a folder first, then its decoder replaced
            return export_model(export_checkpoint(source, Path(tmp) / "model", weights), out, autoencoder=autoencoder,
                                overwrite=overwrite)
    pipe = load_model_folder(resolve_model(str(source)))
    recipe, ae = dict(pipe.config.get("recipe", {})), pipe.autoencoder
    if autoencoder is not None:
        vae_dir = resolve_vae_dir(autoencoder)
        ae = load_autoencoder_dir(vae_dir)
        check_same_latent_space(pipe.autoencoder, ae, f"autoencoder {autoencoder!r}")
        recipe["autoencoder"] = {"from": str(autoencoder), "recipe": vae_recipe(vae_dir)}
    return save_model_folder(out, pipe.net.uvit, pipe.net.text_encoder, ae, objective=pipe.objective,
                             image_size=int(pipe.config["image_size"]), recipe=recipe, sampling=pipe.config.get("sampling"),
                             schedule=pipe.schedule, overwrite=overwrite)
