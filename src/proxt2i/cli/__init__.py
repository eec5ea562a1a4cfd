"""The `proxt2i` command: a thin layer over the library. Each subcommand lives in its own module
exposing `register(subparsers)`, which adds its parser and sets `func(args) -> int`.

Bad input raises UsageError (proxt2i.errors); main prints it as one line `proxt2i: error: ...` and
exits with status 2. So does any OSError that names a file (a user's path: permission denied, a parent
that is a file, a name too long, a full disk) and argparse's own refusals (one line, not the usage text).
Any other exception, a plain ValueError included, is a bug: it stays a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from ..errors import UnseenWordsWarning, UsageError
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
from . import serve as serve_cmd
from . import scale_check as scale_check_cmd

# Plain list of subcommand modules, in the order `--help` shows them.
COMMAND_MODULES = [generate_cmd, models_cmd, train_cmd, export_cmd, train_vae_cmd, evaluate_cmd, bench_cmd, scale_check_cmd, finetune_cmd, serve_cmd, data_cmd, toy_cmd, info_cmd]

# The exceptions that mean "the input was bad", reported as one line with exit status 2.
USER_ERRORS = (UsageError, FileNotFoundError, NotADirectoryError, IsADirectoryError)


class OneLineParser(argparse.ArgumentParser):
    """argparse's refusals as one line `proxt2i: error: ...` (exit 2), like every other bad input; the
    usage text it would print is what `--help` shows."""

    def error(self, message):
        self.exit(2, f"proxt2i: error: {message} (see `{self.prog} --help`)\n")


def os_error_line(err: OSError) -> str | None:
    """One line for an OSError about a user's path (it names a file), None for any other (a bug)."""
    if err.filename is None:
        return None
    path = err.filename2 if isinstance(err, FileExistsError) and err.filename2 else err.filename
    if isinstance(err, FileNotFoundError):
        return f"{path}: {err.strerror or 'not found'}"
    return f"cannot write {path}: {err.strerror or err}"


def build_parser(command: str | None = "") -> argparse.ArgumentParser:
    """The parser. command "": every subcommand with its options; a name: only that subcommand's
    options, the others as a name and a line of help; None: names and help only. Building a subcommand's
    options can import torch (sampler and reward lists), which `proxt2i --help` or `proxt2i data
    prompts heldin` need not wait for."""
    from .. import __version__

    parser = OneLineParser(
        prog="proxt2i",
        description="Fast text-to-image generation with learned proximal operators (ProxT2I).",
    )
    parser.add_argument("--version", action="version", version=f"proxt2i {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        if command == "" or command in module.COMMANDS:
            module.register(sub)
        else:
            for name, help_ in module.COMMANDS.items():
                sub.add_parser(name, help=help_, add_help=False)
    return parser


def one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line each on stderr ('proxt2i: warning: ...'), not Python's file:line and source line."""
    print(f"proxt2i: warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(next((a for a in argv if not a.startswith("-")), None))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line_warning
            warnings.filterwarnings("default", category=UnseenWordsWarning)  # once per prompt, whatever the caller's filters
            return int(args.func(args) or 0)
    except USER_ERRORS as err:
        print(f"proxt2i: error: {os_error_line(err) if isinstance(err, OSError) and err.filename else err}", file=sys.stderr)
        return 2
    except OSError as err:
        line = os_error_line(err)
        if line is None:
            raise
        print(f"proxt2i: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("proxt2i: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
