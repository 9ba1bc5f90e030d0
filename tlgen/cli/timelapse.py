"""Render a timelapse from a trained timescale autoencoder.

Examples:
  tlgen timelapse --workdir runs/tae --out day.mp4 --start 0 --end 86400 --frames 48
  tlgen timelapse --workdir runs/tae --out lerp.mp4 --mode interpolate --interp lerp --keyframes 6
  tlgen timelapse --workdir runs/tae --out ms.mp4 --mode multiscale --start 2021-06-01T06:00 --end 2021-06-03T06:00
  tlgen timelapse --workdir runs/tae --out calm.mp4 --remove-band 5 --sheet calm.png --npz calm.npz
  tlgen timelapse --workdir runs/tae --out night.mp4 --insert-band 0 --from 79200

Modes: subsample (real frames, encoded, masked, decoded), interpolate (keyframes, per-bin
slerp/lerp), multiscale (each bin on its own clock). The mask drops changes faster than
--min-period (default: the output frame interval) or keeps --keep-bins slow bins. Times
are seconds from the video's first frame or ISO-8601 date-times (when the video has an
absolute start time). Outputs: H.264 mp4, optionally an npz (uint8 frames + each frame's
source times) and a PNG contact sheet (raw subsample above, generated below).
"""

from __future__ import annotations

import argparse
import datetime as dt


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", required=True, help="timescale_ae training work directory")
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="prepared dataset (default: the run's config.data.dir)")
    parser.add_argument("--video", type=int, default=0, metavar="ID", help="video id (default 0)")
    parser.add_argument("--out", required=True, metavar="OUT.mp4", help="output video")
    parser.add_argument("--start", default=None, metavar="T", help="start time (default: first frame)")
    parser.add_argument("--end", default=None, metavar="T", help="end time (default: last frame)")
    parser.add_argument("--frames", type=int, default=48, metavar="L", help="output frames (default 48)")
    parser.add_argument("--mode", choices=("subsample", "interpolate", "multiscale"),
                        default="subsample")
    mask = parser.add_mutually_exclusive_group()
    mask.add_argument("--min-period", type=float, default=None, metavar="SECONDS",
                      help="drop changes faster than this (default: the output frame interval; "
                           "multiscale keeps every bin)")
    mask.add_argument("--keep-bins", type=int, default=None, metavar="K", help="keep bins 0..K-1")
    parser.add_argument("--interp", choices=("slerp", "lerp"), default="slerp",
                        help="interpolation for --mode interpolate (default slerp)")
    parser.add_argument("--keyframes", type=int, default=8, metavar="N",
                        help="keyframes for --mode interpolate (default 8)")
    parser.add_argument("--segment", type=int, default=16, metavar="N",
                        help="multiscale: frames per real-speed segment of the fast bins (default 16)")
    parser.add_argument("--remove-band", type=int, default=None, metavar="K",
                        help="replace bin K by its time average")
    parser.add_argument("--insert-band", type=int, default=None, metavar="K",
                        help="take bin K from the frame at --from")
    parser.add_argument("--from", dest="insert_from", default=None, metavar="T",
                        help="time of the frame --insert-band takes its bin from")
    parser.add_argument("--npz", default=None, metavar="OUT.npz", help="also write frames + source times")
    parser.add_argument("--sheet", default=None, metavar="OUT.png", help="also write a contact sheet")
    parser.add_argument("--fps", type=float, default=12.0, help="output frame rate (default 12)")


def parse_time(text: str | None, start_time: float, default: float, what: str) -> float:
    """Seconds from the video's first frame, from seconds or an ISO-8601 date-time."""
    from tlgen.errors import UserError

    if text is None:
        return default
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{what} {text!r} is neither seconds nor an ISO-8601 date-time "
                        "like 2021-06-01T12:00.") from None
    if not start_time:
        raise UserError(f"{what} {text!r} is a date-time but the video has no absolute start "
                        "time; give seconds from its first frame.")
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp() - start_time


def contact_sheet(raw, generated, columns: int = 8):
    """uint8 image: up to `columns` evenly spaced raw frames above the generated ones."""
    import numpy as np

    pick = np.unique(np.linspace(0, len(generated) - 1, min(columns, len(generated))).astype(int))
    rows = [np.concatenate(list(x[pick]), axis=1) for x in (raw, generated)]
    return np.concatenate(rows, axis=0)


def open_synthesizer(workdir: str, data: str | None = None, video: int = 0):
    """The trained model of `workdir` over video `video` of its dataset (or `data`):
    (Synthesizer, the video's start time in seconds since the epoch)."""
    from tlgen.data import open_dataset
    from tlgen.synth.timelapse import Synthesizer
    from tlgen.train import timescale_ae as family

    trained = family.load(workdir)
    ds = open_dataset(data or trained.config.data.dir)
    lv = family.make_levels(trained.config, ds.level_periods)
    times, get_frames = family.video_frames(ds, video)
    meta = next((v for v in ds.metadata["videos"] if v["id"] == video), {})
    synth = Synthesizer(trained.params, trained.config.model, get_frames, times, lv.level_periods,
                        dtype=trained.dtype)
    return synth, float(meta.get("start_time") or 0.0)


def check_arguments(args: argparse.Namespace) -> None:
    """The checks that need no model: one sentence each."""
    from tlgen.errors import UserError
    if args.frames < 2:
        raise UserError(f"--frames {args.frames}: a timelapse needs at least 2 frames.")
    if (args.insert_band is None) != (args.insert_from is None):
        raise UserError("--insert-band K and --from T go together.")
    if args.fps <= 0:
        raise UserError(f"--fps {args.fps} must be positive.")


def render(args: argparse.Namespace, synth, start_time: float) -> list[str]:
    """Makes the timelapse `args` ask for with `synth` and writes its files; returns them."""
    import logging

    import numpy as np
    from PIL import Image

    from tlgen.data.video_io import write_video
    from tlgen.errors import UserError
    from tlgen.files import write_atomic
    from tlgen.synth.timelapse import nearest_frames

    times = synth.frame_times
    t0 = parse_time(args.start, start_time, float(times[0]), "--start")
    t1 = parse_time(args.end, start_time, float(times[-1]), "--end")
    if not t1 > t0:
        raise UserError(f"--end ({t1:g} s) must be after --start ({t0:g} s).")
    insert_from = (parse_time(args.insert_from, start_time, 0.0, "--from")
                   if args.insert_from is not None else None)
    try:
        out = synth.timelapse(t0, t1, args.frames, mode=args.mode, keep_bins=args.keep_bins,
                              min_period=args.min_period, interp=args.interp,
                              keyframes=args.keyframes, segment_frames=args.segment,
                              remove=args.remove_band, insert=args.insert_band,
                              insert_from=insert_from)
    except ValueError as e:
        raise UserError(f"{e}.") from None
    write_atomic(args.out, lambda p: write_video(p, out.frames, args.fps))
    written = [args.out]
    if args.npz:
        write_atomic(args.npz, lambda p: np.savez_compressed(
            p, frames=out.frames, times=out.times, source_times=out.source_times,
            keep_bins=out.keep_bins, mode=args.mode))
        written.append(args.npz)
    if args.sheet:
        raw = synth.get_frames(nearest_frames(times, out.times))
        sheet = contact_sheet(raw, out.frames)
        write_atomic(args.sheet, lambda p: Image.fromarray(sheet).save(p, format="PNG"))
        written.append(args.sheet)
    logging.getLogger(__name__).info(
        "%s timelapse of %d frames over %g-%g s keeping %d of %d bins", args.mode,
        len(out.frames), t0, t1, out.keep_bins, synth.num_bins)
    return written


def run(args: argparse.Namespace) -> int:
    check_arguments(args)
    synth, start_time = open_synthesizer(args.workdir, args.data, args.video)
    written = render(args, synth, start_time)
    print("\n".join(written))
    return 0
