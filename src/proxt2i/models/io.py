"""The model folder: one on-disk format for shipped, trained and user models (never pickles).

    config.json               {"format": "proxt2i-model", "version": 1, "objective": "prox"|"score",
                               "uvit": {...}, "text_encoder": {...}, "autoencoder": {...},
                               "schedule": {"type": "vp", ...}, "image_size": S, "recipe": {...},
                               "sampling": {"sampler": NAME, "time_grid": {SAMPLER: GRID}, "guidance": W}}
                              (sampling and each of its keys: optional)
    uvit.safetensors          U-ViT weights (EMA), float16
    text_encoder.safetensors  embedded text encoder weights (absent for frozen Hugging Face encoders)
    autoencoder.safetensors   small VAE weights (absent for identity / diffusers VAEs)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..atomic import check_output_folder, replace_folder
from ..errors import UsageError, read_json
from ..schedule import Schedule, VPSchedule, schedule_from_config, schedule_to_config

FORMAT, VERSION = "proxt2i-model", 1
CONFIG_KEYS = {"format", "version", "objective", "uvit", "text_encoder", "autoencoder", "schedule", "image_size", "recipe", "sampling"}


@dataclass
class ModelFolder:
    """A loaded model folder: its config, the network (TextConditionedUViT, eval mode), the autoencoder
    (eval mode), the forward process it was trained on, and where it came from."""

    config: dict
    net: torch.nn.Module
    autoencoder: torch.nn.Module
    schedule: Schedule
    path: Path

    @property
    def objective(self) -> str:
        return self.config["objective"]


def default_time_grid(config: dict, sampler: str) -> str:
    """The time grid `sampler` walks by default on this model: config.json "sampling": {"time_grid":
    {SAMPLER: GRID}}, else uniform. A property of the trained model (the shipped prox model: quadratic)."""
    return config.get("sampling", {}).get("time_grid", {}).get(sampler, "uniform")


def default_sampler(config: dict) -> str:
    """The sampler this model samples with by default: config.json "sampling": {"sampler": NAME} (a consistency
    model: "consistency"), else its objective's default (samplers.registry.DEFAULT_SAMPLER)."""
    from ..samplers.registry import DEFAULT_SAMPLER

    return config.get("sampling", {}).get("sampler") or DEFAULT_SAMPLER[config["objective"]]


def default_guidance(config: dict) -> float:
    """The CFG scale this model samples with by default: config.json "sampling": {"guidance": W}, else 4
    (1 for a guidance-distilled model, whose guidance is in its weights)."""
    return float(config.get("sampling", {}).get("guidance", 4.0))


def is_model_folder(path: Path) -> bool:
    """Whether `path` is a folder whose config.json declares this format."""
    try:
        return (path / "config.json").is_file() and json.loads((path / "config.json").read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def check_replaceable(path: Path, overwrite: bool) -> None:
    """Refuse to write a model folder over anything but nothing, an empty folder, or (with overwrite) a model
    folder: a user's files or a training run are never replaced."""
    check_output_folder(path, overwrite, is_model_folder, "proxt2i model folder")


def save_model_folder(path, uvit, text_encoder, autoencoder, objective: str, image_size: int, recipe: dict | None = None,
                      sampling: dict | None = None, schedule: Schedule | None = None, overwrite: bool = False) -> Path:
    """Write a model folder atomically (atomic.replace_folder: a temporary folder swapped into place, one
    writer at a time). sampling: the model's sampling defaults, e.g. {"time_grid": {"pda-hybrid": "quadratic"}}
    (omitted: uniform grids). An existing target must be a model folder and `overwrite` given (check_replaceable)."""
    from safetensors.torch import save_file

    from .text import SAVED_TEXT_ENCODERS

    path = Path(path)
    with replace_folder(path, overwrite=overwrite, is_ours=is_model_folder, what="proxt2i model folder") as tmp:
        config = {"format": FORMAT, "version": VERSION, "objective": objective, "uvit": uvit.config.to_dict(),
                  "text_encoder": text_encoder.config(), "autoencoder": autoencoder.config(),
                  "schedule": schedule_to_config(schedule or VPSchedule()), "image_size": image_size, "recipe": recipe or {}}
        if sampling:
            config["sampling"] = sampling
        save_file(_half(uvit), tmp / "uvit.safetensors")
        if config["text_encoder"]["type"] in SAVED_TEXT_ENCODERS:
            save_file(_half(text_encoder), tmp / "text_encoder.safetensors")
        if config["autoencoder"]["type"] == "small_vae":
            save_file(_half(autoencoder), tmp / "autoencoder.safetensors")
        (tmp / "config.json").write_text(json.dumps(config, indent=1))
    return path


def _half(module: torch.nn.Module) -> dict:
    """State dict with floating tensors stored as float16 (half the size; loading casts back to float32).
    Training checkpoints stay float32: only exported model folders are halved."""
    return {k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous() for k, v in module.state_dict().items()}


def read_model_config(path: Path) -> dict:
    """config.json of a model folder, checked for format, version and known keys."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"model {str(path)!r} is a file, expected a model folder (config.json and uvit.safetensors) or a shipped name")
    if not path.is_dir():
        raise UsageError(f"model folder {str(path)!r} not found; give a folder with config.json and uvit.safetensors, "
                         f"or a shipped name (see `proxt2i models`)")
    cfg_path = path / "config.json"
    if not cfg_path.exists():
        raise UsageError(f"{str(path)!r} is not a model folder (no config.json); give a folder that `proxt2i export` wrote, or a shipped name")
    cfg = read_json(cfg_path, "model config")
    if cfg.get("format") != FORMAT or cfg.get("version") != VERSION or type(cfg.get("version")) is not int:
        raise UsageError(f"{cfg_path} is not a proxt2i model config (format {FORMAT!r} version {VERSION} expected)")
    unknown = set(cfg) - CONFIG_KEYS
    if unknown:
        raise UsageError(f"{cfg_path} has unknown keys {sorted(unknown)}; valid keys: {sorted(CONFIG_KEYS)}")
    problem = config_problem(cfg)
    if problem:
        raise UsageError(f"{cfg_path}: {problem}")
    return cfg


def config_problem(cfg: dict) -> str | None:
    """What is wrong with a model config's top-level entries (the sections are checked where they are
    built), or None. Each entry is either used or refused: nothing is silently ignored."""
    from ..schedule import grid_power

    if cfg.get("objective") not in ("prox", "score"):
        return f"objective must be \"prox\" or \"score\", got {cfg.get('objective')!r}"
    size = cfg.get("image_size")
    if type(size) is not int or size < 1:
        return f"image_size must be an integer >= 1, got {size!r}"
    for key in ("uvit", "text_encoder", "autoencoder"):
        if not isinstance(cfg.get(key), dict):
            return f"{key} must be a JSON object {{...}}, got {json.dumps(cfg.get(key))}"
    for key in ("recipe", "sampling", "schedule"):
        if key in cfg and not isinstance(cfg[key], dict):
            return f"{key} must be a JSON object {{...}}, got {json.dumps(cfg[key])}"
    sampling = cfg.get("sampling", {})
    if set(sampling) - {"sampler", "time_grid", "guidance"} or not isinstance(sampling.get("time_grid", {}), dict):
        return 'sampling must be {"sampler": NAME, "time_grid": {SAMPLER: GRID}, "guidance": W} (each optional)'
    if "sampler" in sampling:
        from ..samplers.registry import SAMPLERS

        spec = SAMPLERS.get(sampling["sampler"]) if isinstance(sampling["sampler"], str) else None
        if spec is None or spec.objective != cfg.get("objective"):
            return f"sampling.sampler must name a sampler of a {cfg.get('objective')} model, got {json.dumps(sampling['sampler'])}"
    guidance = sampling.get("guidance", 4.0)
    if type(guidance) not in (int, float) or not math.isfinite(guidance) or guidance < 0:
        return f"sampling.guidance must be a finite number >= 0, got {json.dumps(guidance)}"
    for sampler, grid in sampling.get("time_grid", {}).items():
        try:
            grid_power(grid)
        except (UsageError, TypeError, AttributeError):
            return f"sampling.time_grid.{sampler}: unknown time grid {grid!r}; use uniform, quadratic or power:R (R > 0)"
    return None


def read_safetensors(file: Path) -> dict:
    """The tensors of a safetensors file; a missing one, or one that is not safetensors (a pickle, a
    truncated copy), is one UsageError naming it. Nothing else is ever unpickled."""
    from safetensors.torch import load_file

    file = Path(file)
    if not file.is_file():
        raise UsageError(f"missing weights file {file}; the folder is incomplete")
    try:
        return load_file(file)
    except Exception as err:  # safetensors raises its own error type for truncated / corrupt files
        raise UsageError(f"weights file {file} is not a readable safetensors file, corrupt or truncated ({str(err).splitlines()[0]})") from None


def load_weights(module: torch.nn.Module, file: Path) -> None:
    """Load a safetensors file into module; a missing, corrupt or mismatched file is one UsageError."""
    if not file.exists():
        raise UsageError(f"missing weights file {file}; the model folder is incomplete")
    state = read_safetensors(file)
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise UsageError(f"weights in {file} do not match config.json ({str(err).splitlines()[0]})") from None


def load_model_folder(path, dtype: torch.dtype | None = None) -> ModelFolder:
    """A model folder's config, network (TextConditionedUViT, eval mode), autoencoder and schedule. dtype:
    Hugging Face text encoders and a diffusers VAE load their weights in it (the pipeline casts the rest)."""
    from .autoencoder import autoencoder_from_config
    from .conditional import TextConditionedUViT
    from .text import SAVED_TEXT_ENCODERS, text_encoder_from_config
    from .uvit import UViT, UViTConfig

    path = Path(path)
    cfg = read_model_config(path)
    where = str(path / "config.json")
    schedule = schedule_from_config(cfg.get("schedule"), where)
    try:  # every section is checked (types, ranges, agreement) before any weights are read
        uvit_config = UViTConfig.from_dict(cfg["uvit"])
        text = text_encoder_from_config(cfg["text_encoder"], dtype)
        ae = autoencoder_from_config(cfg["autoencoder"], dtype)
        check_agreement(cfg, uvit_config, text, ae)
    except UsageError as err:
        raise UsageError(f"{where}: {err}") from None
    uvit = UViT(uvit_config)
    load_weights(uvit, path / "uvit.safetensors")
    if cfg["text_encoder"]["type"] in SAVED_TEXT_ENCODERS:
        load_weights(text, path / "text_encoder.safetensors")
    if cfg["autoencoder"]["type"] == "small_vae":
        load_weights(ae, path / "autoencoder.safetensors")
    return ModelFolder(cfg, TextConditionedUViT(uvit, text, schedule).eval(), ae.eval(), schedule, path)


def check_agreement(cfg: dict, uvit_config, text, autoencoder) -> None:
    """The sections must fit together: the U-ViT sees the autoencoder's latents and the text encoder's features."""
    latent = cfg["image_size"] // autoencoder.downsample
    if (uvit_config.in_channels, uvit_config.image_size) != (autoencoder.latent_channels, latent):
        raise UsageError(f"uvit.in_channels / uvit.image_size ({uvit_config.in_channels}, {uvit_config.image_size}) do not match the "
                         f"autoencoder's latents of image_size {cfg['image_size']} ({autoencoder.latent_channels}, {latent})")
    if uvit_config.text_dim != text.dim:
        raise UsageError(f"uvit.text_dim {uvit_config.text_dim} does not match the text encoder's width {text.dim}")
    if use_lam_for(cfg["objective"]) != uvit_config.use_lam:
        raise UsageError(f"uvit.use_lam must be {str(use_lam_for(cfg['objective'])).lower()} for objective {cfg['objective']!r}")


def use_lam_for(objective: str) -> bool:
    return objective == "prox"
