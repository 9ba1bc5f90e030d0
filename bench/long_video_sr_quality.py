"""The super-resolution stage's quality against interpolation: a CPU run of
configs/long_video_sr_city.py (default `tiny`, its defaults but the dataset) on the synthetic
city at 144x256 (seed 0), then `tlgen eval` on that run twice — the city's held-out days, and
another street (seed 1) it never saw — each clip reduced 4x by area averaging and upscaled again
by the run and by bilinear, bicubic and Lanczos-3 interpolation (`long_video_sr.evaluation`).
Writes one record to --out.

  python bench/long_video_sr_quality.py --out bench/results/long-video-sr-quality-cpu.json
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tlgen import config as config_lib  # noqa: E402
from tlgen.bench.report import write_json  # noqa: E402
from tlgen.data.prepare import prepare  # noqa: E402
from tlgen.families.long_video_sr.evaluation import evaluate  # noqa: E402
from tlgen.trained import load  # noqa: E402
from tlgen.train.trainer import train  # noqa: E402

KEEP = ("method", "psnr", "ssim", "lowres_psnr", "e_tmp", "truth_e_tmp", "swd")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--config", default="configs/long_video_sr_city.py:tiny")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the config's)")
    parser.add_argument("--frames", type=int, default=1512, help="frames of each city (default 1512: 3 weeks)")
    parser.add_argument("--num-clips", type=int, default=16)
    parser.add_argument("--work", default=None, help="folder for the datasets and the run, kept "
                        "(default: a temporary folder, removed at the end)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tlgen-sr-quality-") as scratch:
        work = args.work or scratch
        cities = {seed: os.path.join(work, f"city{seed}") for seed in (0, 1)}
        for seed, path in cities.items():
            if not os.path.exists(path):
                prepare([f"synthetic:city:seed={seed},frames={args.frames}"], path, size=(144, 256))
        overrides = [f"data.dir={cities[0]}", "train.sample_every=0", "train.eval_every=0"]
        config = config_lib.load(args.config, overrides + ([f"total_steps={args.steps}"] if args.steps else []))
        workdir = os.path.join(work, "run")
        start = time.perf_counter()
        metrics = train(config, workdir)
        seconds = time.perf_counter() - start
        trained = load(workdir)
        scored = {}
        for name, data in (("held-out days of the training street (seed 0)", cities[0]),
                           ("another street (seed 1), never seen", cities[1])):
            report = evaluate(trained, os.path.join(workdir, f"eval-{os.path.basename(data)}"), data,
                              num_clips=args.num_clips)
            scored[name] = {"methods": [{k: row[k] for k in KEEP} for row in report["methods"]],
                            "samples": report["samples"], "notes": report["notes"]}
            print(name, scored[name]["methods"], flush=True)
        record = {"kind": "long_video_sr_quality", "date": datetime.datetime.now().isoformat(timespec="seconds"),
                  "command": "python " + " ".join(sys.argv), "config": args.config, "overrides": overrides,
                  "steps": trained.step, "train_s": round(seconds, 1),
                  "final_train_row": {k: round(float(v), 4) for k, v in metrics.items()
                                      if isinstance(v, (int, float))},
                  "data": f"synthetic:city, {args.frames} frames at 144x256, seeds 0 (trained on) and 1",
                  "eval": "tlgen eval on the run (tlgen.families.long_video_sr.evaluation), validation split, "
                          f"up to {args.num_clips} clips",
                  "scored": scored}
        write_json([record], args.out)


if __name__ == "__main__":
    main()
