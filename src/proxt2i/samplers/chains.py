"""Samplers seen as Gaussian Markov chains (method.md Sec. 5): the view GRPO needs for exact log-probabilities.

Each chain is built from its sampler's own step functions (pda.py, score.py), so a rollout with the
same generator reproduces the sampler bit for bit (tests/test_grpo.py).

PDA-hybrid walks k = N-1 .. 0 with y_k = (1 + gamma_k/2) x_{k+1} + sqrt(gamma_k) z and
x_k = prox(y_k, t_k, gamma_k). The prox step is deterministic, so x_{k+1} -> x_k has no density; the
auxiliary variables y_k do: y_{k-1} | y_k ~ N((1 + gamma_{k-1}/2) prox(y_k, t_k, gamma_k), gamma_{k-1} I).
The chain's states are y_{N-1} .. y_0, its N - 1 transitions carry the log-probabilities, and the
output x_0 = prox(y_0, 0, gamma_0) is a deterministic last step (as Flow-GRPO's final denoising step).

Euler-Maruyama with a noise-free last step is the same kind of chain over x_N .. x_1:
x_k | x_{k+1} ~ N((1 + gamma_k/2) x_{k+1} + gamma_k score(x_{k+1}, t_{k+1}), gamma_k I), output
x_0 = (1 + gamma_0/2) x_1 + gamma_0 score(x_1, t_1).

Indexing: transition i (0 <= i < N - 1) maps states[i] to states[i + 1]; states[0] is the first state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import UsageError
from ..schedule import Schedule, VPSchedule, step_sizes
from .common import as_grid, batch_randn
from .pda import hybrid_drift, pda_step_input, prox_step
from .score import reverse_drift, score_step


@dataclass(frozen=True)
class Chain:
    """A sampler on a grid as a Gaussian chain. grid: t_0 .. t_N; gammas: gamma_0 .. gamma_{N-1} (floats)."""

    grid: tuple
    gammas: tuple

    @classmethod
    def on_grid(cls, grid, schedule: Schedule | None = None) -> "Chain":
        """The chain on an increasing grid [N + 1] (or an int N: uniform); needs N >= 2."""
        times = as_grid(grid)
        if len(times) < 3:
            raise UsageError("RL fine-tuning needs num_steps >= 2: with one step the sampler has no stochastic transition")
        gammas = step_sizes(schedule or VPSchedule(), times)
        return cls(tuple(float(t) for t in times), tuple(float(g) for g in gammas))

    @property
    def num_steps(self) -> int:
        return len(self.gammas)

    @property
    def num_transitions(self) -> int:
        return self.num_steps - 1

    def std(self, i: int) -> float:
        """Standard deviation of transition i."""
        return self.gammas[self.noise_index(i)] ** 0.5

    def noise_index(self, i: int) -> int:
        raise NotImplementedError

    def start(self, x_T: torch.Tensor, generator) -> torch.Tensor:
        """The first state from x_T [B, ...] (no parameters involved)."""
        raise NotImplementedError

    def mean(self, fn, s: torch.Tensor, i: int) -> torch.Tensor:
        """Mean of states[i + 1] given states[i] = s: the network's part of transition i."""
        raise NotImplementedError

    def final(self, fn, s: torch.Tensor) -> torch.Tensor:
        """The deterministic last step from the last state to x_0."""
        raise NotImplementedError


class PDAHybridChain(Chain):
    """PDA-hybrid over its prox inputs y (fn = prox(y, t, lam))."""

    def noise_index(self, i: int) -> int:
        return self.num_steps - 2 - i  # transition i draws y_{k-1}, k = N-1-i: the noise of step k - 1

    def start(self, x_T, generator):
        """y_{N-1} = (1 + gamma/2) x_N + sqrt(gamma) z."""
        noise = batch_randn(x_T.shape, generator, device=x_T.device, dtype=x_T.dtype)
        return pda_step_input(x_T, self.gammas[self.num_steps - 1], noise, "hybrid")[0]

    def _prox(self, fn, y, k: int):
        return prox_step(fn, y, self.grid[k], self.gammas[k], self.num_steps - k)

    def mean(self, fn, s, i):
        k = self.num_steps - 1 - i
        return hybrid_drift(self._prox(fn, s, k), self.gammas[k - 1])

    def final(self, fn, s):
        """x_0 = prox(y_0, 0, gamma_0)."""
        return self._prox(fn, s, 0)


class EulerMaruyamaChain(Chain):
    """Euler-Maruyama with a noise-free last step over its states x (fn = score(x, t))."""

    def noise_index(self, i: int) -> int:
        return self.num_steps - 1 - i

    def start(self, x_T, generator):
        return x_T

    def _drift(self, fn, x, k: int):
        return reverse_drift(x, score_step(fn, x, self.grid[k + 1], self.num_steps - k), self.gammas[k])

    def mean(self, fn, s, i):
        return self._drift(fn, s, self.num_steps - 1 - i)

    def final(self, fn, s):
        return self._drift(fn, s, 0)
