"""How far voting over captured frames can go: the per-pixel median of the K frames whose
*true* band is nearest (what perfect codes would pick, K = 8..64) against the temporal median
over a window of the cutoff, PSNR against the true band, on the held-out days of the two
synthetic city renderings of bench/timescale_baselines.py, at the cutoffs of the demo's
configuration (configs/timescale_ae_synthetic.py:tiny). No model is involved: this bounds the
neighbour rendering (`tlgen timelapse --render neighbours`) from above. Writes one record.

  python bench/timescale_vote_ceiling.py --out bench/results/timescale-vote-ceiling-cpu.json
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tlgen import config as config_lib  # noqa: E402
from tlgen.bench.report import write_json  # noqa: E402
from tlgen.data import open_dataset  # noqa: E402
from tlgen.data.prepare import prepare  # noqa: E402
from tlgen.data.synthetic import make_scene  # noqa: E402
from tlgen.families.timescale_ae.levels import trained_levels  # noqa: E402
from tlgen.metrics import timescale_eval as rep  # noqa: E402

SCENES = {"city0": "synthetic:city", "city1": "synthetic:city:seed=1,irregular=1"}
COUNTS = (8, 16, 32, 64)
EVAL_FRAMES = 64            # as `tlgen eval`: evenly spread over the first validation block


def ceiling(data_dir: str) -> list[dict]:
    """One row per cutoff: window median and oracle-selected medians (PSNR, dB)."""
    ds = open_dataset(data_dir)
    config = config_lib.load("configs/timescale_ae_synthetic.py:tiny", [f"data.dir={data_dir}"])
    cutoffs = trained_levels(config, ds.level_periods).cutoffs
    block = ds.blocks("validation", 0)[0]
    times_all, get_frames = ds.video_frames(block.video_id, ["validation"])
    frames = get_frames(np.arange(len(times_all))).astype(np.float32) / 255.0
    pick = np.unique(np.linspace(0, block.count - 1, min(EVAL_FRAMES, block.count)).astype(int))
    query = np.searchsorted(times_all, block.times[pick])
    video = next(v for v in ds.metadata["videos"] if v["id"] == block.video_id)
    scene = make_scene(**video["synthetic"])
    at_all = float(video.get("start_time") or 0.0) + times_all
    rows = []
    for cutoff in cutoffs:
        band = scene.render_band(at_all, cutoff)
        truth, flat = band[query], band.reshape(len(band), -1).astype(np.float64)
        sq = np.sum(flat ** 2, axis=1)
        dist = sq[query, None] - 2 * flat[query] @ flat.T + sq[None]
        row = {"cutoff_s": float(cutoff),
               "window median": round(rep.mean_psnr(rep.temporal_median(times_all, frames, times_all[query], cutoff), truth), 2)}
        for k in COUNTS:
            nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]
            voted = np.stack([np.median(frames[i], axis=0) for i in nearest])
            row[f"oracle median K={k}"] = round(rep.mean_psnr(voted, truth), 2)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--work", default=None, help="folder for the datasets (default: a temp dir)")
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="tlgen-ceiling-")
    results = []
    for name, source in SCENES.items():
        data = os.path.join(work, name)
        if not os.path.exists(data):
            prepare([source], data, size=64)
        rows = ceiling(data)
        results.append({"scene": name, "data": source, "rows": rows})
        for r in rows:
            print(name, {k: v for k, v in r.items()}, flush=True)
    write_json({"kind": "timescale_vote_ceiling", "date": datetime.datetime.now().isoformat(timespec="seconds"),
                "what": "PSNR (dB) against the true band of 64 held-out frames: the temporal median over a "
                        "window of the cutoff, and the per-pixel median of the K frames of the held-out "
                        "days whose true band is nearest (perfect selection)",
                "results": results}, args.out)


if __name__ == "__main__":
    main()
