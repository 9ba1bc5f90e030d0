"""Change over long spans, measured without downloaded weights: the temporal power spectrum of
pooled frame statistics (mean brightness, mean R, G, B, contrast) of long generated videos
against the real capture's, on `synthetic:city` (a day/night cycle, weather over days; captured
every --interval seconds, default an hour, so that the `tiny` discriminators' 32-frame clips
span more than a day), for the low-resolution long-video model and StyleGAN-V trained on the
same capture (`tiny` configs, CPU). Writes one record to --out and the spectra side by side to
--plot.

  python bench/long_video_spectrum.py --out bench/results/long-video-spectrum-cpu.json \
      --plot bench/results/long-video-spectrum-cpu.png

Per spectrum: Welch (1,024-frame Hann segments, half-overlapping), its share of power in
period bands (3 h, 12 h, 36 h) and its log-spectral distance to the capture's (RMS dB
over periods 4-1,024 frames); per model also the frame and motion SWD of 64 random 32-frame windows of its videos
against 64 of the capture.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from tlgen.bench.report import write_json  # noqa: E402
from tlgen.data import open_dataset  # noqa: E402
from tlgen.metrics import distribution, temporal  # noqa: E402

SEGMENT = 1024
BAND_HOURS = (3.0, 12.0, 36.0)
DAY_S = 86400.0
MODELS = {"long_video": ("configs/long_video_city.py:tiny", "36x64"),
          "stylegan_v": ("configs/stylegan_v_clouds.py:tiny", "32")}


def tlgen(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "tlgen", *args], check=True, capture_output=True)


def capture(data: str) -> np.ndarray:
    """All frames of the dataset's video 0 in time order, uint8 (N, H, W, 3)."""
    times, get_frames = open_dataset(data).video_frames(0)
    return get_frames(np.arange(len(times)))


def windows(frames: np.ndarray, length: int, count: int, seed: int) -> np.ndarray:
    starts = np.random.default_rng(seed).integers(0, len(frames) - length, count)
    return np.stack([frames[s:s + length] for s in starts])


def training_seconds(workdir: str) -> float:
    """Seconds the run's steps took (from its logged steps per second; a resumed run counts once)."""
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    rows = [r for r in rows if r["split"] == "train" and r.get("steps_per_sec")]
    steps = np.diff([0] + [r["step"] for r in rows])
    return float(sum(n / r["steps_per_sec"] for n, r in zip(steps, rows)))


def describe(freqs, power, real_power, bands) -> dict:
    shares = temporal.band_shares(freqs, power, bands)
    return {"band_shares": {name: [round(float(v), 4) for v in shares[:, i]]
                            for i, name in enumerate(temporal.STATISTICS)},
            "log_spectral_distance_db": (None if real_power is None else {
                name: round(float(v), 2) for name, v in zip(
                    temporal.STATISTICS, temporal.log_spectral_distance(freqs, power, real_power, 4, SEGMENT))})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--plot")
    parser.add_argument("--steps", type=int, nargs=2, default=[1000, 2000], metavar=("LONG_VIDEO", "STYLEGAN_V"))
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=1, help="the generated videos' seed")
    parser.add_argument("--interval", type=float, default=3600.0, help="the capture's seconds between frames")
    parser.add_argument("--work", default=None, help="folder for the datasets and the runs, kept "
                        "(default: a temporary folder, removed at the end)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tlgen-lv-spectrum-") as scratch:
        work = args.work or scratch
        bands = tuple(h * 3600.0 / args.interval for h in BAND_HOURS)
        day = DAY_S / args.interval
        record = {"kind": "long_video_spectrum", "date": datetime.datetime.now().isoformat(timespec="seconds"),
                  "segment": SEGMENT, "bands_periods_frames": bands, "frame_interval_s": args.interval,
                  "videos": args.videos, "frames": args.frames, "seed": args.seed, "models": {}}
        spectra = {}
        for (name, (config, size)), steps in zip(MODELS.items(), args.steps):
            data, workdir = os.path.join(work, f"data{size}"), os.path.join(work, name)
            if not os.path.exists(data):
                tlgen("prepare", f"synthetic:city:interval={args.interval:g}", "--size", size, "--levels", "1", "--out", data)
            real = capture(data)
            if "real" not in spectra:
                spectra["real"] = temporal.power_spectrum(temporal.frame_statistics(real)[None], SEGMENT)
                record["real_frames"] = int(len(real))
            tlgen("train", "--config", config, "--workdir", workdir, f"--config.data.dir={data}",
                  f"--config.total_steps={steps}", "--config.train.eval_every=0", "--config.train.sample_every=0")
            npz = os.path.join(work, f"{name}.npz")
            tlgen("generate", "--workdir", workdir, "--frames", str(args.frames), "--num", str(args.videos),
                  "--seed", str(args.seed), "--grid", "--out", os.path.join(work, f"{name}.mp4"), "--npz", npz)
            videos = np.load(npz)["frames"]
            stats = np.stack([temporal.frame_statistics(v) for v in videos])
            spectra[name] = temporal.power_spectrum(stats, SEGMENT)
            clips = np.concatenate([windows(v, 32, 64 // len(videos), seed=i) for i, v in enumerate(videos)])
            real_clips = windows(real, 32, len(clips), seed=0)
            times = np.broadcast_to(np.arange(32, dtype=np.float32), (len(clips), 32))
            flat = lambda x: x.reshape((-1,) + x.shape[2:])
            record["models"][name] = {
                "config": config, "steps": steps, "train_s": round(training_seconds(workdir), 1), "size": size,
                "swd": round(distribution.swd(flat(real_clips), flat(clips))["swd"], 2),
                "motion_swd": round(distribution.motion_swd(real_clips, clips, times)["motion_swd"], 2),
                **describe(*spectra[name], spectra["real"][1], bands)}
            print(name, record["models"][name], flush=True)
        record["real"] = describe(*spectra["real"], None, bands)
        write_json([record], args.out)
        if args.plot:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
            for ax, name in zip(axes, ("real", *MODELS)):
                freqs, power = spectra[name]
                ax.loglog(1 / freqs[1:], power[1:, 0], label="brightness")
                ax.loglog(1 / freqs[1:], power[1:, 4], label="contrast", alpha=0.7)
                ax.axvline(day, color="gray", lw=0.8, ls="--")
                ax.set_title({"real": "capture (synthetic city)", "long_video": "long_video (tiny)",
                              "stylegan_v": "StyleGAN-V (tiny)"}[name])
                ax.set_xlabel("period (frames; dashed: one day)")
                ax.invert_xaxis()
            axes[0].set_ylabel("power")
            axes[0].legend()
            fig.tight_layout()
            fig.savefig(args.plot, dpi=110)


if __name__ == "__main__":
    main()
