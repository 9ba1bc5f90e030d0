"""StyleGAN-V generation on this machine: frames/s of the public model's generator at 64², 128²
and 256² (configs/stylegan_v_clouds.py:base widths at that resolution, random weights) beside
the PyTorch peer's (same layers, eager, same thread count), and the peak memory of
`tlgen generate` as the video grows (a 256² generator run by the CLI, 1,000, 10,000 and 30,000 frames).
Writes one record to --out.

  python bench/stylegan_v_generate.py --out bench/results/stylegan-v-generate-cpu.json
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ["TLGEN_XLA_CACHE"] = "off"    # every `tlgen generate` compiles, whatever an earlier one cached

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from tlgen import config as config_lib  # noqa: E402
from tlgen.bench.report import write_json  # noqa: E402
from tlgen.bench.timing import peak_rss_mib  # noqa: E402
from tlgen.families.stylegan_v import inference  # noqa: E402
from tlgen.models import stylegan_v as sv  # noqa: E402

FRAMES = 32


def jax_rate(config) -> float:
    """Frames/s of `inference.generate` (one video, chunks of 16) after a warm-up."""
    gen = sv.generator(config.model)
    t = jnp.zeros((1, 1))
    params = jax.jit(lambda: gen.init(jax.random.key(0), jnp.zeros((1, gen.z_dim)),
                                      jnp.zeros((1, gen.codes_for(0.0), gen.z_dim)), t))()["params"]
    trained = types.SimpleNamespace(config=config, dtype=jnp.float32, params={"g": params})
    run = lambda: [c for c in inference.generate(trained, FRAMES, chunk=16)]
    run()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return FRAMES / float(np.median(times))


def peer_rate(config, threads: int) -> float:
    import torch

    from bench.peers import stylegan_v as peer
    torch.set_num_threads(threads)
    g = peer.Generator(config.model).eval()
    n_codes = sv.generator(config.model).codes_for(FRAMES)
    z, codes = torch.randn(1, int(config.model.z_dim)), torch.randn(1, n_codes, int(config.model.z_dim))
    t = torch.arange(FRAMES, dtype=torch.float32)[None]
    with torch.no_grad():
        g(z, codes, t)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            g(z, codes, t)
            times.append(time.perf_counter() - start)
    return FRAMES / float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--lengths", type=int, nargs="+", default=[1000, 10000, 30000])
    args = parser.parse_args()
    rates = []
    for res in (64, 128, 256):
        config = config_lib.load("configs/stylegan_v_clouds.py:base", [f"model.resolution={res}", "data.dir="])
        row = {"resolution": res, "tlgen_frames_per_s": round(jax_rate(config), 2),
               "pytorch_frames_per_s": round(peer_rate(config, args.threads), 2)}
        print(row, flush=True)
        rates.append(row)
    with tempfile.TemporaryDirectory(prefix="tlgen-sgv-gen-") as work:
        data, workdir = os.path.join(work, "data"), os.path.join(work, "run")
        narrow = ["--config.model.resolution=256", "--config.model.channel_base=512",
                  "--config.model.d_channel_base=512", "--config.model.concat_res=16"]
        subprocess.run([sys.executable, "-m", "tlgen", "prepare", "synthetic:clouds:frames=40",
                        "--size", "256", "--levels", "1", "--out", data], check=True, capture_output=True)
        subprocess.run([sys.executable, "-m", "tlgen", "train", "--config", "configs/stylegan_v_clouds.py:tiny",
                        "--workdir", workdir, f"--config.data.dir={data}", "--config.total_steps=1", *narrow],
                       check=True, capture_output=True)
        memory = []
        for frames in args.lengths:
            start = time.perf_counter()
            rss = peak_rss_mib([sys.executable, "-m", "tlgen", "generate", "--workdir", workdir,
                                "--frames", str(frames), "--out", os.path.join(work, f"g{frames}.mp4")])
            row = {"frames": frames, "resolution": 256, "peak_rss_mib": round(rss, 1),
                   "seconds": round(time.perf_counter() - start, 1)}
            print(row, flush=True)
            memory.append(row)
        record = {"kind": "stylegan_v_generate", "date": datetime.datetime.now().isoformat(timespec="seconds"),
                  "threads": args.threads, "frames_per_measure": FRAMES,
                  "rates": rates, "rates_note": "base widths (channel_base 16384) at each resolution, random "
                  "weights; tlgen: inference.generate, one frame per loop pass, chunks of 16; PyTorch: the peer's "
                  "generator, eager, all 32 frames in one batch",
                  "memory": memory, "memory_note": "tlgen generate (the CLI, no compilation cache) of a 256² "
                  "generator with narrow widths (channel_base 512) trained one step; the loop and the writer "
                  "are the base model's"}
        write_json([record], args.out)


if __name__ == "__main__":
    main()
