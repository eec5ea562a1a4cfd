"""`proxt2i train-vae --out DIR [--option VALUE ...] [key=value ...]`: train the embedded small VAE on SynthFaces renders."""

from __future__ import annotations

import json

# the subcommands this module adds, with their one-line help (cli/__init__ lists them without importing anything heavy)
COMMANDS = {"train-vae": "train the embedded small VAE (the default latent space) on SynthFaces"}


def register(sub) -> None:
    from ..config import add_config_arguments
    from ..training.vae import VAETrainConfig

    p = sub.add_parser("train-vae", help=COMMANDS["train-vae"],
                       description="Train the small convolutional VAE (downsample 4, 4 latent channels) on SynthFaces renders "
                                   "generated on the fly; writes DIR/config.json and DIR/autoencoder.safetensors. "
                                   "Every option may also be given as key=value (e.g. steps=100).")
    add_config_arguments(p, VAETrainConfig)
    p.add_argument("--overwrite", action="store_true", help="replace an existing VAE folder at --out (one with config.json and "
                                                             "autoencoder.safetensors; any other non-empty folder is never replaced)")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from ..config import config_from_args, print_config
    from ..errors import check_output_path
    from ..training.vae import VAETrainConfig, train_vae

    cfg = config_from_args(VAETrainConfig, args)
    if args.print_config:
        print_config(cfg)
        return 0
    check_output_path(cfg.out, "--out", folder=True)  # before training, not when the weights are saved
    torch.set_num_threads(cfg.threads)
    print(json.dumps(train_vae(cfg, overwrite=args.overwrite)))
    return 0
