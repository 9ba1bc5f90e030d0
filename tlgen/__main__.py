"""`python -m tlgen` runs the command line."""

from tlgen.cli.main import entry

entry()
