"""What every sampler shares: the grid argument, per-row noise, output checks and the callback record.

Every sampler has one signature (k-diffusion's: the model callable, the start, the time grid):

    sample(model, x_T, grid, *, generator=None, callback=None, return_trajectory=False, schedule=None, ...)

model is prox(y, t, lam) or score(x, t) (registry.SamplerSpec.objective says which); x_T [B, ...] a draw
of N(0, I); grid an increasing tensor [N + 1] of times from 0 to 1, or an int N for the uniform grid.
callback(info) gets a dict after every step: {"i": steps done - 1, "k": grid index of the new state,
"t": its time, "x": the state}, plus sampler-specific entries.
"""

from __future__ import annotations

import torch

from ..errors import UsageError
from ..schedule import check_num_steps, uniform_grid


def as_grid(grid, increasing: bool = True) -> torch.Tensor:
    """The sampling grid as float64 [N + 1]: an int N gives the uniform grid, a tensor is validated."""
    if isinstance(grid, int) and not isinstance(grid, bool):
        return uniform_grid(grid)
    if isinstance(grid, bool) or not isinstance(grid, (torch.Tensor, list, tuple)):
        raise UsageError(f"grid must be a step count or a 1-D tensor of times, got {grid!r}")
    grid = torch.as_tensor(grid, dtype=torch.float64)
    if grid.dim() != 1 or len(grid) < 2:
        raise UsageError("grid must be a 1-D tensor of at least two times (num_steps + 1)")
    check_num_steps(len(grid) - 1)
    if increasing and not bool((grid[1:] > grid[:-1]).all()):
        raise UsageError(f"grid must be an increasing 1-D tensor of num_steps + 1 = {len(grid)} times")
    return grid


def check_start(x_T) -> None:
    if not torch.is_tensor(x_T) or x_T.dim() < 1:
        raise UsageError("x_T must be a tensor of shape [B, ...]")


def batch_randn(shape, generator, device=None, dtype=None) -> torch.Tensor:
    """N(0, I) of shape [B, ...]. generator: None, one torch.Generator, or a list of B generators (one per
    row, so that an image's noise does not depend on what else is in the batch)."""
    if isinstance(generator, (list, tuple)):
        if len(generator) != shape[0]:
            raise UsageError(f"got {len(generator)} generators for a batch of {shape[0]}")
        return torch.stack([torch.randn(shape[1:], generator=g, dtype=dtype) for g in generator]).to(device)
    return torch.randn(shape, generator=generator, device=device, dtype=dtype)


def checked_output(out, x: torch.Tensor, step: int, what: str = "prox") -> torch.Tensor:
    """out, unless it is not a finite tensor of x's shape (then one clear error naming `what` and the step)."""
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise UsageError(f"{what} returned the wrong shape {shape} at step {step}; it must return the shape of its input {tuple(x.shape)}")
    if not torch.isfinite(out).all():
        raise UsageError(f"{what} returned NaN or inf at step {step}; check the model and its inputs")
    return out


def batch_vector(value: float, like: torch.Tensor) -> torch.Tensor:
    """[B] filled with value, on like's device and dtype (B = like.shape[0])."""
    return torch.full((like.shape[0],), value, device=like.device, dtype=like.dtype)
