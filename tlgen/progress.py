"""Progress bars on stderr for long work (steps/s or frames/s, ETA)."""

import os
import sys

from tqdm.auto import tqdm


def enabled() -> bool:
    """Bars show on a terminal, or anywhere when TLGEN_PROGRESS=1 (0 turns them off)."""
    flag = os.environ.get("TLGEN_PROGRESS")
    if flag is not None:
        return flag == "1"
    return sys.stderr.isatty()


def progress(iterable=None, *, total=None, unit="it", desc=None, initial=0):
    """Wraps `iterable` (or counts manual `.update(n)` calls) in a tqdm bar on stderr."""
    return tqdm(iterable, total=total, unit=unit, desc=desc, initial=initial,
                file=sys.stderr, disable=not enabled(), dynamic_ncols=True,
                smoothing=0.1)
