"""Training objectives as pure functions returning one loss per sample, shape [B].

Proximal matching (ProxDM, arXiv 2507.08956; method.md Sec. 3): a network prox(y, t, lam) is trained
on y = x_t + sqrt(lam) n with target x_t. Parameterised by eps (prox = y - sqrt(lam) eps), the error
||prox - x_t||^2 / lam equals ||eps - n||^2: computing the loss in eps space balances it across lam.
l_PM = 1 - exp(-mse / zeta^2) recovers the proximal operator as zeta -> 0 (the squared loss would
learn the posterior mean instead). Training starts with an L1 warm-up, then PM with zeta halved in stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..errors import UsageError
from ..parameterization import clean_from_eps, expand_like
from ..schedule import Schedule


def per_sample_mean(v: torch.Tensor) -> torch.Tensor:
    """[B, ...] -> [B], mean over all but the batch dimension (accumulated in at least float32)."""
    if v.dtype in (torch.float16, torch.bfloat16):
        v = v.float()
    return v.reshape(v.shape[0], -1).mean(dim=1)


def proximal_matching_loss(pred: torch.Tensor, target: torch.Tensor, zeta: float) -> torch.Tensor:
    """1 - exp(-mse / zeta^2) per sample, mse the mean squared error over dimensions. [B, ...] -> [B] in [0, 1)."""
    if zeta <= 0:
        raise UsageError(f"zeta must be > 0, got {zeta}")
    mse = per_sample_mean((pred - target).pow(2))
    return -torch.expm1(-mse / (zeta * zeta))


def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per sample, [B]."""
    return per_sample_mean((pred - target).abs())


def denoising_score_matching_loss(eps_pred: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Denoising score matching in eps-prediction form (the score baseline): ||eps - noise||^2 / d, [B]."""
    return per_sample_mean((eps_pred - noise).pow(2))


@dataclass(frozen=True)
class PMSchedule:
    """The loss schedule: L1 for the first warmup_fraction of training, then PM with zeta starting at
    zeta_start and multiplied by zeta_decay at each of num_stages equal stages (ProxDM: 2 stages, halving)."""

    total_steps: int
    warmup_fraction: float = 0.2
    zeta_start: float = 2.0
    zeta_decay: float = 0.5
    num_stages: int = 2


def loss_phase(step: int, sched: PMSchedule) -> tuple[str, float | None]:
    """("l1", None) during warm-up, else ("pm", zeta) for training step `step` (0-based)."""
    warmup = int(round(sched.warmup_fraction * sched.total_steps))
    if step < warmup:
        return "l1", None
    remaining = max(sched.total_steps - warmup, 1)
    stage = min((step - warmup) * sched.num_stages // remaining, sched.num_stages - 1)
    return "pm", sched.zeta_start * sched.zeta_decay**stage


def proximal_matching_objective(eps_pred: torch.Tensor, noise: torch.Tensor, phase: str, zeta: float | None) -> torch.Tensor:
    """The prox training loss in eps space for a phase from loss_phase: [B]."""
    if phase == "l1":
        return l1_loss(eps_pred, noise)
    if phase == "pm":
        return proximal_matching_loss(eps_pred, noise, zeta)
    raise UsageError(f"unknown loss phase {phase!r}; expected 'l1' or 'pm'")


def noisy_pair(x0: torch.Tensor, t: torch.Tensor, schedule: Schedule, generator=None):
    """Forward process: x_t = sqrt(alpha) x0 + sqrt(1 - alpha) e. Returns (x_t, e), both [B, ...]."""
    e = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    a = expand_like(schedule.alpha(t.double()), x0)
    return a.sqrt() * x0 + (1.0 - a).sqrt() * e, e


def prox_pair(x_t: torch.Tensor, lam: torch.Tensor, generator=None):
    """Prox training input: y = x_t + sqrt(lam) n; the target is x_t (n in eps space). Returns (y, n)."""
    n = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
    return x_t + expand_like(lam, x_t).sqrt() * n, n


@dataclass
class ChainInput:
    """A PDA sampler's prox input at time t and what the target needs: y [B, ...], and E[x_t | y, x0] [B, ...]
    (the Rao-Blackwellised target: the forward noise between t and t_next averaged out)."""

    y: torch.Tensor
    mean: torch.Tensor


def chain_input(x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor, gamma: torch.Tensor, mode: str,
                schedule: Schedule, generator=None) -> ChainInput:
    """The prox input a PDA sampler builds at time t: y = c x_{t_next} + d z (samplers/pda.py's pda_step_input;
    hybrid: c = 1 + gamma/2, d = sqrt(gamma)), with x_{t_next} forward-diffused from x_t [B, ...] (t, t_next, gamma [B]).

    For small gamma, y is distributed as x_t + sqrt(lam) n, the proximal-matching input. For the large gamma
    of 2-5 step grids it is not: from x_T ~ N(0, I) the first 4-step prox input has std ~5.1 where matching
    trains on ~2.8, and a network that has not learned to extrapolate maps it far off (docs/training.md).
    Trained on these inputs with target x_t, the squared loss learns E[x_t | y] under the sampler's own chain.
    Given x0 everything is Gaussian: with m = sqrt(a_t) x0, v = 1 - a_t and r = sqrt(a_next / a_t),
    E[x_t | y, x0] = m + c r v (y - c r m) / (c^2 r^2 v + c^2 (1 - r^2) + d^2)."""
    from ..samplers.pda import pda_step_input

    a_t = expand_like(schedule.alpha(t.double()), x_t).to(x_t.dtype)
    ratio = expand_like((schedule.alpha(t_next.double()) / schedule.alpha(t.double())).sqrt(), x_t).to(x_t.dtype)
    w = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
    z = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
    residual = (1.0 - ratio * ratio).clamp_min(0.0)
    x_next = ratio * x_t + residual.sqrt() * w
    g = expand_like(gamma, x_t).to(x_t.dtype)  # one step size per sample, broadcast
    y = pda_step_input(x_next, g, z, mode)[0]
    ones, zeros = torch.ones_like(g), torch.zeros_like(g)
    c, d = pda_step_input(ones, g, zeros, mode)[0], pda_step_input(zeros, g, ones, mode)[0]  # y is linear: y = c x + d z
    m, v = a_t.sqrt() * x0, 1.0 - a_t
    var_y = c * c * ratio * ratio * v + c * c * residual + d * d
    return ChainInput(y, m + c * ratio * v * (y - c * ratio * m) / var_y)


def conditional_mean_noise(y: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, lam: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """E[n | y, x0] = sqrt(lam) (y - sqrt(alpha_t) x0) / (1 - alpha_t + lam), [B, ...]: the prox target n
    with the forward-process noise of x_t averaged out (Rao-Blackwellised). Same conditional mean given y,
    so the squared-loss minimiser is unchanged, with the variance 1 - lam / (1 - alpha_t + lam) per
    dimension that no network can predict removed; the PM loss then sees the learnable error only."""
    a = expand_like(schedule.alpha(t.double()), y).to(y.dtype)
    lam_e = expand_like(lam, y).to(y.dtype)
    return (lam_e / (1.0 - a + lam_e)).sqrt() * total_noise(y, x0, t, lam, schedule)


def total_noise(y: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, lam: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """z = (y - sqrt(alpha_t) x0) / sqrt(1 - alpha_t + lam), [B, ...]: the unit noise of y given x0, which a
    preconditioned backbone predicts (models/uvit.py). E[n | y, x0] = sqrt(lam / (1 - alpha_t + lam)) z, so a
    loss on z is the conditional-mean target divided by the output scale: every (t, lam) draw carries the
    image (and text) signal at unit weight, as in denoising score matching at noise level sqrt(1 - alpha_t + lam),
    instead of weight lam / (1 - alpha_t + lam), which is ~0 on the many-step grids."""
    a = expand_like(schedule.alpha(t.double()), y).to(y.dtype)
    lam_e = expand_like(lam, y).to(y.dtype)
    return (y - a.sqrt() * x0) / (1.0 - a + lam_e).sqrt()


@dataclass
class MatchingBatch:
    """One regression problem of the model's objective on clean latents x0 [B, ...]: the network input
    (x, t, lam: x = y for prox, x_t for score; t, lam [B] float32, lam = 0 for score), the target and, for
    prox_target="total-noise", the exact output scale [B] the prediction is divided by (else None)."""

    x: torch.Tensor
    t: torch.Tensor
    lam: torch.Tensor
    target: torch.Tensor
    output_scale: Optional[torch.Tensor] = None

    def prediction(self, eps: torch.Tensor) -> torch.Tensor:
        """The network's eps [B, ...] in the space of `target` (float32)."""
        eps = eps.float()
        if self.output_scale is None:
            return eps
        return eps / self.output_scale.view(-1, *[1] * (eps.dim() - 1))


def matching_batch(x0: torch.Tensor, objective: str, generator, schedule: Schedule, *, prox_target: str = "sample",
                   candidates: tuple[int, ...] = (5, 10, 20, 50, 100, 1000), power: float = 1.0 / 3.0, mode: str = "hybrid",
                   grids: tuple[str, ...] = ("uniform",), chain_share: float = 0.0) -> MatchingBatch:
    """Draw the training inputs and target for x0 [B, ...]: proximal matching ((t, lam) on the candidate
    grids, y = x_t + sqrt(lam) n, target n, E[n | y, x0] or y's total noise) or denoising score matching
    (t ~ U[1e-3, 1], target the forward noise). The one place both the pretraining loop and the forward-process
    reward route (rl/nft.py) build their regression, so the two train the same network on the same problem.
    chain_share: the share of prox draws whose y is the sampler's own input (chain_input) instead of
    x_t + sqrt(lam) n; their target is (y - x_t) / sqrt(lam) ("sample") or (y - E[x_t | y, x0]) / sqrt(lam),
    in the space of `prox_target`."""
    from ..models.precond import prox_output_scale
    from .draws import draw_t_lam

    if objective == "score":
        t = (torch.rand(x0.shape[0], generator=generator) * (1 - 1e-3) + 1e-3).to(x0.device)
        x_t, e = noisy_pair(x0, t, schedule, generator=generator)
        return MatchingBatch(x_t, t, torch.zeros_like(t), e)
    if objective != "prox":
        raise UsageError(f"objective must be 'prox' or 'score', got {objective!r}")
    d = draw_t_lam(x0.shape[0], generator, tuple(candidates), power=power, mode=mode, schedule=schedule, grids=tuple(grids))
    t, lam = d.t.float().to(x0.device), d.lam.float().to(x0.device)
    x_t, _ = noisy_pair(x0, t, schedule, generator=generator)
    y, n = prox_pair(x_t, lam, generator=generator)
    if prox_target == "conditional-mean":
        target = conditional_mean_noise(y, x0, t, lam, schedule)
    elif prox_target == "total-noise":
        target = total_noise(y, x0, t, lam, schedule)
    else:
        target = n
    scale = prox_output_scale(t, lam, schedule) if prox_target == "total-noise" else None  # backbone space: undo the exact output scale
    if chain_share > 0:  # drawn only when asked, so runs without it keep their random stream
        chained = torch.rand(x0.shape[0], generator=generator) < chain_share
        if bool(chained.any()):
            chain = chain_input(x0, x_t, t, d.t_next.float().to(x0.device), d.gamma.float().to(x0.device), mode, schedule, generator)
            y_chain = chain.y
            n_chain = (y_chain - (x_t if prox_target == "sample" else chain.mean)) / expand_like(lam, x_t).sqrt()
            if scale is not None:
                n_chain = n_chain / expand_like(scale, x_t)
            pick = expand_like(chained.to(x0.device), x0).bool()
            y, target = torch.where(pick, y_chain, y), torch.where(pick, n_chain, target)
    return MatchingBatch(y, t, lam, target, scale)


# ------------------------------------------------------------------------------------ consistency models
# The few-step competitors (docs/benchmark.md): the score U-ViT trained so that its Tweedie clean estimate
# f(x, t) = (x - sqrt(1 - a_t) eps) / sqrt(a_t) is constant along trajectories (samplers/consistency.py).
CONSISTENCY_T_MIN = 1e-3  # the lowest time trained, as in denoising score matching


@dataclass
class ConsistencyPair:
    """Two adjacent times t_hi = t_lo + dt [B] of one trajectory: x_hi [B, ...] the student's input, x_lo the
    target's (consistency training: the same x0 and noise at t_lo; distillation replaces it by a teacher ODE step)."""

    t_hi: torch.Tensor
    t_lo: torch.Tensor
    x_hi: torch.Tensor
    x_lo: torch.Tensor


def consistency_intervals(step: int, total_steps: int, start: int, end: int) -> int:
    """Number of intervals N the unit time range is cut into at training step `step` (0-based): doubled from
    `start` to `end` in equal stages (improved consistency training's curriculum; start == end: fixed)."""
    if start >= end:
        return start
    doublings = int(torch.log2(torch.tensor(end / start)).ceil())
    stage = min(step * (doublings + 1) // max(total_steps, 1), doublings)
    return min(start * 2**stage, end)


def consistency_pair(x0: torch.Tensor, intervals: int, generator, schedule: Schedule) -> ConsistencyPair:
    """t_hi ~ U[t_min + dt, 1], t_lo = t_hi - dt (dt = (1 - t_min) / intervals); x_t = sqrt(a) x0 + sqrt(1 - a) z
    with one z for both times. x0 [B, ...]."""
    dt = (1.0 - CONSISTENCY_T_MIN) / intervals
    t_hi = (CONSISTENCY_T_MIN + dt + torch.rand(x0.shape[0], generator=generator) * (1.0 - CONSISTENCY_T_MIN - dt)).to(x0.device)
    t_lo = t_hi - dt
    z = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    a_hi, a_lo = (expand_like(schedule.alpha(t.double()), x0).to(x0.dtype) for t in (t_hi, t_lo))
    return ConsistencyPair(t_hi, t_lo, a_hi.sqrt() * x0 + (1 - a_hi).sqrt() * z, a_lo.sqrt() * x0 + (1 - a_lo).sqrt() * z)


def ddim_step(x: torch.Tensor, eps: torch.Tensor, t_from: torch.Tensor, t_to: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """One deterministic DDIM (probability-flow) step from t_from to t_to [B] with the teacher's eps [B, ...]."""
    a_to = expand_like(schedule.alpha(t_to.double()), x).to(x.dtype)
    return a_to.sqrt() * clean_from_eps(x, eps, t_from, schedule) + (1 - a_to).sqrt() * eps


def consistency_loss(eps_pred: torch.Tensor, pair: ConsistencyPair, target_x0: torch.Tensor, schedule: Schedule,
                     snr_cap: float = 5.0) -> torch.Tensor:
    """min(SNR(t_hi), snr_cap) ||f(x_hi, t_hi) - target_x0||^2 per sample, [B], computed in eps space (the same
    number without dividing by sqrt(a) ~ 0.007 near t = 1): the student's eps against the eps that would map x_hi
    onto the target, weighted min(1, snr_cap / SNR). The min-SNR weighting keeps t ~ 1 from dominating."""
    a = expand_like(schedule.alpha(pair.t_hi.double()), pair.x_hi).to(pair.x_hi.dtype)
    eps_target = (pair.x_hi - a.sqrt() * target_x0) / (1 - a).sqrt()
    snr = schedule.alpha(pair.t_hi.double()) / (1 - schedule.alpha(pair.t_hi.double()))
    weight = (snr_cap / snr).clamp(max=1.0).float()
    return weight * per_sample_mean((eps_pred.float() - eps_target.float()).pow(2))
