"""Atomic file output (a file appears whole under its final name, or not at all), the check
of an output path, and the sentence for a storage failure."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import tempfile
import threading
from collections.abc import Callable

from tlgen.errors import StorageError, UserError

# OSErrors that say the storage failed, not the command: full, over quota, read-only, I/O.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})


# What to do about each storage failure.
_REMEDIES = {errno.EROFS: "choose a folder on a writable file system",
             errno.EIO: "check the disk (its system log names the fault) or choose another folder"}


def storage_sentence(error: OSError, path: str | None = None) -> str:
    """One sentence for a storage failure while writing `path` (or the error's file)."""
    where = path or error.filename or "a file"
    remedy = _REMEDIES.get(error.errno, "free space or choose another folder")
    return (f"cannot write {where}: {error.strerror or error} (errno {error.errno}); {remedy}, "
            "then run the same command again.")


def not_a_file(path: str) -> str:
    """Why `path`, which is not a file, cannot be read as one: "is a folder" or "does not exist"."""
    return "is a folder" if os.path.isdir(path) else "does not exist"


def check_output_file(path: str, flag: str) -> None:
    """UserError unless the file `path` given by `flag` can be written: not a folder, in a
    folder that exists and takes new files (checked before any work)."""
    if not path:
        raise UserError(f"{flag} needs a file name.")
    if os.path.isdir(path):
        raise UserError(f"{flag} {path} is a folder; give a file name.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"{flag} {path}: its folder {folder} does not exist; create it first.")
    why = _cannot_create(folder)
    if why:
        raise UserError(f"{flag} {path}: its folder {folder} cannot be written ({why}); "
                        "choose another folder.")


def _cannot_create(folder: str) -> str | None:
    """Why no file can be created in `folder` (a read-only file system, no permission, ...),
    found by creating and removing one; None when it can. Permission bits alone do not tell:
    root passes them everywhere, and /proc or a full quota refuse files all the same."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".tlgen-probe-")
    except OSError as e:
        if e.errno in STORAGE_ERRNOS - {errno.EROFS}:
            raise StorageError(storage_sentence(e, folder)) from None
        reasons = {errno.EROFS: "a read-only file system", errno.EACCES: "no permission",
                   errno.EPERM: "no permission"}
        return reasons.get(e.errno, f"it takes no new files: {e.strerror or e}")
    os.close(fd)
    os.unlink(probe)
    return None


def check_output_folder(path: str, flag: str) -> None:
    """UserError unless the folder `path` given by `flag` can be made or used: named, neither
    a file nor inside one, and writable (its nearest existing folder)."""
    if not path:
        raise UserError(f"{flag} is empty; name a folder.")
    probe = os.path.abspath(path)
    while not os.path.lexists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        where = "is a file" if probe == os.path.abspath(path) else f"lies inside {probe}, a file"
        raise UserError(f"{flag} {path} {where}; choose a folder.")
    why = _cannot_create(probe)
    if why:
        raise UserError(f"{flag} {path}: {probe} cannot be written ({why}); choose another folder.")


def write_atomic(path: str, write: Callable[[str], object]) -> None:
    """Calls `write(tmp)` on a temporary file in `path`'s folder (created if missing; same
    extension, so writers that look at it still work), then renames it to `path`. On any
    error the temporary file is removed and `path` is left as it was."""
    write_atomic_all([path], lambda tmps: write(tmps[0]))


def write_atomic_all(paths: list[str], write: Callable[[list[str]], object]) -> None:
    """`write_atomic` for several files written together: `write(tmps)`, then every file is
    renamed into place; on an error in `write` none of them is."""
    tmps = []
    try:
        for path in paths:
            directory = os.path.dirname(os.path.abspath(path))
            os.makedirs(directory, exist_ok=True)
            suffix = os.path.splitext(path)[1].lower()     # np.savez appends .npz to ".NPZ"
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=suffix)
            os.close(fd)
            tmps.append(tmp)
        write(tmps)
        umask = os.umask(0)
        os.umask(umask)
        for tmp, path in zip(tmps, paths):
            os.chmod(tmp, 0o666 & ~umask)       # mkstemp's 0600 -> the usual permissions
            os.replace(tmp, path)
    except OSError as e:
        for tmp in tmps:
            _remove(tmp)
        if e.errno in STORAGE_ERRNOS:
            where = dict(zip(tmps, paths)).get(e.filename, paths[min(len(tmps), len(paths) - 1)])
            raise StorageError(storage_sentence(e, where)) from None
        raise
    except BaseException:
        for tmp in tmps:
            _remove(tmp)
        raise


@contextlib.contextmanager
def signals_held():
    """Ctrl-C and SIGTERM wait until the block has run, then act (in the main thread; a
    handler set in C is left alone). Not for code a multi-process JAX job runs: Python does not
    see the SIGTERM handler of JAX's coordination service, which this would replace."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    previous = {s: h for s, h in previous.items() if h is not None}
    for s in previous:
        signal.signal(s, lambda n, _: caught.append(n))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if caught:      # its handler called here (raised, it could land in a finalizer and be lost)
            handler = previous[caught[0]]
            if callable(handler):
                handler(caught[0], None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(caught[0])


def _remove(path: str) -> None:
    if os.path.exists(path):
        os.remove(path)


def write_text(path: str, text: str) -> None:
    """Writes `text` to `path` atomically."""
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    write_atomic(path, write)
