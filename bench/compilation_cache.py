"""The commands' compilation cache on this machine: seconds of `tlgen timelapse` and of a
resumed `tlgen train` (2 more steps) of the tiny timescale model, each run in a fresh process
without the cache (TLGEN_XLA_CACHE=off), with an empty cache and with the cache the first
run filled. Writes one record to --out.

  python bench/compilation_cache.py --out bench/results/compilation-cache-cpu.json
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tlgen.bench.report import write_json  # noqa: E402


def seconds(command: list[str], cache: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tlgen", *command], check=True, capture_output=True,
                   env=dict(env, TLGEN_XLA_CACHE=cache, TLGEN_PROGRESS="0"))
    return round(time.perf_counter() - start, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tlgen-cache-") as work:
        data, run = os.path.join(work, "data"), os.path.join(work, "run")
        subprocess.run([sys.executable, "-m", "tlgen", "prepare", "synthetic:city:frames=504", "--out", data],
                       check=True, capture_output=True)
        subprocess.run([sys.executable, "-m", "tlgen", "train", "--config", "configs/timescale_ae_synthetic.py:tiny",
                        "--workdir", run, f"--config.data.dir={data}", "--config.total_steps=2"],
                       check=True, capture_output=True, env=dict(os.environ, TLGEN_XLA_CACHE="off"))
        steps = iter(range(4, 100, 2))
        commands = {"timelapse": lambda: ["timelapse", "--workdir", run, "--data", data, "--out",
                                          os.path.join(work, "t.mp4"), "--frames", "48", "--start", "0",
                                          "--end", "1000000", "--mode", "multiscale"],
                    "train (resumed, 2 more steps)": lambda: ["train", "--workdir", run,
                                                              f"--config.total_steps={next(steps)}"]}
        rows = []
        for name, command in commands.items():
            cache = os.path.join(work, f"cache-{len(rows)}")
            row = {"command": name, "no_cache_s": [seconds(command(), "off") for _ in range(2)],
                   "empty_cache_s": seconds(command(), cache),
                   "filled_cache_s": [seconds(command(), cache) for _ in range(2)]}
            print(row, flush=True)
            rows.append(row)
        write_json([{"kind": "compilation_cache", "date": datetime.datetime.now().isoformat(timespec="seconds"),
                     "rows": rows, "note": "tiny timescale model, 64x64 synthetic city (504 frames); each "
                     "command a fresh process; the cache is JAX's persistent compilation cache as the "
                     "tlgen commands set it up (every program kept)"}], args.out)


if __name__ == "__main__":
    main()
