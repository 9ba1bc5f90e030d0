"""Entry point of the `tlgen` console script.

Each subcommand is a module `tlgen.cli.<name>` with a docstring (first line: the summary;
the rest: examples), `add_arguments(parser)` and `run(args)`. Subcommand modules import
heavy libraries (JAX, TFDS, ...) inside `run`, so `tlgen --help` stays fast. The commands
that act on a trained run (eval, generate, animate, timelapse) also take the options its
family adds: `tlgen animate --workdir W --help` lists them.
Exit codes: 0 success, 2 user error (one sentence on stderr), 1 internal error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from tlgen import __version__
from tlgen.config import overrides_from
from tlgen.errors import STOPPED, StorageError, TlgenError, UserError
from tlgen.files import STORAGE_ERRNOS, storage_sentence

COMMANDS = ("prepare", "train", "timelapse", "animate", "generate", "eval", "bench", "demo",
            "convert-weights")
EPILOG = """Run `tlgen <command> --help` for a command's options and examples.

exit codes (errors are one sentence on stderr, internal errors a traceback):
  0 success
  1 internal error (a bug)
  2 bad input: fix the command, config or files
  3 training diverged (non-finite loss or gradients with --config.train.nonfinite=stop)
  4 storage or cluster failure (disk full, unreadable storage, another process of the
    job failed): the same command can succeed once that is fixed
  75 training stopped by SIGTERM or a preemption notice after saving a checkpoint: the
    same command continues it
  130 interrupted (Ctrl-C)
  143 terminated by SIGTERM outside training
  (on 130 and 143 what the command was writing is removed; what was there is kept)"""


def _workdir(argv: Sequence[str]) -> str | None:
    """The --workdir argv names, if any."""
    workdir = None
    for i, item in enumerate(argv):
        if item == "--workdir" and i + 1 < len(argv):
            workdir = argv[i + 1]
        elif item.startswith("--workdir="):
            workdir = item.split("=", 1)[1]
    return workdir


def _workdir_family(argv: Sequence[str]) -> tuple[str, str | None] | None:
    """The family (name, path) of the run whose --workdir argv names, when its config.json is
    readable (else None: the command itself reports a bad workdir)."""
    workdir = _workdir(argv)
    path = os.path.join(workdir or "", "config.json")
    if not workdir or not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            saved = json.load(f)
        return str(saved["family"]), saved.get("family_path")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _family_arguments(name: str, argv: Sequence[str]):
    """The family's `add_arguments` for command `name` of the run argv's --workdir names."""
    from tlgen import family as family_lib
    from tlgen.family import COMMANDS as FAMILY_COMMANDS
    family = _workdir_family(argv) if name in FAMILY_COMMANDS else None
    try:
        command = family_lib.get(*family).commands.get(name) if family else None
    except UserError:
        return None
    return command.add_arguments if command else None


def _unrecognized(name: str, unknown: Sequence[str], argv: Sequence[str]) -> str:
    """The parser's error for arguments of no option: which families' `name` takes an option
    that this run's does not."""
    from tlgen import family as family_lib
    owners: dict[str, list[str]] = {}
    for fam_name, command in family_lib.offering(name).items():
        if command.add_arguments:
            probe = argparse.ArgumentParser(add_help=False)
            command.add_arguments(probe)
            for option, action in probe._option_string_actions.items():
                if action.help != argparse.SUPPRESS:        # hidden: there only to say where it goes
                    owners.setdefault(option, []).append(fam_name)
    saved = _workdir_family(argv)
    family = saved[0] if saved else None
    for item in unknown:
        option = item.split("=", 1)[0]
        if saved is None and option in owners and _workdir(argv):
            from tlgen.checkpoint import run_config     # the family's options come from the run:
            try:                                        # what is wrong is its --workdir
                run_config(_workdir(argv))
            except UserError as e:
                return str(e).rstrip(".")
        if family and option in owners and family not in owners[option]:
            return (f"{option} is an option of `tlgen {name}` on {family_lib.spoken(owners[option])} runs; "
                    f"this run is {family}'s (see `tlgen {name} --workdir ... --help`)")
    return f"unrecognized arguments: {' '.join(unknown)}"


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tlgen", description="Time-lapse video generation in JAX/Flax.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"tlgen {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"tlgen.cli.{name.replace('-', '_')}")
        summary, _, examples = (module.__doc__ or name).strip().partition("\n")
        command = sub.add_parser(name, help=summary, description=summary,
                                 epilog=examples.strip() or None,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(module=module, parser=command)
        if name == next((a for a in argv if a in COMMANDS), None):
            extra = _family_arguments(name, argv)
            if extra is not None:
                extra(command.add_argument_group("options of this run's family"))
    return parser


_UNRAISABLE = {"drop": False}     # set by each command: True unless it runs with -v


def _drop_closed_event_loop_reports(drop: bool) -> None:
    """A checkpoint read that fails leaves TensorStore callbacks behind that land on Orbax's
    closed event loop; Python reports each as unraisable (hundreds per failed read), also
    after the command, after tlgen has said what failed in one sentence. Those reports are
    dropped from a command without -v on (the filter is installed once per process)."""
    _UNRAISABLE["drop"] = drop
    report = sys.unraisablehook
    if getattr(report, "tlgen_filter", False):
        return

    def hook(unraisable):
        error = unraisable.exc_value
        if not (_UNRAISABLE["drop"] and isinstance(error, RuntimeError)
                and str(error) == "Event loop is closed"):
            report(unraisable)

    hook.tlgen_filter = True
    sys.unraisablehook = hook


# JAX's persistent compilation cache for the commands: a command run again (a resumed
# `train`, another `timelapse` or `generate` of a run) loads its compiled programs instead of
# compiling them. TLGEN_XLA_CACHE names the folder ("off": none); JAX_COMPILATION_CACHE_DIR,
# when set, wins. Least recently used programs go past 2 GiB.
ENV_XLA_CACHE = "TLGEN_XLA_CACHE"
XLA_CACHE_BYTES = 2 << 30


def _cache_folder() -> str | None:
    """The compilation cache's folder, made; None for no cache of tlgen's (JAX_COMPILATION_CACHE_DIR
    set, TLGEN_XLA_CACHE=off, a folder that cannot be made: every program is compiled)."""
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    folder = os.environ.get(ENV_XLA_CACHE) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tlgen", "xla")
    if folder == "off":
        return None
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    return folder


def _compilation_cache() -> None:
    folder = _cache_folder()
    if folder is None:
        return
    settings = {"jax_compilation_cache_dir": folder, "jax_persistent_cache_min_compile_time_secs": 0,
                "jax_compilation_cache_max_size": XLA_CACHE_BYTES}
    jax = sys.modules.get("jax")
    if jax is None:             # read by JAX when it is imported
        os.environ.update({name.upper(): str(value) for name, value in settings.items()})
    elif jax.config.jax_compilation_cache_dir is None:      # a notebook's JAX, not configured
        from jax.experimental.compilation_cache import compilation_cache

        for name, value in settings.items():
            jax.config.update(name, value)
        compilation_cache.reset_cache()     # JAX may have settled on no cache at a compile


def _setup_logging(args: argparse.Namespace, before: list) -> Callable[[], None]:
    """Logging for one command (-q / -v); returns what puts the process's levels and handlers
    back as they were (`main` may run many commands in one process, a notebook's). `before`:
    the root's handlers when `main` began."""
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    root = logging.root
    # Importing a family's modules (for its options) may have called basicConfig (absl's
    # vlog does), which would leave tlgen's lines in its bare format: that handler goes.
    for handler in list(root.handlers):
        if (handler not in before and type(handler) is logging.StreamHandler
                and handler.formatter is not None and handler.formatter._fmt == logging.BASIC_FORMAT):
            root.removeHandler(handler)
    added = None
    if not root.handlers:
        added = logging.StreamHandler(sys.stderr)
        added.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                             datefmt="%H:%M:%S"))
        root.addHandler(added)
    # Orbax reports a failed background write from each of its threads (absl) and asyncio
    # repeats it; tlgen reports the failure itself, in one sentence. -v shows them all.
    levels = {None: level, **{name: max(level, logging.WARNING)
                              for name in ("jax._src", "orbax", "tensorflow_datasets", "grain")},
              **{name: level if args.verbose else logging.CRITICAL for name in ("absl", "asyncio")}}
    saved = {name: logging.getLogger(name).level for name in levels}
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)
    _drop_closed_event_loop_reports(not args.verbose)

    def restore():
        for name, value in saved.items():
            logging.getLogger(name).setLevel(value)
        if added is not None:
            root.removeHandler(added)
    return restore


class Terminated(KeyboardInterrupt):
    """SIGTERM (`timeout`, `docker stop`, a scheduler) outside training's own handler: it
    unwinds as Ctrl-C does, so what a command was writing is removed."""


def _terminate(signum, frame):
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Runs `tlgen` with `argv` (default: sys.argv[1:]) and returns the exit code. Commands
    from one process run one at a time (each sets the process's logging while it runs).

    In a job of several processes a failing process exits at once (skipping JAX's shutdown
    barrier, where it would wait for peers stuck in a collective): the coordination service
    then stops the other processes within its heartbeat timeout.
    """
    argv = given = list(sys.argv[1:] if argv is None else argv)
    handlers = list(logging.root.handlers)
    _compilation_cache()        # before a family's modules (and JAX) are imported for its options
    try:                        # argparse ends the program for --help and for bad arguments
        try:
            overrides, argv = overrides_from(argv)
        except UserError as e:
            build_parser().error(str(e))
        parser = build_parser(argv)
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            args.parser.error(_unrecognized(args.command, unknown, argv))
        if overrides and not getattr(args, "accepts_config_overrides", False):
            parser.error(f"`tlgen {args.command}` takes no --config.* overrides")
    except SystemExit as e:     # Python's convention: a message is exit status 1
        return e.code if isinstance(e.code, int) else int(e.code is not None)
    args.config_overrides = overrides
    args.argv = given                       # the command as typed (a record may keep it)
    restore_logging = _setup_logging(args, handlers)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        code = int(args.module.run(args) or 0)
    except TlgenError as e:
        print(f"tlgen {args.command}: error: {e}", file=sys.stderr)
        code = e.exit_code
    except OSError as e:
        if e.errno not in STORAGE_ERRNOS:
            _exit_now_if_multiprocess(1, traceback=True)
            raise
        print(f"tlgen {args.command}: error: {storage_sentence(e)}", file=sys.stderr)
        code = StorageError.exit_code
    except KeyboardInterrupt as e:
        terminated = isinstance(e, Terminated)
        print(f"tlgen {args.command}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        code = 143 if terminated else 130
    except BaseException:
        _exit_now_if_multiprocess(1, traceback=True)
        raise
    finally:
        if previous is not None:            # None: not ours to restore (a handler set in C)
            signal.signal(signal.SIGTERM, previous)
        restore_logging()
    if code and code != STOPPED:        # stopped: every process agreed and saved; shut down
        _exit_now_if_multiprocess(code)
    return code


def _exit_now_if_multiprocess(code: int, traceback: bool = False) -> None:
    """In a job of several processes: print, flush and end this process at once."""
    jax = sys.modules.get("jax")
    if jax is None or not jax.distributed.is_initialized() or jax.process_count() < 2:
        return
    if traceback:
        import traceback as tb
        tb.print_exc()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def entry() -> None:
    """The `tlgen` program: `main()`, then exit with its code. An interrupted command (130,
    143) has removed what it was writing, and ends at once: a library it was in (Orbax
    restoring a checkpoint, ...) may still have threads running, under which Python's
    shutdown can crash."""
    code = main()
    if code in (130, 143):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
