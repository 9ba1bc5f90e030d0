"""Device-synchronized timing of jitted calls."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import jax


def time_calls(call: Callable[[], Any], *, steps: int, warmup: int = 1) -> list[float]:
    """Seconds of each of `steps` calls of `call()` after `warmup` calls, each synchronized.

    Every call waits for its outputs with `jax.block_until_ready`, so a time covers the
    device work, not only the dispatch.
    """
    for _ in range(warmup):
        jax.block_until_ready(call())
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        jax.block_until_ready(call())
        times.append(time.perf_counter() - start)
    return times


def time_stepper(step: Callable[[Any], Any], carry: Any, *, steps: int, warmup: int = 1
                 ) -> tuple[list[float], Any]:
    """Like `time_calls` for a step whose output feeds the next call (donated state).

    `step(carry) -> carry`; returns the per-step seconds and the final carry.
    """
    for _ in range(warmup):
        carry = jax.block_until_ready(step(carry))
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        carry = jax.block_until_ready(step(carry))
        times.append(time.perf_counter() - start)
    return times, carry


def time_alternating(step: Callable[[Any], Any], carry: Any, other: Callable[[], Any], *,
                     steps: int, warmup: int = 1) -> tuple[list[float], list[float], Any]:
    """`time_stepper` with `other()` (a synchronized call, e.g. a peer framework's step)
    timed right after each step: both see the same machine state, so their per-pair
    ratio holds on a shared machine whose speed drifts. Returns (step seconds, other
    seconds, final carry)."""
    for _ in range(warmup):
        carry = jax.block_until_ready(step(carry))
        other()
    times, other_times = [], []
    for _ in range(steps):
        start = time.perf_counter()
        carry = jax.block_until_ready(step(carry))
        middle = time.perf_counter()
        other()
        times.append(middle - start)
        other_times.append(time.perf_counter() - middle)
    return times, other_times, carry


def median(times: list[float]) -> float:
    """The median of `times`."""
    return float(statistics.median(times))
