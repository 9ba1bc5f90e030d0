"""Evaluate a trained run with its family's protocol; writes W/eval/report.{json,md} and plots.

Examples:
  tlgen eval --workdir runs/tae                       # the run's own dataset
  tlgen eval --workdir runs/tae --data data/city2     # another prepared dataset
"""

from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", required=True, help="training work directory")
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="prepared dataset (default: the run's config.data.dir)")


def run(args: argparse.Namespace) -> int:
    from tlgen import config as config_lib
    from tlgen.errors import UserError
    from tlgen.train import registry

    path = os.path.join(args.workdir, "config.json")
    if not os.path.exists(path):
        raise UserError(f"{args.workdir} has no config.json; give the work directory of a "
                        "`tlgen train` run.")
    config = config_lib.read(path)
    family = registry.family(config if args.data is None else _with_data(config, args.data))
    if family.evaluate is None:
        raise UserError(f"the {config.family!r} family has no evaluation protocol yet.")
    report = family.evaluate(args.workdir, args.data)
    for name, file in report.get("files", {}).items():
        print(file)
    return 0


def _with_data(config, data_dir: str):
    config = config.copy_and_resolve_references()
    config.data.dir = data_dir
    return config
