"""Animate a still image with a trained DTVNet model.

Examples:
  tlgen animate --workdir runs/dtv --image sky.jpg --out sky.mp4 --seed 3     # random motion
  tlgen animate --workdir runs/dtv --image sky.jpg --out sky.mp4 --reference clouds.mp4
  tlgen animate --workdir runs/dtv --image sky.png --out long.mp4 --frames 96 --npz long.npz

The image (any size) is resized and center-cropped to the model's resolution. Motion comes
from N(0, I) with --seed (the same seed gives the same video) or is encoded from the optical
flow of --reference (its first T+1 frames, T = the model's frames per pass). More frames
than the model makes per pass are produced by continuing from the last frame.
--npz also saves the frames, the motion vector and the generator's low-resolution flows.
"""

from __future__ import annotations

import argparse
import itertools
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", required=True, help="work directory of a `tlgen train` dtvnet run")
    parser.add_argument("--image", required=True, help="still image to animate (PNG, JPEG, ...)")
    parser.add_argument("--out", required=True, help="output video (.mp4)")
    motion = parser.add_mutually_exclusive_group()
    motion.add_argument("--reference", metavar="VIDEO", help="take the motion from this video's optical flow")
    motion.add_argument("--seed", type=int, default=0, help="seed of the random motion vector (default 0)")
    parser.add_argument("--frames", type=int, default=None,
                        help="number of frames (default: the model's frames per pass)")
    parser.add_argument("--fps", type=float, default=12.0, help="frame rate of the video (default 12)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the newest)")
    parser.add_argument("--npz", metavar="FILE", help="also save frames, motion and flows to this .npz")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from tlgen.data.images import read_image
    from tlgen.data.video_io import iter_video_frames, write_video
    from tlgen.errors import UserError
    from tlgen.files import write_atomic
    from tlgen.synth.animate import Animator, fit_image
    from tlgen.train.dtvnet import load_trained
    from tlgen.train.state import compute_dtype

    if not args.out.lower().endswith(".mp4"):
        raise UserError(f"--out {args.out} must end in .mp4.")
    if args.npz and not args.npz.lower().endswith(".npz"):
        raise UserError(f"--npz {args.npz} must end in .npz.")
    if args.fps <= 0:
        raise UserError(f"--fps {args.fps} must be positive.")
    for path in (args.out, args.npz):
        folder = os.path.dirname(os.path.abspath(path)) if path else None
        if folder and not os.path.isdir(folder):
            raise UserError(f"the folder of {path} does not exist; create it first.")
    if not os.path.isfile(args.image):
        raise UserError(f"--image {args.image} does not exist.")
    image = read_image(args.image)
    if args.reference and not os.path.isfile(args.reference):
        raise UserError(f"--reference {args.reference} does not exist.")

    trained = load_trained(args.workdir, args.step)
    size = int(trained.config.data.image_size)
    animator = Animator(trained.generator, trained.flow_encoder, (size, size),
                        dtype=compute_dtype(trained.config))
    fitted, note = fit_image(image, (size, size))
    if args.reference:
        # Only the first T + 1 frames are read, decoded at the model's size by ffmpeg.
        reference = list(itertools.islice(iter_video_frames(args.reference, (size, size)),
                                          animator.frames_per_pass + 1))
        motion, source = animator.motion_from_reference(reference), f"reference {args.reference}"
    else:
        motion, source = animator.motion_from_seed(args.seed), f"seed {args.seed}"
    frames, flows = animator.animate(fitted, motion, args.frames)

    outputs = [(args.out, lambda p: write_video(p, frames, args.fps))]
    if args.npz:
        outputs.append((args.npz, lambda p: np.savez_compressed(
            p, frames=frames, motion=np.asarray(motion[0]), flows=flows)))
    for final, write in outputs:
        write_atomic(final, write)
    print(f"tlgen animate: wrote {args.out}: {len(frames)} frames {size}x{size} at {args.fps:g} fps "
          f"({note}; motion from {source}; checkpoint {trained.step})"
          + (f", and {args.npz}" if args.npz else ""))
    return 0
