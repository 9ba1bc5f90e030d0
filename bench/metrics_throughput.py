"""Features/s of the metric networks (FID's Inception-v3, FVD's I3D, LPIPS) in tlgen (JAX)
and in the PyTorch references of the same architectures, on the same inputs and the same
random weights, in one process; each timed as the median of synchronized calls after
warm-up, alternating tlgen and PyTorch call by call. Appends a record to --out.

  python bench/metrics_throughput.py --out bench/results/metrics-cpu.json
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

from bench.peers import metrics as ref  # noqa: E402
from tlgen.bench.harness import environment  # noqa: E402
from tlgen.bench.report import write_json  # noqa: E402
from tlgen.bench.timing import side_by_side as measure  # noqa: E402
from tlgen.metrics.perceptual import I3D, LPIPS, Inception  # noqa: E402


def _weights(module: torch.nn.Module, folder: str, name: str) -> str:
    path = os.path.join(folder, f"{name}.safetensors")
    save_file({k: v.numpy() for k, v in module.state_dict().items() if v.dtype == torch.float32}, path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        rng = np.random.default_rng(0)
        rows = []
        with torch.no_grad():
            images = rng.integers(0, 256, (16, 64, 64, 3), dtype=np.uint8)
            net = ref.randomize_batch_norms(ref.FIDInceptionV3())
            ours = Inception.load(_weights(net, folder, "inception"))
            nchw = torch.from_numpy(images.astype(np.float32) / 255).permute(0, 3, 1, 2)
            rows.append(measure("inception (64x64 -> 299x299)", lambda: ours.features(images),
                                lambda: net(nchw), 16, args.steps))
            clips = rng.integers(0, 256, (2, 16, 224, 224, 3), dtype=np.uint8)
            net = ref.randomize_batch_norms(ref.InceptionI3d())
            ours_i3d = I3D.load(_weights(net, folder, "i3d"))
            x = torch.from_numpy(clips.astype(np.float32) / 127.5 - 1).permute(0, 4, 1, 2, 3)
            rows.append(measure("i3d (16x224x224 clips)", lambda: ours_i3d.features(clips),
                                lambda: net(x), 2, args.steps))
            a, b = (rng.integers(0, 256, (16, 128, 128, 3), dtype=np.uint8) for _ in range(2))
            net = ref.LPIPS("alex").eval()
            ours_lpips = LPIPS.load(_weights(net, folder, "lpips"))
            ta, tb = (torch.from_numpy(v.astype(np.float32) / 255).permute(0, 3, 1, 2) for v in (a, b))
            rows.append(measure("lpips-alex (128x128 pairs)", lambda: ours_lpips.distance(a, b),
                                lambda: net(ta, tb), 16, args.steps))
        record = {"date": datetime.date.today().isoformat(), "environment": environment(),
                  "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "rows": rows,
                  "note": "random weights; the same inputs and weights for both; ratio = median over "
                          "steps of tlgen time / PyTorch time (below 1: tlgen faster)"}
        write_json([record], args.out)
        return 0


if __name__ == "__main__":
    sys.exit(main())
