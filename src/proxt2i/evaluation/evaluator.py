"""The evaluator on disk and in memory.

On disk, one folder (the diffusers layout): `config.json` (architectures, vocabulary, training
recipe, measured accuracies), `recogniser.safetensors`, `contrastive.safetensors` and
`reference.safetensors` (recogniser features of fresh renders, for the Frechet distance). Weights
are stored as float16 and loaded as float32; never pickles. The default evaluator ships in
`proxt2i/assets/evaluator/` and is rebuilt with `proxt2i evaluator train --out DIR`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from ..atomic import atomic_save_safetensors, atomic_write_text
from ..errors import UsageError, read_json
from ..models.io import read_safetensors
from ..models.tokenizer import Tokenizer
from .contrastive import ContrastiveConfig, ContrastiveModel
from .preprocess import to_model_input
from .recogniser import Recogniser, RecogniserConfig

DEFAULT_DIR = Path(__file__).resolve().parents[1] / "assets" / "evaluator"
FORMAT = "proxt2i-evaluator/1"
WEIGHT_FILES = ("recogniser.safetensors", "contrastive.safetensors")


@dataclass(frozen=True, eq=False)
class Evaluator:
    """Frozen (eval mode, no parameter gradients) evaluator models. Gradients still flow to inputs."""

    recogniser: Recogniser
    contrastive: ContrastiveModel
    tokenizer: Tokenizer
    config: dict
    reference: torch.Tensor | None = None  # recogniser features of fresh renders [N_ref, F], or None
    path: Path | None = None

    @property
    def resolution(self) -> int:
        return self.recogniser.cfg.resolution

    @property
    def device(self) -> torch.device:
        return self.contrastive.logit_scale.device

    @property
    def families(self) -> dict[str, tuple[str, ...]]:
        return dict(self.recogniser.cfg.families)

    def to(self, device) -> "Evaluator":
        """Move the models (in place; the cached evaluator is shared) and return self."""
        self.recogniser.to(device)
        self.contrastive.to(device)
        return self

    def prepare(self, images) -> torch.Tensor:
        """uint8 [N, H, W, 3] or float [N, 3, H, W] in [0, 1], side 32-256 -> float [N, 3, R, R]."""
        return to_model_input(images, self.resolution)

    def encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The contrastive text tower as a text encoder: prompts -> token states [B, L, D] (zero at
        padding), mask bool [B, L] (True = real token, <bos> first), pooled [B, D] (masked mean).
        L = tokenizer.max_len, D = contrastive text_dim. Unknown words map to <unk>."""
        ids, mask = self.tokenizer(list(prompts))
        ids, mask = ids.to(self.device), mask.to(self.device)
        tokens, pooled = self.contrastive.encode_text(ids, mask)
        return tokens, mask, pooled


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    model.eval()
    model.requires_grad_(False)
    return model


def save_weights(model: torch.nn.Module, path: Path) -> None:
    """State dict -> safetensors, floats stored as float16, atomically."""
    state = {k: (v.half() if v.is_floating_point() else v).contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_save_safetensors(state, path)


def save_reference(features: torch.Tensor, path: Path) -> None:
    """Reference features [N, F] -> safetensors (float16, atomically)."""
    atomic_save_safetensors({"features": features.half().contiguous().cpu()}, path)


def save_config(config: dict, path: Path) -> None:
    atomic_write_text(path, json.dumps(config, indent=1) + "\n")


def load_weights(model: torch.nn.Module, path: Path) -> torch.nn.Module:
    state = {k: v.float() if v.is_floating_point() else v for k, v in read_safetensors(path).items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise UsageError(f"weights in {path} do not match its config.json ({str(err).splitlines()[0]})") from None
    return model


def read_config(folder: Path) -> dict:
    if not folder.is_dir():
        raise UsageError(f"evaluator folder {folder} does not exist: train one with `proxt2i evaluator train --out {folder}`")
    missing = [n for n in ("config.json",) + WEIGHT_FILES if not (folder / n).is_file()]
    if missing:
        raise UsageError(f"evaluator folder {folder} lacks {', '.join(missing)}: rebuild it with `proxt2i evaluator train --out {folder}`")
    config = read_json(folder / "config.json", "evaluator config")
    if config.get("format") != FORMAT:
        raise UsageError(f"{folder / 'config.json'} is not a {FORMAT} evaluator config")
    return config


def build_evaluator(config: dict, folder: Path | None = None) -> Evaluator:
    """Models from config (random weights unless folder is given, then loaded from it)."""
    rec = Recogniser(RecogniserConfig.from_json(config["recogniser"]))
    ccfg = ContrastiveConfig.from_json(config["contrastive"])
    con = ContrastiveModel(ccfg)
    reference = None
    if folder is not None:
        load_weights(rec, folder / "recogniser.safetensors")
        load_weights(con, folder / "contrastive.safetensors")
        if (folder / "reference.safetensors").is_file():
            reference = read_safetensors(folder / "reference.safetensors")
            if "features" not in reference:
                raise UsageError(f"{folder / 'reference.safetensors'} has no 'features' tensor; rebuild the evaluator")
            reference = reference["features"].float()
    return Evaluator(freeze(rec), freeze(con), ccfg.tokenizer(), config, reference, folder)


@lru_cache(maxsize=4)
def _load(folder: str) -> Evaluator:
    path = Path(folder)
    return build_evaluator(read_config(path), path)


def load_evaluator(path: str | os.PathLike | None = None) -> Evaluator:
    """Load (and cache per folder) the evaluator in `path`, by default the shipped one."""
    return _load(str(Path(path if path is not None else DEFAULT_DIR).resolve()))
