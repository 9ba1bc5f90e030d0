"""One writer per work directory: an exclusive lock held for the whole of `tlgen train`.

The lock is `flock(2)` on `WORKDIR/.tlgen.lock`, taken by process 0 of the job (the other
processes of the same job agree on its result). What it guarantees:

* on one machine, and on shared filesystems whose locks span hosts (NFSv4, Lustre, GPFS,
  CephFS), a second `tlgen train --workdir W` stops with one sentence while the first runs;
* the kernel releases the lock when its holder ends, however it ends (a crash, SIGKILL, a
  lost node on NFSv4 once its lease expires): a lock is never left stale;
* filesystems without working locks (many FUSE mounts of object stores) cannot enforce it:
  tlgen warns and runs unlocked, so there only one job may be started per work directory.

The file also records who holds it (host, process id, start time), for the message.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import logging
import os
import socket

from tlgen.errors import UserError

log = logging.getLogger(__name__)

LOCK_FILE = ".tlgen.lock"
# flock errors that mean "this filesystem has no locks", not "someone holds it".
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class WorkdirLock:
    """`with WorkdirLock(workdir):` holds the work directory's lock (UserError if taken)."""

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.path = os.path.join(workdir, LOCK_FILE)
        self._fd: int | None = None

    def acquire(self) -> None:
        os.makedirs(self.workdir, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise UserError(f"{self.workdir} is in use by another `tlgen train` ({holder}); wait "
                            "for it to end, or train in another --workdir.") from None
        except OSError as e:
            if e.errno not in _UNSUPPORTED:
                os.close(fd)
                raise
            log.warning("the filesystem of %s has no file locks (%s): nothing stops a second run "
                        "from writing this work directory", self.workdir, e.strerror)
        os.ftruncate(fd, 0)
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        os.pwrite(fd, f"host {socket.gethostname()}, pid {os.getpid()}, since {started}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)          # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> "WorkdirLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
