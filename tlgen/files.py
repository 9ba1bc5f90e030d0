"""Atomic file output: a file appears whole under its final name, or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable


def write_atomic(path: str, write: Callable[[str], object]) -> None:
    """Calls `write(tmp)` on a temporary file in `path`'s folder (created if missing; same
    extension, so writers that look at it still work), then renames it to `path`. On any
    error the temporary file is removed and `path` is left as it was."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)       # mkstemp's 0600 -> the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_text(path: str, text: str) -> None:
    """Writes `text` to `path` atomically."""
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    write_atomic(path, write)
