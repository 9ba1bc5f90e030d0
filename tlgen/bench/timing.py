"""Device-synchronized timing of jitted calls."""

from __future__ import annotations

import re
import statistics
import subprocess
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


def time_alternating(call: Callable[[], Any], other: Callable[[], Any], *, steps: int,
                     warmup: int = 1) -> tuple[list[float], list[float]]:
    """`time_calls` with `other()` (a synchronized call, e.g. a peer framework's step) timed
    right after each call: both see the same machine state, so their per-pair ratio holds on
    a shared machine whose speed drifts. Returns (call seconds, other seconds)."""
    for _ in range(warmup):
        jax.block_until_ready(call())
        other()
    times, other_times = [], []
    for _ in range(steps):
        start = time.perf_counter()
        jax.block_until_ready(call())
        middle = time.perf_counter()
        other()
        times.append(middle - start)
        other_times.append(time.perf_counter() - middle)
    return times, other_times


def median(times: list[float]) -> float:
    """The median of `times`."""
    return float(statistics.median(times))


def side_by_side(name: str, call: Callable[[], Any], other: Callable[[], Any], items: int,
                 steps: int) -> dict:
    """One row comparing `call` (tlgen) with `other` (a peer framework's synchronized call)
    on the same work of `items` items: medians of `time_alternating` after a compile call,
    rates, and the median per-pair time ratio (below 1: tlgen faster). Printed too."""
    call()
    times, peer = time_alternating(call, other, steps=steps, warmup=1)
    row = {"name": name, "items_per_call": items, "tlgen_s": median(times), "pytorch_s": median(peer),
           "tlgen_per_s": items / median(times), "pytorch_per_s": items / median(peer),
           "ratio": median([t / p for t, p in zip(times, peer)])}
    print(f"{name}: tlgen {row['tlgen_per_s']:.2f}/s, PyTorch {row['pytorch_per_s']:.2f}/s, "
          f"time ratio {row['ratio']:.2f}", flush=True)
    return row


def peak_rss_mib(cmd: list[str]) -> float:
    """Peak resident memory of a command (GNU time's %M, KiB) in MiB."""
    out = subprocess.run(["/usr/bin/time", "-f", "RSS %M", *cmd], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return int(re.findall(r"RSS (\d+)", out.stderr)[-1]) / 1024
