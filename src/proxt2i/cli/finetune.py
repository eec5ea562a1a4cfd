"""`proxt2i finetune grpo|r0|nft [key=value ...] [--option VALUE ...]`: reward fine-tuning.

Every option is a field of the algorithm's config dataclass (rl.grpo.GRPORunConfig, rl.r0.R0Config, rl.nft.NFTConfig),
given as a flag (--steps 20) or as key=value (steps=20); proxt2i.config generates both."""

from __future__ import annotations

# the subcommands this module adds, with their one-line help (cli/__init__ lists them without importing anything heavy)
COMMANDS = {"finetune": "reward fine-tuning of a model's sampler (GRPO, R0, NFT)"}


# algorithm -> (module in rl/, its config class, its fine-tuning function, one-line help, description)
ALGORITHMS = {
    "grpo": ("grpo", "GRPORunConfig", "finetune_grpo",
             "GRPO on the PDA-hybrid chain (prox models) or the Euler-Maruyama chain (score models)",
             "GRPO (group relative policy optimisation) on the sampler seen as a Gaussian chain: the auxiliary "
             "variables of PDA-hybrid for prox models, Euler-Maruyama for score models. Writes OUT/log.jsonl, "
             "OUT/checkpoints/ and the fine-tuned model folder OUT/final. Rerunning the same command resumes. "
             "Rewards: {rewards}; real models as NAME:DIR (local folder), weighted as NAME=W."),
    "r0": ("r0", "R0Config", "finetune_r0",
           "R0: maximise differentiable rewards through the few-step sampler (prox or score models)",
           "R0 (arXiv 2503.13070): the model run as a NUM_STEPS sampler (PDA-hybrid for prox models, Euler-Maruyama "
           "for score models) is the generator; differentiable rewards of its decoded samples are back-propagated "
           "through every step, each reward's gradient normalised, with a relative L2 pull toward the pretrained "
           "weights (--reg). No teacher, no training images. Same OUT layout as grpo; rerunning the command resumes. "
           "Differentiable rewards: alignment, alignment-prob, clip, brightness, and the real models as NAME:DIR."),
    "nft": ("nft", "NFTConfig", "finetune_nft",
            "forward-process route: reward-weighted matching on the model's own samples (prox or score models)",
            "The forward-process reward route (DiffusionNFT adapted to proximal matching): sample with the EMA policy, "
            "score, weight each image by its group-relative reward, and train the model's own matching objective on "
            "noised versions of those samples through implicit positive and negative policies. No log-probabilities, "
            "no gradient through the sampler; any reward works. Same OUT layout as grpo; rerunning the command resumes."),
}


def _algorithm(name: str, attribute: int):
    import importlib

    module, *names = ALGORITHMS[name][:3]
    return getattr(importlib.import_module(f"..rl.{module}", __package__), names[attribute])


def register(sub) -> None:
    from ..config import add_config_arguments
    from ..rewards import REWARDS

    p = sub.add_parser("finetune", help=COMMANDS["finetune"],
                       description="Reward fine-tuning. See `proxt2i finetune grpo --help` (or r0, nft).")
    algos = p.add_subparsers(dest="algorithm", metavar="ALGORITHM")
    for name, (_module, _cls, _fn, short, description) in ALGORITHMS.items():
        a = algos.add_parser(name, help=short, description=description.format(rewards=", ".join(REWARDS)) +
                             " Every option may also be given as key=value (e.g. steps=20).")
        add_config_arguments(a, _algorithm(name, 0))
        a.add_argument("--no-progress", action="store_true", help="no progress bar")
        a.set_defaults(func=lambda args, name=name: _run(name, finetune_config(name, args), _algorithm(name, 1), args))
    p.set_defaults(func=lambda args: _usage(p))


def finetune_config(algorithm: str, args):
    """The config of parsed `finetune ALGORITHM` arguments."""
    from ..config import config_from_args

    return config_from_args(_algorithm(algorithm, 0), args)


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
