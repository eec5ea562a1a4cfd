"""The `proxt2i` command: a thin layer over the library. Each subcommand lives in its own module
exposing `register(subparsers)`, which adds its parser and sets `func(args) -> int`.

Bad input raises UsageError (or ValueError / FileNotFoundError); main prints it as one line
`proxt2i: error: ...` and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys

from . import bench as bench_cmd
from . import data as data_cmd
from . import generate as generate_cmd
from . import info as info_cmd
from . import models as models_cmd
from . import train as train_cmd
from . import train_vae as train_vae_cmd
from . import evaluate as evaluate_cmd
from . import toy as toy_cmd
from . import finetune as finetune_cmd
from . import export as export_cmd

# Plain list of subcommand modules, in the order `--help` shows them.
COMMAND_MODULES = [generate_cmd, models_cmd, train_cmd, export_cmd, train_vae_cmd, evaluate_cmd, bench_cmd, finetune_cmd, data_cmd, toy_cmd, info_cmd]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="proxt2i",
        description="Fast text-to-image generation with learned proximal operators (ProxT2I).",
    )
    parser.add_argument("--version", action="version", version=f"proxt2i {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError) as err:
        print(f"proxt2i: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("proxt2i: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
