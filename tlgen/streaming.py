"""Chunks of device results fetched to the host one behind: while the caller writes chunk k,
the device computes chunk k + 1 (JAX dispatches its work asynchronously)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np


def fetched(chunks: Iterable) -> Iterator[np.ndarray]:
    """NumPy copies of the arrays `chunks` yields, in order; each is fetched only after the
    next has been asked for, so its work is already dispatched. At most two are in flight."""
    pending, started = None, False
    for chunk in chunks:
        if started:
            yield np.asarray(pending)
        pending, started = chunk, True
    if started:
        yield np.asarray(pending)
