"""Reward fine-tuning with GRPO: one explicit loop over (rollout -> reward -> advantages -> update).

Prox models are trained as the PDA-hybrid auxiliary-variable chain, score models (the baseline) as the
Euler-Maruyama chain with a noise-free last step (policy.py); everything else is shared. Runs on one
CPU, one GPU or several processes through accelerate, like training/run.py. Exact resume: the prompts,
noise and transition subset of step s come from generators seeded with (seed, rank, s), so a
checkpoint holds only model, EMA, optimizer, step and the diversity baseline; resume = rerun the command.

OUT/
  config.json        the resolved GRPORunConfig
  log.jsonl          one JSON object per step (reward mean/std and terms, KL, clip fraction, diversity, ...)
                     and per evaluation ({"eval": ...})
  checkpoints/       atomic safetensors checkpoints (training/checkpoint.py)
  final/             the fine-tuned model folder (EMA weights), loadable by ProxT2IPipeline
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from ..config import option, to_command
from ..errors import UsageError
from .grpo import GRPOConfig, group_advantages, grpo_update

# named prompt sources: the shipped evaluation sets, and fresh samples of the same generators that
# exclude every prompt of the shipped sets (train on these, evaluate on the shipped ones)
PROMPT_SOURCES = ("synthfaces", "synthfaces-heldout", "heldin", "heldout")
FRESH_PROMPT_SEED, FRESH_PROMPT_COUNT = 31_337, 2048
START_NOISE = ("independent", "shared")
TIME_GRID_HELP = ("time grid the sampler is tuned and evaluated on: uniform, quadratic or power:R; none = the model's own, as "
                  "`proxt2i generate` uses it (quadratic for the shipped prox model); the fine-tuned model keeps it as its default")


@dataclass(frozen=True)
class GRPORunConfig:
    """`proxt2i finetune grpo`: one GRPO fine-tuning run (rollouts, rewards, updates, evaluation, export)."""

    model: str = option("synthfaces-prox", "shipped name or model folder (prox -> PDA-hybrid chain, score -> Euler-Maruyama)")
    reward: str = option("alignment", "NAME[:DIR][=WEIGHT],... e.g. alignment=1.0,clip=0.5", metavar="SPEC")
    prompts: str = option("synthfaces", f"training prompts: FILE (one per line) or one of {', '.join(PROMPT_SOURCES)}")
    steps: int = option(100, "GRPO iterations (rollout batches)")
    out: str = option("runs/grpo", "output folder")
    group: int = option(8, "images per prompt G")
    prompts_per_step: int = option(4, "prompts per rollout batch P (batch = P * G)")
    num_steps: int = option(4, "sampler steps")
    time_grid: str | None = option(None, TIME_GRID_HELP, legacy="", metavar="GRID")
    guidance: float = option(4.0, "CFG scale in rollouts and evaluation")
    lr: float = option(3e-5, "learning rate")
    kl: float = option(0.0, "KL weight to the reference model")
    clip: float = option(0.2, "PPO ratio clip range")
    inner_epochs: int = option(1, "updates per rollout batch")
    train_steps_per_update: int | None = option(None, "sampler transitions trained per update, a random subset; none = all num_steps - 1",
                                                legacy=0)
    reduce: str = option("sum", "log-prob over dimensions: sum (exact density) or mean (Flow-GRPO; use a small --clip)", flag="logprob")
    start_noise: str = option("independent", "shared: the G images of a prompt start from one initial noise (DanceGRPO), so their "
                                             "rewards differ only through the policy's own transitions; or independent")
    adv_clip: float = option(5.0, "advantages clipped to +- this")
    grad_clip: float = option(1.0, "gradient norm clip")
    weight_decay: float = option(0.0, "AdamW weight decay")
    ema: float = option(0.9, "EMA decay of the exported weights; 0 = export the raw weights")
    seed: int = option(0, "seed")
    eval_every: int = option(0, "evaluate alignment every N steps and at the start; 0 = only at the end")
    eval_prompts: str = option("heldout", "evaluation prompts: FILE or a named set")
    eval_num: int = option(64, "evaluation prompts used, one image each (seeds 0..eval_num-1)")
    diversity_threshold: float = option(0.5, "warn when within-prompt diversity falls below this fraction of its start")
    stop_on_collapse: bool = option(False, "stop (after a checkpoint) when the diversity warning fires")
    checkpoint_every: int = option(10, "checkpoint every N steps")
    keep_checkpoints: int = option(2, "newest checkpoints kept; raise it to export an earlier step later")
    threads: int = option(1, "CPU threads")

    def __post_init__(self):
        checks = [
            (self.steps >= 1, f"--steps must be >= 1, got {self.steps}"),
            (self.group >= 2, f"--group must be >= 2 (advantages compare images of one prompt), got {self.group}"),
            (self.prompts_per_step >= 1, f"--prompts-per-step must be >= 1, got {self.prompts_per_step}"),
            (2 <= self.num_steps <= 1000, f"--num-steps must be in 2..1000, got {self.num_steps}"),
            (self.guidance >= 0, f"--guidance must be >= 0, got {self.guidance}"),
            (self.lr >= 0, f"--lr must be >= 0, got {self.lr}"),
            (0 <= self.ema < 1, f"--ema must be in [0, 1), got {self.ema}"),
            (self.eval_every >= 0, f"--eval-every must be >= 0, got {self.eval_every}"),
            (self.eval_num >= 1, f"--eval-num must be >= 1, got {self.eval_num}"),
            (0 <= self.diversity_threshold <= 1, f"--diversity-threshold must be in [0, 1], got {self.diversity_threshold}"),
            (self.checkpoint_every >= 1, f"--checkpoint-every must be >= 1, got {self.checkpoint_every}"),
            (self.keep_checkpoints >= 1, f"--keep-checkpoints must be >= 1, got {self.keep_checkpoints}"),
            (self.threads >= 1, f"--threads must be >= 1, got {self.threads}"),
            (self.start_noise in START_NOISE, f"--start-noise must be one of {', '.join(START_NOISE)}, got {self.start_noise!r}"),
            (self.train_steps_per_update is None or self.train_steps_per_update >= 1,
             f"--train-steps-per-update must be >= 1 (or none: all), got {self.train_steps_per_update}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise UsageError(msg)
        check_time_grid(self.time_grid)
        self.grpo()  # checks clip, kl, inner epochs, ...

    def grpo(self) -> GRPOConfig:
        return GRPOConfig(clip=self.clip, kl=self.kl, inner_epochs=self.inner_epochs, train_transitions=self.train_steps_per_update or 0,  # 0: all
                          reduce=self.reduce, adv_clip=self.adv_clip, grad_clip=self.grad_clip)


# always written, although they have defaults: a recipe's command reads as what was tuned, on what, where
COMMAND_KEEPS = ("model", "reward", "out")


def grpo_command(cfg: GRPORunConfig) -> str:
    """The `proxt2i finetune grpo ...` command that reruns `cfg`."""
    return to_command("proxt2i finetune grpo", cfg, keep=COMMAND_KEEPS)


def check_time_grid(name: str | None) -> None:
    """None (the model's own grid) or a grid name schedule.time_grid knows; else a UsageError."""
    from ..schedule import grid_power

    if name is not None:
        grid_power(name)


def finetune_grid(pipe, sampler: str, asked: str | None) -> tuple[str, dict | None]:
    """The time grid a fine-tune trains and evaluates `sampler` on (`asked`, else the model's own default), and
    the sampling defaults of the fine-tuned model folder: the base model's, with that grid for `sampler`, so
    that the fine-tuned model samples by default on the grid it was tuned on."""
    grid = asked if asked is not None else pipe.time_grid_for(sampler)
    sampling = copy.deepcopy(pipe.config.get("sampling", {}))
    if grid != "uniform" or sampler in sampling.get("time_grid", {}):
        sampling.setdefault("time_grid", {})[sampler] = grid
    return grid, sampling or None


def load_prompt_source(source: str) -> list[str]:
    """A prompt FILE (one per line) or a named source (PROMPT_SOURCES)."""
    from ..data.prompts import load_prompts, make_prompts

    if source in ("heldin", "heldout"):
        return load_prompts(source)
    if source in ("synthfaces", "synthfaces-heldout"):
        shipped = set(load_prompts("heldin")) | set(load_prompts("heldout"))
        kind = "heldin" if source == "synthfaces" else "heldout"
        return [p for p in make_prompts(kind, FRESH_PROMPT_COUNT, FRESH_PROMPT_SEED) if p not in shipped]
    path = Path(source)
    if not path.is_file():
        raise UsageError(f"prompts {source!r}: not a file nor one of {', '.join(PROMPT_SOURCES)}")
    prompts = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not prompts:
        raise UsageError(f"prompt file {source!r} has no prompts")
    return prompts


def step_prompts(prompts: list[str], count: int, seed: int, step: int) -> list[str]:
    """The `count` prompts of step `step`: a pure function of (seed, step); distinct when possible."""
    rng = np.random.default_rng([seed, step, 7])
    idx = rng.choice(len(prompts), size=count, replace=count > len(prompts))
    return [prompts[i] for i in idx]


@torch.no_grad()
def evaluate_alignment(net, autoencoder, objective: str, prompts: list[str], latent_shape, num_steps: int, guidance: float,
                       reward=None, batch_size: int = 64, time_grid: str = "uniform", schedule=None) -> dict:
    """SynthFaces alignment (exact attribute read-back) and Frechet distance to fresh renders (`proxt2i
    evaluate`'s fd: the reward-hacking signal) of one image per prompt, seeds 0..N-1 (None for prompts outside
    the SynthFaces vocabulary), and the mean reward when given; the model's default sampler on `time_grid`
    (the grid the fine-tune trains on)."""
    from ..evaluation.metrics import evaluate_images
    from ..pipeline import sample_latents

    images = []
    for i in range(0, len(prompts), batch_size):
        chunk = prompts[i : i + batch_size]
        lat = sample_latents(net, objective, chunk, latent_shape, num_steps, guidance, seeds=list(range(i, i + len(chunk))),
                             time_grid=time_grid, schedule=schedule)
        images.append(autoencoder.decode(lat).clamp(0, 1).cpu())
    images = torch.cat(images)
    out = {"alignment": None, "alignment_all": None, "fd": None, "n": len(prompts)}
    try:
        scores = evaluate_images(images, prompts)
        out.update(alignment=scores["alignment"], alignment_all=scores["alignment_all"], fd=scores["fd"])
    except UsageError:  # prompts outside the SynthFaces vocabulary: no alignment, only the reward
        pass
    if reward is not None:
        out["reward"] = float(reward(images, prompts).mean())
    return out


def _read_log(path: Path, upto: int) -> list[str]:
    """Lines of log.jsonl up to step `upto` (a resumed run rewrites the rest; an evaluation at `upto`
    itself is redone, since a run can stop between its checkpoint and its evaluation)."""
    if not path.exists():
        return []
    keep = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        step = int(row.get("step", 0))
        if step < upto or (step == upto and "eval" not in row):
            keep.append(line)
    return keep


class RunLog:
    """OUT/config.json and OUT/log.jsonl of a fine-tuning run (GRPO or R0), shared by both loops.
    start_at(step) writes the config and keeps the log up to `step`; write(row, text) appends a row
    and prints its line (through the progress bar when there is one). Only the main process writes."""

    def __init__(self, out: Path, config: dict, main_process: bool, progress: bool):
        self.out, self.config, self.main, self.progress = out, config, main_process, progress
        self.path = out / "log.jsonl"

    def start_at(self, step: int) -> None:
        from ..atomic import atomic_write_text

        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out / "config.json", json.dumps(self.config, indent=1))
            atomic_write_text(self.path, "".join(line + "\n" for line in _read_log(self.path, step)))

    def write(self, row: dict, text: str, bar=None) -> None:
        if not self.main:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        (bar.write if bar is not None and self.progress else print)(text)

    def write_eval(self, step: int, result: dict, bar=None) -> None:
        text = f"eval step {step}:" + "".join(f" {k} {result[k]:.4f}" for k in ("alignment", "alignment_all", "fd", "reward")
                                             if result.get(k) is not None)
        self.write({"step": step, "eval": result}, text, bar)


def resume(out: Path, net, ema, opt, monitor, acc) -> int:
    """Load the newest checkpoint of OUT into net, EMA, optimizer and the diversity monitor; its step (0 if none)."""
    from ..training.checkpoint import latest_checkpoint, load_checkpoint

    ckpt = latest_checkpoint(out)
    if ckpt is None:
        return 0
    state = load_checkpoint(ckpt, net, ema, opt)
    monitor.baseline = state.get("diversity_baseline")
    acc.print(f"resuming from {ckpt} (step {int(state['step'])})")
    return int(state["step"])


def finetune_grpo(cfg: GRPORunConfig, progress: bool = True) -> Path:
    """GRPO fine-tuning (or its resumption) of cfg.model; returns the exported model folder OUT/final."""
    from .policy import same_kernels_with_and_without_grad

    with same_kernels_with_and_without_grad():
        return _finetune(cfg, progress)


def _finetune(cfg: GRPORunConfig, progress: bool) -> Path:
    from accelerate import Accelerator
    from tqdm import tqdm

    from ..models.io import save_model_folder
    from ..pipeline import ProxT2IPipeline
    from ..samplers.guidance import guided_model
    from ..samplers.registry import DEFAULT_SAMPLER
    from ..shipped import resolve_model
    from ..training.checkpoint import latest_checkpoint, save_checkpoint
    from ..training.ema import ema_update
    from ..training.seeding import step_generator
    from .diversity import DiversityMonitor, group_diversity, recogniser_features
    from .policy import rollout
    from ..rewards import combine_rewards, parse_reward_spec

    torch.set_num_threads(cfg.threads)
    parse_reward_spec(cfg.reward)  # fail on a bad spec before loading anything
    train_prompts = load_prompt_source(cfg.prompts)
    eval_prompts = load_prompt_source(cfg.eval_prompts)[: cfg.eval_num]
    acc = Accelerator(cpu=not torch.cuda.is_available())
    out = Path(cfg.out)
    grpo_cfg = cfg.grpo()

    # --- reward (first: a bad reward folder fails before anything heavy), model, reference, EMA, optimizer
    reward = combine_rewards(cfg.reward, device=acc.device)
    model_path = resolve_model(cfg.model)
    pipe = ProxT2IPipeline.from_pretrained(model_path)
    objective, autoencoder, latent_shape = pipe.objective, pipe.autoencoder.to(acc.device).eval(), pipe.latent_shape
    kind = DEFAULT_SAMPLER[objective]  # the sampler whose chain is tuned: pda-hybrid / euler-maruyama-denoise
    grid, sampling = finetune_grid(pipe, kind, cfg.time_grid)
    net = pipe.net.to(acc.device).eval()  # eval mode: no dropout, so rollout and update are the same policy
    ref = copy.deepcopy(net).requires_grad_(False) if cfg.kl > 0 else None
    ema = copy.deepcopy(net).requires_grad_(False)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    monitor = DiversityMonitor(cfg.diversity_threshold)

    # --- resume = rerun the command
    start = resume(out, net, ema, opt, monitor, acc)
    net, opt = acc.prepare(net, opt)
    config = {f.name: getattr(cfg, f.name) for f in fields(cfg)}
    runlog = RunLog(out, {**config, "objective": objective, "chain": kind, "chain_time_grid": grid}, acc.is_main_process, progress)
    runlog.start_at(start)

    def run_eval(step: int, bar=None) -> dict:
        result = evaluate_alignment(ema, autoencoder, objective, eval_prompts, latent_shape, cfg.num_steps, cfg.guidance, reward,
                                    time_grid=grid, schedule=pipe.schedule)
        runlog.write_eval(step, result, bar)
        return result

    if acc.is_main_process and cfg.eval_every > 0 and start % cfg.eval_every == 0 and start < cfg.steps:
        run_eval(start)

    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc=f"grpo {objective}", disable=not (progress and acc.is_main_process))
    t_start = time.time()
    stopped = False
    for step in bar:
        t0 = time.time()
        # --- rollout: P prompts x G images, prompt-major
        g = step_generator(cfg.seed, acc.process_index, step)
        prompts = [p for p in step_prompts(train_prompts, cfg.prompts_per_step, cfg.seed * 1009 + acc.process_index, step)
                   for _ in range(cfg.group)]
        x_T = torch.randn((len(prompts), *latent_shape), generator=g).to(acc.device)
        policy_fn = guided_model(net, objective, prompts, cfg.guidance, schedule=pipe.schedule)
        traj = rollout(policy_fn, x_T, cfg.num_steps, g, sampler=kind, schedule=pipe.schedule, reduce=cfg.reduce,
                       start_group=cfg.group if cfg.start_noise == "shared" else 1, grid=grid)

        # --- reward and group advantages
        with torch.no_grad():
            images = autoencoder.decode(traj.x0).clamp(0, 1)
            terms = reward.terms(images, prompts)
            rewards = reward.total(terms)
        adv = group_advantages(rewards, cfg.group, grpo_cfg.adv_eps, grpo_cfg.adv_clip).to(acc.device)

        # --- policy update (inner epochs over the same batch), EMA
        ref_fn = guided_model(ref, objective, prompts, cfg.guidance, schedule=pipe.schedule) if ref is not None else None
        stats = grpo_update(policy_fn, traj, adv, opt, params, grpo_cfg, ref_fn=ref_fn,
                            generator=step_generator(cfg.seed + 1, acc.process_index, step),
                            backward=acc.backward, clip_grad=acc.clip_grad_norm_)
        ema_update(ema, acc.unwrap_model(net), cfg.ema)

        # --- diversity within prompts, relative to the first step
        div = group_diversity(recogniser_features(images), cfg.group)
        rel = monitor.update(div)
        done = step + 1
        row = {"step": done, "reward_mean": float(rewards.mean()), "reward_std": float(rewards.std()),
               "terms": {k: float(v.mean()) for k, v in terms.items()}, "kl": stats["kl"], "clip_fraction": stats["clip_fraction"],
               "ratio_mean": stats["ratio_mean"], "ratio_max_dev": stats["ratio_max_dev"], "loss": stats["loss"],
               "grad_norm": stats["grad_norm"], "diversity": div, "diversity_rel": rel, "seconds": time.time() - t0}
        bar.set_postfix(reward=f"{row['reward_mean']:.3f}", div=f"{rel:.2f}")
        kl = "-" if row["kl"] is None else f"{row['kl']:.4g}"
        runlog.write(row, f"step {done}/{cfg.steps} reward {row['reward_mean']:.4f} +- {row['reward_std']:.4f} kl {kl} "
                          f"clip {row['clip_fraction']:.3f} diversity {rel:.3f} {row['seconds']:.1f}s", bar)
        if monitor.collapsed:
            msg = (f"warning: within-prompt diversity fell to {rel:.2f} of its start (< {cfg.diversity_threshold}): "
                   f"possible mode collapse / reward hacking; raise --kl or lower --lr")
            (bar.write if progress else print)(msg)
            stopped = cfg.stop_on_collapse

        # --- checkpoints, evaluation
        if acc.is_main_process and (done % cfg.checkpoint_every == 0 or done == cfg.steps or stopped):
            save_checkpoint(out, done, acc.unwrap_model(net), ema, opt, {"config": config, "diversity_baseline": monitor.baseline},
                            keep=cfg.keep_checkpoints)
        if acc.is_main_process and cfg.eval_every > 0 and done % cfg.eval_every == 0 and done != cfg.steps and not stopped:
            run_eval(done, bar)  # (a run that stops here is evaluated once, below)
        acc.wait_for_everyone()
        if stopped:
            (bar.write if progress else print)("stopping: --stop-on-collapse")
            break
    bar.close()

    # --- evaluate and export the EMA model
    final = out / "final"
    if acc.is_main_process:
        last = latest_checkpoint(out)
        done = int(json.loads((last / "state.json").read_text())["step"]) if last is not None else start
        result = run_eval(done)
        base_recipe = pipe.config.get("recipe", {})
        recipe = {"command": grpo_command(cfg),
                  "finetune": {"algorithm": "grpo", "chain": kind, "chain_time_grid": grid, **config}, "steps_done": done, "stopped_on_collapse": stopped,
                  "final_eval": result, "wall_seconds": round(time.time() - t_start, 1), "base_model": cfg.model,
                  "base_recipe": base_recipe}
        save_model_folder(final, ema.uvit, ema.text_encoder, autoencoder, objective=objective, image_size=pipe.image_size, recipe=recipe,
                          sampling=sampling, schedule=pipe.schedule, overwrite=True)
    acc.wait_for_everyone()
    return final

