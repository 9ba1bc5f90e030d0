"""Animate a still image with a trained run of an animation family (DTVNet).

Examples:
  tlgen animate --workdir runs/dtv --image sky.jpg --out sky.mp4 --seed 3     # random motion
  tlgen animate --workdir runs/dtv --image sky.jpg --out sky.mp4 --reference clouds.mp4
  tlgen animate --workdir runs/dtv --image sky.png --out long.mp4 --frames 96 --npz long.npz

The image (any size) is resized and center-cropped to the model's resolution. The family
decides where the motion comes from; its options are listed by
`tlgen animate --workdir W --help` (DTVNet: --seed for N(0, I) motion, the same seed giving
the same video, or --reference VIDEO for the motion of that video's optical flow). More
frames than the model makes per pass are produced by continuing from the last frame.
--npz also saves the frames and the family's arrays (DTVNet: motion vector, low-res flows).
"""

from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", required=True,
                        help="work directory of a `tlgen train` run of an animation family")
    parser.add_argument("--image", required=True, help="still image to animate (PNG, JPEG, ...)")
    parser.add_argument("--out", required=True, help="output video (.mp4)")
    parser.add_argument("--frames", type=int, default=None,
                        help="number of frames (default: the model's frames per pass)")
    parser.add_argument("--fps", type=float, default=12.0, help="frame rate of the video (default 12)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the newest)")
    parser.add_argument("--npz", metavar="FILE", help="also save the frames and arrays to this .npz")


def check_outputs(out: str, npz: str | None, fps: float) -> None:
    """One sentence for a bad --out / --npz / --fps, before any model is loaded."""
    from tlgen.errors import UserError

    if not out.lower().endswith(".mp4"):
        raise UserError(f"--out {out} must end in .mp4.")
    if npz and not npz.lower().endswith(".npz"):
        raise UserError(f"--npz {npz} must end in .npz.")
    if fps <= 0:
        raise UserError(f"--fps {fps} must be positive.")
    for path in (out, npz):
        folder = os.path.dirname(os.path.abspath(path)) if path else None
        if folder and not os.path.isdir(folder):
            raise UserError(f"the folder of {path} does not exist; create it first.")


def write(out: str, npz: str | None, fps: float, frames, arrays) -> None:
    """The mp4 (and npz) written atomically: each appears whole or not at all."""
    import numpy as np

    from tlgen.data.video_io import write_video
    from tlgen.files import write_atomic

    write_atomic(out, lambda p: write_video(p, frames, fps))
    if npz:
        write_atomic(npz, lambda p: np.savez_compressed(p, **arrays))


def run(args: argparse.Namespace) -> int:
    from tlgen.data.images import read_image
    from tlgen.errors import UserError
    from tlgen.trained import load

    check_outputs(args.out, args.npz, args.fps)
    if not os.path.isfile(args.image):
        raise UserError(f"--image {args.image} does not exist.")
    args.image_array = read_image(args.image)
    trained = load(args.workdir, step=args.step)
    animation = trained.family.command("animate").run(trained, args)
    write(args.out, args.npz, args.fps, animation.frames, animation.arrays)
    h, w = animation.frames.shape[1:3]
    print(f"tlgen animate: wrote {args.out}: {len(animation.frames)} frames {w}x{h} at "
          f"{args.fps:g} fps ({animation.description}; checkpoint {trained.step})"
          + (f", and {args.npz}" if args.npz else ""))
    return 0
