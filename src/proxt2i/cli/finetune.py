"""`proxt2i finetune grpo --model DIR|NAME --reward NAME[=W],... --prompts FILE|NAME --steps K --out DIR`."""

from __future__ import annotations

import json

# the subcommands this module adds, with their one-line help (cli/__init__ lists them without importing anything heavy)
COMMANDS = {"finetune": "reward fine-tuning of a model's sampler (GRPO, R0)"}


def register(sub) -> None:
    from ..rl.finetune import FinetuneConfig
    from ..rewards import REWARDS

    d = FinetuneConfig()
    p = sub.add_parser("finetune", help=COMMANDS["finetune"],
                       description="Reward fine-tuning. See `proxt2i finetune grpo --help`.")
    algos = p.add_subparsers(dest="algorithm", metavar="ALGORITHM")
    g = algos.add_parser(
        "grpo", help="GRPO on the PDA-hybrid chain (prox models) or the Euler-Maruyama chain (score models)",
        description=("GRPO (group relative policy optimisation) on the sampler seen as a Gaussian chain: the auxiliary "
                     "variables of PDA-hybrid for prox models, Euler-Maruyama for score models. Writes OUT/log.jsonl, "
                     "OUT/checkpoints/ and the fine-tuned model folder OUT/final. Rerunning the same command resumes. "
                     f"Rewards: {', '.join(REWARDS)}; real models as NAME:DIR (local folder), weighted as NAME=W."),
    )
    g.add_argument("--model", default=d.model, help=f"shipped name or model folder (default {d.model})")
    g.add_argument("--reward", default=d.reward, help=f"NAME[:DIR][=WEIGHT],... e.g. alignment=1.0,clip=0.5 (default {d.reward})")
    g.add_argument("--steps", type=int, default=d.steps, help=f"GRPO iterations (default {d.steps})")
    g.add_argument("--group", type=int, default=d.group, help=f"images per prompt G (default {d.group})")
    _shared_options(g, d)
    g.add_argument("--kl", type=float, default=d.kl, help=f"KL weight to the reference model (default {d.kl:g})")
    g.add_argument("--clip", type=float, default=d.clip, help=f"PPO ratio clip range (default {d.clip:g})")
    g.add_argument("--inner-epochs", type=int, default=d.inner_epochs, help=f"updates per rollout batch (default {d.inner_epochs})")
    g.add_argument("--train-steps-per-update", type=int, default=d.train_steps_per_update,
                   help="sampler transitions trained per update, a random subset (default 0 = all num_steps - 1)")
    g.add_argument("--logprob", choices=("sum", "mean"), default=d.reduce,
                   help="log-prob over dimensions: sum (exact density, default) or mean (Flow-GRPO; use a small --clip)")
    g.add_argument("--start-noise", choices=("independent", "shared"), default=d.start_noise,
                   help="shared: the G images of a prompt start from one initial noise (DanceGRPO), so their rewards differ "
                        f"only through the policy's own transitions (default {d.start_noise})")
    g.add_argument("--stop-on-collapse", action="store_true", help="stop (after a checkpoint) when the diversity warning fires")
    g.set_defaults(func=run_grpo)
    _register_r0(algos)
    p.set_defaults(func=lambda args: _usage(p))


def _register_r0(algos) -> None:
    from ..rl.r0 import R0Config

    d = R0Config()
    r = algos.add_parser(
        "r0", help="R0: maximise differentiable rewards through the few-step PDA-hybrid sampler (prox models)",
        description=("R0 (arXiv 2503.13070): the prox model run as a NUM_STEPS PDA-hybrid sampler is the generator; "
                     "differentiable rewards of its decoded samples are back-propagated through every step, each reward's "
                     "gradient normalised, with a relative L2 pull toward the pretrained weights (--reg). No teacher, no "
                     "training images. Same OUT layout as grpo; rerunning the command resumes. Differentiable rewards: "
                     "alignment, alignment-prob, clip, brightness, and the real models as NAME:DIR."),
    )
    r.add_argument("--model", default=d.model, help=f"shipped name or prox model folder (default {d.model})")
    r.add_argument("--reward", default=d.reward, help=f"NAME[:DIR][=WEIGHT],... (default {d.reward}: the contrastive score, so that "
                                                      "the recogniser-based alignment metric stays an independent check)")
    r.add_argument("--steps", type=int, default=d.steps, help=f"optimisation steps (default {d.steps})")
    r.add_argument("--group", type=int, default=d.group, help=f"images per prompt, for the diversity monitor (default {d.group})")
    _shared_options(r, d)
    r.add_argument("--reg", type=float, default=d.reg, help=f"weight of ||theta - theta0||^2 / ||theta0||^2 (default {d.reg:g})")
    r.add_argument("--eta-min", type=float, default=d.eta_min, help=f"per-step noise scale drawn from U[eta_min, 1] (default {d.eta_min:g})")
    r.add_argument("--no-normalise", action="store_true", help="sum the reward gradients as they are (default: unit norm each)")
    r.set_defaults(func=run_r0)


def r0_config(args):
    from ..rl.r0 import R0Config

    return R0Config(**_shared_values(args), reg=args.reg, eta_min=args.eta_min, normalise_gradients=not args.no_normalise)


def run_r0(args) -> int:
    from ..rl.r0 import finetune_r0
    from ..rewards import parse_reward_spec

    parse_reward_spec(args.reward)
    cfg = r0_config(args)
    print(json.dumps({"finetune": "r0", **{k: getattr(cfg, k) for k in cfg.__dataclass_fields__}}))
    final = finetune_r0(cfg, progress=not args.no_progress)
    print(f"model written to {final}")
    return 0


def _shared_options(parser, d) -> None:
    """The options GRPO and R0 share; d is the algorithm's config dataclass (for the defaults)."""
    from ..rl.finetune import PROMPT_SOURCES

    a = parser.add_argument
    a("--prompts", default=d.prompts, help=f"training prompts: FILE (one per line) or one of {', '.join(PROMPT_SOURCES)} (default {d.prompts})")
    a("--out", default=d.out, help=f"output folder (default {d.out})")
    a("--prompts-per-step", type=int, default=d.prompts_per_step, help=f"prompts per step P (default {d.prompts_per_step})")
    a("--num-steps", type=int, default=d.num_steps, help=f"sampler steps (default {d.num_steps})")
    a("--time-grid", default=d.time_grid, metavar="GRID",
      help="time grid the sampler is tuned and evaluated on: uniform, quadratic or power:R (default: the model's own, as "
           "`proxt2i generate` uses it: quadratic for the shipped prox model); the fine-tuned model keeps it as its default")
    a("--guidance", type=float, default=d.guidance, help=f"CFG scale (default {d.guidance:g})")
    a("--lr", type=float, default=d.lr, help=f"learning rate (default {d.lr:g})")
    a("--ema", type=float, default=d.ema, help=f"EMA decay of the exported weights, 0 = raw (default {d.ema:g})")
    a("--seed", type=int, default=d.seed, help=f"seed (default {d.seed})")
    a("--eval-every", type=int, default=d.eval_every, help="evaluate alignment every N steps and at the start (default: only at the end)")
    a("--eval-prompts", default=d.eval_prompts, help=f"evaluation prompts: FILE or a named set (default {d.eval_prompts})")
    a("--eval-num", type=int, default=d.eval_num, help=f"evaluation prompts used, one image each (default {d.eval_num})")
    a("--diversity-threshold", type=float, default=d.diversity_threshold,
      help=f"warn when within-prompt diversity falls below this fraction of its start (default {d.diversity_threshold:g})")
    a("--checkpoint-every", type=int, default=d.checkpoint_every, help=f"(default {d.checkpoint_every})")
    a("--keep-checkpoints", type=int, default=d.keep_checkpoints,
      help=f"newest checkpoints kept; raise it to export an earlier step later (default {d.keep_checkpoints})")
    a("--threads", type=int, default=d.threads, help=f"CPU threads (default {d.threads})")
    a("--no-progress", action="store_true", help="no progress bar")


SHARED_FIELDS = ("model", "reward", "prompts", "steps", "out", "group", "prompts_per_step", "num_steps", "time_grid", "guidance", "lr", "ema",
                 "seed", "eval_every", "eval_prompts", "eval_num", "diversity_threshold", "checkpoint_every",
                 "keep_checkpoints", "threads")


def _shared_values(args) -> dict:
    return {k: getattr(args, k) for k in SHARED_FIELDS}


def _usage(parser) -> int:
    parser.print_help()
    return 2


def grpo_config(args):
    from ..rl.finetune import FinetuneConfig

    return FinetuneConfig(**_shared_values(args), kl=args.kl, clip=args.clip, inner_epochs=args.inner_epochs,
                          train_steps_per_update=args.train_steps_per_update, reduce=args.logprob,
                          start_noise=args.start_noise, stop_on_collapse=args.stop_on_collapse)


def run_grpo(args) -> int:
    from ..rl.finetune import finetune
    from ..rewards import parse_reward_spec

    parse_reward_spec(args.reward)
    cfg = grpo_config(args)
    print(json.dumps({"finetune": "grpo", **{k: getattr(cfg, k) for k in cfg.__dataclass_fields__}}))
    final = finetune(cfg, progress=not args.no_progress)
    print(f"model written to {final}")
    return 0
