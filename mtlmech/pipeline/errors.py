"""The pipeline's error for bad user input (its own module, so the parser and the value checks can
both raise it without importing each other)."""


class UsageError(Exception):
    """Bad user input: reported as one line, exit code 2."""
