"""`proxt2i scale-check [PRESET] [key=value ...]`: the paper-scale stack, built at its real sizes with
random weights, run end to end through the user's path (proxt2i.scale; docs/scale.md)."""

from __future__ import annotations

COMMANDS = {"scale-check": "build the paper-scale stack with random weights and run train, resume, export, generate and GRPO on it"}


def register(sub) -> None:
    from ..config import add_config_arguments
    from ..scale.check import PRESETS, ScaleCheckConfig

    p = sub.add_parser(
        "scale-check", help=COMMANDS["scale-check"],
        description=("Build the components of a training preset at their real sizes with random weights (diffusers AutoencoderKL "
                     "with the SD3.5 VAE's configuration, the MetaCLIP-H/14 text tower, a T5 v1.1 encoder, the paper U-ViT), save "
                     "them as local weights folders, and run through them: training steps on webdataset shards, a save and a "
                     "bit-exact resume, an export, a 4-step generation and a GRPO step. Prints one JSON line per stage (seconds, "
                     "peak memory) and writes OUT/scale_check.json. The memory needed is estimated first; more than the "
                     f"machine has is refused. Presets: {', '.join(PRESETS)}. Needs the hf extra. See docs/scale.md."),
    )
    add_config_arguments(p, ScaleCheckConfig, presets=PRESETS)
    p.add_argument("--estimate", action="store_true", help="print the parameter counts and the memory estimate only")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from ..config import config_from_args, print_config
    from ..scale.check import PRESETS, ScaleCheckConfig, estimate, run_scale_check
    from ..scale.components import stack

    cfg = config_from_args(ScaleCheckConfig, args, presets=PRESETS)
    if args.print_config:
        print_config(cfg)
        return 0
    if args.estimate:
        print(json.dumps(estimate(cfg, stack(cfg.t5, shrunk=cfg.size == "shrunk"))))
        return 0
    record = run_scale_check(cfg, progress=not args.no_progress)
    print(json.dumps(record))
    return 0
