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
from typing import Callable, Optional, Sequence

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
    """One rollout. states: [M + 1] tensors (M = num_steps - 1 transitions), state i of B / strides[i] rows;
    means: [M] the policy's means at transition i, one per row of states[i] (detached); log_probs: [M]
    tensors, one per row of states[i + 1] (exact, reduce as given); x0: the output [B, ...]. strides: rows
    of the output per row of each state (a branching rollout's tree), all 1 for independent chains."""

    chain: Chain
    states: list
    means: list
    log_probs: list
    x0: torch.Tensor
    strides: tuple = ()

    def branch(self, i: int) -> int:
        """How many rows of states[i + 1] each row of states[i] branches into (1 without branching)."""
        return self.strides[i] // self.strides[i + 1] if self.strides else 1


def branch_strides(branches: Sequence[int], num_transitions: int, group: int) -> tuple[int, ...]:
    """Branch factors b_0..b_{M-1} of the M transitions (their product is the group G) -> the rows of a
    group each state's node covers, [M + 1]: G, G / b_0, ..., 1. The root (the chain's first state, which
    carries no parameters) is shared by the whole group; transition i splits every node into b_i."""
    branches = tuple(int(b) for b in branches)
    if len(branches) != num_transitions or any(b < 1 for b in branches) or math.prod(branches) != group:
        raise UsageError(f"branches {','.join(map(str, branches))} must be {num_transitions} factors >= 1 (one per "
                         f"transition of the chain) whose product is the group {group}, e.g. "
                         f"{','.join(['1'] * (num_transitions - 1) + [str(group)])}")
    strides = [group]
    for b in branches:
        strides.append(strides[-1] // b)
    return tuple(strides)


def rollout(fn, x_T: torch.Tensor, num_steps: int, generator=None, sampler: str = "pda-hybrid",
            schedule: Optional[Schedule] = None, reduce: str = "sum", start_group: int = 1, grid: str = "uniform",
            strides: Sequence[int] = ()) -> Trajectory:
    """Run the sampler from x_T [B, ...] without gradients and record the chain.

    fn: guided prox(y, t, lam) for 'pda-hybrid', score(x, t) for 'euler-maruyama-denoise'. generator: None, one
    torch.Generator or a list of B (as the samplers). The noise is drawn in the order the sampler draws
    it, so x0 equals its output for the same generator state.
    start_group: consecutive rows in groups of this size share the chain's first state, which carries
    no parameters (x_T and, for PDA, the first step's noise; drawn from each group's first row), as
    DanceGRPO shares the initial noise within a group: the group's rewards then differ only through
    the policy's own transitions. grid: the named time grid (make_chain).
    strides (branch_strides): a branching rollout (BranchGRPO): state i holds one row per strides[i]
    output rows (x_T's rows 0, s, 2s, ...), transition i is computed once per node and branches into
    strides[i] / strides[i + 1] rows; fn is then a list of M + 1 callables, fn[i] for the rows of state i
    (fn[M] for the output rows). Shared steps are computed once: the point of branching."""
    chain = make_chain(sampler, num_steps, schedule, grid)
    if start_group < 1 or x_T.shape[0] % start_group:
        raise UsageError(f"start_group must be >= 1 and divide the batch {x_T.shape[0]}, got {start_group}")
    levels = list(strides) or [1] * (chain.num_transitions + 1)
    fns = list(fn) if isinstance(fn, (list, tuple)) else [fn] * len(levels)
    if len(levels) != chain.num_transitions + 1 or len(fns) != len(levels) or levels[-1] != 1 or x_T.shape[0] % levels[0]:
        raise UsageError(f"a branching rollout needs {chain.num_transitions + 1} strides ending in 1 and one callable per state")
    rows = lambda every: (generator[::every] if isinstance(generator, (list, tuple)) else generator)  # of row-wise generators
    with torch.no_grad():
        if start_group == 1:
            s = chain.start(x_T[::levels[0]], rows(levels[0]))
        else:
            s = chain.start(x_T[::start_group], rows(start_group)).repeat_interleave(start_group, dim=0)
        states, means, log_probs = [s], [], []
        for i in range(chain.num_transitions):
            mean = chain.mean(fns[i], s, i)
            mean_rows = mean.repeat_interleave(levels[i] // levels[i + 1], dim=0)
            noise = batch_randn(mean_rows.shape, rows(levels[i + 1]), device=s.device, dtype=s.dtype)
            s = mean_rows + chain.std(i) * noise
            states.append(s)
            means.append(mean)
            log_probs.append(gaussian_log_prob(s, mean_rows, chain.std(i), reduce))
        x0 = chain.final(fns[-1], s)
    return Trajectory(chain, states, means, log_probs, x0, tuple(strides))


def step_log_prob(fn: Callable, y: torch.Tensor, y_next: torch.Tensor, i: int, chain: Chain,
                  reduce: str = "sum", branch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """log p_fn(y_next | y) for transition i of `chain` (float64, one per row of y_next) and the mean (one per
    row of y), differentiable through fn. y, y_next: states[i], states[i + 1] of a Trajectory (or any rows of
    them, with fn built for those rows); branch: rows of y_next per row of y (Trajectory.branch(i))."""
    mean = chain.mean(fn, y, i)
    return gaussian_log_prob(y_next, mean.repeat_interleave(branch, dim=0), chain.std(i), reduce), mean


def pick_transitions(num_transitions: int, count: int, generator: Optional[torch.Generator] = None) -> list[int]:
    """A random subset of `count` transition indices, sorted (count <= 0 or >= M: all of them), as
    Flow-GRPO trains on a subset of the timesteps per update."""
    if count <= 0 or count >= num_transitions:
        return list(range(num_transitions))
    return sorted(torch.randperm(num_transitions, generator=generator)[:count].tolist())
