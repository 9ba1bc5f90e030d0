"""`tlgen eval` of the video generators (StyleGAN-V, the long videos, upscaled or not):
videos made from noise against the capture they learned, compared as distributions (a
generated frame has no real counterpart).

* Clips: as many generated videos of FVD's 16 frames (seed `CLIP_SEED`, from time 0) as the
  split gives distinct real clips of consecutive frames (`stride` records apart, drawn with
  `CLIP_SEED`, up to `num_videos`): the protocol's FID/KID, FVD and frame SWD
  (`tlgen.metrics.protocol`), and the motion SWD of frame differences per band of time gaps.
* Change over long spans: the temporal power spectrum (Welch) of pooled frame statistics
  (`tlgen.metrics.temporal`) of `spectrum_videos` generated videos of `spectrum_frames`
  frames, made and reduced chunk by chunk, against the capture's whole videos (every split,
  in time order, `stride` records apart): per statistic the log-spectral distance (RMS dB over
  periods from 4 frames to a segment) and the share of power at periods beyond an eighth of
  a segment, real and generated.

Writes clips.png (real clips' rows above the generated ones) and spectrum.png.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator

import numpy as np

from tlgen.errors import UserError
from tlgen.metrics import distribution, temporal
from tlgen.metrics.protocol import CLIP_SEED, FVD_FRAMES, Networks, eval_clips, four_figures, video_metrics
from tlgen.metrics.report import figure, save_png, video_strips

SEGMENT = 1024          # Welch segment at most (frames)
MIN_SEGMENT = 32        # shorter segments resolve no slow change
MIN_PERIOD = 4          # the log-spectral distance's fastest period (frames)
SLOW = 8                # "slow": periods beyond segment / SLOW
UNITS = ((86400.0, "days"), (3600.0, "hours"), (60.0, "minutes"), (1.0, "seconds"))   # the plot's periods

MOTION_PROTOCOL = ("SWD of frame differences x_t - x_0 (mapped to [0, 1], standardized by the real ones), "
                   "per band of gaps t: under 4 frames, 4 to 16, 16 and more; mean over the bands")
SPECTRUM_PROTOCOL = (f"Welch (Hann, half-overlapping segments of up to {SEGMENT} frames) of each frame's mean "
                     "brightness, R, G, B and contrast; log-spectral distance: RMS of 10 log10(generated / "
                     f"real) over periods {MIN_PERIOD} frames to a segment; slow share: power at periods "
                     f"beyond segment / {SLOW}")

Generate = Callable[..., Iterator[np.ndarray]]   # (trained, frames, num=, seed=) -> uint8 chunks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", default="validation",
                        help="StyleGAN-V, long_video: the split whose clips are scored (default validation)")
    parser.add_argument("--num-videos", type=int, default=32,
                        help="StyleGAN-V, long_video: generated and real 16-frame clips scored (default 32)")
    parser.add_argument("--spectrum-frames", type=int, default=2048,
                        help="StyleGAN-V, long_video: frames of each video whose temporal spectrum is compared "
                             "with the capture's (default 2048; 0: no spectrum)")
    parser.add_argument("--spectrum-videos", type=int, default=2,
                        help="StyleGAN-V, long_video: videos for the temporal spectrum (default 2)")


def capture_statistics(data_dir: str, stride: int, batch: int = 256) -> tuple[list[np.ndarray], float]:
    """Pooled statistics (`temporal.frame_statistics`) of every video of the dataset, whole
    (all splits, in time order, every `stride`-th frame), read `batch` frames at a time: (a list
    of (N_i, S), the median seconds between those frames)."""
    from tlgen.data import open_dataset
    ds = open_dataset(data_dir)
    series, gaps = [], []
    for video in sorted({int(v["id"]) for v in ds.metadata["videos"]}):
        times, get_frames = ds.video_frames(video)
        index = np.arange(0, len(times), stride)
        series.append(np.concatenate([temporal.frame_statistics(get_frames(index[i:i + batch]))
                                      for i in range(0, len(index), batch)]))
        gaps.append(np.diff(times[index]))
    gaps = np.concatenate(gaps)
    return series, float(np.median(gaps)) if len(gaps) else 0.0


def generated_statistics(chunks: Iterator[np.ndarray], bar=None) -> np.ndarray:
    """(V, N, S) pooled statistics of videos given as uint8 chunks (V, n, H, W, 3) in time
    order, each chunk's frames counted on the progress `bar` when given."""
    out = []
    for chunk in chunks:
        out.append(np.stack([temporal.frame_statistics(v) for v in chunk]))
        if bar is not None:
            bar.update(chunk.shape[1])
    return np.concatenate(out, axis=1)


def spectrum_rows(real: list[np.ndarray], fake: np.ndarray, segment: int) -> tuple[list[dict], dict]:
    """Per statistic: the log-spectral distance (dB) of the generated series `fake` (V, N, S)
    to the `real` ones (a list of (N_i, S), those shorter than a segment left out) and each
    one's share of power at periods beyond segment / SLOW. Returns (rows, {"freqs", "real",
    "generated"} spectra)."""
    freqs, p_real = temporal.power_spectrum([x for x in real if len(x) >= segment], segment)
    _, p_fake = temporal.power_spectrum(fake, segment)
    distance = temporal.log_spectral_distance(freqs, p_fake, p_real, MIN_PERIOD, segment)
    slow = [temporal.band_shares(freqs, p, (segment / SLOW,))[-1] for p in (p_real, p_fake)]
    rows = [{"statistic": name, "log_spectral_distance_db": round(float(distance[i]), 3),
             "slow_share_real": round(float(slow[0][i]), 4), "slow_share_generated": round(float(slow[1][i]), 4)}
            for i, name in enumerate(temporal.STATISTICS)]
    return rows, {"freqs": freqs, "real": p_real, "generated": p_fake}


def plot_spectra(path: str, spectra: dict, interval_s: float) -> None:
    """Brightness and contrast power against the period, real and generated (log-log)."""
    fig = figure(figsize=(9, 3.6), layout="constrained")
    longest = interval_s / spectra["freqs"][1]
    seconds, unit = next(((s, u) for s, u in UNITS if longest >= 2 * s), UNITS[-1])
    scale, unit = (interval_s / seconds, unit) if interval_s > 0 else (1.0, "frames")
    period = scale / spectra["freqs"][1:]
    for ax, name in zip(fig.subplots(1, 2), ("brightness", "contrast")):
        i = temporal.STATISTICS.index(name)
        for which in ("real", "generated"):
            ax.loglog(period, spectra[which][1:, i], label=which)
        ax.set_title(f"{name}: temporal power spectrum", fontsize=9)
        ax.set_xlabel(f"period ({unit})")
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)


def spectrum(trained, generate: Generate, data_dir: str, stride: int, frames: int, videos: int,
             out_dir: str) -> tuple[list[dict], dict, str | None]:
    """The change-over-long-spans part of the report: (`spectrum_rows`' rows, the summary's
    entries, or else a note saying why it was not computed); writes spectrum.png."""
    from tlgen.progress import progress

    series, interval = capture_statistics(data_dir, stride)
    segment = min(SEGMENT, frames // 2, max(len(x) for x in series))
    if segment < MIN_SEGMENT:
        return [], {}, (f"temporal spectrum: not computed (segments of {segment} frames, from the capture's "
                        f"longest video and --spectrum-frames {frames}; it needs {MIN_SEGMENT})")
    with progress(total=frames, unit="frame", desc="spectrum videos") as bar:
        stats = generated_statistics(generate(trained, frames, num=videos, seed=CLIP_SEED), bar)
    rows, spectra = spectrum_rows(series, stats, segment)
    plot_spectra(os.path.join(out_dir, "spectrum.png"), spectra, interval)
    return rows, {"spectrum_distance_db": round(float(np.mean([r["log_spectral_distance_db"] for r in rows])), 3),
                  "spectrum_segment": segment, "frame_interval_s": interval,
                  "spectrum_real_videos": sum(len(x) >= segment for x in series)}, None


def evaluate(trained, out_dir: str, generate: Generate, frame_size: tuple[int, int], *,
             data_dir: str | None = None, data_run=None, split: str = "validation", num_videos: int = 32,
             spectrum_frames: int = 2048, spectrum_videos: int = 2, networks: Networks | None = None) -> dict:
    """The report of a generator run (see the module docstring); `generate` is its family's
    (trained, frames, num=, seed=) -> uint8 chunks (num, n, H, W, 3), `frame_size` its frames'
    (height, width). The videos are compared with `data_dir`, else the dataset of `data_run`
    (default `trained`; a super-resolution run for upscaled videos), `trained`'s
    config.data.stride records apart (the time step it generates)."""
    from tlgen.data.dataset import open_training_data

    networks = networks or Networks()
    if networks.lpips is not None:
        raise UserError(f"--lpips compares each generated frame with its real counterpart, and {trained.family.name}'s "
                        "videos have none; leave it out (FID, KID, FVD and SWD compare the two sets).")
    for flag, value, least in (("--num-videos", num_videos, 1), ("--spectrum-frames", spectrum_frames, 0),
                               ("--spectrum-videos", spectrum_videos, 1)):
        if value < least:
            raise UserError(f"{flag} {value} must be at least {least}.")
    data_run = data_run or trained
    data_dir = data_run.data_dir(data_dir)
    open_training_data(data_dir, image_size=frame_size, run=data_run.workdir)
    stride = int(trained.config.data.get("stride", 1))
    batches, length, notes = eval_clips(data_dir, split, lengths=(FVD_FRAMES, 8, 4, 2), stride=stride,
                                        num_clips=num_videos, with_masks=False, with_flow=False)
    real = np.concatenate([b["frames"] for b in batches])
    fake = np.concatenate(list(generate(trained, length, num=len(real), seed=CLIP_SEED)), axis=1)
    scores = video_metrics(real, fake, networks, seed=CLIP_SEED, paired=False)
    steps = np.broadcast_to(np.arange(length, dtype=np.float64), real.shape[:2])
    motion = distribution.motion_swd(real, fake, steps)
    if not motion:
        notes.append(f"motion_swd: not computed ({len(real)} clip{'s' * (len(real) != 1)} of {length} "
                     "frames: fewer than 2 frame differences in any band of gaps)")
    os.makedirs(out_dir, exist_ok=True)
    save_png(os.path.join(out_dir, "clips.png"), video_strips(list(real[:4]) + list(fake[:4])))
    report = {**scores["scores"], **{k: four_figures(v) for k, v in motion.items()}}
    rows = []
    if spectrum_frames:
        rows, entries, note = spectrum(trained, generate, data_dir, stride, spectrum_frames, spectrum_videos,
                                       out_dir)
        report.update(entries)
        notes += [note] if note else []
    else:
        notes.append("temporal spectrum: not computed (--spectrum-frames 0)")
    report.update(workdir=trained.workdir, step=trained.step, split=split, data_dir=os.path.abspath(data_dir),
                  stride=stride, spectrum=rows, samples=scores["samples"],
                  protocol={**scores["protocol"], "motion_swd": MOTION_PROTOCOL,
                            **({"spectrum": SPECTRUM_PROTOCOL} if rows else {})},
                  not_computed=scores["not_computed"],
                  notes=notes + [f"{name}: not computed ({why})" for name, why in scores["not_computed"].items()]
                  + scores["caveats"],
                  titles={"spectrum": "Temporal power spectra of pooled frame statistics, generated against the capture"})
    return report


def options(args: argparse.Namespace) -> dict:
    """`evaluate`'s keyword arguments from `tlgen eval`'s parsed ones (`add_arguments`)."""
    return dict(data_dir=args.data, split=args.split, num_videos=args.num_videos, spectrum_frames=args.spectrum_frames,
                spectrum_videos=args.spectrum_videos, networks=args.networks)


def command(generate: Generate, frame_size: Callable):
    """The "eval" `Command.run` of a generator family; `frame_size(config)` -> its frames'
    (height, width)."""
    def run(trained, args: argparse.Namespace) -> dict:
        return evaluate(trained, args.out_dir, generate, frame_size(trained.config), **options(args))
    return run
