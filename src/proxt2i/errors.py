"""One exception type for bad user input: the CLI prints its message as one line and exits 2."""

from __future__ import annotations

import json
from pathlib import Path


class UsageError(ValueError):
    """Bad input from the user (arguments, files, prompts). The message says what to do."""


def read_json(path, what: str = "file") -> dict:
    """Parse a JSON file; a missing or invalid one is a UsageError naming `what` it should have been."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{what} {str(path)!r} not found")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UsageError(f"{what} {str(path)!r} is not valid JSON ({err})") from None
