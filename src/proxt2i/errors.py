"""One exception type for bad user input: the CLI prints its message as one line and exits 2. Also the
checks every layer applies to user paths: reading a text or JSON file (a folder where a file belongs,
bytes that are not UTF-8, a byte-order mark), and whether an output path can be written at all."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

# The longest file name most filesystems take (bytes); temporaries beside an output are named within it.
NAME_MAX = 255


class UsageError(ValueError):
    """Bad input from the user (arguments, files, prompts). The message says what to do."""


class UnseenWordsWarning(UserWarning):
    """A prompt has words the model never saw in training; it still generates (unknown words carry no meaning)."""


def read_text(path, what: str = "file") -> str:
    """A UTF-8 text file's contents: a byte-order mark is dropped (editors on Windows write one), CRLF
    line ends read as LF; a missing file, a folder, or bytes that are not UTF-8 are one UsageError naming it."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{what} {str(path)!r} is a folder, expected a file")
    if not path.is_file():
        raise UsageError(f"{what} {str(path)!r} not found")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UsageError(f"{what} {str(path)!r} is not UTF-8 text (byte {err.start}: {err.reason}); save it as UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_lines(path, what: str = "file") -> list[str]:
    """The non-blank lines of a text file (read_text), stripped."""
    return [line.strip() for line in read_text(path, what).split("\n") if line.strip()]


def read_json(path, what: str = "file") -> dict:
    """Parse a JSON file that holds one object; a missing or invalid one, or any other JSON value, is a
    UsageError naming `what` it should have been."""
    path = Path(path)
    text = read_text(path, what)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"{what} {str(path)!r} is not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise UsageError(f"{what} {str(path)!r} must hold a JSON object {{...}}, not a JSON {type(value).__name__}")
    return value


def check_output_path(path, what: str = "--out", folder: bool = False) -> Path:
    """Refuse, before any long work, an output path that cannot be written: a name too long for the
    filesystem, a parent that is a file, a nearest existing folder that is not writable, or (folder) an
    existing file where a folder is to be written."""
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise UsageError(f"{what} {str(path)!r} is a file, expected a folder; choose another {what}")
    for part in path.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise UsageError(f"{what} {str(path)!r}: {os.strerror(errno.ENAMETOOLONG)} (a name of at most {NAME_MAX} bytes)")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        if parent.is_symlink():  # a dangling link: nothing can be created below it
            break
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{what} {str(path)!r}: {str(parent)!r} is a file, not a folder; choose another {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {str(path)!r}: folder {str(parent)!r} is not writable ({os.strerror(errno.EACCES)})")
    return path
