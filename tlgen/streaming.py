"""Chunks of device results fetched to the host one behind: while the caller writes chunk k,
the device computes chunk k + 1 (JAX dispatches its work asynchronously)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import jax
import numpy as np

_END = object()


def fetched(chunks: Iterable) -> Iterator[np.ndarray]:
    """NumPy copies of the arrays `chunks` yields, in order. Chunk k + 1 is asked for (its work
    dispatched) once chunk k is computed and before chunk k is fetched, so the device computes
    k + 1 while the caller uses k, and runs one chunk's programs at a time (on a CPU, two in
    flight would share its cores)."""
    it = iter(chunks)
    pending = next(it, _END)
    while pending is not _END:
        jax.block_until_ready(pending)
        following = next(it, _END)
        yield np.asarray(pending)
        pending = following
