"""One exception type for bad user input: the CLI prints its message as one line and exits 2."""


class UsageError(ValueError):
    """Bad input from the user (arguments, files, prompts). The message says what to do."""
