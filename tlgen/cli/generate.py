"""Generate videos with a trained run of a generative family.

Examples:
  tlgen generate --workdir runs/gen --out long.mp4 --frames 1024 --seed 3
  tlgen generate --workdir runs/gen --out grid.mp4 --frames 64 --num 4 --grid --npz grid.npz
  tlgen generate --workdir runs/gen --out clip.mp4 --num 3      # clip_0.mp4 clip_1.mp4 clip_2.mp4
  tlgen generate --workdir runs/gen --out hour.mp4 --seconds 3600 --fps 25

The videos are written as the family makes them, chunk by chunk (memory does not grow with
their length): --num V videos go to V files, or into one grid with --grid. The same seed
gives the same videos (StyleGAN-V the same pixels for any --chunk; the long-video stages up to
float rounding, a level of 1 in a few pixels). The family's own options are listed by
`tlgen generate --workdir W --help`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os

from tlgen.family import number, seed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", required=True,
                        help="work directory of a `tlgen train` run of a generative family")
    parser.add_argument("--out", required=True, help="output video (.mp4; H.264 takes even sizes, so "
                        "an odd height or width gains a copy of its last row or column, which --npz "
                        "leaves out)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--frames", type=int, default=None, help="frames per video (default 128)")
    length.add_argument("--seconds", type=number, default=None,
                        help="length of each video in seconds at --fps (instead of --frames)")
    parser.add_argument("--num", type=int, default=1, metavar="V",
                        help="videos (default 1); with V > 1 they are written to OUT_0.mp4 ... OUT_<V-1>.mp4")
    parser.add_argument("--grid", action="store_true", help="tile the --num videos into one video at --out")
    parser.add_argument("--seed", type=seed, default=0, help="random seed, 0 to 2**32 - 1 (default 0)")
    parser.add_argument("--fps", type=number, default=24.0, help="frame rate (default 24)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the newest)")
    parser.add_argument("--npz", metavar="FILE", help="also save the frames (V, N, H, W, 3) to this .npz (held in memory "
                        "until written: for short videos; the mp4 alone streams)")


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


def outputs(out: str, num: int, grid: bool) -> list[str]:
    """The mp4 files of `num` videos: `out` itself for one video or a grid, else out_0.mp4, ..."""
    if num == 1 or grid:
        return [out]
    stem = out[:-len(".mp4")]
    return [f"{stem}_{v}.mp4" for v in range(num)]


# Frames between returns of freed heap memory to the system: without them glibc keeps what
# the per-chunk buffers of XLA's threads leave behind, and the resident set creeps up.
TRIM_EVERY = 1024


@functools.cache
def _malloc_trim():
    """glibc's malloc_trim, looked up once (find_library runs ldconfig); None without glibc."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _release_free_heap() -> None:
    """glibc's malloc_trim(0), where there is one (Linux); elsewhere nothing."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from tlgen.cli.animate import check_frames, check_memory, check_outputs
    from tlgen.data.video_io import VideoWriter
    from tlgen.errors import UserError
    from tlgen.files import check_output_file, write_atomic_all
    from tlgen.progress import progress
    from tlgen.trained import load

    check_outputs(args.out, args.npz, args.fps)
    if args.seconds is not None:
        args.frames = math.floor(args.seconds * args.fps + 0.5)     # halves round up
        if args.frames < 1:
            raise UserError(f"--seconds {args.seconds:g} at --fps {args.fps:g} is less than one frame.")
    elif args.frames is None:
        args.frames = 128
    for flag, value in (("--frames", args.frames), ("--num", args.num)):
        if value < 1:
            raise UserError(f"{flag} {value} must be at least 1.")
    for path in outputs(args.out, args.num, args.grid):
        check_output_file(path, "--out")
    trained = load(args.workdir, step=args.step, command="generate")
    chunks = trained.family.command("generate").run(trained, args)
    kept = []
    bar = progress(total=args.frames, unit="frame", desc="generate")
    paths = outputs(args.out, args.num, args.grid)

    def write(tmps):
        made = 0
        videos = tmps[:-1] if args.npz else tmps
        with contextlib.ExitStack() as stack:
            writers = [stack.enter_context(VideoWriter(p, args.fps)) for p in videos]
            for chunk in chunks:
                chunk = np.asarray(chunk)
                check_frames(chunk, trained.family.name, "generate", ("videos", "frames", "H", "W"))
                if args.npz:
                    if not kept:        # held until the end, then copied once by concatenate
                        check_memory(args.frames, trained.config, per_pixel=6 * args.num,
                                     size=chunk.shape[2:4], remedy="ask for fewer, or leave out --npz")
                    kept.append(chunk)
                if made // TRIM_EVERY != (made + chunk.shape[1]) // TRIM_EVERY:
                    _release_free_heap()
                made += chunk.shape[1]
                bar.update(chunk.shape[1])
                for writer, video in zip(writers, [tile(chunk)] if args.grid else chunk):
                    for frame in video:
                        writer.write(frame)
            if made != args.frames:
                raise RuntimeError(f"the {trained.family.name} family made {made} of {args.frames} frames")
        if args.npz:
            np.savez_compressed(tmps[-1], frames=np.concatenate(kept, axis=1))

    try:     # the videos and the npz appear together, or none of them
        write_atomic_all(paths + ([args.npz] if args.npz else []), write)
    finally:
        bar.close()
    wrote = paths[0] if len(paths) == 1 else f"{paths[0]} ... {os.path.basename(paths[-1])}"
    print(f"tlgen generate: wrote {wrote}: {args.num} video(s) of {args.frames} frames at "
          f"{args.fps:g} fps (seed {args.seed}; checkpoint {trained.step})"
          + (f", and {args.npz}" if args.npz else ""))
    return 0
