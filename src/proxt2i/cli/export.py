"""`proxt2i export CHECKPOINT --out DIR`: a training checkpoint as a model folder."""

from __future__ import annotations

# the subcommands this module adds, with their one-line help (cli/__init__ lists them without importing anything heavy)
COMMANDS = {"export": "turn a training checkpoint into a model folder (for generate / evaluate)"}


def register(sub) -> None:
    from ..training.export import WEIGHTS

    p = sub.add_parser(
        "export", help=COMMANDS["export"],
        description=("Write a model folder that `proxt2i generate --model DIR` loads. SOURCE is a checkpoint "
                     "(OUT/checkpoints/step-XXXXXXXX), a run folder OUT (its newest checkpoint), or a model folder or shipped "
                     "name (to copy it with --autoencoder). --weights raw exports the optimiser's weights instead of the EMA "
                     "(the EMA lags early in training). --autoencoder VAE replaces the model's decoder with VAE's, which must "
                     "share the model's encoder (a `proxt2i train-vae --init ... --decoder-only` fine-tune)."),
    )
    p.add_argument("checkpoint", metavar="SOURCE", help="checkpoint folder, training run folder, model folder or shipped model name")
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--weights", choices=tuple(WEIGHTS), default="ema", help="EMA weights (default, as OUT/final) or raw weights")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it is a model folder (anything else is never replaced)")
    p.add_argument("--autoencoder", metavar="VAE", default=None,
                   help="VAE folder (or synthfaces-vae) whose decoder the model gets; its encoder must be the model's")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..training.export import export_model

    out = export_model(args.checkpoint, args.out, weights=args.weights, autoencoder=args.autoencoder, overwrite=args.overwrite)
    print(f"model written to {out}")
    return 0
