"""Band fidelity of the timescale autoencoder against the strongest simple baselines, as
`tlgen demo` trains it (configs/timescale_ae_synthetic.py:tiny, synthetic:city at 64²):
PSNR against the true band-limited frames at each cutoff for the masked reconstruction,
the raw frame, the oracle temporal Gaussian (sigma tuned on the truth per cutoff), the
temporal median and the temporal pyramid. Trained on rendering seed 0; scored on seed 0's
validation split (where settings are chosen) and on a held-out rendering, seed 1 with an
irregular capture (the report). Writes one record to --out.

  python bench/timescale_baselines.py --steps 400 --out bench/results/timescale-baselines-cpu.json
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
from tlgen.families.timescale_ae import inference  # noqa: E402
from tlgen.trained import load  # noqa: E402
from tlgen.train.trainer import train  # noqa: E402

SCENES = {"chosen on": "synthetic:city", "held-out report": "synthetic:city:seed=1,irregular=1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=400, help="training steps (the demo's: 400)")
    parser.add_argument("--work", default=None, help="folder for the datasets and the run (default: a temp dir)")
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="tlgen-baselines-")
    data = {role: os.path.join(work, f"data{i}") for i, role in enumerate(SCENES)}
    for role, source in SCENES.items():
        if not os.path.exists(data[role]):
            prepare([source], data[role], size=64)
    config = config_lib.load("configs/timescale_ae_synthetic.py:tiny",
                             [f"data.dir={data['chosen on']}", f"total_steps={args.steps}"])
    workdir = os.path.join(work, "run")
    start = time.perf_counter()
    metrics = train(config, workdir)
    train_s = time.perf_counter() - start
    trained = load(workdir)
    scores = []
    for role, source in SCENES.items():
        report = inference.evaluate(trained, os.path.join(work, f"eval{len(scores)}"), data[role])
        scores.append({"role": role, "data": source, "band_fidelity": report["band_fidelity"],
                       "timelapse_e_tmp": report["timelapse"], "notes": report["notes"]})
        print(f"{role} ({source}):")
        for r in report["band_fidelity"]:
            print(f"  cutoff {r['cutoff_s'] / 3600:6.2f} h: decode {r['decode']:.2f}  raw {r['raw']:.2f}  "
                  f"oracle blur {r['oracle blur']:.2f} (sigma {r['oracle_sigma_s'] / 3600:.2f} h)  "
                  f"median {r['median']:.2f}  pyramid {r['pyramid']:.2f}")
    write_json([{"kind": "timescale_baselines", "date": datetime.datetime.now().isoformat(timespec="seconds"),
                 "config": "configs/timescale_ae_synthetic.py:tiny", "steps": args.steps,
                 "train_s": round(train_s, 1), "final_loss": metrics.get("loss"),
                 "what": "PSNR (dB) against the scene's true band at each cutoff (64 frames of the "
                         "first validation block); oracle blur: temporal Gaussian with sigma chosen on "
                         "the truth per cutoff; median: over a window of the cutoff",
                 "results": scores}], args.out)


if __name__ == "__main__":
    main()
