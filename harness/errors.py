"""Errors the CLI turns into one clear line on stderr (exit 2), never a traceback."""


class UsageError(Exception):
    """One-line user-facing error; the CLI prints it and exits 2."""
