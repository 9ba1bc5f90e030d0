"""The cost of the discriminator's clip augmentations: DiffAugment's operations against ADA's
`bgc` pipeline, a forward pass and the gradient with respect to the clips (what every
discriminator pass of a GAN step adds), at p = 1, jitted, each the median of synchronized
calls after warm-up; XLA's FLOPs and the device's matmul peak from the same run. Shapes: a
StyleGAN-V batch (8 clips of 3 frames at 64²) and a super-resolution one (2 samples of 8
frames at 144×256). Appends a record to --out.

  python bench/augment_cost.py --out bench/results/augment-cpu.json
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from tlgen.bench.harness import environment  # noqa: E402
from tlgen.bench.peak import cost_flops, matmul_peak  # noqa: E402
from tlgen.bench.report import append_json  # noqa: E402
from tlgen.bench.timing import median, time_calls  # noqa: E402
from tlgen.train.gan import AUGMENT_OPS  # noqa: E402

SHAPES = {"stylegan_v tiny (8 clips, 3 x 64x64)": (8, 3, 64, 64, 3),
          "super-resolution (2 samples, 8 x 144x256)": (2, 8, 144, 256, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    peak = matmul_peak("float32")
    rows = []
    for shape_name, shape in SHAPES.items():
        clips = jax.random.uniform(jax.random.key(0), shape, minval=-1, maxval=1)
        key = jax.random.key(1)
        for ops, augment in AUGMENT_OPS.items():
            forward = jax.jit(lambda k, x, augment=augment: augment(k, x, 1.0))
            gradient = jax.jit(jax.grad(lambda x, k, augment=augment: jnp.sum(augment(k, x, 1.0) ** 2)))
            row = {"shape": shape_name, "ops": ops}
            for what, fn, call_args in (("forward", forward, (key, clips)), ("gradient", gradient, (clips, key))):
                lowered = fn.lower(*call_args)
                compiled = lowered.compile()
                times = time_calls(lambda: compiled(*call_args), steps=args.steps)
                row[what] = {"median_s": median(times), "flops": cost_flops(lowered)}
            rows.append(row)
            print(f"{shape_name:45s} {ops:12s} forward {row['forward']['median_s'] * 1e3:8.1f} ms   "
                  f"gradient {row['gradient']['median_s'] * 1e3:8.1f} ms", flush=True)
    record = {"date": datetime.date.today().isoformat(), "environment": environment(), "peak": peak,
              "steps": args.steps, "rows": rows}
    append_json(record, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
