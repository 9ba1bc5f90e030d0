"""Errors the command line reports as one sentence, each kind with an exit code of its own.

Exit codes of `tlgen`: 0 success; 1 internal error (a bug: a traceback is printed);
2 bad input (`UserError`: fix the command, config or files); 3 training diverged
(`DivergedError`: the loss or gradients became non-finite with `train.nonfinite=stop`);
4 storage or cluster failure (`StorageError`: a disk full, an unreadable checkpoint store,
another process of the job failed — the same command can succeed once that is fixed);
75 training stopped by SIGTERM or a preemption notice after saving a checkpoint (the same
command continues it); 130 interrupted (Ctrl-C); 143 terminated (SIGTERM outside training).
"""

STOPPED = 75      # EX_TEMPFAIL: saved and stopped early; the same command continues the run
EXIT_CODES = {0: "success", 1: "internal error", 2: "bad input", 3: "training diverged",
              4: "storage or cluster failure", STOPPED: "stopped early, checkpoint saved",
              130: "interrupted", 143: "terminated"}


class TlgenError(Exception):
    """An error reported as one sentence on stderr with `exit_code`."""
    exit_code = 1


class UserError(TlgenError):
    """Bad input (a file, an argument, a config): the message says which and what to do."""
    exit_code = 2


class DivergedError(TlgenError):
    """Training produced a non-finite loss or state and was told to stop."""
    exit_code = 3


class StorageError(TlgenError):
    """Storage or another process of the job failed; nothing the user gave is wrong."""
    exit_code = 4
