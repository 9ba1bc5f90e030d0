r"""Evaluate a trained run with its family's protocol; writes W/eval/report.{json,md} and plots.

Examples:
  tlgen eval --workdir runs/tae                       # the run's own dataset
  tlgen eval --workdir runs/tae --data data/city2     # another prepared dataset
  tlgen eval --workdir runs/dtv --num-clips 32        # a family's own options (see --workdir W --help)
  tlgen eval --workdir runs/dtv --inception inception.safetensors --i3d i3d.safetensors \
      --lpips lpips_alex.safetensors                  # + FID, KID, FVD, LPIPS
  tlgen eval --workdir runs/lv --spectrum-frames 4096  # a generator: SWD, temporal spectrum
  tlgen eval --workdir runs/lv --superres runs/lv_sr   # its videos upscaled, against that run's data
  tlgen eval --workdir runs/lv_sr                     # the upscaler alone, on real clips reduced

FID/KID, FVD and LPIPS need the pretrained networks' weights, which tlgen does not download:
give the files (`tlgen convert-weights` makes them from the published PyTorch files). SWD
needs none. The report states the protocol (README: "Evaluation protocol") and lists each
metric it could not compute and why. Prints the paths of the files it wrote.
"""

from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", required=True, help="training work directory")
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="prepared dataset (default: the run's config.data.dir)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the newest)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="report folder (default: WORKDIR/eval)")
    parser.add_argument("--inception", metavar="FILE", help="FID Inception-v3 weights (FID, KID)")
    parser.add_argument("--i3d", metavar="FILE", help="I3D Kinetics-400 weights (FVD)")
    parser.add_argument("--lpips", metavar="FILE", help="LPIPS v0.1 weights, AlexNet or VGG-16 (LPIPS)")


def run(args: argparse.Namespace) -> int:
    from tlgen.files import check_output_folder
    from tlgen.metrics.protocol import Networks
    from tlgen.metrics.report import write_report
    from tlgen.trained import load

    if args.out is not None:
        check_output_folder(args.out, "--out")
    args.networks = Networks.load(args.inception, args.i3d, args.lpips)
    trained = load(args.workdir, step=args.step, command="eval")
    command = trained.family.command("eval")

    def evaluate(plots_dir: str) -> dict:
        args.out_dir = plots_dir
        return command.run(trained, args)
    _, paths = write_report(args.out or os.path.join(args.workdir, "eval"), evaluate)
    print("\n".join(paths))
    return 0
