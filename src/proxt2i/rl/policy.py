"""Samplers as policies: Gaussian Markov chains with exact log-probabilities (method.md Sec. 5).

The chains themselves (which states, which means, which variances) are the samplers' own, in
samplers/chains.py, built from the samplers' step functions; this module rolls them out and scores
them. A sampler can be fine-tuned when its registry entry has a chain (samplers.registry.chain_samplers:
pda-hybrid for prox models, euler-maruyama-denoise for score models).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from ..errors import UsageError
from ..samplers.chains import Chain
from ..samplers.common import batch_randn
from ..samplers.registry import chain_samplers, get_sampler
from ..schedule import Schedule, check_num_steps, time_grid


@contextmanager
def same_kernels_with_and_without_grad():
    """Disable PyTorch's native attention fast path inside the block (restored after). That path runs
    only under no_grad, so without this a rollout (no_grad) and its update (with grad) evaluate the
    same policy with different kernels and the on-policy ratio is 1 +- 1e-4 instead of exactly 1."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def make_chain(sampler: str, num_steps: int, schedule: Optional[Schedule] = None, grid: str = "uniform") -> Chain:
    """The Gaussian chain of `sampler` (one of chain_samplers()) with num_steps >= 2 on a named time grid
    (schedule.time_grid: uniform, quadratic, power:R), the one the sampler walks at inference."""
    spec = get_sampler(sampler)
    if spec.chain is None:
        raise UsageError(f"sampler {sampler!r} has no policy chain; RL fine-tunes one of: {', '.join(chain_samplers())}")
    check_num_steps(num_steps)
    if num_steps < 2:
        raise UsageError("RL fine-tuning needs num_steps >= 2: with one step the sampler has no stochastic transition")
    return spec.chain.on_grid(time_grid(num_steps, grid), schedule)


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, std: float, reduce: str = "sum") -> torch.Tensor:
    """log N(x; mean, std^2 I) per sample: x, mean [B, ...] -> float64 [B]. reduce 'sum' is the exact
    density; 'mean' divides it by the dimension (Flow-GRPO's per-dimension average, for small clip
    ranges). Float64: log-densities are large (about -d/2) and GRPO takes differences of them."""
    d = x[0].numel()
    sq = (x.double() - mean.double()).pow(2).flatten(1).sum(1)
    logp = -sq / (2.0 * std * std) - d * (math.log(std) + 0.5 * math.log(2.0 * math.pi))
    if reduce == "sum":
        return logp
    if reduce == "mean":
        return logp / d
    raise UsageError(f"reduce must be 'sum' or 'mean', got {reduce!r}")


@dataclass
class Trajectory:
    """One rollout. states: [M + 1] tensors [B, ...] (M = num_steps - 1 transitions); means: [M] the
    policy's means of states[1:] (detached); log_probs: [M] tensors [B] (exact, reduce as given); x0: the output."""

    chain: Chain
    states: list
    means: list
    log_probs: list
    x0: torch.Tensor


def rollout(fn: Callable, x_T: torch.Tensor, num_steps: int, generator=None, sampler: str = "pda-hybrid",
            schedule: Optional[Schedule] = None, reduce: str = "sum", start_group: int = 1, grid: str = "uniform") -> Trajectory:
    """Run the sampler from x_T [B, ...] without gradients and record the chain.

    fn: guided prox(y, t, lam) for 'pda-hybrid', score(x, t) for 'euler-maruyama-denoise'. generator: None, one
    torch.Generator or a list of B (as the samplers). The noise is drawn in the order the sampler draws
    it, so x0 equals its output for the same generator state.
    start_group: consecutive rows in groups of this size share the chain's first state, which carries
    no parameters (x_T and, for PDA, the first step's noise; drawn from each group's first row), as
    DanceGRPO shares the initial noise within a group: the group's rewards then differ only through
    the policy's own transitions. grid: the named time grid (make_chain)."""
    chain = make_chain(sampler, num_steps, schedule, grid)
    if start_group < 1 or x_T.shape[0] % start_group:
        raise UsageError(f"start_group must be >= 1 and divide the batch {x_T.shape[0]}, got {start_group}")
    with torch.no_grad():
        if start_group == 1:
            s = chain.start(x_T, generator)
        else:
            gen = generator[::start_group] if isinstance(generator, (list, tuple)) else generator
            s = chain.start(x_T[::start_group], gen).repeat_interleave(start_group, dim=0)
        states, means, log_probs = [s], [], []
        for i in range(chain.num_transitions):
            mean = chain.mean(fn, s, i)
            noise = batch_randn(s.shape, generator, device=s.device, dtype=s.dtype)
            s = mean + chain.std(i) * noise
            states.append(s)
            means.append(mean)
            log_probs.append(gaussian_log_prob(s, mean, chain.std(i), reduce))
        x0 = chain.final(fn, s)
    return Trajectory(chain, states, means, log_probs, x0)


def step_log_prob(fn: Callable, y: torch.Tensor, y_next: torch.Tensor, i: int, chain: Chain,
                  reduce: str = "sum") -> tuple[torch.Tensor, torch.Tensor]:
    """log p_fn(y_next | y) for transition i of `chain` (float64 [B]) and the mean [B, ...], differentiable
    through fn. y, y_next: states[i], states[i + 1] of a Trajectory (or any rows of them, with fn
    built for those rows)."""
    mean = chain.mean(fn, y, i)
    return gaussian_log_prob(y_next, mean, chain.std(i), reduce), mean


def pick_transitions(num_transitions: int, count: int, generator: Optional[torch.Generator] = None) -> list[int]:
    """A random subset of `count` transition indices, sorted (count <= 0 or >= M: all of them), as
    Flow-GRPO trains on a subset of the timesteps per update."""
    if count <= 0 or count >= num_transitions:
        return list(range(num_transitions))
    return sorted(torch.randperm(num_transitions, generator=generator)[:count].tolist())
