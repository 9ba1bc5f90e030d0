r"""Benchmark a config: compile time, step time, FLOPs, MFU, memory, pipeline and inference rates.

Examples:
  tlgen bench --config configs/dtvnet_clouds.py:tiny --config.data.dir= --steps 5
                          # synthetic batch (no dataset needed), prints a summary
  tlgen bench --config configs/dtvnet_clouds.py:base --config.data.dir= --batch 8 \
      --config.dtype=bfloat16 --json out.json   # adds a JSON record (device, versions, config)
                                                # to the list in out.json
  tlgen bench --config configs/timescale_ae_synthetic.py:tiny --config.data.dir=data/city --layers
                          # + the input pipeline's frames/s and a per-layer cost table

Without a dataset (empty config.data.dir, or a config's default folder that is not there)
the step runs on a synthetic batch of the family's example shapes; with one, on its first
batch, and the input pipeline is measured. A --config.data.dir that is not a folder is an
error.
"""

from __future__ import annotations

import argparse
import shlex

from tlgen.config import add_config_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--steps", type=int, default=10, help="timed steps (median reported)")
    parser.add_argument("--batch", type=int, default=None, help="global batch (default: config's)")
    parser.add_argument("--json", metavar="OUT", help="add the record to the JSON list of records in OUT (a new list "
                        "when OUT does not exist), as the files of bench/results/ hold them")
    parser.add_argument("--layers", type=int, nargs="?", const=16, default=0, metavar="N",
                        help="time the N (default 16) costliest conv/dense layers alone "
                             "(forward+backward) and report their FLOP rate against the matmul peak")
    parser.add_argument("--no-pipeline", action="store_true", help="skip the input-pipeline rate")
    parser.add_argument("--no-inference", action="store_true", help="skip the inference rate")


def run(args: argparse.Namespace) -> int:
    from tlgen import config as config_lib
    from tlgen.bench import harness, report
    from tlgen.errors import UserError
    from tlgen.files import check_output_file

    if args.steps < 1:
        raise UserError(f"--steps must be at least 1, got {args.steps}.")
    if args.layers < 0:
        raise UserError(f"--layers must be a number of layers (0 or more), got {args.layers}.")
    if args.json is not None:
        check_output_file(args.json, "--json")
        if not args.json.lower().endswith(".json"):
            raise UserError(f"--json {args.json} must end in .json.")
        report.read_records(args.json, "--json")
    config = config_lib.load(args.config, args.config_overrides)
    named = any(o.startswith("data.dir=") for o in args.config_overrides) and config.data.dir
    if named and not harness.has_dataset(config):
        raise UserError(f"--config.data.dir {config.data.dir} is not a folder; give a prepared "
                        "dataset, or leave the key out to time a synthetic batch.")
    record = harness.run_benchmark(config, steps=args.steps, batch=args.batch,
                                   layers=args.layers, pipeline=not args.no_pipeline,
                                   inference=not args.no_inference)
    record["command"] = shlex.join(["tlgen", *args.argv])
    print(report.summary(record))
    if args.json is not None:
        report.append_json(record, args.json)
    return 0
