"""The cost of a per-pixel median of frames (backgrounds, period means, neighbour renderings and
the median baselines of `tlgen eval`): `tlgen.data.dataset.frame_median` (a sorting network
over whole frames) against np.median(axis=0) and against partitioning each pixel's values
(np.partition of the frames laid out pixel by pixel, tlgen's method before), uint8 frames,
each the median of repeated calls; every result checked equal to np.median's. Appends a
record to --out.

  python bench/median_cost.py --out bench/results/frame-median-cpu.json
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from tlgen.bench.harness import environment  # noqa: E402
from tlgen.bench.report import append_json  # noqa: E402
from tlgen.bench.timing import median, time_calls  # noqa: E402
from tlgen.data.dataset import frame_median  # noqa: E402


def partitioned(frames: np.ndarray) -> np.ndarray:
    """The median by partitioning each pixel's values (frames laid out pixel by pixel)."""
    n = len(frames)
    middle = np.partition(np.ascontiguousarray(frames.reshape(n, -1).T), [(n - 1) // 2, n // 2], axis=1)
    low, high = (middle[:, k].astype(np.float32) for k in ((n - 1) // 2, n // 2))
    return ((low + high) / 2).reshape(frames.shape[1:])


METHODS = {"frame_median (network)": frame_median, "np.median": lambda f: np.median(f, axis=0),
           "partition per pixel": partitioned}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args()
    rows = []
    for size in (64, 128):
        for count in (8, 48, 256):
            frames = np.random.default_rng(count).integers(0, 256, (count, size, size, 3), dtype=np.uint8)
            want = np.median(frames, axis=0)
            row = {"frames": count, "size": size}
            for name, fn in METHODS.items():
                assert np.array_equal(fn(frames), want), name
                row[name + " ms"] = round(median(time_calls(lambda fn=fn: fn(frames), steps=args.calls)) * 1e3, 3)
            rows.append(row)
            print(row, flush=True)
    record = {"date": datetime.date.today().isoformat(), "environment": environment(),
              "calls": args.calls, "rows": rows}
    append_json(record, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
