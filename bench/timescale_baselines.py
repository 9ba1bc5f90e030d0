"""Band fidelity of the timescale autoencoder against the strongest simple baselines, as
`tlgen demo` trains it (configs/timescale_ae_synthetic.py:tiny, synthetic:city at 64²;
`--config-variant base` trains the `base` config at its 128² instead, a GPU's run):
PSNR against the true band-limited frames at each cutoff for the masked reconstruction,
the neighbour rendering, the raw frame, the oracle temporal Gaussian (sigma tuned on the
truth per cutoff), the temporal median, the period mean (median per hour of the day, mean
over the hours), the nearest frames (in appearance) and the temporal pyramid; for today's
defaults, the paper's decoder (no background image) and the paper's whole recipe (configs/
timescale_ae_synthetic.py PAPER_RECIPE, on the same levels); the additive decoder
(`model.additive`: each bin decoded alone, masking drops its contribution); positives
from gaps of 0.05-1 cutoff instead of 0.05-0.2 ("wide positives"); and, at the day-scale
levels, the positive of the anchor's hour nearest in look instead of one day apart ("look
positives", `loss.period_positive=look`).

Two renderings of the city: seed 0 ("city0", where settings were chosen) and seed 1 with an
irregular capture ("city1", the report). A model is trained on each rendering's training
days and scored on the held-out validation days of both: of its own capture (the use:
`tlgen train` on a capture, then timelapses of it) and of the other, a street it never saw.
With several training seeds (`--seeds`) a summary record gives each method's mean and
standard deviation over the seeds. Writes the records to --out.

  python bench/timescale_baselines.py --variants default --seeds 0 1 2 --out bench/results/timescale-baselines-cpu.json
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tlgen.configs.timescale_ae_synthetic import PAPER_RECIPE  # noqa: E402
from tlgen import config as config_lib  # noqa: E402
from tlgen.bench.report import write_json  # noqa: E402
from tlgen.cli.demo import DEMO_STEPS  # noqa: E402
from tlgen.data.prepare import prepare  # noqa: E402
from tlgen.families.timescale_ae import inference  # noqa: E402
from tlgen.families.timescale_ae.inference import BAND_METHODS, margin_over_baselines  # noqa: E402
from tlgen.models.pixels import frame_shape  # noqa: E402
from tlgen.trained import load  # noqa: E402
from tlgen.train.trainer import train  # noqa: E402

SCENES = {"city0": "synthetic:city", "city1": "synthetic:city:seed=1,irregular=1"}
# Today's defaults, the paper's decoder (every pixel from the bins), its whole recipe, and
# the decoder that draws each bin alone and sums their contributions, and positives from the
# whole band below each cutoff instead of its fast end, and positives matched in look.
VARIANTS = {"default": [], "paper decoder": ["model.background=False"],
            "paper recipe": list(PAPER_RECIPE), "additive decoder": ["model.additive=True"],
            "wide positives": ["loss.gap_band=(0.05, 1.0)"],
            "look positives": ["loss.period_positive=look"]}
WHAT = ("PSNR (dB) against the scene's true band at each cutoff (64 frames of the first "
        "validation block): decode = decode(mask(w, k)); neighbours = the per-pixel median of "
        "the video's frames whose masked codes are nearest (beyond the day: of the nearest in "
        "each hour of the day, then the mean over the hours); detail = the frame minus the "
        "decoded fast bins; oracle blur: temporal Gaussian with sigma chosen on the truth per "
        "cutoff; median: over a window of the cutoff; period mean: over a window of the cutoff, "
        "the median in each hour of the day, then the mean over the hours; nearest frames: the "
        "per-pixel median of as many frames as the neighbour rendering takes, nearest the raw "
        "frame in 8x8 cell means; pyramid: the dataset's temporal pyramid level")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=DEMO_STEPS,
                        help=f"training steps (the demo's: {DEMO_STEPS})")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (config.seed)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--train-on", nargs="+", choices=list(SCENES), default=list(SCENES))
    parser.add_argument("--config-variant", default="tiny", choices=("tiny", "base", "large"),
                        help="configs/timescale_ae_synthetic.py's variant (the demo's: tiny)")
    parser.add_argument("--work", default=None, help="folder for the datasets and the runs, kept (default: a temporary folder, removed at the end)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tlgen-baselines-") as scratch:
        work = args.work or scratch
        config_path = f"configs/timescale_ae_synthetic.py:{args.config_variant}"
        data = prepare_scenes(work, frame_shape(config_lib.load(config_path).model.image_size))
        records = [run(config_path, variant, scene, seed, data, work, args.steps)
                   for variant in args.variants for scene in args.train_on for seed in args.seeds]
        if len(args.seeds) > 1:
            records.append(summary(records))
        write_json(records, args.out)


def prepare_scenes(work: str, size: tuple[int, int]) -> dict:
    """{name: dataset folder} of SCENES at `size` (H, W) under `work` (prepared once, reused after)."""
    data = {name: os.path.join(work, f"{name}-{size[0]}x{size[1]}") for name in SCENES}
    for name, source in SCENES.items():
        if not os.path.exists(data[name]):
            prepare([source], data[name], size=size)
    return data


def run(config_path: str, variant: str, scene: str, seed: int, data: dict, work: str,
        steps: int) -> dict:
    """Trains one variant of `config_path` on one rendering with one seed; band fidelity on
    every rendering."""
    overrides = VARIANTS[variant]
    config = config_lib.load(config_path,
                             [f"data.dir={data[scene]}", f"total_steps={steps}", f"seed={seed}",
                              *overrides])
    name = f"{config_path.rsplit(':', 1)[1]}-{variant.replace(' ', '-')}-{scene}-{seed}"
    workdir = os.path.join(work, f"run-{name}")
    start = time.perf_counter()
    metrics = train(config, workdir)
    train_s = time.perf_counter() - start
    trained = load(workdir)
    scores = []
    for name, source in SCENES.items():
        report = inference.evaluate(trained, os.path.join(workdir, f"eval-{name}"), data[name])
        role = "own capture, held-out days" if name == scene else "unseen street"
        scores.append({"scored_on": name, "role": role, "data": source,
                       "band_fidelity": report["band_fidelity"], "leakage": report["leakage"],
                       "timelapse_e_tmp": report["timelapse"], "flicker": report["flicker"],
                       "notes": report["notes"]})
        print(f"{variant}, trained on {scene}, seed {seed}; scored on {name} ({role}):")
        for r in report["band_fidelity"]:
            print(f"  cutoff {r['cutoff_s'] / 3600:6.2f} h: decode {r['decode']:.2f}  neighbours "
                  f"{r['neighbours']:.2f}  raw {r['raw']:.2f}  oracle blur {r['oracle blur']:.2f} "
                  f"(sigma {r['oracle_sigma_s'] / 3600:.2f} h)  median {r['median']:.2f}  "
                  f"period mean {r['period mean']:.2f}  nearest frames {r['nearest frames']:.2f}  "
                  f"pyramid {r['pyramid']:.2f}", flush=True)
    return {"kind": "timescale_baselines", "variant": variant, "trained_on": scene,
            "data": SCENES[scene], "seed": seed, "overrides": overrides,
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "config": config_path, "steps": steps,
            "train_s": round(train_s, 1), "final_loss": metrics.get("loss"),
            "what": WHAT, "results": scores}


def summary(records: list[dict]) -> dict:
    """Mean and sample standard deviation over seeds of every method's PSNR, per variant,
    training rendering, scored rendering and cutoff, and in how many seeds the neighbour
    rendering beats every baseline by 1 dB or more."""
    rows = []
    groups = dict.fromkeys((r["variant"], r["trained_on"]) for r in records)
    for variant, scene in groups:
        runs = [r for r in records if (r["variant"], r["trained_on"]) == (variant, scene)]
        for i, scored in enumerate(runs[0]["results"]):
            tables = [r["results"][i]["band_fidelity"] for r in runs]
            for j, cutoff in enumerate(t["cutoff_s"] for t in tables[0]):
                cells = [t[j] for t in tables]
                row = {"variant": variant, "trained_on": scene, "scored_on": scored["scored_on"],
                       "role": scored["role"], "cutoff_s": cutoff}
                for name in (*BAND_METHODS, "oracle_sigma_s"):
                    values = np.array([c[name] for c in cells], np.float64)
                    row[name] = {"mean": round(float(values.mean()), 2),
                                 "std": round(float(values.std(ddof=1)), 2)}
                row["neighbours_win_1db"] = int(sum(margin_over_baselines(c) >= 1.0 for c in cells))
                rows.append(row)
    return {"kind": "timescale_baselines_summary", "seeds": sorted({r["seed"] for r in records}),
            "what": "mean and sample std over training seeds of the PSNR (dB) of each method; "
                    "neighbours_win_1db: seeds where the neighbour rendering beats every baseline "
                    "(raw frame, oracle blur, median, period mean, nearest frames) by 1 dB or more", "rows": rows}


if __name__ == "__main__":
    main()
