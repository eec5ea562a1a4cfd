"""R0 (arXiv 2503.13070, method.md Sec. 8): few-step generation by regularised reward maximisation.

The pretrained network, run with guidance as its short default sampler (PDA-hybrid for prox models;
Euler-Maruyama with a noise-free last step for score models, R0's own setting of a generator initialised
from a score model), is the generator.
Its final sample x_0 is decoded and scored by differentiable rewards, and the gradient flows back
through every sampler step. No teacher, no training images, no distillation loss.

Choices (the paper publishes no code or hyperparameters):
- each reward's gradient with respect to the decoded images is normalised to unit norm over the batch
  before the weighted sum (the paper normalises per reward so that no scale dominates);
- regularisation: reg * ||theta - theta_0||^2 / ||theta_0||^2, the relative L2 pull toward the
  pretrained weights (without it the paper sees collapse);
- stochasticity: the noise of step k is scaled by eta_k ~ U[eta_min, 1] during training (R0 draws a
  random stochasticity level per step). eta = 1 is the sampler as trained and as used at inference;
  eta < 1 only shrinks the prox input toward the training distribution of y (whose spread is smaller
  than the few-step chain's), so it stays within what the prox network has seen. Default eta_min = 1.

OUT/ has the layout of `proxt2i finetune grpo` (config.json, log.jsonl, checkpoints/, final/).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from ..config import option, to_command
from ..errors import UsageError
from ..rewards.registry import DIFFERENTIABLE_HINT, reward_gradient
from .run import COMMAND_KEEPS, FineTuneRun, RunSettings, StepResult


@dataclass(frozen=True)
class R0Config(RunSettings):
    """`proxt2i finetune r0`: one R0 run (reward gradients through the few-step PDA-hybrid sampler); the
    shared run settings (rl.run.RunSettings) with R0's defaults, and R0's own."""

    model: str = option("synthfaces-prox", "shipped name or model folder (prox: the PDA-hybrid generator; score: Euler-Maruyama)")
    reward: str = option("clip", "NAME[:DIR][=WEIGHT],... differentiable rewards; clip (the contrastive score) by default, so that "
                                 "the recogniser-based alignment metric stays an independent check", metavar="SPEC")
    steps: int = option(200, "optimisation steps")
    out: str = option("runs/r0", "output folder")
    group: int = option(2, "images per prompt, for the diversity monitor")
    prompts_per_step: int = option(8, "prompts per step P")
    num_steps: int = option(4, "sampler steps the generator runs (and is evaluated at)")
    lr: float = option(2e-5, "learning rate")
    reg: float = option(1000.0, "weight of ||theta - theta0||^2 / ||theta0||^2, the pull toward the pretrained weights")
    eta_min: float = option(1.0, "per-step noise scale drawn from U[eta_min, 1] in training")
    normalise_gradients: bool = option(True, "unit-norm gradient per reward before the weighted sum (--no-normalise: "
                                             "sum the reward gradients as they are)", flag="normalise")

    def checks(self) -> list[tuple[bool, str]]:
        return super().checks() + [
            (self.group >= 1, f"--group must be >= 1, got {self.group}"),
            (1 <= self.num_steps <= 50, f"--num-steps must be in 1..50 (gradients flow through every step), got {self.num_steps}"),
            (self.reg >= 0, f"--reg must be >= 0, got {self.reg}"),
            (0 <= self.eta_min <= 1, f"--eta-min must be in [0, 1], got {self.eta_min}"),
        ]


def r0_command(cfg: R0Config) -> str:
    """The `proxt2i finetune r0 ...` command that reruns `cfg`."""
    return to_command("proxt2i finetune r0", cfg, keep=COMMAND_KEEPS)


def sample_with_eta(sampler: str, model, x_T: torch.Tensor, num_steps: int, etas: Sequence[float], generator=None,
                    grid: str = "uniform", schedule=None) -> torch.Tensor:
    """The registry sampler `sampler` (pda-hybrid, or euler-maruyama-denoise for score models) from x_T [B, ...]
    on the named time grid, with the noise of step k (in sampling order) scaled by etas[k]; with every eta = 1
    it is the sampler as used at inference. Differentiable."""
    from ..samplers.registry import get_sampler
    from ..schedule import time_grid

    return get_sampler(sampler)(model, x_T, time_grid(num_steps, grid), generator=generator, noise_scales=etas, schedule=schedule)


def pda_hybrid_with_eta(prox, x_T: torch.Tensor, num_steps: int, etas: Sequence[float], generator=None,
                        grid: str = "uniform", schedule=None) -> torch.Tensor:
    """sample_with_eta with PDA-hybrid: the prox generator."""
    return sample_with_eta("pda-hybrid", prox, x_T, num_steps, etas, generator, grid, schedule)


def weight_pull(params: list[torch.Tensor], params0: list[torch.Tensor]) -> torch.Tensor:
    """||theta - theta_0||^2 / ||theta_0||^2 over all parameters (a scalar)."""
    num = sum(((p - p0) ** 2).sum() for p, p0 in zip(params, params0))
    den = sum((p0**2).sum() for p0 in params0)
    return num / den.clamp_min(1e-12)


def finetune_r0(cfg: R0Config, progress: bool = True) -> Path:
    """R0 fine-tuning (or its resumption) of cfg.model; returns the exported model folder OUT/final."""
    from ..rewards import parse_reward_spec

    weights = parse_reward_spec(cfg.reward)
    if "alignment-acc" in weights:  # the one embedded reward without a gradient: fail before writing anything
        raise UsageError("reward 'alignment-acc' is not differentiable in the images; R0 needs differentiable rewards; "
                         f"use GRPO or nft for this one ({DIFFERENTIABLE_HINT})")
    run = FineTuneRun(cfg, "r0", "raise --reg or lower --lr").start(weights)
    params0 = [p.detach().clone() for p in run.params]  # the pretrained weights the pull is toward
    reward_weights = {k: w for k, (w, _) in run.reward.parts.items()}

    def step(i: int, g: torch.Generator, prompts: list[str], x_T: torch.Tensor) -> StepResult:
        etas = (cfg.eta_min + (1 - cfg.eta_min) * torch.rand(cfg.num_steps, generator=g)).tolist()
        # --- generate with gradients through every step, score, backpropagate the normalised reward gradient
        x0 = sample_with_eta(run.sampler, run.guided(run.net, prompts), x_T, cfg.num_steps, etas, g, run.grid, run.schedule)
        images = run.autoencoder.decode(x0).clamp(0, 1)
        leaf = images.detach().requires_grad_(True)
        terms = run.reward.terms(leaf, prompts)
        direction = reward_gradient(terms, reward_weights, leaf, "batch" if cfg.normalise_gradients else None,
                                    "R0 needs differentiable rewards; use GRPO or nft for this one")
        pull = weight_pull(run.params, params0)
        surrogate = -(images * direction.detach()).sum() + cfg.reg * pull
        run.opt.zero_grad(set_to_none=True)
        run.acc.backward(surrogate)
        grad_norm = float(run.acc.clip_grad_norm_(run.params, cfg.grad_clip)) if cfg.grad_clip > 0 else 0.0
        run.opt.step()
        with torch.no_grad():
            rewards = run.reward.total({k: v.detach() for k, v in terms.items()})
        row = {"reward_mean": float(rewards.mean()), "reward_std": float(rewards.std()),
               "terms": {k: float(v.detach().mean()) for k, v in terms.items()}, "pull": pull.item(), "grad_norm": grad_norm,
               "etas": etas}
        return StepResult(images.detach(), row, f"reward {row['reward_mean']:.4f} pull {row['pull']:.3g}")

    run.loop(step, progress)
    return run.export(r0_command(cfg))
