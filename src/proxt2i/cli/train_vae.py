"""`proxt2i train-vae`: train the embedded small VAE on SynthFaces renders."""

from __future__ import annotations

import json

# the subcommands this module adds, with their one-line help (cli/__init__ lists them without importing anything heavy)
COMMANDS = {"train-vae": "train the embedded small VAE (the default latent space) on SynthFaces"}


def register(sub) -> None:
    p = sub.add_parser("train-vae", help=COMMANDS["train-vae"],
                       description="Train the small convolutional VAE (downsample 4, 4 latent channels) on SynthFaces renders "
                                   "generated on the fly; writes DIR/config.json and DIR/autoencoder.safetensors.")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--steps", type=int, default=3000, help="optimiser steps (default 3000)")
    p.add_argument("--size", type=int, default=32, help="image size in pixels (default 32)")
    p.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latent-channels", type=int, default=4,
                   help="latent channels (default 4, the shipped VAE); more keeps finer detail, measure it with "
                        "`proxt2i evaluator check --autoencoder DIR`")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    p.add_argument("--init", metavar="VAE", default="", help="start from this VAE folder (or synthfaces-vae) instead of random weights")
    p.add_argument("--decoder-only", action="store_true",
                   help="with --init: train the decoder alone; the encoder and the latent scale stay as they are, so models "
                        "trained in that latent space keep working and decode sharper (put it into a model with "
                        "`proxt2i export MODEL --autoencoder DIR --out NEW`)")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for torch (default 1: small convs on a shared machine run fastest single-threaded)")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from ..errors import UsageError
    from ..training.vae import train_small_vae

    if not 1 <= args.latent_channels <= 64:
        raise UsageError(f"--latent-channels must be in 1..64, got {args.latent_channels}")

    torch.set_num_threads(max(1, args.threads))
    if not args.lr > 0:
        raise UsageError(f"--lr must be > 0, got {args.lr}")
    print(json.dumps(train_small_vae(args.out, steps=args.steps, size=args.size, batch=args.batch, seed=args.seed,
                                      latent_channels=args.latent_channels, lr=args.lr, init=args.init,
                                      decoder_only=args.decoder_only)))
    return 0
