"""Devices and dtypes as the commands name them: --device auto|cpu|cuda|cuda:N|mps, --dtype float32|bfloat16|float16.

A device that is not there, or a dtype the device cannot run, is one UsageError before anything loads.
Random draws never depend on the device: every seed seeds a CPU torch.Generator and the draws are moved
(samplers.common.batch_randn), so a seed gives the same starting noise on any device; images then agree
up to floating-point tolerance (bit for bit on the CPU in float32).
"""

from __future__ import annotations

import functools

import torch

from .errors import UsageError

DEVICES_HELP = "auto (cuda if available, else cpu), cpu, cuda, cuda:N or mps"
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}
MIXED_PRECISION = {"float32": "no", "bfloat16": "bf16", "float16": "fp16"}  # dtype name -> accelerate's mixed_precision


def resolve(device: str | torch.device | None, dtype: str | torch.dtype | None) -> tuple[torch.device, torch.dtype]:
    """(resolve_device(device), resolve_dtype(dtype on it)): the check every command runs on --device / --dtype."""
    where = resolve_device(device)
    return where, resolve_dtype(dtype, where)


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """The torch.device of `name` (None or "auto": cuda if available, else cpu); one that is not there is a UsageError."""
    if isinstance(name, torch.device):
        name = str(name)
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f"unknown device {name!r}; use {DEVICES_HELP}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device {name!r} is not available: this torch sees no CUDA GPU "
                             f"(torch {torch.__version__}, cuda build: {torch.version.cuda or 'no'}); use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"device {name!r} does not exist: {torch.cuda.device_count()} CUDA device(s) here (cuda:0..)")
    elif device.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise UsageError(f"device {name!r} is not available on this machine; use --device cpu")
    elif device.type != "cpu":
        raise UsageError(f"unsupported device {name!r}; use {DEVICES_HELP}")
    return device


def resolve_dtype(name: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """The torch dtype of `name` (None: float32), checked to run on `device` (can_run)."""
    if isinstance(name, torch.dtype):
        dtype = name
        if dtype not in DTYPES.values():
            raise UsageError(f"unsupported dtype {dtype}; use {', '.join(DTYPES)}")
    else:
        key = DTYPE_ALIASES.get((name or "float32").strip().lower(), (name or "float32").strip().lower())
        if key not in DTYPES:
            raise UsageError(f"unknown dtype {name!r}; use {', '.join(DTYPES)}")
        dtype = DTYPES[key]
    problem = _cannot_run(str(device), str(dtype))
    if problem:
        raise UsageError(f"dtype {dtype_name(dtype)} cannot run on {device} here ({problem}); use float32")
    return dtype


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


@functools.lru_cache(maxsize=None)
def _cannot_run(device: str, dtype: str) -> str | None:
    """None if the ops a model uses (linear, conv, norms, attention) run on device in dtype, else the error's first line."""
    d, t = torch.device(device), getattr(torch, dtype.removeprefix("torch."))
    try:
        x = torch.randn(2, 4, 8, 8, device=d).to(t)
        conv = torch.nn.Conv2d(4, 8, 3, padding=1).to(d, t)
        h = torch.nn.GroupNorm(4, 8).to(d, t)(conv(x)).flatten(2).transpose(1, 2)
        h = torch.nn.LayerNorm(8).to(d, t)(torch.nn.Linear(8, 8).to(d, t)(h))
        h = torch.nn.functional.scaled_dot_product_attention(h[:, None], h[:, None], h[:, None])
        if not torch.isfinite(h.float()).all():
            return "non-finite results on a probe"
    except (RuntimeError, TypeError) as err:
        return str(err).strip().splitlines()[0][:160]
    return None


def autocast(device: torch.device, dtype: torch.dtype):
    """torch.autocast on `device` in `dtype`; a no-op context for float32 (bit for bit as without it)."""
    import contextlib

    return contextlib.nullcontext() if dtype == torch.float32 else torch.autocast(device.type, dtype=dtype)


def add_device_arguments(parser) -> None:
    """--device and --dtype on a command's parser (values checked by resolve)."""
    parser.add_argument("--device", default="auto", help=f"where the networks run: {DEVICES_HELP} (default auto)")
    parser.add_argument("--dtype", default="float32", help="the networks' weights and compute: float32 (default; bit for bit "
                                                           "as before on the CPU), bfloat16 or float16 (where the device runs it)")
