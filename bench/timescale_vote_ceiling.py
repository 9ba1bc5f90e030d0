"""How far voting over captured frames can go: the per-pixel median of the K frames whose
*true* band is nearest (what perfect codes would pick, K = 8..64) against the temporal median
over a window of the cutoff, PSNR against the true band, on the frames `tlgen eval` scores in
the held-out days of the two synthetic city renderings of bench/timescale_baselines.py, at the
cutoffs of the demo's configuration (configs/timescale_ae_synthetic.py:tiny). No model is
involved: this bounds the neighbour rendering (`tlgen timelapse --render neighbours`) from
above. Writes one record.

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

from timescale_baselines import SCENES, prepare_scenes  # noqa: E402  (this folder)
from tlgen import config as config_lib  # noqa: E402
from tlgen.bench.report import write_json  # noqa: E402
from tlgen.data import open_dataset  # noqa: E402
from tlgen.families.timescale_ae.inference import evaluation_block, synthetic_scene  # noqa: E402
from tlgen.families.timescale_ae.levels import trained_levels  # noqa: E402
from tlgen.metrics import timescale_eval as rep  # noqa: E402
from tlgen.models.pixels import frame_shape  # noqa: E402

COUNTS = (8, 16, 32, 64)
DEMO_CONFIG = "configs/timescale_ae_synthetic.py:tiny"


def ceiling(data_dir: str) -> list[dict]:
    """One row per cutoff: window median and oracle-selected medians (PSNR, dB)."""
    ds = open_dataset(data_dir)
    config = config_lib.load(DEMO_CONFIG, [f"data.dir={data_dir}"])
    cutoffs = trained_levels(config, ds.level_periods).cutoffs
    split, block, pick = evaluation_block(ds)
    times_all, get_frames = ds.video_frames(block.video_id, [split])
    frames = get_frames(np.arange(len(times_all))).astype(np.float32) / 255.0
    query = np.searchsorted(times_all, block.times[pick])
    scene, start_time = synthetic_scene(ds, block.video_id)
    rows = []
    for cutoff in cutoffs:
        band = scene.render_band(start_time + times_all, cutoff)
        truth, flat = band[query], band.reshape(len(band), -1).astype(np.float64)
        sq = np.sum(flat ** 2, axis=1)
        order = np.argsort(sq[query, None] - 2 * flat[query] @ flat.T + sq[None], axis=1, kind="stable")
        window = rep.temporal_median(times_all, frames, times_all[query], cutoff)
        row = {"cutoff_s": float(cutoff), "window median": round(rep.mean_psnr(window, truth), 2)}
        for k in COUNTS:
            voted = np.stack([np.median(frames[i], axis=0) for i in order[:, :k]])
            row[f"oracle median K={k}"] = round(rep.mean_psnr(voted, truth), 2)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--work", default=None, help="folder for the datasets, kept (default: a temporary folder, removed at the end)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tlgen-ceiling-") as scratch:
        size = frame_shape(config_lib.load(DEMO_CONFIG).model.image_size)
        data = prepare_scenes(args.work or scratch, size)
        results = []
        for name, source in SCENES.items():
            rows = ceiling(data[name])
            results.append({"scene": name, "data": source, "rows": rows})
            for r in rows:
                print(name, r, flush=True)
        write_json({"kind": "timescale_vote_ceiling", "date": datetime.datetime.now().isoformat(timespec="seconds"),
                    "what": "PSNR (dB) against the true band of the 64 held-out frames `tlgen eval` scores: "
                            "the temporal median over a window of the cutoff, and the per-pixel median of "
                            "the K frames of the held-out days whose true band is nearest (perfect selection)",
                    "results": results}, args.out)


if __name__ == "__main__":
    main()
