"""The command line: only the subcommand asked for builds its options, so listing commands or printing a
prompt set does not import torch; every subcommand still parses as before."""

import subprocess
import sys

import pytest

from proxt2i.cli import COMMAND_MODULES, build_parser, main


def _imports_torch(argv: list[str]) -> bool:
    code = ("import sys\nfrom proxt2i.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)") % (argv,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1] == "True"


def test_help_and_light_commands_do_not_import_torch():
    assert not _imports_torch(["--help"])
    assert not _imports_torch(["data", "prompts", "heldin", "--num", "1"])
    assert _imports_torch(["generate", "--help"])  # its --sampler choices come from the pipeline


def test_every_command_is_listed_and_parses_with_the_partial_parser(capsys):
    names = [n for m in COMMAND_MODULES for n in m.COMMANDS]
    full = build_parser()
    assert set(full._subparsers._group_actions[0].choices) == set(names)
    for name in names:
        partial = build_parser(name)
        assert set(partial._subparsers._group_actions[0].choices) == set(names)
    args = build_parser("generate").parse_args(["generate", "a face", "--steps", "8"])
    assert args.steps == 8 and args.prompt == "a face"
    with pytest.raises(SystemExit) as exit_:
        main(["no-such-command"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("error, code", [(None, 0), ("usage", 2), ("missing", 2), ("bug", None)])
def test_only_user_errors_are_one_line(monkeypatch, capsys, error, code):
    import argparse

    import proxt2i.cli as cli
    from proxt2i.errors import UsageError

    raised = {"usage": UsageError("bad input, do this"), "missing": FileNotFoundError("no such file: x"), "bug": ValueError("internal")}

    def run(args):
        if error:
            raise raised[error]

    parser = argparse.ArgumentParser()
    parser.set_defaults(func=run)
    monkeypatch.setattr(cli, "build_parser", lambda command: parser)
    if code is None:  # an internal bug stays a traceback, even when it is a ValueError
        with pytest.raises(ValueError, match="internal"):
            cli.main([])
        return
    assert cli.main([]) == code
    err = capsys.readouterr().err
    assert err == ("" if code == 0 else f"proxt2i: error: {raised[error]}\n")
