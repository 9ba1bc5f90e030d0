"""Turn videos, image folders or synthetic scenes into a training dataset.

Examples:
  tlgen prepare synthetic:city --out data/city            # built-in scene, 64x64
  tlgen prepare cam.mp4 --size 128 --out data/cam         # video, resized + center-cropped
  tlgen prepare frames/ --interval 600 --levels 8 --out data/roof   # image folder
  tlgen prepare synthetic:clouds --out data/clouds        # with ground-truth flow + masks
  tlgen prepare sky/*.mp4 --flow --size 128 --out data/sky   # + optical flow (OpenCV DIS)
  tlgen prepare lake.mp4 --flow --masks auto --out data/lake  # + regions of like motion (FGLA)

Sources: video files (mp4 mov mkv avi webm gif; each frame at its own time, so variable
frame rates and GIF delays are kept), folders of images (png jpg tif webp bmp; times from
file names like 2021-06-01T12-00-00.png, 2021-06-01T12-00-00+02-00.png, 20210601_120000.jpg
or 1622548800.png, else EXIF), or synthetic:<city|clouds|water>[:seed=N,frames=N,interval=S,
irregular=1]. --interval spaces a video's or a folder's frames evenly instead (a folder's in
name order, numbers by value: img2 before img10). The output appears only when complete.
"""

from __future__ import annotations

import argparse

from tlgen.family import number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="+", metavar="SOURCE",
                        help="video file, image folder or synthetic:<scene>")
    parser.add_argument("--out", required=True, metavar="DIR", help="dataset folder to create")
    parser.add_argument("--size", default=None,
                        help="frame size: N or HxW (resize keeping aspect, then center-crop)")
    parser.add_argument("--interval", type=number, default=None, metavar="SECONDS",
                        help="seconds between frames, instead of their own times (a video's "
                             "timestamps; an image folder's file names or EXIF, in name order)")
    parser.add_argument("--levels", default="auto", metavar="N|auto",
                        help="temporal pyramid levels including the frames, periods doubling "
                        "from the frame interval (default auto: up to two days or as many as "
                        "the shortest video holds)")
    parser.add_argument("--val-fraction", type=number, default=0.1,
                        help="last fraction of each video held out for validation (default 0.1)")
    parser.add_argument("--flow", action="store_true",
                        help="store optical flow between consecutive frames")
    parser.add_argument("--flow-method", default="dis", metavar="{dis,farneback}",
                        help="OpenCV flow estimator (default dis; checked by prepare)")
    parser.add_argument("--masks", action="append", default=[], metavar="DIR",
                        help="class-index PNG masks, one folder per source (repeat in order); "
                        "'auto' (one for all, or in place of a folder): regions of like motion and "
                        "colour found by clustering, class 0 the stillest, then by speed")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace DIR, a tlgen dataset, once the new one is complete")


def run(args: argparse.Namespace) -> int:
    import logging

    from tlgen.data.prepare import prepare
    from tlgen.data.pyramid import describe_periods

    meta = prepare(args.sources, args.out, size=args.size, interval=args.interval,
                   levels=_levels(args.levels), val_fraction=args.val_fraction, flow=args.flow,
                   flow_method=args.flow_method, masks=args.masks, overwrite=args.overwrite)
    splits = ", ".join(f"{s} {m['num_frames']}" for s, m in meta["splits"].items())
    logging.getLogger(__name__).info(
        "wrote %s: %d frame%s (%s), %dx%d (HxW, as --size takes it), %d pyramid level%s with period%s %s (a "
        "timescale model's bins split the changes at these periods)", args.out, meta["num_frames"],
        "" if meta["num_frames"] == 1 else "s", splits, meta["image_size"][0], meta["image_size"][1], meta["levels"],
        *(("", "") if meta["levels"] == 1 else ("s", "s")), describe_periods(meta["level_periods"]))
    return 0


def _levels(text: str) -> int | None:
    """--levels: a count, or None for auto."""
    from tlgen.errors import UserError

    if text == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise UserError(f"--levels {text!r} is neither a number nor auto.") from None
