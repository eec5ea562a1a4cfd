"""Samplers as policies: Gaussian Markov chains with exact log-probabilities (method.md Sec. 5).

PDA-hybrid (ProxT2I, arXiv 2511.18742, Sec. on GRPO; method.md Sec. 2) walks k = N-1 .. 0 with
    y_k = (1 + gamma_k/2) x_{k+1} + sqrt(gamma_k) z,     x_k = prox_theta(y_k, t_k, lam = gamma_k).
The prox step is deterministic, so x_{k+1} -> x_k has no density. The auxiliary variables y_k do:
    y_{k-1} | y_k  ~  N( (1 + gamma_{k-1}/2) prox_theta(y_k, t_k, gamma_k),  gamma_{k-1} I ),
a Gaussian whose mean comes from the (guided) network and whose variance is fixed. The chain's
states are y_{N-1} .. y_0 (y_{N-1} is drawn from x_N ~ N(0, I) with no parameters), its N - 1
transitions carry the log-probabilities, and the output x_0 = prox_theta(y_0, 0, gamma_0) is a
deterministic last step with no log-probability (as in Flow-GRPO's final denoising step).

The score baseline's Euler-Maruyama sampler with a noise-free last step is the same kind of chain
over x_N .. x_1: x_k | x_{k+1} ~ N((1 + gamma_k/2) x_{k+1} + gamma_k score(x_{k+1}, t_{k+1}), gamma_k I),
output x_0 = (1 + gamma_0/2) x_1 + gamma_0 score(x_1, t_1). Both chains share rollout / log_prob.

Indexing: transition i (0 <= i < N - 1) maps states[i] to states[i + 1]; states[0] is the chain's
first state. The arithmetic repeats samplers/pda.py and samplers/score.py operation for operation, so
a rollout with the same generator reproduces pda_sample(mode="hybrid") and
euler_maruyama_sample(denoise_final=True) bit for bit (tests/test_grpo.py checks it).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from ..errors import UsageError
from ..samplers.pda import batch_randn, checked_prox_output
from ..samplers.score import checked_score_output
from ..schedule import Schedule, VPSchedule, check_num_steps, step_sizes, time_grid

CHAINS = ("pda-hybrid", "euler-maruyama")


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


@dataclass(frozen=True)
class GaussianChain:
    """A sampler on a grid, seen as a Gaussian Markov chain. kind: 'pda-hybrid' (fn = prox(y, t, lam))
    or 'euler-maruyama' (fn = score(x, t), noise-free last step). grid: t_0 .. t_N; gammas: gamma_0 .. gamma_{N-1}."""

    kind: str
    num_steps: int
    grid: tuple
    gammas: tuple

    @property
    def num_transitions(self) -> int:
        return self.num_steps - 1

    def std(self, i: int) -> float:
        """Standard deviation of transition i: sqrt(gamma_{k-1}) with k = N-1-i (PDA) / sqrt(gamma_k) (EM)."""
        return self.gammas[self._noise_index(i)] ** 0.5

    def _noise_index(self, i: int) -> int:
        k = self.num_steps - 1 - i
        return k - 1 if self.kind == "pda-hybrid" else k

    def _call(self, fn, s: torch.Tensor, k: int) -> torch.Tensor:
        """The network step at grid index k: prox(s, t_k, gamma_k) (PDA) or score(s, t_{k+1}) (EM)."""
        b = s.shape[0]
        if self.kind == "pda-hybrid":
            t_vec = torch.full((b,), self.grid[k], device=s.device, dtype=s.dtype)
            lam_vec = torch.full((b,), self.gammas[k], device=s.device, dtype=s.dtype)
            return checked_prox_output(fn(s, t_vec, lam_vec), s, self.num_steps - k)
        t_vec = torch.full((b,), self.grid[k + 1], device=s.device, dtype=s.dtype)
        return checked_score_output(fn(s, t_vec), s, self.num_steps - k)

    def start(self, x_T: torch.Tensor, generator) -> torch.Tensor:
        """The first state: y_{N-1} = (1 + gamma/2) x_N + sqrt(gamma) z (PDA), or x_N itself (EM)."""
        if self.kind != "pda-hybrid":
            return x_T
        g = self.gammas[self.num_steps - 1]
        noise = batch_randn(x_T.shape, generator, device=x_T.device, dtype=x_T.dtype)
        return (1.0 + g / 2.0) * x_T + g**0.5 * noise

    def mean(self, fn, s: torch.Tensor, i: int) -> torch.Tensor:
        """Mean of states[i + 1] given states[i] = s: the network's part of transition i."""
        k = self.num_steps - 1 - i
        out = self._call(fn, s, k)
        if self.kind == "pda-hybrid":
            g = self.gammas[k - 1]
            return (1.0 + g / 2.0) * out  # x_{k-1}'s drift, applied to x_k = prox(y_k)
        g = self.gammas[k]
        return (1.0 + g / 2.0) * s + 1.0 * g * out

    def final(self, fn, s: torch.Tensor) -> torch.Tensor:
        """The deterministic last step from the last state: x_0 = prox(y_0, 0, gamma_0) (PDA), or the
        noise-free EM step from x_1 (EM)."""
        if self.kind == "pda-hybrid":
            return self._call(fn, s, 0)
        g = self.gammas[0]
        return (1.0 + g / 2.0) * s + 1.0 * g * self._call(fn, s, 0)


def make_chain(kind: str, num_steps: int, schedule: Optional[Schedule] = None, grid: str = "uniform") -> GaussianChain:
    """The chain of `kind` ('pda-hybrid' or 'euler-maruyama') with num_steps >= 2 on a named time grid
    (schedule.time_grid: uniform, quadratic, power:R), the one the sampler walks at inference."""
    if kind not in CHAINS:
        raise UsageError(f"unknown policy chain {kind!r}; choose one of: {', '.join(CHAINS)}")
    check_num_steps(num_steps)
    if num_steps < 2:
        raise UsageError("RL fine-tuning needs num_steps >= 2: with one step the sampler has no stochastic transition")
    times = time_grid(num_steps, grid)
    gammas = step_sizes(schedule or VPSchedule(), times)
    return GaussianChain(kind, num_steps, tuple(float(t) for t in times), tuple(float(g) for g in gammas))


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

    chain: GaussianChain
    states: list
    means: list
    log_probs: list
    x0: torch.Tensor


def rollout(fn: Callable, x_T: torch.Tensor, num_steps: int, generator=None, kind: str = "pda-hybrid",
            schedule: Optional[Schedule] = None, reduce: str = "sum", start_group: int = 1, grid: str = "uniform") -> Trajectory:
    """Run the sampler from x_T [B, ...] without gradients and record the chain.

    fn: guided prox(y, t, lam) for 'pda-hybrid', score(x, t) for 'euler-maruyama'. generator: None, one
    torch.Generator or a list of B (as pda_sample). The noise is drawn in the order pda_sample /
    euler_maruyama_sample draw it, so x0 equals their output for the same generator state.
    start_group: consecutive rows in groups of this size share the chain's first state, which carries
    no parameters (x_T and, for PDA, the first step's noise; drawn from each group's first row), as
    DanceGRPO shares the initial noise within a group: the group's rewards then differ only through
    the policy's own transitions. grid: the named time grid (make_chain)."""
    chain = make_chain(kind, num_steps, schedule, grid)
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


def step_log_prob(fn: Callable, y: torch.Tensor, y_next: torch.Tensor, i: int, chain: GaussianChain,
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
