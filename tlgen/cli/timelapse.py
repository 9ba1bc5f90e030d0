"""Render a timelapse from a trained timescale autoencoder.

Examples:
  tlgen timelapse --workdir runs/tae --out day.mp4 --start 0 --end 86400 --frames 48
  tlgen timelapse --workdir runs/tae --out lerp.mp4 --mode interpolate --interp lerp --keyframes 6
  tlgen timelapse --workdir runs/tae --out ms.mp4 --mode multiscale --start 2021-06-01T06:00 --end 2021-06-03T06:00
  tlgen timelapse --workdir runs/tae --out calm.mp4 --start 0 --end 604800 --frames 96 --remove-band 4 --sheet calm.png --npz calm.npz
  tlgen timelapse --workdir runs/tae --out night.mp4 --insert-band 0 --from 79200
  tlgen timelapse --workdir runs/tae --out clean.mp4 --render neighbours --min-period 7200

Modes: subsample (real frames, encoded, masked, decoded), interpolate (keyframes, per-bin
slerp/lerp), multiscale (each bin on its own clock). The mask drops changes faster than
--min-period (default: the output frame interval) or keeps --keep-bins slow bins; the
frames are decoded or, with --render neighbours, the median of the video's frames whose
kept bins match (beyond the model's period, a day: the median in each hour of the day, the
mean over the hours; the better band fidelity on the synthetic city; README). Times
are seconds from the video's first frame or ISO-8601 date-times (when the video has an
absolute start time). Outputs: H.264 mp4, optionally an npz (uint8 frames + each frame's
source times) and a PNG contact sheet (raw subsample above, generated below).
"""

from __future__ import annotations

import argparse

from tlgen.family import number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", required=True, help="work directory of a `tlgen train` run "
                        "of a family that renders timelapses (timescale_ae)")
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
    mask.add_argument("--min-period", type=number, default=None, metavar="SECONDS",
                      help="drop changes faster than this (default: the output frame interval; "
                           "multiscale keeps every bin)")
    mask.add_argument("--keep-bins", type=int, default=None, metavar="K", help="keep bins 0..K-1")
    parser.add_argument("--interp", choices=("slerp", "lerp"), default=None,
                        help="interpolation for --mode interpolate (default slerp)")
    parser.add_argument("--keyframes", type=int, default=None, metavar="N",
                        help="keyframes for --mode interpolate (default 8)")
    parser.add_argument("--segment", type=int, default=None, metavar="N",
                        help="multiscale: frames per segment of the fast bins' own clocks, each centred on the slow clock (default 16)")
    parser.add_argument("--remove-band", type=int, default=None, metavar="K",
                        help="replace bin K by its time average")
    parser.add_argument("--insert-band", type=int, default=None, metavar="K",
                        help="take bin K from the frame at --from")
    parser.add_argument("--from", dest="insert_from", default=None, metavar="T",
                        help="time of the frame --insert-band takes its bin from")
    parser.add_argument("--render", choices=("decoder", "neighbours"), default="decoder",
                        help="decoder: decode the masked codes; neighbours: the per-pixel median "
                        "of the video's frames whose masked codes are nearest (sharp, noise-free; "
                        "beyond the model's period, per hour of the day, the mean over the hours)")
    parser.add_argument("--npz", default=None, metavar="OUT.npz", help="also write frames + source times")
    parser.add_argument("--sheet", default=None, metavar="OUT.png", help="also write a contact sheet")
    parser.add_argument("--fps", type=number, default=12.0, help="output frame rate (default 12)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the newest)")


def check_arguments(args: argparse.Namespace) -> None:
    """The checks that need no model: one sentence each."""
    from tlgen.cli.animate import check_outputs
    from tlgen.errors import UserError
    if args.frames < 2:
        raise UserError(f"--frames {args.frames}: a timelapse needs at least 2 frames.")
    for flag, value, mode, default in (("--interp", args.interp, "interpolate", "slerp"),
                                       ("--keyframes", args.keyframes, "interpolate", 8),
                                       ("--segment", args.segment, "multiscale", 16)):
        if value is not None and args.mode != mode:
            raise UserError(f"{flag} goes with --mode {mode}; this timelapse is --mode {args.mode}.")
        setattr(args, flag[2:], default if value is None else value)
    if args.mode == "interpolate" and not 2 <= args.keyframes <= args.frames:
        raise UserError(f"--keyframes {args.keyframes}: interpolation needs from 2 keyframes up to "
                        f"--frames ({args.frames}).")
    if args.min_period is not None and args.min_period <= 0:
        raise UserError(f"--min-period {args.min_period:g} must be a positive number of seconds.")
    if args.segment < 1:
        raise UserError(f"--segment {args.segment} must be at least 1 frame.")
    if (args.insert_band is None) != (args.insert_from is None):
        raise UserError("--insert-band K and --from T go together.")
    check_outputs(args.out, args.npz, args.fps, args.sheet)


def write(args: argparse.Namespace, timelapse) -> list[str]:
    """Writes the timelapse's mp4 (and --npz, --sheet) as one set; returns the paths."""
    from tlgen.cli import animate

    arrays = {"frames": timelapse.frames, "times": timelapse.times, "source_times": timelapse.source_times,
              "keep_bins": timelapse.keep_bins, "mode": args.mode}
    animate.write(args.out, args.npz, args.fps, timelapse.frames, arrays, args.sheet,
                  timelapse.contact_sheet() if args.sheet else None)
    return [p for p in (args.out, args.npz, args.sheet) if p]


def run(args: argparse.Namespace) -> int:
    import logging

    from tlgen.cli.animate import check_memory, check_not_an_input
    from tlgen.config import named_paths
    from tlgen.trained import load

    check_arguments(args)
    trained = load(args.workdir, step=args.step, command="timelapse")
    check_not_an_input(args, named_paths(trained.config))     # e.g. into the dataset it reads
    check_memory(args.frames, trained.config, per_pixel=2 * 3 + 12)    # frames, raw frames, decoded
    timelapse = trained.family.command("timelapse").run(trained, args)
    written = write(args, timelapse)
    logging.getLogger(__name__).info(
        "%s timelapse of %d frames over %g-%g s keeping %d bins", args.mode, len(timelapse.frames),
        timelapse.times[0], timelapse.times[-1], timelapse.keep_bins)
    print("\n".join(written))
    return 0
