"""Entry point of the `tlgen` console script.

Each subcommand is a module `tlgen.cli.<name>` with a docstring (first line: the summary;
the rest: examples), `add_arguments(parser)` and `run(args)`. Subcommand modules import
heavy libraries (JAX, TFDS, ...) inside `run`, so `tlgen --help` stays fast.
Exit codes: 0 success, 2 user error (one sentence on stderr), 1 internal error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from tlgen import __version__
from tlgen.config import overrides_from
from tlgen.errors import UserError

COMMANDS = ("prepare", "train", "timelapse", "animate", "generate", "eval", "bench", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tlgen", description="Time-lapse video generation in JAX/Flax.",
        epilog="Run `tlgen <command> --help` for a command's options and examples.")
    parser.add_argument("--version", action="version", version=f"tlgen {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"tlgen.cli.{name}")
        summary, _, examples = (module.__doc__ or name).strip().partition("\n")
        command = sub.add_parser(name, help=summary, description=summary,
                                 epilog=examples.strip() or None,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(module=module)
    return parser


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("absl", "jax._src", "orbax", "tensorflow_datasets", "grain"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: Sequence[str] | None = None) -> int:
    """Runs `tlgen` with `argv` (default: sys.argv[1:]) and returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        overrides, argv = overrides_from(argv)
    except UserError as e:
        parser.error(str(e))
    args = parser.parse_args(argv)
    if overrides and not getattr(args, "accepts_config_overrides", False):
        parser.error(f"`tlgen {args.command}` takes no --config.* overrides")
    args.config_overrides = overrides
    _setup_logging(args)
    try:
        return int(args.module.run(args) or 0)
    except UserError as e:
        print(f"tlgen {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tlgen {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
