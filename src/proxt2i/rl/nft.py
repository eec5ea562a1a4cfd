"""The forward-process reward route: reward-weighted matching on the model's own samples (DiffusionNFT,
arXiv 2509.16117, adapted to proximal matching; method.md Sec. 8). No policy log-probabilities, no gradient
through the sampler.

Per iteration: sample P prompts x G images with the sampling policy (the EMA weights, a soft-updated copy
of the trained ones), score them, and turn each group's rewards into an optimality weight
    r = 1/2 + 1/2 clip(A / adv_clip, -1, 1),  A the group-standardised reward (grpo.group_advantages).
Then noise the clean latents exactly as pretraining does (training.losses.matching_batch: (t, lam) on the
candidate grids, y = x_t + sqrt(lam) n) and train on the implicit positive and negative policies
    pred+ = (1 - beta) pred_old + beta pred_theta,   pred- = (1 + beta) pred_old - beta pred_theta,
    L = r ||pred+ - target||^2 + (1 - r) ||pred- - target||^2   (mean over dimensions, per sample),
pred_old from the sampling policy on the same inputs. At theta = theta_old the gradient is
beta (2r - 1) dL/dpred: the model's own objective, reinforced on good samples and reversed on bad ones;
the sampling policy lagging behind (--ema) is what keeps it from running away. --reg adds R0's relative
L2 pull toward the pretrained weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import option, to_command
from .grpo import group_advantages
from .r0 import weight_pull
from .run import COMMAND_KEEPS, FineTuneRun, RunSettings, StepResult


@dataclass(frozen=True)
class NFTConfig(RunSettings):
    """`proxt2i finetune nft`: the forward-process route; the shared run settings (rl.run.RunSettings) and its own."""

    reward: str = option("alignment-prob", "NAME[:DIR][=WEIGHT],... any rewards (no gradient needed)", metavar="SPEC")
    steps: int = option(300, "iterations (rollout batches)")
    out: str = option("runs/nft", "output folder")
    prompts_per_step: int = option(8, "prompts per iteration P (batch = P * G)")
    lr: float = option(5e-5, "learning rate")
    ema: float = option(0.9, "EMA decay of the sampling policy (which is also the exported model); 0 = on-policy")
    beta: float = option(1.0, "strength of the implicit positive / negative policies (DiffusionNFT's beta)")
    inner_epochs: int = option(2, "updates per rollout batch, each on a fresh (t, lam, noise) draw")
    adv_clip: float = option(2.0, "group-standardised rewards are clipped to +- this, then mapped to weights in [0, 1]")
    step_candidates: tuple[int, ...] = option((2, 3, 4, 5, 6, 8), "prox only: step counts whose grids the (t, lam) draws lie on "
                                                                  "(the sampler's own grid kind)")
    reg: float = option(0.0, "weight of R0's pull ||theta - theta0||^2 / ||theta0||^2 toward the pretrained weights")

    def checks(self) -> list[tuple[bool, str]]:
        return super().checks() + [
            (self.group >= 2, f"--group must be >= 2 (the weights compare images of one prompt), got {self.group}"),
            (self.beta > 0, f"--beta must be > 0, got {self.beta}"),
            (self.inner_epochs >= 1, f"--inner-epochs must be >= 1, got {self.inner_epochs}"),
            (self.adv_clip > 0, f"--adv-clip must be > 0, got {self.adv_clip}"),
            (len(self.step_candidates) >= 1 and all(1 <= n <= 1000 for n in self.step_candidates),
             f"--step-candidates must be step counts in 1..1000, got {self.step_candidates}"),
            (self.reg >= 0, f"--reg must be >= 0, got {self.reg}"),
            (1 <= self.num_steps <= 1000, f"--num-steps must be in 1..1000, got {self.num_steps}"),
        ]


def nft_command(cfg: NFTConfig) -> str:
    """The `proxt2i finetune nft ...` command that reruns `cfg`."""
    return to_command("proxt2i finetune nft", cfg, keep=COMMAND_KEEPS)


def optimality_weights(rewards: torch.Tensor, group_size: int, adv_clip: float) -> torch.Tensor:
    """rewards [P * G] (prompt-major) -> weights [P * G] in [0, 1]: 1/2 for a group's mean reward, 1 (0) at
    adv_clip group standard deviations above (below) it; a group of equal rewards gets 1/2 everywhere."""
    adv = group_advantages(rewards, group_size, clip=adv_clip)
    return 0.5 + 0.5 * adv / adv_clip


def nft_loss(pred: torch.Tensor, pred_old: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-sample loss [B]: w ||pred+ - target||^2 + (1 - w) ||pred- - target||^2 (means over dimensions) with
    pred+- = pred_old +- beta (pred - pred_old). pred, pred_old, target [B, ...]; weights [B] in [0, 1]."""
    from ..training.losses import per_sample_mean

    delta = beta * (pred - pred_old)
    pos = per_sample_mean((pred_old + delta - target).pow(2))
    neg = per_sample_mean((pred_old - delta - target).pow(2))
    return weights * pos + (1.0 - weights) * neg


def finetune_nft(cfg: NFTConfig, progress: bool = True) -> Path:
    """Forward-process reward fine-tuning (or its resumption) of cfg.model; returns OUT/final."""
    from ..rewards import parse_reward_spec
    from ..samplers.registry import get_sampler
    from ..schedule import time_grid
    from ..training.losses import matching_batch
    from ..training.seeding import step_generator

    weights = parse_reward_spec(cfg.reward)
    run = FineTuneRun(cfg, "nft", "raise --ema (a slower sampling policy) or --reg, or lower --lr or --beta").start(weights)
    params0 = [p.detach().clone() for p in run.params] if cfg.reg > 0 else None
    recipe = run.pipe.config.get("recipe", {}).get("config", {})
    prox_target = recipe.get("prox_target", "sample")  # the target the model was pretrained on
    sampler = get_sampler(run.sampler)

    def step(i: int, g: torch.Generator, prompts: list[str], x_T: torch.Tensor) -> StepResult:
        # --- rollout with the sampling policy, rewards, per-image weights
        with torch.no_grad():
            x0 = sampler(run.guided(run.ema, prompts), x_T, time_grid(cfg.num_steps, run.grid), generator=g, schedule=run.schedule)
            images = run.autoencoder.decode(x0).clamp(0, 1)
            terms = run.reward.terms(images, prompts)
            rewards = run.reward.total(terms)
        w = optimality_weights(rewards, cfg.group, cfg.adv_clip).to(x0.device)
        # --- updates on fresh noised versions of the samples
        stats = {"loss": 0.0, "pull": 0.0, "grad_norm": 0.0}
        for epoch in range(cfg.inner_epochs):
            ge = step_generator(cfg.seed + 1 + epoch, run.acc.process_index, i)
            batch = matching_batch(x0, run.objective, ge, run.schedule, prox_target=prox_target, candidates=tuple(cfg.step_candidates),
                                   power=0.0, grids=(run.grid,))
            with torch.no_grad():
                pred_old = batch.prediction(run.ema(batch.x, batch.t, batch.lam, prompts))
            pred = batch.prediction(run.net(batch.x, batch.t, batch.lam, prompts))
            loss = nft_loss(pred, pred_old, batch.target, w, cfg.beta).mean()
            if params0 is not None:
                pull = weight_pull(run.params, params0)
                loss = loss + cfg.reg * pull
                stats["pull"] += pull.item() / cfg.inner_epochs
            run.opt.zero_grad(set_to_none=True)
            run.acc.backward(loss)
            norm = run.acc.clip_grad_norm_(run.params, cfg.grad_clip) if cfg.grad_clip > 0 else None
            run.opt.step()
            stats["loss"] += loss.item() / cfg.inner_epochs
            stats["grad_norm"] += (float(norm) if norm is not None else 0.0) / cfg.inner_epochs
        row = {"reward_mean": float(rewards.mean()), "reward_std": float(rewards.std()),
               "terms": {k: float(v.mean()) for k, v in terms.items()}, "weight_spread": float(w.std()), **stats}
        return StepResult(images, row, f"reward {row['reward_mean']:.4f} +- {row['reward_std']:.4f} loss {stats['loss']:.4g}")

    run.loop(step, progress)
    return run.export(nft_command(cfg))
