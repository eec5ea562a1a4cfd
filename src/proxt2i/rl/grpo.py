"""GRPO (group relative policy optimisation) on a Gaussian-chain policy, as plain functions.

For G samples per prompt with rewards r_1..r_G (Shao et al. 2024; Flow-GRPO, Liu et al. 2025;
ProxT2I Sec. on GRPO; method.md Sec. 5):
    A_i = (r_i - mean_group(r)) / (std_group(r) + eps), clipped to [-adv_clip, adv_clip]
and per transition i of the chain (policy.py), with ratio rho = exp(log p_theta - log p_old):
    L_clip = -min(rho A, clip(rho, 1 - c, 1 + c) A)                       (PPO-clip)
    L_KL   = ||mu_theta - mu_ref||^2 / (2 sigma_i^2)                        (equal-variance Gaussians)
    L      = mean over samples and trained transitions of L_clip + beta L_KL.
Several inner epochs reuse one rollout batch (then rho != 1 and clipping acts); each epoch trains
a random subset of the transitions. log p may be the exact density ('sum') or Flow-GRPO's
per-dimension average ('mean', pair it with a small clip range, e.g. 1e-4); the KL uses the same
reduction so its weight means the same thing relative to the surrogate.

finetune_grpo runs it: one explicit step (rollout -> reward -> advantages -> update) inside the frame of
run.py. Prox models are trained as the PDA-hybrid auxiliary-variable chain, score models (the baseline)
as the Euler-Maruyama chain with a noise-free last step (samplers/chains.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from ..config import option, to_command
from ..errors import UsageError
from .policy import Trajectory, pick_transitions, step_log_prob
from .run import COMMAND_KEEPS, FineTuneRun, RunSettings, StepResult


@dataclass(frozen=True)
class GRPOConfig:
    clip: float = 0.2  # PPO ratio clip range c
    kl: float = 0.0  # weight beta of the KL to the reference policy
    inner_epochs: int = 1  # optimiser steps per rollout batch
    train_transitions: int = 0  # transitions trained per epoch (random subset); 0 = all
    reduce: str = "sum"  # log-prob reduction over dimensions: 'sum' (exact) or 'mean'
    adv_eps: float = 1e-4
    adv_clip: float = 5.0
    grad_clip: float = 1.0  # max gradient norm; 0 = off

    def __post_init__(self):
        checks = [
            (self.clip > 0, f"clip must be > 0, got {self.clip}"),
            (self.kl >= 0, f"kl must be >= 0, got {self.kl}"),
            (self.inner_epochs >= 1, f"inner epochs must be >= 1, got {self.inner_epochs}"),
            (self.train_transitions >= 0, f"train steps per update must be >= 0 (0 = all), got {self.train_transitions}"),
            (self.reduce in ("sum", "mean"), f"reduce must be 'sum' or 'mean', got {self.reduce!r}"),
            (self.adv_clip > 0, f"advantage clip must be > 0, got {self.adv_clip}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise UsageError(msg)


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4, clip: float = 5.0) -> torch.Tensor:
    """rewards [P * G], prompt-major (the G samples of prompt p at rows p*G .. p*G + G - 1) -> advantages
    [P * G]: standardised within each group (population std), clipped at +-clip. A group whose rewards
    are all equal gets zero advantages."""
    if rewards.dim() != 1 or group_size < 1 or rewards.numel() % group_size:
        raise UsageError(f"rewards of shape {tuple(rewards.shape)} do not split into groups of {group_size}")
    r = rewards.float().view(-1, group_size)
    adv = (r - r.mean(1, keepdim=True)) / (r.std(1, unbiased=False, keepdim=True) + eps)
    return adv.clamp(-clip, clip).view(-1)


def tree_advantages(rewards: torch.Tensor, strides: Sequence[int], eps: float = 1e-4, clip: float = 5.0) -> list[torch.Tensor]:
    """Advantages of a branching rollout (policy.branch_strides), one tensor per transition i with a value per
    row of state i + 1: the mean reward of the node's leaves minus that of its parent's leaves, over the
    prompt's reward spread (std of its G leaves), then scaled to unit RMS over the batch at each depth: a
    node that averages many leaves differs less from its parent, and without that scaling the early,
    shared transitions would barely be trained (BranchGRPO's depth-wise normalisation). Clipped at +-clip.
    rewards [P * G], prompt-major; with strides (G, 1) it is group_advantages."""
    group = strides[0]
    if rewards.dim() != 1 or rewards.numel() % group:
        raise UsageError(f"rewards of shape {tuple(rewards.shape)} do not split into groups of {group}")
    r = rewards.float().view(-1, group)
    spread = r.std(1, unbiased=False, keepdim=True) + eps
    out = []
    for parent, child in zip(strides[:-1], strides[1:]):
        value = lambda every: r.view(r.shape[0], -1, every).mean(2)
        adv = (value(child) - value(parent).repeat_interleave(parent // child, dim=1)) / spread
        rms = adv.pow(2).mean().sqrt()
        out.append((adv / rms if rms > eps else adv).clamp(-clip, clip).reshape(-1))
    return out


def clipped_surrogate(logp_new: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, clip: float):
    """PPO-clip loss per sample [B] (to minimise) and whether the ratio lies outside [1 - clip, 1 + clip]
    [B] (bool; its mean is the reported clip fraction)."""
    ratio = torch.exp(logp_new - logp_old)
    loss = -torch.minimum(ratio * adv, ratio.clamp(1.0 - clip, 1.0 + clip) * adv)
    return loss, ((ratio - 1.0).abs() > clip).detach()


def gaussian_kl(mean: torch.Tensor, mean_ref: torch.Tensor, std: float, reduce: str = "sum") -> torch.Tensor:
    """KL(N(mean, std^2 I) || N(mean_ref, std^2 I)) = ||mean - mean_ref||^2 / (2 std^2) per sample [B]
    ('mean': divided by the dimension, matching gaussian_log_prob)."""
    kl = (mean - mean_ref).pow(2).flatten(1).sum(1) / (2.0 * std * std)
    return kl / mean[0].numel() if reduce == "mean" else kl


def grpo_update(policy_fn: Callable, traj: Trajectory, adv: torch.Tensor, optimizer: torch.optim.Optimizer,
                params: list, cfg: GRPOConfig, ref_fn: Optional[Callable] = None, generator: Optional[torch.Generator] = None,
                backward: Callable = torch.Tensor.backward, clip_grad: Optional[Callable] = None) -> dict:
    """cfg.inner_epochs optimiser steps on one rollout batch; returns mean statistics.

    policy_fn: the trainable guided callable (gradients flow to params); ref_fn: the frozen reference
    (needed when cfg.kl > 0; when given with kl = 0 the KL is only reported). adv [B] on traj's device.
    For a branching rollout policy_fn and ref_fn are lists (one per state, as rollout takes them) and adv
    is tree_advantages' list (one per transition).
    backward / clip_grad: hooks for accelerate (acc.backward, acc.clip_grad_norm_).
    Returns {loss, clip_fraction, ratio_mean, ratio_max_dev, kl (or None), grad_norm, transitions}.
    """
    if cfg.kl > 0 and ref_fn is None:
        raise UsageError("a KL penalty needs the reference model")
    at = lambda value, i: value[i] if isinstance(value, (list, tuple)) else value  # per transition, or shared by all
    sums = {"loss": 0.0, "clip_fraction": 0.0, "ratio_mean": 0.0, "kl": 0.0, "grad_norm": 0.0}
    count, ratio_dev, epochs = 0, 0.0, 0
    for _ in range(cfg.inner_epochs):
        chosen = pick_transitions(traj.chain.num_transitions, cfg.train_transitions, generator)
        optimizer.zero_grad(set_to_none=True)
        for i in chosen:
            logp, mean = step_log_prob(at(policy_fn, i), traj.states[i], traj.states[i + 1], i, traj.chain, cfg.reduce, traj.branch(i))
            loss_i, was_clipped = clipped_surrogate(logp, traj.log_probs[i], at(adv, i).detach(), cfg.clip)
            loss = loss_i.mean()
            if ref_fn is not None:
                with torch.no_grad():
                    mean_ref = traj.chain.mean(at(ref_fn, i), traj.states[i], i)
                kl = gaussian_kl(mean, mean_ref, traj.chain.std(i), cfg.reduce).mean()
                if cfg.kl > 0:
                    loss = loss + cfg.kl * kl
                sums["kl"] += float(kl.detach())
            backward(loss / len(chosen))
            ratio = torch.exp(logp.detach() - traj.log_probs[i])
            sums["loss"] += float(loss.detach())
            sums["clip_fraction"] += float(was_clipped.float().mean())
            sums["ratio_mean"] += float(ratio.mean())
            ratio_dev = max(ratio_dev, float((ratio - 1).abs().max()))
            count += 1
        if clip_grad is not None:
            norm = clip_grad(params, cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
        else:
            norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
        sums["grad_norm"] += float(norm) if norm is not None else 0.0
        optimizer.step()
        epochs += 1
    out = {k: v / max(count, 1) for k, v in sums.items() if k != "grad_norm"}
    out["grad_norm"] = sums["grad_norm"] / max(epochs, 1)
    out["ratio_max_dev"] = ratio_dev
    out["transitions"] = count
    if ref_fn is None:
        out["kl"] = None
    return out


# ---------------------------------------------------------------------------------------------- the run
START_NOISE = ("independent", "shared")


@dataclass(frozen=True)
class GRPORunConfig(RunSettings):
    """`proxt2i finetune grpo`: one GRPO fine-tuning run (rollouts, rewards, updates, evaluation, export);
    the shared run settings (rl.run.RunSettings) and GRPO's own."""

    steps: int = option(100, "GRPO iterations (rollout batches)")
    kl: float = option(0.0, "KL weight to the reference model")
    clip: float = option(0.2, "PPO ratio clip range")
    inner_epochs: int = option(1, "updates per rollout batch")
    train_steps_per_update: int | None = option(None, "sampler transitions trained per update, a random subset; none = all num_steps - 1",
                                                legacy=0)
    reduce: str = option("sum", "log-prob over dimensions: sum (exact density) or mean (Flow-GRPO; use a small --clip)", flag="logprob")
    start_noise: str = option("independent", "shared: the G images of a prompt start from one initial noise (DanceGRPO), so their "
                                             "rewards differ only through the policy's own transitions; or independent")
    adv_clip: float = option(5.0, "advantages clipped to +- this")
    weight_decay: float = option(0.0, "AdamW weight decay")
    branches: tuple[int, ...] | None = option(None, "branching rollouts (BranchGRPO): the factor each of the num_steps - 1 "
                                                    "transitions splits a group's tree by, product = group (e.g. 2,2,2 for "
                                                    "group 8 at 4 steps); shared steps are computed once; none = independent chains")

    def __post_init__(self):
        super().__post_init__()
        self.grpo()  # checks clip, kl, inner epochs, ...
        self.strides()  # checks --branches against the chain and the group

    def checks(self) -> list[tuple[bool, str]]:
        return super().checks() + [
            (self.group >= 2, f"--group must be >= 2 (advantages compare images of one prompt), got {self.group}"),
            (2 <= self.num_steps <= 1000, f"--num-steps must be in 2..1000, got {self.num_steps}"),
            (self.start_noise in START_NOISE, f"--start-noise must be one of {', '.join(START_NOISE)}, got {self.start_noise!r}"),
            (self.train_steps_per_update is None or self.train_steps_per_update >= 1,
             f"--train-steps-per-update must be >= 1 (or none: all), got {self.train_steps_per_update}"),
            (self.branches is None or self.start_noise == "independent",
             "--branches already shares each group's first state; leave --start-noise at independent"),
        ]

    def strides(self) -> tuple[int, ...]:
        """branch_strides of --branches (checked against the chain and the group), () without branching."""
        from .policy import branch_strides

        return branch_strides(self.branches, self.num_steps - 1, self.group) if self.branches is not None else ()

    def grpo(self) -> GRPOConfig:
        return GRPOConfig(clip=self.clip, kl=self.kl, inner_epochs=self.inner_epochs, train_transitions=self.train_steps_per_update or 0,  # 0: all
                          reduce=self.reduce, adv_clip=self.adv_clip, grad_clip=self.grad_clip)



def grpo_command(cfg: GRPORunConfig) -> str:
    """The `proxt2i finetune grpo ...` command that reruns `cfg`."""
    return to_command("proxt2i finetune grpo", cfg, keep=COMMAND_KEEPS)


def finetune_grpo(cfg: GRPORunConfig, progress: bool = True) -> Path:
    """GRPO fine-tuning (or its resumption) of cfg.model; returns the exported model folder OUT/final."""
    from ..rewards import parse_reward_spec
    from ..training.ema import frozen_copy
    from ..training.seeding import step_generator
    from .policy import rollout, same_kernels_with_and_without_grad

    weights = parse_reward_spec(cfg.reward)  # fail on a bad spec before loading anything
    grpo_cfg, strides = cfg.grpo(), cfg.strides()
    with same_kernels_with_and_without_grad():
        run = FineTuneRun(cfg, "grpo", "raise --kl or lower --lr", weight_decay=cfg.weight_decay).start(weights)
        ref = frozen_copy(run.net) if cfg.kl > 0 else None  # the pretrained policy

        def guided(net, prompts: list[str]):
            """net guided for every row (independent chains), or one callable per state of the branching tree."""
            return [run.guided(net, prompts[::every]) for every in strides] if strides else run.guided(net, prompts)

        def step(i: int, g: torch.Generator, prompts: list[str], x_T: torch.Tensor) -> StepResult:
            # --- rollout
            policy_fn = guided(run.net, prompts)
            traj = rollout(policy_fn, x_T, cfg.num_steps, g, sampler=run.sampler, schedule=run.schedule, reduce=cfg.reduce,
                           start_group=cfg.group if cfg.start_noise == "shared" else 1, grid=run.grid, strides=strides)
            # --- reward and group (or tree) advantages
            with torch.no_grad():
                images = run.autoencoder.decode(traj.x0).clamp(0, 1)
                terms = run.reward.terms(images, prompts)
                rewards = run.reward.total(terms).to(run.acc.device)
            adv = (tree_advantages(rewards, strides, grpo_cfg.adv_eps, grpo_cfg.adv_clip) if strides
                   else group_advantages(rewards, cfg.group, grpo_cfg.adv_eps, grpo_cfg.adv_clip))
            # --- policy update (inner epochs over the same batch)
            ref_fn = guided(ref, prompts) if ref is not None else None
            stats = grpo_update(policy_fn, traj, adv, run.opt, run.params, grpo_cfg, ref_fn=ref_fn,
                                generator=step_generator(cfg.seed + 1, run.acc.process_index, i),
                                backward=run.acc.backward, clip_grad=run.acc.clip_grad_norm_)
            row = {"reward_mean": float(rewards.mean()), "reward_std": float(rewards.std()),
                   "terms": {k: float(v.mean()) for k, v in terms.items()}, "kl": stats["kl"], "clip_fraction": stats["clip_fraction"],
                   "ratio_mean": stats["ratio_mean"], "ratio_max_dev": stats["ratio_max_dev"], "loss": stats["loss"],
                   "grad_norm": stats["grad_norm"]}
            kl = "-" if row["kl"] is None else f"{row['kl']:.4g}"
            return StepResult(images, row, f"reward {row['reward_mean']:.4f} +- {row['reward_std']:.4f} kl {kl} "
                                           f"clip {row['clip_fraction']:.3f}")

        run.loop(step, progress)
        return run.export(grpo_command(cfg))
