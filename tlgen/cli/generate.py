"""Generate long videos with the StyleGAN-V-style generator (not built yet).

Examples:
  tlgen generate --workdir runs/stylegan_v --frames 1024 --out long.mp4
"""

from tlgen.errors import UserError


def add_arguments(parser) -> None:
    parser.add_argument("--workdir", help="training work directory")
    parser.add_argument("--frames", type=int, default=128, help="number of frames to generate")
    parser.add_argument("--out", help="output video (.mp4)")


def run(args) -> int:
    raise UserError("the long-video generator family is not built yet in this version of tlgen; "
                    "use `tlgen timelapse` or `tlgen animate`.")
