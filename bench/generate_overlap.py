"""What fetching each chunk one behind is worth: `tlgen generate` (the CLI, in one process,
after a warm-up) of tiny StyleGAN-V, long-video and long-video + super-resolution runs, each
trained one step on a synthetic scene, with the families' chunks fetched one behind
(`tlgen.streaming.fetched`, the default) and fetched as each is made (the device idles while
the host writes), alternated. Writes one record to --out.

  python bench/generate_overlap.py --out bench/results/generate-overlap-cpu.json
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
os.environ.setdefault("TLGEN_PROGRESS", "0")

import numpy as np  # noqa: E402

from tlgen.bench.report import write_json  # noqa: E402
from tlgen.cli.main import main as tlgen  # noqa: E402
from tlgen.families.long_video import inference as long_video  # noqa: E402
from tlgen.families.stylegan_v import inference as stylegan_v  # noqa: E402
from tlgen.streaming import fetched  # noqa: E402

RUNS = {   # name: (scene, size, config)
    "stylegan_v": ("synthetic:clouds:frames=128", "32", "configs/stylegan_v_clouds.py:tiny"),
    "long_video": ("synthetic:city:frames=504", "36x64", "configs/long_video_city.py:tiny"),
    "long_video_sr": ("synthetic:city:frames=160", "144x256", "configs/long_video_sr_city.py:tiny"),
}


def at_once(chunks):
    """Each chunk fetched as soon as it is made (what `fetched` replaces)."""
    for chunk in chunks:
        yield np.asarray(chunk)


def train(work: str, name: str) -> str:
    scene, size, config = RUNS[name]
    data, workdir = os.path.join(work, f"{name}-data"), os.path.join(work, name)
    subprocess.run([sys.executable, "-m", "tlgen", "prepare", scene, "--size", size, "--out", data],
                   check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "tlgen", "train", "--config", config, "--workdir", workdir,
                    f"--config.data.dir={data}", "--config.total_steps=1", "--config.train.eval_every=0",
                    "--config.train.sample_every=0"], check=True, capture_output=True)
    return workdir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tlgen-overlap-") as work:
        runs = {name: train(work, name) for name in RUNS}
        cases = {"stylegan_v": ["--workdir", runs["stylegan_v"], "--frames", "1024", "--num", "2"],
                 "long_video": ["--workdir", runs["long_video"], "--frames", "2048", "--num", "2"],
                 "long_video_sr": ["--workdir", runs["long_video"], "--superres", runs["long_video_sr"],
                                   "--frames", "256"]}
        rows = []
        for name, generate in cases.items():
            seconds = {"one_behind": [], "at_once": []}
            for k in range(-1, args.repeats):          # k = -1: the warm-up (compiles)
                for way, fetch in (("at_once", at_once), ("one_behind", fetched)):
                    stylegan_v.fetched = long_video.fetched = fetch
                    start = time.perf_counter()
                    assert tlgen(["generate", *generate, "--out", os.path.join(work, f"{name}-{way}-{k}.mp4")]) == 0
                    if k >= 0:
                        seconds[way].append(round(time.perf_counter() - start, 2))
            named = [os.path.basename(a) if a.startswith(work) else a for a in generate]   # runs by name
            row = {"case": name, "generate": " ".join(named), "seconds": seconds,
                   "median_ratio": round(float(np.median(seconds["one_behind"]) / np.median(seconds["at_once"])), 3)}
            print(row, flush=True)
            rows.append(row)
        stylegan_v.fetched = long_video.fetched = fetched
    write_json([{"kind": "generate_overlap", "date": datetime.datetime.now().isoformat(timespec="seconds"),
                 "rows": rows, "note": "tlgen generate in one process (the CLI's main), compile cache warm; "
                 "at_once fetches each chunk before the next is dispatched, one_behind (the default) after; "
                 "median_ratio < 1: one_behind is faster"}], args.out)


if __name__ == "__main__":
    main()
