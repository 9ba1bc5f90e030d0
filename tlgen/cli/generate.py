"""Generate videos with a trained run of a generative family.

Examples:
  tlgen generate --workdir runs/gen --out long.mp4 --frames 1024 --seed 3
  tlgen generate --workdir runs/gen --out grid.mp4 --frames 64 --num 4 --npz grid.npz
  tlgen generate --workdir runs/gen --out hour.mp4 --seconds 3600 --fps 25

The video is written as the family makes it, chunk by chunk (memory does not grow with its
length); --num V videos are tiled into one grid. The same seed gives the same video. The
family's own options are listed by `tlgen generate --workdir W --help`.
"""

from __future__ import annotations

import argparse
import math


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", required=True,
                        help="work directory of a `tlgen train` run of a generative family")
    parser.add_argument("--out", required=True, help="output video (.mp4)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--frames", type=int, default=None, help="frames per video (default 128)")
    length.add_argument("--seconds", type=float, default=None,
                        help="length of each video in seconds at --fps (instead of --frames)")
    parser.add_argument("--num", type=int, default=1, metavar="V", help="videos, tiled in a grid (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--fps", type=float, default=24.0, help="frame rate (default 24)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the newest)")
    parser.add_argument("--npz", metavar="FILE", help="also save the frames (V, N, H, W, 3) to this .npz")


def tile(videos):
    """uint8 (V, T, H, W, 3) -> (T, rows*H, cols*W, 3), a near-square grid (blank cells black)."""
    import numpy as np

    v, t, h, w, c = videos.shape
    cols = math.ceil(math.sqrt(v))
    rows = math.ceil(v / cols)
    grid = np.zeros((rows * cols, t, h, w, c), np.uint8)
    grid[:v] = videos
    grid = grid.reshape(rows, cols, t, h, w, c).transpose(2, 0, 3, 1, 4, 5)
    return grid.reshape(t, rows * h, cols * w, c)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from tlgen.cli.animate import check_outputs
    from tlgen.data.video_io import write_video
    from tlgen.errors import UserError
    from tlgen.files import write_atomic
    from tlgen.progress import progress
    from tlgen.trained import load

    check_outputs(args.out, args.npz, args.fps)
    if args.seconds is not None:
        args.frames = round(args.seconds * args.fps)
        if args.frames < 1:
            raise UserError(f"--seconds {args.seconds:g} at --fps {args.fps:g} is less than one frame.")
    elif args.frames is None:
        args.frames = 128
    if args.frames < 1 or args.num < 1:
        raise UserError(f"--frames {args.frames} and --num {args.num} must be at least 1.")
    trained = load(args.workdir, step=args.step)
    chunks = trained.family.command("generate").run(trained, args)
    kept = []
    bar = progress(total=args.frames, unit="frame", desc="generate")

    def frames():
        made = 0
        for chunk in chunks:
            chunk = np.asarray(chunk)
            if args.npz:
                kept.append(chunk)
            made += chunk.shape[1]
            bar.update(chunk.shape[1])
            yield from tile(chunk)
        if made != args.frames:
            raise RuntimeError(f"the {trained.family.name} family made {made} of {args.frames} frames")

    try:
        write_atomic(args.out, lambda p: write_video(p, frames(), args.fps))
    finally:
        bar.close()
    if args.npz:
        write_atomic(args.npz, lambda p: np.savez_compressed(p, frames=np.concatenate(kept, axis=1)))
    print(f"tlgen generate: wrote {args.out}: {args.num} video(s) of {args.frames} frames at "
          f"{args.fps:g} fps (seed {args.seed}; checkpoint {trained.step})"
          + (f", and {args.npz}" if args.npz else ""))
    return 0
