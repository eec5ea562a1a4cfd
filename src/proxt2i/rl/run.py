"""The frame every reward fine-tuning run shares (GRPO, R0, NFT): set-up, resume, the step loop, evaluation,
checkpoints and export. An algorithm supplies one step function; everything else is here, once.

Runs on one CPU, one GPU or several processes through accelerate, like training/run.py. Exact resume: the
prompts, noise and every other draw of step s come from generators seeded with (seed, rank, s), so a
checkpoint holds only model, EMA, optimizer, step and the diversity baseline; resume = rerun the command.

OUT/
  config.json        the resolved run config (plus objective, chain, chain_time_grid)
  log.jsonl          one JSON object per step (reward mean/std and terms, the algorithm's statistics,
                     diversity, seconds) and per evaluation ({"eval": ...})
  checkpoints/       atomic safetensors checkpoints (training/checkpoint.py)
  final/             the fine-tuned model folder (EMA weights), loadable by ProxT2IPipeline
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import torch

from ..config import SEED_MAX, option
from ..devices import MIXED_PRECISION, resolve
from ..errors import UsageError
from .prompts import PROMPT_SOURCES, load_prompt_source, step_prompts

TIME_GRID_HELP = ("time grid the sampler is tuned and evaluated on: uniform, quadratic or power:R; none = the model's own, as "
                  "`proxt2i generate` uses it (quadratic for the shipped prox model); the fine-tuned model keeps it as its default")
# always written, although they have defaults: a recipe's command reads as what was tuned, on what, where
COMMAND_KEEPS = ("model", "reward", "out")


@dataclass(frozen=True)
class RunSettings:
    """The settings every fine-tuning run shares (what FineTuneRun reads); GRPORunConfig and R0Config
    add their algorithm's own fields and checks, and set their own defaults where they differ."""

    model: str = option("synthfaces-prox", "shipped name or model folder (prox -> PDA-hybrid chain, score -> Euler-Maruyama)")
    reward: str = option("alignment", "NAME[:DIR][=WEIGHT],... e.g. alignment=1.0,clip=0.5", metavar="SPEC")
    prompts: str = option("synthfaces", f"training prompts: FILE (one per line) or one of {', '.join(PROMPT_SOURCES)}")
    steps: int = option(100, "iterations (rollout batches)")
    out: str = option("runs/grpo", "output folder")
    group: int = option(8, "images per prompt G")
    prompts_per_step: int = option(4, "prompts per iteration P (batch = P * G)")
    num_steps: int = option(4, "sampler steps")
    time_grid: str | None = option(None, TIME_GRID_HELP, legacy="", metavar="GRID")
    guidance: float = option(4.0, "CFG scale in rollouts and evaluation")
    lr: float = option(3e-5, "learning rate")
    grad_clip: float = option(1.0, "gradient norm clip")
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
    device: str = option("auto", "where it runs: auto (cuda if available), cpu or cuda (accelerate; several GPUs: accelerate launch)")
    dtype: str = option("float32", "compute dtype of the policy's forward passes: float32, or bfloat16 / float16 autocast (accelerate "
                                   "mixed precision; weights and optimiser stay float32)")

    def __post_init__(self):
        for ok, msg in self.checks():
            if not ok:
                raise UsageError(msg)
        check_time_grid(self.time_grid)

    def checks(self) -> list[tuple[bool, str]]:
        """(condition, message if it fails) for every field; subclasses add theirs."""
        return [
            (self.steps >= 1, f"--steps must be >= 1, got {self.steps}"),
            (self.prompts_per_step >= 1, f"--prompts-per-step must be >= 1, got {self.prompts_per_step}"),
            (self.guidance >= 0, f"--guidance must be >= 0, got {self.guidance}"),
            (self.lr >= 0, f"--lr must be >= 0, got {self.lr}"),
            (0 <= self.ema < 1, f"--ema must be in [0, 1), got {self.ema}"),
            (self.eval_every >= 0, f"--eval-every must be >= 0, got {self.eval_every}"),
            (self.eval_num >= 1, f"--eval-num must be >= 1, got {self.eval_num}"),
            (0 <= self.diversity_threshold <= 1, f"--diversity-threshold must be in [0, 1], got {self.diversity_threshold}"),
            (self.checkpoint_every >= 1, f"--checkpoint-every must be >= 1, got {self.checkpoint_every}"),
            (self.keep_checkpoints >= 1, f"--keep-checkpoints must be >= 1, got {self.keep_checkpoints}"),
            (self.threads >= 1, f"--threads must be >= 1, got {self.threads}"),
            (self.group >= 1, f"--group must be >= 1, got {self.group}"),
            (self.grad_clip >= 0, f"--grad-clip must be >= 0 (0 = off), got {self.grad_clip}"),
            (0 <= self.seed <= SEED_MAX, f"--seed must be an integer in 0..{SEED_MAX}, got {self.seed}"),
            (self.dtype in MIXED_PRECISION, f"--dtype must be one of {', '.join(MIXED_PRECISION)}, got {self.dtype!r}"),
        ]


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


@torch.no_grad()
def evaluate_alignment(pipe, net, prompts: list[str], num_steps: int, guidance: float, reward=None, batch_size: int = 64,
                       time_grid: str = "uniform") -> dict:
    """SynthFaces alignment (exact attribute read-back) and Frechet distance to fresh renders (`proxt2i
    evaluate`'s fd: the reward-hacking signal) of one image per prompt, seeds 0..N-1 (None for prompts outside
    the SynthFaces vocabulary), and the mean reward when given: `net` (e.g. the EMA copy) in `pipe`'s place,
    with the model's default sampler on `time_grid` (the grid the fine-tune trains on)."""
    from ..evaluation.metrics import evaluate_images

    images = []
    for i in range(0, len(prompts), batch_size):
        chunk = prompts[i : i + batch_size]
        lat = pipe.sample_latents(chunk, num_steps, guidance, seeds=list(range(i, i + len(chunk))), time_grid=time_grid, net=net)
        images.append(pipe.decode(lat))
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

    def iteration_seconds(self, upto: int) -> float:
        """Seconds spent in the logged iterations up to step `upto`, over every session of the run."""
        rows = [json.loads(line) for line in _read_log(self.path, upto + 1)]
        return sum(r.get("seconds", 0.0) for r in rows if "eval" not in r and int(r["step"]) <= upto)

    def write_eval(self, step: int, result: dict, bar=None) -> None:
        text = f"eval step {step}:" + "".join(f" {k} {result[k]:.4f}" for k in ("alignment", "alignment_all", "fd", "reward")
                                             if result.get(k) is not None)
        self.write({"step": step, "eval": result}, text, bar)



@dataclass
class StepResult:
    """What one algorithm step returns: the decoded images [B, 3, H, W] in [0, 1] (for the diversity
    monitor), the log row's own entries (after "step"), and the console summary (after "step i/N")."""

    images: torch.Tensor
    row: dict
    summary: str


class FineTuneRun:
    """One fine-tuning run of `cfg` (a run config with model, reward, prompts, steps, out, group,
    prompts_per_step, num_steps, time_grid, guidance, lr, ema, seed, eval_*, diversity_threshold,
    stop_on_collapse, checkpoint_every, keep_checkpoints, threads).

    start() loads the reward, the model (net, its EMA copy, the optimizer) and the prompts; the algorithm
    may then take what it needs from the pretrained weights (a KL reference, R0's anchor); loop(step_fn)
    resumes from the newest checkpoint and runs the steps; export() evaluates and writes OUT/final."""

    def __init__(self, cfg, algorithm: str, collapse_hint: str, weight_decay: float = 0.0):
        self.cfg, self.algorithm, self.collapse_hint = cfg, algorithm, collapse_hint
        self.weight_decay = weight_decay
        self.out = Path(cfg.out)

    def start(self, reward_weights: dict) -> "FineTuneRun":
        from ..pipeline import ProxT2IPipeline
        from ..rewards import combine_rewards
        from ..samplers.registry import DEFAULT_SAMPLER
        from ..shipped import resolve_model
        from ..training.accelerator import make_accelerator
        from ..training.ema import frozen_copy
        from .diversity import DiversityMonitor

        cfg = self.cfg
        torch.set_num_threads(cfg.threads)
        self.train_prompts = load_prompt_source(cfg.prompts)
        self.eval_prompts = load_prompt_source(cfg.eval_prompts)[: cfg.eval_num]
        device, _ = resolve(cfg.device, cfg.dtype)
        self.acc = acc = make_accelerator(MIXED_PRECISION[cfg.dtype], cpu=device.type == "cpu")
        self.reward = combine_rewards(reward_weights, device=acc.device)  # first: a bad reward folder fails before anything heavy
        self.pipe = pipe = ProxT2IPipeline.from_pretrained(resolve_model(cfg.model))
        pipe.warn_unseen_words(self.train_prompts + self.eval_prompts)
        self.objective, self.schedule, self.latent_shape = pipe.objective, pipe.schedule, pipe.latent_shape
        pipe.to(acc.device)
        self.autoencoder = pipe.autoencoder.eval().requires_grad_(False)
        self.sampler = DEFAULT_SAMPLER[self.objective]  # the chain that is tuned: pda-hybrid / euler-maruyama-denoise
        self.grid, self.sampling = finetune_grid(pipe, self.sampler, cfg.time_grid)
        self.net = pipe.net.eval()  # eval mode: no dropout, so rollout and update are the same policy
        self.ema = frozen_copy(self.net)
        self.params = [p for p in self.net.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=self.weight_decay)
        self.monitor = DiversityMonitor(cfg.diversity_threshold)
        self.config = {f.name: getattr(cfg, f.name) for f in fields(cfg)}
        return self

    @property
    def main(self) -> bool:
        return self.acc.is_main_process

    def guided(self, net, prompts: list[str]):
        """net as the guided callable of this model's sampler, for these prompts."""
        from ..samplers.guidance import guided_model

        return guided_model(net, self.objective, prompts, self.cfg.guidance, schedule=self.schedule)

    def evaluate(self, step: int, bar=None) -> dict:
        result = evaluate_alignment(self.pipe, self.ema, self.eval_prompts, self.cfg.num_steps, self.cfg.guidance, self.reward,
                                    time_grid=self.grid)
        self.runlog.write_eval(step, result, bar)
        return result

    def _resume(self, progress: bool) -> int:
        from ..training.checkpoint import check_resume_config, latest_checkpoint, load_checkpoint

        start, ckpt = 0, latest_checkpoint(self.out)
        self.wall_before = 0.0
        if ckpt is not None:
            state = load_checkpoint(ckpt, self.net, self.ema, self.opt)
            check_resume_config(ckpt, state.get("config", {}), self.config)
            self.monitor.baseline = state.get("diversity_baseline")
            self.acc.print(f"resuming from {ckpt} (step {int(state['step'])})")
            start = int(state["step"])
            self.wall_before = state.get("wall_seconds")
        self.net, self.opt = self.acc.prepare(self.net, self.opt)
        self.runlog = RunLog(self.out, {**self.config, "objective": self.objective, "chain": self.sampler, "chain_time_grid": self.grid},
                             self.main, progress)
        self.runlog.start_at(start)
        if self.wall_before is None:  # a checkpoint from before wall time was recorded: its iterations, at least
            self.wall_before = self.runlog.iteration_seconds(start)
        return start

    def wall_seconds(self) -> float:
        """Wall time of the run so far, earlier sessions (from the checkpoint) included."""
        return self.wall_before + time.time() - self.t_start

    def loop(self, step_fn: Callable[[int, torch.Generator, list, torch.Tensor], StepResult], progress: bool = True) -> None:
        """Resume, then for each remaining step: its generator, prompts (P prompts x G images, prompt-major)
        and x_T, then step_fn(step, generator, prompts, x_T), EMA, diversity, log, checkpoint, evaluation."""
        from tqdm import tqdm

        from ..training.checkpoint import save_checkpoint
        from ..training.ema import ema_update
        from ..training.seeding import step_generator
        from .diversity import group_diversity, recogniser_features

        cfg, acc = self.cfg, self.acc
        self.start_step = start = self._resume(progress)
        if self.main and cfg.eval_every > 0 and start % cfg.eval_every == 0 and start < cfg.steps:
            self.evaluate(start)
        bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc=f"{self.algorithm} {self.objective}",
                   disable=not (progress and self.main))
        say = bar.write if progress else print
        self.t_start, self.stopped = time.time(), False
        for step in bar:
            t0 = time.time()
            g = step_generator(cfg.seed, acc.process_index, step)
            prompts = [p for p in step_prompts(self.train_prompts, cfg.prompts_per_step, cfg.seed * 1009 + acc.process_index, step)
                       for _ in range(cfg.group)]
            x_T = torch.randn((len(prompts), *self.latent_shape), generator=g).to(acc.device)
            result = step_fn(step, g, prompts, x_T)
            ema_update(self.ema, acc.unwrap_model(self.net), cfg.ema)

            # --- diversity within prompts, relative to the first step
            with torch.no_grad():
                div = group_diversity(recogniser_features(result.images.detach()), cfg.group) if cfg.group >= 2 else float("nan")
            rel = self.monitor.update(div) if cfg.group >= 2 else float("nan")
            done = step + 1
            row = {"step": done, **result.row, "diversity": div, "diversity_rel": rel, "seconds": time.time() - t0}
            bar.set_postfix(reward=f"{row['reward_mean']:.3f}", div=f"{rel:.2f}")
            self.runlog.write(row, f"step {done}/{cfg.steps} {result.summary} diversity {rel:.3f} {row['seconds']:.1f}s", bar)
            if cfg.group >= 2 and self.monitor.collapsed:
                say(f"warning: within-prompt diversity fell to {rel:.2f} of its start (< {cfg.diversity_threshold}): "
                    f"possible mode collapse / reward hacking; {self.collapse_hint}")
                self.stopped = cfg.stop_on_collapse

            # --- checkpoints, evaluation
            if self.main and (done % cfg.checkpoint_every == 0 or done == cfg.steps or self.stopped):
                save_checkpoint(self.out, done, acc.unwrap_model(self.net), self.ema, self.opt,
                                {"config": self.config, "diversity_baseline": self.monitor.baseline,
                                 "wall_seconds": self.wall_seconds()}, keep=cfg.keep_checkpoints)
            if self.main and cfg.eval_every > 0 and done % cfg.eval_every == 0 and done != cfg.steps and not self.stopped:
                self.evaluate(done, bar)  # (a run that stops here is evaluated once, in export)
            acc.wait_for_everyone()
            if self.stopped:
                say("stopping: --stop-on-collapse")
                break
        bar.close()

    def export(self, command: str) -> Path:
        """Evaluate the EMA model at the last checkpoint's step and write it to OUT/final with its recipe."""
        from ..models.io import save_model_folder
        from ..training.checkpoint import latest_checkpoint

        final = self.out / "final"
        if self.main:
            last = latest_checkpoint(self.out)
            done = int(json.loads((last / "state.json").read_text())["step"]) if last is not None else self.start_step
            result = self.evaluate(done)
            recipe = {"command": command,
                      "finetune": {"algorithm": self.algorithm, "chain": self.sampler, "chain_time_grid": self.grid, **self.config},
                      "steps_done": done, "stopped_on_collapse": self.stopped, "final_eval": result,
                      "wall_seconds": round(self.wall_seconds(), 1),
                      "iteration_seconds": round(self.runlog.iteration_seconds(done), 1), "base_model": self.cfg.model,
                      "base_recipe": self.pipe.config.get("recipe", {})}
            save_model_folder(final, self.ema.uvit, self.ema.text_encoder, self.autoencoder, objective=self.objective,
                              image_size=self.pipe.image_size, recipe=recipe, sampling=self.sampling, schedule=self.schedule,
                              overwrite=True)
        self.acc.wait_for_everyone()
        return final
