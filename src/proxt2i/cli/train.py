"""`proxt2i train CONFIG [key=value ...] [--option VALUE ...]`: proximal-matching or score-baseline training."""

from __future__ import annotations

import json

# the subcommands this module adds, with their one-line help (cli/__init__ lists them without importing anything heavy)
COMMANDS = {"train": "train a prox model (proximal matching) or the score baseline"}


def register(sub) -> None:
    from ..config import add_config_arguments
    from ..training.presets import PRESETS, TrainConfig

    p = sub.add_parser(
        "train", help=COMMANDS["train"],
        description=("Train a text-conditioned U-ViT. CONFIG is a preset (" + ", ".join(PRESETS) + ") or a JSON file; "
                     "override any field with key=value (e.g. steps=2000 batch=32 data=imagefolder:DIR) or with its flag "
                     "(--steps 2000). Rerunning the same command resumes from the newest checkpoint in out=. "
                     "Multi-GPU: accelerate launch -m proxt2i train CONFIG ..."),
    )
    p.add_argument("config", help="preset name or .json file")
    p.add_argument("overrides", nargs="*", help="key=value overrides")
    add_config_arguments(p, TrainConfig, settings=False)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..config import flag_values
    from ..errors import check_output_path
    from ..training.presets import TrainConfig, config_dict, resolve_config

    cfg = resolve_config(args.config, args.overrides, flag_values(TrainConfig, args))
    if args.print_config:
        print(json.dumps(config_dict(cfg)))
        return 0
    check_output_path(cfg.out, "out", folder=True)  # before set-up and training, not at the first checkpoint
    print(json.dumps(config_dict(cfg)))
    from ..training.run import train

    final = train(cfg, progress=not args.no_progress)
    print(f"model written to {final}")
    return 0
