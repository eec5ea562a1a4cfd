"""A generation request: parsed from the raw body and validated field by field, each refusal one line.

Validation is by hand rather than by pydantic models: pydantic reports a list of errors with locations,
and the API promises one clear line per refusal (the CLI's wording where a CLI flag exists).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from ..errors import UsageError
from ..pipeline import check_prompts, sampler_grid
from ..samplers.registry import DEFAULT_SAMPLER, get_sampler
from .errors import ApiError

MAX_IMAGES = 8  # n per request
MAX_STEPS = 50  # a server bound, far below the pipeline's 1000: one request must not hold the worker for minutes
MAX_SEED = 2**63 - 1
FIELDS = {"prompt", "n", "response_format", "size", "model", "user", "steps", "guidance", "sampler", "seed", "time_grid",
          "progress_id"}
PROGRESS_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # chosen by the client, read back at GET /v1/progress/ID


@dataclass(frozen=True)
class Generation:
    """One validated request. `batch_key`: requests with equal keys can share one network batch."""

    prompt: str
    n: int
    steps: int
    guidance: float
    sampler: str
    seed: int
    time_grid: str | None
    progress_id: str | None = None  # not part of the batch key

    @property
    def batch_key(self) -> tuple:
        return (self.steps, self.sampler, self.guidance, self.time_grid)

    @property
    def seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.n)]  # image i uses seed + i, as in `proxt2i generate`


def parse_json(body: bytes) -> dict:
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "request body is not UTF-8") from None
    except json.JSONDecodeError as err:
        raise ApiError(400, f"request body is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"request body must be a JSON object, got {type(data).__name__}")
    return data


def _integer(data: dict, name: str, default: int, lo: int, hi: int) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(422, f"{name} must be an integer in {lo}..{hi}, got {json.dumps(value)[:40]}")
    if not lo <= value <= hi:
        raise ApiError(422, f"{name} must be in {lo}..{hi}, got {value}")
    return value


def parse_generation(data: dict, *, objective: str, image_size: int, default_guidance: float = 4.0,
                     default_sampler: str | None = None) -> Generation:
    """The request in `data` (a JSON object) for a model with `objective`, `image_size`, `default_guidance`
    (the model's CFG scale when the request names none) and `default_sampler` (None: the objective's), or ApiError 422."""
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise ApiError(422, f"unknown field {unknown[0]!r}; fields: {', '.join(sorted(FIELDS))}")
    if "prompt" not in data:
        raise ApiError(422, "prompt is required")
    prompt = data["prompt"]
    if not isinstance(prompt, str):
        raise ApiError(422, f"prompt must be a string, got {type(prompt).__name__}")
    try:
        check_prompts([prompt])  # exactly the CLI's check
    except UsageError as err:
        raise ApiError(422, str(err)) from None
    fmt = data.get("response_format", "b64_json")
    if fmt != "b64_json":
        raise ApiError(422, f"response_format must be \"b64_json\" (this server returns images inline), got {json.dumps(fmt)[:40]}")
    size = data.get("size")
    own = f"{image_size}x{image_size}"
    if size is not None and size != own:
        raise ApiError(422, f"size must be {own!r} (this model's), got {json.dumps(size)[:40]}")
    n = _integer(data, "n", 1, 1, MAX_IMAGES)
    steps = _integer(data, "steps", 4, 1, MAX_STEPS)
    seed = _integer(data, "seed", 0, 0, MAX_SEED - MAX_IMAGES)
    guidance = data.get("guidance", default_guidance)
    if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not math.isfinite(guidance) or not 0 <= guidance <= 50:
        raise ApiError(422, f"guidance must be a number in 0..50 (1 = off), got {json.dumps(guidance)[:40]}")
    sampler = data.get("sampler") or default_sampler or DEFAULT_SAMPLER[objective]
    grid = data.get("time_grid")
    if not isinstance(sampler, str) or (grid is not None and not isinstance(grid, str)):
        raise ApiError(422, "sampler and time_grid must be strings")
    try:
        spec = get_sampler(sampler, objective)
        sampler_grid(spec, sampler, grid, steps)  # a bad grid name, or a grid for a sampler with its own timesteps
    except UsageError as err:
        raise ApiError(422, str(err)) from None
    progress_id = data.get("progress_id")
    if progress_id is not None and not (isinstance(progress_id, str) and PROGRESS_ID.fullmatch(progress_id)):
        raise ApiError(422, f"progress_id must be 1-64 letters, digits, '-' or '_', got {json.dumps(progress_id)[:40]}")
    return Generation(prompt, n, steps, float(guidance), sampler, seed, grid, progress_id)
