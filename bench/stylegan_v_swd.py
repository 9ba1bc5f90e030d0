"""StyleGAN-V's quality without downloaded weights: frame SWD and motion SWD (SWD of frame
differences at the real clips' time gaps) of the EMA generator against the validation clips of
`synthetic:clouds` at 32², at step 0 and after a CPU `tiny` run, with the discriminator seeing
the time gaps (the model) and blind to them (StyleGAN-V's ablation), per training seed
(`--scene water`: the river scene instead; `--override key=value ...`: config overrides for every
run, e.g. `loss.augment=ada loss.augment_ops=bgc`). Lower is better. Writes one record to --out.

  python bench/stylegan_v_swd.py --steps 600 --seeds 0 1 2 3 4 5 --out bench/results/stylegan-v-swd-cpu.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

from tlgen import config as config_lib  # noqa: E402
from tlgen.bench.report import write_json  # noqa: E402
from tlgen.data.prepare import prepare  # noqa: E402
from tlgen.families.stylegan_v import training as family  # noqa: E402
from tlgen.trained import load  # noqa: E402
from tlgen.train.trainer import train  # noqa: E402

VARIANTS = {"time gaps in D": True, "D blind to time gaps (ablation)": False}


def score(config, params, batches) -> dict:
    """The trainer's SWD evaluator over `batches` with generator `params`."""
    ev = family.training(config).evaluators["swd"]
    as_state = lambda p: types.SimpleNamespace(for_inference=lambda name: p)
    compute = jax.jit(lambda p, batch: ev.compute(as_state(p), batch))
    total = None
    for batch in batches:
        total = ev.accumulate(total, jax.device_get(compute(params, batch)))
    return {k: round(float(v), 2) for k, v in ev.finalize(total).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--eval-batches", type=int, default=24)
    parser.add_argument("--work", default=None, help="folder for the datasets and the runs, kept "
                        "(default: a temporary folder, removed at the end)")
    parser.add_argument("--scene", choices=("clouds", "water"), default="clouds")
    parser.add_argument("--override", nargs="*", default=[], help="config key=value for every run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tlgen-sgv-swd-") as scratch:
        work = args.work or scratch
        data = os.path.join(work, f"{args.scene}32")
        if not os.path.exists(data):
            prepare([f"synthetic:{args.scene}"], data, size=32)
        results = []
        for seed in args.seeds:
            for name, time_conditioning in VARIANTS.items():
                config = config_lib.load("configs/stylegan_v_clouds.py:tiny", [
                    f"data.dir={data}", f"total_steps={args.steps}", f"seed={seed}",
                    f"model.time_conditioning={time_conditioning}", "train.eval_every=0",
                    "train.sample_every=0", f"train.ckpt_every={args.steps}"] + args.override)
                from tlgen.data.pipelines import sparse_frames_dataset
                pipeline = sparse_frames_dataset(data, "validation", spans=tuple(config.data.spans),
                                                 batch_size=8, seed=123)
                it = iter(pipeline)
                batches = [next(it) for _ in range(args.eval_batches)]
                init = family.training(config).init(jax.random.PRNGKey(seed), batches[0])
                before = score(config, init.for_inference(family.G), batches)
                workdir = os.path.join(work, f"run-{seed}-{int(time_conditioning)}")
                timing = os.path.join(workdir, "train_seconds.txt")
                if os.path.exists(timing):       # a finished run in --work is only scored again
                    with open(os.path.join(workdir, "metrics.jsonl")) as f:
                        metrics = [r for r in map(json.loads, f) if r["split"] == "train"][-1]
                    seconds = float(open(timing).read())
                else:
                    start = time.perf_counter()
                    metrics = train(config, workdir)
                    seconds = time.perf_counter() - start
                    with open(timing, "w") as f:
                        f.write(f"{seconds:.1f}")
                after = score(config, load(workdir).params[family.G], batches)
                row = {"seed": seed, "variant": name, "time_conditioning": time_conditioning,
                       "step0": before, "trained": after, "train_s": round(seconds, 1),
                       "final_loss_d": round(float(metrics["loss_d"]), 4) if "loss_d" in metrics else None,
                       "final_augment_p": round(float(metrics["augment_p"]), 4) if "augment_p" in metrics else None}
                print(row, flush=True)
                results.append(row)
        record = {"kind": "stylegan_v_swd", "date": datetime.datetime.now().isoformat(timespec="seconds"),
                  "config": "configs/stylegan_v_clouds.py:tiny", "data": f"synthetic:{args.scene} at 32x32",
                  "steps": args.steps, "overrides": args.override,
                  "eval": f"{args.eval_batches} validation batches of 8 3-frame clips",
                  "results": results}
        write_json([record], args.out)


if __name__ == "__main__":
    main()
