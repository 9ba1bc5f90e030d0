"""Temporal Gaussian pyramid in time units (handles irregular captures and gaps).

Level 0 is the frames. Level l+1 samples a regular grid `origin + k * P[l+1]` (P[l] =
`base_period * 2**l`, so the grid is subsampled by 2 per level) with a normalized Gaussian
weighting of level l's frames over time: sigma = P[l], truncated at `RADIUS` sigma,

    value(tau) = sum_i w_i x_i / sum_i w_i,   w_i = exp(-(t_i - tau)^2 / (2 sigma^2)).

For a regular level this is the classic blur-then-subsample-by-2 (a 7-tap sampled Gaussian,
sigma = 1 sample, renormalized at the ends). Irregular timestamps are weighted by their real
times, and a grid point whose total weight is below `MIN_WEIGHT` (no frame within about one
sigma: a gap in the capture) is dropped, so gaps stay gaps. Values are rounded to uint8 at
every level (each level is computed from the stored level below). Work happens in chunks of
grid points, so levels of hours-long captures never sit in memory whole.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

RADIUS = 3.0
MIN_WEIGHT = 0.5
GAP_FACTOR = 1.5  # neighbours further apart than this many level periods are a gap


def level_periods(base_period: float, levels: int) -> list[float]:
    """Period (seconds) of each level: base_period * 2**level."""
    return [float(base_period) * 2.0 ** level for level in range(levels)]


def frames_needed(levels: int) -> int:
    """Frames a regular training block needs so that its top level spans one full period."""
    return 2 ** (levels - 1)


# Automatic levels double the frame interval until the slowest passes this (seconds): the
# day cycle and the weather of a webcam, as far as the capture allows.
SLOWEST_PERIOD = 2 * 86400.0


def split_sizes(frames: int, val_fraction: float, levels: int) -> tuple[int, int] | None:
    """(train, validation) frames of one video's split blocks: the last `val_fraction` of
    it (at least one frame) for validation; None when the training block would be shorter
    than `frames_needed(levels)`. A validation block shorter than that holds fewer samples
    of the slow levels (one, at the least): it is scored, not learned from."""
    n_val = max(int(round(frames * val_fraction)), 1) if val_fraction > 0 else 0
    return (frames - n_val, n_val) if frames - n_val >= frames_needed(levels) else None


def auto_levels(base_period: float, frame_counts, val_fraction: float) -> int:
    """Levels chosen from the capture: periods doubling from `base_period` up to past
    SLOWEST_PERIOD, as many as every video's training block holds (at least 1)."""
    want = 1 + max(0, int(np.ceil(np.log2(SLOWEST_PERIOD / base_period))))
    fits = lambda n: all(split_sizes(c, val_fraction, n) is not None for c in frame_counts)
    return next((n for n in range(want, 1, -1) if fits(n)), 1)


def describe_periods(periods) -> str:
    """'20 min, 40 min, ..., 1.8 d': level periods for a log line."""
    def one(p):
        for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0)):
            if p >= size or unit == "s":
                return f"{p / size:.3g} {unit}"
    return ", ".join(one(float(p)) for p in periods)


def _chunk_size(frame_values: int, budget_bytes: int = 64 << 20) -> int:
    return int(np.clip(budget_bytes // (8 * max(frame_values, 1)), 1, 256))


def next_level(times: np.ndarray, values, period: float, origin: float,
               ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields (times, uint8 values) chunks of the level above (`times`, `values`).

    `times` (N,) sorted seconds of the current level, `values` an (N, ...) uint8 array or
    memmap, `period` the current level's period (the Gaussian's sigma); the new level's
    grid has spacing 2 * period starting at `origin`.
    """
    times = np.asarray(times, np.float64)
    if times.size == 0:
        return
    sigma, step = float(period), 2.0 * float(period)
    reach = RADIUS * sigma
    num_grid = int(np.floor((times[-1] - origin) / step + 1e-9)) + 1
    chunk = _chunk_size(int(np.prod(values.shape[1:])))
    for k0 in range(0, num_grid, chunk):
        grid = origin + step * np.arange(k0, min(k0 + chunk, num_grid), dtype=np.float64)
        i0 = int(np.searchsorted(times, grid[0] - reach, "left"))
        i1 = int(np.searchsorted(times, grid[-1] + reach, "right"))
        if i1 <= i0:
            continue
        d = (times[None, i0:i1] - grid[:, None]) / sigma
        w = np.where(np.abs(d) <= RADIUS, np.exp(-0.5 * d * d), 0.0)
        total = w.sum(axis=1)
        keep = total >= MIN_WEIGHT
        if not keep.any():
            continue
        w = (w[keep] / total[keep, None]).astype(np.float32)
        x = np.asarray(values[i0:i1], np.float32).reshape(i1 - i0, -1)
        out = np.rint(w @ x).clip(0, 255).astype(np.uint8)
        yield grid[keep], out.reshape((-1,) + tuple(values.shape[1:]))


def build_pyramid(times: np.ndarray, frames: np.ndarray, base_period: float, levels: int,
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """In-memory pyramid of one block: [(times, uint8 frames)] for levels 0..levels-1."""
    out = [(np.asarray(times, np.float64), frames)]
    for level, period in enumerate(level_periods(base_period, levels - 1)):
        parts = list(next_level(out[-1][0], out[-1][1], period, float(times[0])))
        out.append((np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])))
    return out


def bracket(times: np.ndarray, period: float, t: float) -> tuple[int, int, float]:
    """Linear-interpolation neighbours of time `t` in a level: (i0, i1, weight of i1).

    The level value at `t` is (1 - w) * x[i0] + w * x[i1]. Outside the level's span, or
    across a gap (neighbours more than GAP_FACTOR periods apart), it is the nearest frame.
    """
    n = len(times)
    i = int(np.searchsorted(times, t, "right")) - 1
    if i < 0:
        return 0, 0, 0.0
    if i >= n - 1:
        return n - 1, n - 1, 0.0
    t0, t1 = float(times[i]), float(times[i + 1])
    if t1 - t0 > GAP_FACTOR * period:
        j = i if t - t0 <= t1 - t else i + 1
        return j, j, 0.0
    return i, i + 1, (t - t0) / (t1 - t0)
