"""Errors a user can fix: the command line prints them as one sentence and exits 2."""


class UserError(Exception):
    """Bad input (a file, an argument, a config): the message says which and what to do."""
