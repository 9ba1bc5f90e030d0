"""Train a model family; resumes from the work directory's newest checkpoint.

Examples:
  tlgen train --config configs/timescale_ae_synthetic.py:tiny --config.data.dir=data/city --workdir runs/tae
  tlgen train --config configs/timescale_ae_synthetic.py:tiny --config.data.dir=data/city --workdir runs/tae --config.total_steps=2000
  tlgen train --workdir runs/tae --config.total_steps=4000   # resume with the saved config

Writes W/config.json, W/data.json, W/weights.json (a model that reads weights files),
W/checkpoints/, W/metrics.jsonl, W/tb/ and W/samples/.
SIGTERM (or a preemption notice) saves a checkpoint and exits 75; the same command then
continues where it stopped. Multi-host: run it on every host (see launch/); processes find
each other automatically in a SLURM step or a GKE TPU pod, with TLGEN_DISTRIBUTED=auto on
Cloud TPU VMs (launch/tpu_pod.sh sets it), or through TLGEN_COORDINATOR /
TLGEN_NUM_PROCESSES / TLGEN_PROCESS_ID.
"""

import os


def add_arguments(parser) -> None:
    from tlgen.config import add_config_arguments
    add_config_arguments(parser, required=False)
    parser.add_argument("--workdir", required=True, help="work directory (created; resumed if it has checkpoints)")


def run(args) -> int:
    from tlgen import config as config_lib
    from tlgen.errors import STOPPED, UserError

    overrides = getattr(args, "config_overrides", [])
    saved = os.path.join(args.workdir, "config.json")
    if args.config:
        config = config_lib.load(args.config, overrides)
    elif os.path.exists(saved):
        config = config_lib.read_run(saved)
        config_lib.apply_overrides(config, overrides)
        config.lock()
    else:
        raise UserError(f"{args.workdir} has no config.json to resume from; pass --config FILE.py:VARIANT.")
    import jax

    from tlgen.train.trainer import train
    metrics = train(config, args.workdir)
    if jax.process_index() == 0:
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in metrics.items())
        print(f"tlgen train: {args.workdir}: {shown}")
    return STOPPED if metrics.get("preempted") else 0
