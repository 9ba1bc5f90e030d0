"""Time Flies on the synthetic city, where the truth is known: the mean image of one day of a
held-out rendering (another seed: another street) animated by the next 12 hours of the same
camera, scored against those 12 hours' true frames. Variants (each trained on seed 0's street,
per training seed): classwise NoiseAdaIN (the model), classwise AdaIN without noise, and plain
AdaIN (one region, no noise); beside them two baselines that need no training: the input
image unchanged, and classwise colour transfer on pixels (each class of the image given the
mean and std of the same class in the reference frame). Reports PSNR to the truth, E_tmp and
σ_tmp (the paper's eq. 12 and 13; the truth's own E_tmp beside them), SSIM to the input image
and the VGG Gram loss to the reference frames (the paper's Table 1 and Fig. 7 axes). The
reference is the truth here: the same camera, so σ_tmp compares the output's frame-to-frame
change with the truth's. VGG-19 has random weights here (none can be downloaded); with a
real file pass --vgg19.

  python bench/time_flies_compare.py --steps 300 --seeds 0 1 --out bench/results/time-flies-compare-cpu.json
  python bench/time_flies_compare.py --vgg19 vgg19.safetensors --steps 3000 --seeds 0 1 \
      --out bench/results/time-flies-compare-vgg19-cpu.json
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from tlgen import config as config_lib  # noqa: E402
from tlgen.bench.report import write_json  # noqa: E402
from tlgen.data.prepare import prepare  # noqa: E402
from tlgen.data.synthetic import DAY, make_scene  # noqa: E402
from tlgen.families.time_flies.evaluation import clip_scores, grams, pixel_transfer  # noqa: E402
from tlgen.families.time_flies.inference import Animator  # noqa: E402
from tlgen.metrics.protocol import mean_scores  # noqa: E402
from tlgen.trained import load  # noqa: E402
from tlgen.train.trainer import train  # noqa: E402

VARIANTS = {"classwise NoiseAdaIN (the model)": (True, True),
            "classwise AdaIN, no noise": (True, False),
            "plain AdaIN (one region, no noise)": (False, False)}
INTERVAL = 1200.0
WINDOW = 36            # reference frames = output frames: 12 hours


def test_windows(size: int, count: int, seed: int = 1):
    """(image, image labels, reference frames, reference labels, true frames) per window k:
    day k's mean frame, and the 12 hours after it of the same camera."""
    scene = make_scene(name="city", seed=seed, size=size)
    labels = scene.masks([0.0])[0]
    out = []
    for k in range(count):
        day = scene.render(k * DAY + INTERVAL * np.arange(int(DAY / INTERVAL)))
        image = np.rint(day.astype(np.float64).mean(0)).astype(np.uint8)
        reference = scene.render((k + 1) * DAY + 0.25 * DAY + INTERVAL * np.arange(WINDOW))
        out.append((image, labels, reference, np.repeat(labels[None], WINDOW, 0), reference))
    return out


def score(workdir: str | None, windows, vgg) -> dict:
    """Mean scores over the windows of a run (or, with workdir None, of the two baselines)."""
    if workdir is not None:
        anim = Animator(load(workdir))
    rows = {}
    for image, labels, reference, ref_labels, truth in windows:
        style = grams(vgg, reference)
        if workdir is None:
            made = {"input image, unchanged": np.broadcast_to(image, truth.shape),
                    "classwise colour transfer on pixels": pixel_transfer(image, labels, reference, ref_labels)}
        else:
            made = {"": anim.animate(image, labels, reference, ref_labels, seed=0)}
        for name, frames in made.items():
            rows.setdefault(name, []).append(clip_scores(frames, image, style, truth, vgg))
    return {name: mean_scores(r) for name, r in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--vgg19", default="", help="VGG-19 weights (default: random weights)")
    parser.add_argument("--work", default=None, help="folder for the datasets and the runs, kept "
                        "(default: a temporary folder, removed at the end)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tlgen-tf-") as scratch:
        work = args.work or scratch
        os.makedirs(work, exist_ok=True)
        vgg = args.vgg19 or os.path.join(work, "vgg19-random.safetensors")
        if not args.vgg19 and not os.path.exists(vgg):
            from tests import random_weights
            from tlgen.models import vgg19
            random_weights.write(vgg, vgg19.abstract_params(), vgg19.torch_prefixes())
        data = os.path.join(work, "city")
        if not os.path.exists(data):
            prepare([f"synthetic:city:seed=0,frames={int(4 * DAY / INTERVAL)}"], data, size=args.size, levels=1)
        windows = test_windows(args.size, args.windows)
        from tlgen.families.time_flies.training import load_vgg19
        vgg_params = load_vgg19(config_lib.load("configs/time_flies_city.py:tiny", [f"model.vgg19={vgg}"]))
        results = [{"variant": name, **row} for name, row in score(None, windows, vgg_params).items()]
        for row in results:
            print(row, flush=True)
        for seed in args.seeds:
            for name, (classwise, noise) in VARIANTS.items():
                config = config_lib.load("configs/time_flies_city.py:tiny", [
                    f"data.dir={data}", f"data.image_size={args.size}", f"model.vgg19={vgg}",
                    f"total_steps={args.steps}", f"seed={seed}", f"model.classwise={classwise}",
                    f"model.noise={noise}", "train.eval_every=0", "train.sample_every=0",
                    f"train.ckpt_every={args.steps}"])
                workdir = os.path.join(work, f"run-{seed}-{int(classwise)}{int(noise)}")
                timing = os.path.join(workdir, "train_seconds.txt")
                if os.path.exists(timing):       # a finished run in --work is only scored again
                    seconds = float(open(timing).read())
                else:
                    start = time.perf_counter()
                    train(config, workdir)
                    seconds = time.perf_counter() - start
                    with open(timing, "w") as f:
                        f.write(f"{seconds:.1f}")
                row = {"seed": seed, "variant": name, "classwise": classwise, "noise": noise,
                       **score(workdir, windows, vgg_params)[""], "train_s": round(seconds, 1)}
                print(row, flush=True)
                results.append(row)
        record = {"kind": "time_flies_compare", "date": datetime.datetime.now().isoformat(timespec="seconds"),
                  "config": "configs/time_flies_city.py:tiny", "size": args.size, "steps": args.steps,
                  "train_data": "synthetic:city seed 0, 4 days every 20 min",
                  "test": f"synthetic:city seed 1: {args.windows} windows, day k's mean frame animated by "
                          f"{WINDOW} frames from 6 h into day k+1, scored against those frames",
                  "vgg19": args.vgg19 or "random weights (tests/random_weights.py, seed 0)",
                  "results": results}
        write_json([record], args.out)


if __name__ == "__main__":
    main()
