"""`proxt2i export CHECKPOINT --out DIR`: a training checkpoint as a model folder."""

from __future__ import annotations

# the subcommands this module adds, with their one-line help (cli/__init__ lists them without importing anything heavy)
COMMANDS = {"export": "turn a training checkpoint into a model folder (for generate / evaluate)"}


def register(sub) -> None:
    from ..training.export import WEIGHTS

    p = sub.add_parser(
        "export", help=COMMANDS["export"],
        description=("Write a checkpoint's weights as a model folder that `proxt2i generate --model DIR` loads. "
                     "CHECKPOINT is OUT/checkpoints/step-XXXXXXXX, or a run folder OUT (its newest checkpoint). "
                     "--weights raw exports the optimiser's weights instead of the EMA (the EMA lags early in training)."),
    )
    p.add_argument("checkpoint", help="checkpoint folder, or a training run folder")
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--weights", choices=tuple(WEIGHTS), default="ema", help="EMA weights (default, as OUT/final) or raw weights")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..training.export import export_checkpoint

    out = export_checkpoint(args.checkpoint, args.out, weights=args.weights)
    print(f"model written to {out}")
    return 0
