"""Band fidelity of the timescale autoencoder against the strongest simple baselines, as
`tlgen demo` trains it (configs/timescale_ae_synthetic.py:tiny, synthetic:city at 64²):
PSNR against the true band-limited frames at each cutoff for the masked reconstruction,
the neighbour rendering, the raw frame, the oracle temporal Gaussian (sigma tuned on the
truth per cutoff), the temporal median and the temporal pyramid; for today's defaults and
for the paper's decoder (no background image). Trained on rendering seed 0; scored on seed 0's
validation split (where settings are chosen) and on a held-out rendering, seed 1 with an
irregular capture (the report). Writes one record to --out.

  python bench/timescale_baselines.py --out bench/results/timescale-baselines-cpu.json
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
from tlgen.cli.demo import DEMO_STEPS  # noqa: E402
from tlgen.data.prepare import prepare  # noqa: E402
from tlgen.families.timescale_ae import inference  # noqa: E402
from tlgen.trained import load  # noqa: E402
from tlgen.train.trainer import train  # noqa: E402

SCENES = {"chosen on": "synthetic:city", "held-out report": "synthetic:city:seed=1,irregular=1"}
# Today's defaults, and the paper's decoder (every pixel from the bins) for comparison.
VARIANTS = {"default": [], "paper decoder": ["model.background=False"]}
WHAT = ("PSNR (dB) against the scene's true band at each cutoff (64 frames of the first "
        "validation block): decode = decode(mask(w, k)); neighbours = the per-pixel median of "
        "the video's frames whose masked codes are nearest; detail = the frame minus the decoded "
        "fast bins; oracle blur: temporal Gaussian with sigma chosen on the truth per cutoff; "
        "median: over a window of the cutoff; pyramid: the dataset's temporal pyramid level")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=DEMO_STEPS,
                        help=f"training steps (the demo's: {DEMO_STEPS})")
    parser.add_argument("--work", default=None, help="folder for the datasets and the run (default: a temp dir)")
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="tlgen-baselines-")
    data = {role: os.path.join(work, f"data{i}") for i, role in enumerate(SCENES)}
    for role, source in SCENES.items():
        if not os.path.exists(data[role]):
            prepare([source], data[role], size=64)
    records = []
    for variant, overrides in VARIANTS.items():
        config = config_lib.load("configs/timescale_ae_synthetic.py:tiny",
                                 [f"data.dir={data['chosen on']}", f"total_steps={args.steps}", *overrides])
        workdir = os.path.join(work, f"run-{variant}")
        start = time.perf_counter()
        metrics = train(config, workdir)
        train_s = time.perf_counter() - start
        trained = load(workdir)
        scores = []
        for role, source in SCENES.items():
            report = inference.evaluate(trained, os.path.join(work, f"eval-{variant}{len(scores)}"), data[role])
            scores.append({"role": role, "data": source, "band_fidelity": report["band_fidelity"],
                           "leakage": report["leakage"], "timelapse_e_tmp": report["timelapse"],
                           "notes": report["notes"]})
            print(f"{variant}, {role} ({source}):")
            for r in report["band_fidelity"]:
                print(f"  cutoff {r['cutoff_s'] / 3600:6.2f} h: decode {r['decode']:.2f}  neighbours "
                      f"{r['neighbours']:.2f}  raw {r['raw']:.2f}  oracle blur {r['oracle blur']:.2f} "
                      f"(sigma {r['oracle_sigma_s'] / 3600:.2f} h)  median {r['median']:.2f}  "
                      f"pyramid {r['pyramid']:.2f}")
        records.append({"kind": "timescale_baselines", "variant": variant, "overrides": overrides,
                        "date": datetime.datetime.now().isoformat(timespec="seconds"),
                        "config": "configs/timescale_ae_synthetic.py:tiny", "steps": args.steps,
                        "train_s": round(train_s, 1), "final_loss": metrics.get("loss"),
                        "what": WHAT, "results": scores})
    write_json(records, args.out)


if __name__ == "__main__":
    main()
