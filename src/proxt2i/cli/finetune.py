"""`proxt2i finetune grpo|r0 [PRESET] [key=value ...] [--option VALUE ...]`: reward fine-tuning.

Every option is a field of the algorithm's config dataclass (rl.grpo.GRPORunConfig, rl.r0.R0Config),
given as a flag (--steps 20) or as key=value (steps=20); proxt2i.config generates both."""

from __future__ import annotations

# the subcommands this module adds, with their one-line help (cli/__init__ lists them without importing anything heavy)
COMMANDS = {"finetune": "reward fine-tuning of a model's sampler (GRPO, R0)"}


def register(sub) -> None:
    from ..config import add_config_arguments
    from ..rl.grpo import GRPORunConfig
    from ..rewards import REWARDS

    p = sub.add_parser("finetune", help=COMMANDS["finetune"],
                       description="Reward fine-tuning. See `proxt2i finetune grpo --help`.")
    algos = p.add_subparsers(dest="algorithm", metavar="ALGORITHM")
    g = algos.add_parser(
        "grpo", help="GRPO on the PDA-hybrid chain (prox models) or the Euler-Maruyama chain (score models)",
        description=("GRPO (group relative policy optimisation) on the sampler seen as a Gaussian chain: the auxiliary "
                     "variables of PDA-hybrid for prox models, Euler-Maruyama for score models. Writes OUT/log.jsonl, "
                     "OUT/checkpoints/ and the fine-tuned model folder OUT/final. Rerunning the same command resumes. "
                     f"Rewards: {', '.join(REWARDS)}; real models as NAME:DIR (local folder), weighted as NAME=W. "
                     "Every option may also be given as key=value (e.g. steps=20)."),
    )
    add_config_arguments(g, GRPORunConfig)
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.set_defaults(func=run_grpo)
    _register_r0(algos)
    p.set_defaults(func=lambda args: _usage(p))


def _register_r0(algos) -> None:
    from ..config import add_config_arguments
    from ..rl.r0 import R0Config

    r = algos.add_parser(
        "r0", help="R0: maximise differentiable rewards through the few-step PDA-hybrid sampler (prox models)",
        description=("R0 (arXiv 2503.13070): the prox model run as a NUM_STEPS PDA-hybrid sampler is the generator; "
                     "differentiable rewards of its decoded samples are back-propagated through every step, each reward's "
                     "gradient normalised, with a relative L2 pull toward the pretrained weights (--reg). No teacher, no "
                     "training images. Same OUT layout as grpo; rerunning the command resumes. Differentiable rewards: "
                     "alignment, alignment-prob, clip, brightness, and the real models as NAME:DIR. "
                     "Every option may also be given as key=value (e.g. steps=20)."),
    )
    add_config_arguments(r, R0Config)
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.set_defaults(func=run_r0)


def grpo_config(args):
    """The GRPORunConfig of parsed `finetune grpo` arguments."""
    from ..config import config_from_args
    from ..rl.grpo import GRPORunConfig

    return config_from_args(GRPORunConfig, args)


def r0_config(args):
    """The R0Config of parsed `finetune r0` arguments."""
    from ..config import config_from_args
    from ..rl.r0 import R0Config

    return config_from_args(R0Config, args)


def run_grpo(args) -> int:
    from ..rl.grpo import finetune_grpo

    return _run("grpo", grpo_config(args), finetune_grpo, args)


def run_r0(args) -> int:
    from ..rl.r0 import finetune_r0

    return _run("r0", r0_config(args), finetune_r0, args)


def _run(algorithm: str, cfg, finetune, args) -> int:
    import json

    from ..config import config_dict, print_config
    from ..rewards import parse_reward_spec

    if args.print_config:
        print_config(cfg)
        return 0
    parse_reward_spec(cfg.reward)
    check_inputs(cfg)
    print(json.dumps({"finetune": algorithm, **config_dict(cfg)}))
    final = finetune(cfg, progress=not args.no_progress)
    print(f"model written to {final}")
    return 0


def check_inputs(cfg) -> None:
    """What can be checked in a moment, before the model loads: the output folder, the model folder's
    config.json, and prompt files (named sets are built in)."""
    from ..errors import check_output_path
    from ..models.io import read_model_config
    from ..rl.prompts import PROMPT_SOURCES, load_prompt_source
    from ..shipped import resolve_model
    from ..devices import resolve

    resolve(cfg.device, cfg.dtype)
    check_output_path(cfg.out, "--out", folder=True)
    read_model_config(resolve_model(cfg.model))
    for source in (cfg.prompts, cfg.eval_prompts):
        if source not in PROMPT_SOURCES:
            load_prompt_source(source)


def _usage(parser) -> int:
    parser.print_help()
    return 2
