"""Long-video generation on this machine: the peak memory and rate of `tlgen generate` (the
CLI) as the video grows, 1,000 and 10,000 frames, for a `tiny` low-resolution generator
(configs/long_video_city.py, 36x64) trained one step on the synthetic city; with --superres,
upscaled to 144x256 by a `tiny` super-resolution run (configs/long_video_sr_city.py) trained
one step. Writes one record to --out.

  python bench/long_video_generate.py --out bench/results/long-video-generate-cpu.json
  python bench/long_video_generate.py --superres --lengths 100 1000 \
      --out bench/results/long-video-sr-generate-cpu.json
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
os.environ["TLGEN_XLA_CACHE"] = "off"    # every run compiles, whatever an earlier one cached

from tlgen.bench.report import write_json  # noqa: E402
from tlgen.bench.timing import peak_rss_mib  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--lengths", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--chunk", type=int, default=128)
    parser.add_argument("--superres", action="store_true", help="upscale with a tiny super-resolution run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tlgen-lv-gen-") as work:
        stages = [("configs/long_video_city.py:tiny", "36x64")]
        if args.superres:
            stages.append(("configs/long_video_sr_city.py:tiny", "144x256"))
        runs = []
        for i, (config, size) in enumerate(stages):
            data, workdir = os.path.join(work, f"data{i}"), os.path.join(work, f"run{i}")
            subprocess.run([sys.executable, "-m", "tlgen", "prepare", "synthetic:city:frames=200",
                            "--size", size, "--levels", "1", "--out", data], check=True, capture_output=True)
            subprocess.run([sys.executable, "-m", "tlgen", "train", "--config", config, "--workdir", workdir,
                            f"--config.data.dir={data}", "--config.total_steps=1",
                            "--config.train.eval_every=0", "--config.train.sample_every=0"],
                           check=True, capture_output=True)
            runs.append(workdir)
        upscale = ["--superres", runs[1]] if args.superres else []
        memory = []
        for frames in args.lengths:
            start = time.perf_counter()
            rss = peak_rss_mib([sys.executable, "-m", "tlgen", "generate", "--workdir", runs[0], *upscale,
                                "--frames", str(frames), "--chunk", str(args.chunk),
                                "--out", os.path.join(work, f"g{frames}.mp4")])
            seconds = time.perf_counter() - start
            row = {"frames": frames, "size": stages[-1][1], "peak_rss_mib": round(rss, 1),
                   "seconds": round(seconds, 1), "frames_per_s_with_startup": round(frames / seconds, 1)}
            print(row, flush=True)
            memory.append(row)
        what = ("a tiny low-resolution generator and a tiny super-resolution generator (36x64 -> "
                "144x256), each trained one step" if args.superres else
                "a tiny low-resolution generator trained one step")
        write_json([{"kind": "long_video_generate", "date": datetime.datetime.now().isoformat(timespec="seconds"),
                     "config": " + ".join(c for c, _ in stages), "chunk": args.chunk, "memory": memory,
                     "note": "tlgen generate (the CLI, process start and compile included, no compilation "
                             f"cache) of {what}, "
                             "written to mp4"}], args.out)


if __name__ == "__main__":
    main()
