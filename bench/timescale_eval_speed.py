"""`tlgen eval` of a timescale model, today's against the frame reading and medians it had
before 2026-12-06 (every record read again on each use; np.median), alternating in one
process after a warm-up, on the quickstart's capture (synthetic:city:frames=720 at 64², the
tiny config trained 2 steps). The reports must be identical. Writes one record.

  python bench/timescale_eval_speed.py --out bench/results/timescale-eval-speed-cpu.json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tlgen.bench.harness import environment  # noqa: E402
from tlgen.bench.report import write_json  # noqa: E402
from tlgen.cli.main import main as tlgen  # noqa: E402
from tlgen.data import dataset  # noqa: E402
from tlgen.metrics import timescale_eval  # noqa: E402


@contextlib.contextmanager
def before():
    """The reading and medians of before: a one-frame cache, np.median."""
    median = lambda frames: np.median(np.asarray(frames, np.float32), axis=0)  # noqa: E731
    saved = dataset.FRAME_CACHE_BYTES, dataset.frame_median, timescale_eval.frame_median
    dataset.FRAME_CACHE_BYTES, dataset.frame_median, timescale_eval.frame_median = 0, median, median
    try:
        yield
    finally:
        dataset.FRAME_CACHE_BYTES, dataset.frame_median, timescale_eval.frame_median = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tlgen-eval-speed-") as work:
        data, run = os.path.join(work, "data"), os.path.join(work, "run")
        config = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tlgen",
                              "configs", "timescale_ae_synthetic.py:tiny")
        assert tlgen(["prepare", "synthetic:city:frames=720", "--size", "64", "--out", data]) == 0
        assert tlgen(["train", "--config", config, "--workdir", run, f"--config.data.dir={data}",
                      "--config.total_steps=2"]) == 0
        report = os.path.join(run, "eval", "report.json")

        def timed(variant):
            with variant():
                start = time.perf_counter()
                assert tlgen(["eval", "--workdir", run]) == 0
                seconds = time.perf_counter() - start
            with open(report) as f:
                return seconds, f.read()

        _, reference = timed(contextlib.nullcontext)                   # warm-up: compiles
        seconds = {"before": [], "today": []}
        for _ in range(args.rounds):
            for name, variant in (("before", before), ("today", contextlib.nullcontext)):
                took, text = timed(variant)
                assert text == reference, f"the {name} eval's report differs"
                seconds[name].append(round(took, 2))
                print(name, took, flush=True)
        write_json({"kind": "timescale_eval_speed", "date": datetime.datetime.now().isoformat(timespec="seconds"),
                    "environment": environment(), "data": "synthetic:city:frames=720 at 64x64",
                    "what": "seconds of `tlgen eval --workdir RUN` (tiny config, 2 training steps), "
                            "alternating, after one warm-up eval; the reports are identical",
                    "seconds": seconds}, args.out)


if __name__ == "__main__":
    main()
