"""Optional dependencies: each is imported where it is used, through require() (a missing one is one
line naming the extra to install) or optional() (a missing one turns a feature off).

The extras (pyproject.toml): `hf` (transformers, diffusers: Hugging Face text encoders, VAEs, reward
models, the diffusers samplers), `tensorboard` (training logs), `serve` (fastapi, uvicorn, prometheus-client: `proxt2i serve`), `curate` (ray[data], pyarrow:
`proxt2i data curate --engine ray` and parquet sources), `photo` (openvino, dlib-bin, face_recognition_models: PhotoFaces;
random-face is installed apart with --no-deps; non-commercial weights, docs/photofaces.md), `test` (everything the tests need).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import UsageError


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import and return `module`; if it is not installed, UsageError: "WHAT needs the optional
    dependency PACKAGE: pip install 'proxt2i[EXTRA]'" (PACKAGE: the top-level name of `module`)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        package = module.split(".")[0]
        if (err.name or package).split(".")[0] != package:
            raise  # the package is there but something it imports is missing: a broken install, shown in full
        raise UsageError(f"{what} needs the optional dependency {package}: pip install 'proxt2i[{extra}]'") from None


def optional(module: str) -> ModuleType | None:
    """Import and return `module`, or None when it (or a package it needs) is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None

