r"""Animate a still image with a trained run of an animation family (DTVNet, FGLA, Time Flies).

Examples:
  tlgen animate --workdir runs/dtv --image sky.jpg --out sky.mp4 --seed 3     # random motion
  tlgen animate --workdir runs/dtv --image sky.jpg --out sky.mp4 --reference clouds.mp4
  tlgen animate --workdir runs/dtv --image sky.png --out long.mp4 --frames 96 --npz long.npz
  tlgen animate --workdir runs/fgla --image lake.jpg --mask lake_mask.png --out lake.mp4 \
      --region-reference sky=clouds.mp4 --region-reference water=river.mp4 --sheet lake.png
  tlgen animate --workdir runs/tf --image street.png --image-mask labels.png \
      --reference webcam.mp4 --reference-masks labels.png --out street.mp4

The image (any size) is resized and center-cropped to the model's resolution. The family
decides where the motion comes from; its options are listed by
`tlgen animate --workdir W --help` (DTVNet: --seed for N(0, I) motion, the same seed giving
the same video, or --reference VIDEO for the motion of that video's optical flow; FGLA:
motion per region from --reference / --region-reference NAME=VIDEO or the run's codebook,
--speed; Time Flies: the changes of --reference VIDEO, class by class with --image-mask and
--reference-masks). --npz also saves the frames and the family's arrays (flows, motion latents);
--sheet a contact sheet of frames with the flow into each below.
"""

from __future__ import annotations

import argparse
import os

from tlgen.family import number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", required=True,
                        help="work directory of a `tlgen train` run of an animation family")
    parser.add_argument("--image", required=True, help="still image to animate (PNG, JPEG, ...)")
    parser.add_argument("--out", required=True, help="output video (.mp4)")
    parser.add_argument("--frames", type=int, default=None,
                        help="number of frames (default: the family's: DTVNet one pass of its "
                             "clip length, FGLA 32, Time Flies one per reference frame)")
    parser.add_argument("--fps", type=number, default=12.0, help="frame rate of the video (default 12)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the newest)")
    parser.add_argument("--npz", metavar="FILE", help="also save the frames and arrays to this .npz")
    parser.add_argument("--sheet", metavar="PNG", help="also save a contact sheet: 8 frames and, for "
                        "the flow-based families, below them the flow into each (hue = direction, "
                        "brightness = speed)")


# The frame rates an output video takes (ffmpeg refuses rates far outside them).
MIN_FPS, MAX_FPS = 0.001, 1000.0


def check_outputs(out: str, npz: str | None, fps: float, sheet: str | None = None) -> None:
    """One sentence for a bad --out / --npz / --fps, before any model is loaded."""
    from tlgen.errors import UserError
    from tlgen.files import check_output_file

    if not out.lower().endswith(".mp4"):
        raise UserError(f"--out {out} must end in .mp4.")
    if npz and not npz.lower().endswith(".npz"):
        raise UserError(f"--npz {npz} must end in .npz.")
    if sheet and not sheet.lower().endswith(".png"):
        raise UserError(f"--sheet {sheet} must end in .png.")
    if not MIN_FPS <= fps <= MAX_FPS:
        raise UserError(f"--fps {fps:g} must be between {MIN_FPS:g} and {MAX_FPS:g} frames/s.")
    for flag, path in (("--out", out), ("--npz", npz), ("--sheet", sheet)):
        if path:
            check_output_file(path, flag)


OUTPUTS = ("out", "npz", "sheet")
# What the command line holds beside its options: not files a command reads.
NOT_INPUTS = OUTPUTS + ("argv", "config_overrides")
# Inputs that are folders of files read one by one (their own files may not be outputs).
FOLDERS_READ = ("--reference-masks", "--data", "config.data.dir of the run")


def check_memory(frames: int, config, per_pixel: int, size: tuple[int, int] | None = None,
                 remedy: str = "ask for fewer frames") -> None:
    """UserError when `frames` frames of `size` (H, W; default the run's image size), held at
    `per_pixel` bytes a pixel until they are written, would need more than this machine's
    memory (a sure failure, minutes or hours in)."""
    from tlgen.errors import UserError
    from tlgen.models.pixels import frame_shape

    if size is None:
        side = config.data.get("image_size") or config.get("model", {}).get("image_size")
        if not side:
            return
        size = frame_shape(side)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return
    need = frames * size[0] * size[1] * per_pixel
    if need > memory:
        raise UserError(f"--frames {frames} would hold about {need / 1e9:.3g} GB of {size[0]}x{size[1]} "
                        f"frames in memory until they are written, more than this machine's "
                        f"{memory / 1e9:.3g} GB; {remedy}.")


def check_not_an_input(args: argparse.Namespace, run_files: dict[str, str] | None = None) -> None:
    """UserError when an output file (--out, --npz, --sheet) is one of the files the command
    reads (--image, a reference video, a mask; `NAME=PATH` values too) or lies in a folder it
    reads (--reference-masks DIR), or is one of `run_files` ({config key: path}, the files the
    run was trained with): it would be replaced."""
    from tlgen.errors import UserError

    outputs = [(f"--{key}", args.__dict__.get(key)) for key in OUTPUTS]
    outputs = [(flag, os.path.abspath(path)) for flag, path in outputs if path]
    inputs = [(f"--{key.replace('_', '-')}", item) for key, value in vars(args).items() if key not in NOT_INPUTS
              for item in (value if isinstance(value, list) else [value]) if isinstance(item, str)]
    inputs += [(f"config.{key} of the run", path) for key, path in (run_files or {}).items()]
    for flag, item in inputs:
        path = os.path.abspath(item if os.path.exists(item) or "=" not in item else item.split("=", 1)[1])
        for out_flag, out in outputs:
            if os.path.isfile(path) and os.path.isfile(out) and os.path.samefile(path, out):
                raise UserError(f"{out_flag} {out} is the file {flag} reads; write the output to another file.")
            if (flag in FOLDERS_READ and os.path.isdir(path) and not os.path.isdir(out)
                    and os.path.samefile(path, os.path.dirname(out))):
                raise UserError(f"{out_flag} {out} lies in the folder {flag} reads; write the output "
                                "to another folder.")


def write(out: str, npz: str | None, fps: float, frames, arrays, sheet: str | None = None,
          picture=None) -> None:
    """The mp4 (and npz, contact sheet: `picture`, by default the frames' own) written as one
    set: all of them appear whole, or none."""
    import numpy as np

    from tlgen.data.video_io import write_video
    from tlgen.files import write_atomic_all
    from tlgen.metrics.report import contact_sheet, write_png

    def write_all(tmps):
        write_video(tmps[0], frames, fps)
        if npz:
            np.savez_compressed(tmps[1], **arrays)
        if sheet:
            write_png(tmps[-1], contact_sheet(frames, arrays.get("flows")) if picture is None else picture)
    write_atomic_all([p for p in (out, npz, sheet) if p], write_all)   # all of them, or none


def check_frames(frames, family: str, command: str, axes: tuple[str, ...]) -> None:
    """UserError unless a family's `command` made uint8 frames of `axes` + (3,) (float frames
    would be written as a black video)."""
    import numpy as np

    from tlgen.errors import UserError

    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != len(axes) + 1 or frames.shape[-1] != 3:
        raise UserError(f"the {family} family's {command} made frames of {frames.dtype} {frames.shape}; "
                        f"it must make uint8 ({', '.join(axes)}, 3).")


def run(args: argparse.Namespace) -> int:
    from tlgen.config import named_paths
    from tlgen.data.images import read_image
    from tlgen.errors import UserError
    from tlgen.trained import load

    check_outputs(args.out, args.npz, args.fps, args.sheet)
    if os.path.isdir(args.image):
        raise UserError(f"--image {args.image} is a folder; give an image file.")
    if not os.path.isfile(args.image):
        raise UserError(f"--image {args.image} does not exist.")
    args.image_array = read_image(args.image)
    trained = load(args.workdir, step=args.step, command="animate")
    check_not_an_input(args, named_paths(trained.config))       # e.g. its VGG-19 weights
    if args.frames:
        check_memory(args.frames, trained.config, per_pixel=3 + 8 + 12)   # frames, flows, float frames
    animation = trained.family.command("animate").run(trained, args)
    check_frames(animation.frames, trained.family.name, "animate", ("frames", "H", "W"))
    write(args.out, args.npz, args.fps, animation.frames, animation.arrays, args.sheet)
    h, w = animation.frames.shape[1:3]
    print(f"tlgen animate: wrote {args.out}: {len(animation.frames)} frames {h}x{w} (HxW) at "
          f"{args.fps:g} fps ({animation.description}; checkpoint {trained.step})"
          + "".join(f", and {p}" for p in (args.npz, args.sheet) if p))
    return 0
