"""tlgen against its PyTorch peer on one config, in one process; appends to a results file.

  python bench/run.py --config configs/dtvnet_clouds.py:base --batch 4 --steps 5 \
      --out bench/results/2026-11-22-cpu.json
  python bench/run.py --table bench/results/2026-11-22-cpu.json   # markdown table

The peer is built first, on the same batch the harness builds, with the same thread count
on CPU; its step is then timed right after each tlgen step, so both see the same machine
(a shared machine's speed drifts by tens of percent within minutes). The record is the
harness's record plus "peer": its step times, parameter counts and inference rate, and
"ratio": the median over steps of tlgen step time / PyTorch step time.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import json
import os
import shlex
import sys
import time

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # share the GPU with PyTorch
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tlgen import config as config_lib  # noqa: E402
from tlgen.bench import harness, report  # noqa: E402
from tlgen.bench.timing import median, time_calls  # noqa: E402

log = logging.getLogger("bench.run")


def build_peer(config, host_batch: dict, *, compile: bool, threads: int | None):
    """Builds the PyTorch peer of `config.family` on `host_batch` and runs its first step
    (torch.compile compiles there). Returns (peer, device, facts about it)."""
    import torch

    from bench.peers import common
    peer_module = importlib.import_module(f"bench.peers.{config.family}")
    device = common.pick_device(threads)
    log.info("PyTorch peer: building (compile=%s)", compile)
    peer = peer_module.Peer(config, host_batch, device, compile=compile)
    error = None
    try:
        start = time.perf_counter()
        peer.step()
        common.synchronize(device)
        first_s = time.perf_counter() - start
    except RuntimeError as e:  # torch.compile's failures (TorchDynamoException is one) must
        # not lose the eager measurement
        error = f"{type(e).__name__}: {e}"[:500]
        compile = False
        peer = peer_module.Peer(config, host_batch, device, compile=False)
        first_s = None
    log.info("PyTorch peer: first step %s s", first_s)
    info = {"first_step_s": first_s, "compile_error": error, "parameters": peer.parameters,
            "compile": compile, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}
    return peer, device, info


def peer_inference(peer, device) -> float | None:
    """The peer's generation frames/s, if it has a generator."""
    from bench.peers import common
    if getattr(peer, "generate", None) is None:
        return None
    seconds = median(time_calls(lambda: (peer.generate(), common.synchronize(device)),
                                steps=3, warmup=1))
    return peer.frames_per_generate / seconds


def merge(path: str, record: dict) -> None:
    """Adds `record` to the list in `path`, replacing one with the same family/variant/dtype/batch."""
    key = lambda r: (r["family"], r["variant"], r["dtype"], r["batch"], r["environment"]["device_kind"])
    records = []
    if os.path.exists(path):
        with open(path) as f:
            records = json.load(f)
    records = [r for r in records if key(r) != key(record)] + [record]
    report.write_json(records, path)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("tlgen.bench").setLevel(logging.INFO)
    logging.getLogger("bench").setLevel(logging.INFO)
    argv = given = list(sys.argv[1:] if argv is None else argv)
    overrides, argv = config_lib.overrides_from(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="FILE.py:variant (with --config.key=value overrides)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--out", help="results JSON (a list of records) to add this run to")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--no-compile", action="store_true", help="PyTorch peer without torch.compile")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads for PyTorch")
    parser.add_argument("--layers", type=int, nargs="?", const=16, default=0, metavar="N",
                        help="per-layer cost table of tlgen's N costliest layers")
    parser.add_argument("--note", default="", help="free text stored in the record (e.g. the load)")
    parser.add_argument("--table", nargs="*", help="print the markdown table of these result files")
    args = parser.parse_args(argv)
    if args.table is not None:
        records = [r for path in args.table for r in json.load(open(path))]
        print(report.markdown_table(records))
        return 0
    config = harness.bench_config(config_lib.load(args.config, overrides), args.batch)
    peer = alongside = batch = None
    if not args.no_peer:
        from bench.peers import common
        from tlgen import family as family_lib
        spec = family_lib.of(config)
        batch = harness.bench_batch(spec, spec.training(config), config)
        peer_model, device, peer = build_peer(config, batch[0], compile=not args.no_compile,
                                              threads=args.threads)
        alongside = lambda: (peer_model.step(), common.synchronize(device))
    record = harness.run_benchmark(config, steps=args.steps, layers=args.layers, alongside=alongside,
                                   host_batch=batch)
    record["note"] = args.note
    record["command"] = shlex.join(["python", "bench/run.py", *given])
    if peer:
        paired = record.pop("alongside")
        peer.update({k: paired[k] for k in ("median_s", "min_s", "max_s")})
        peer["inference_frames_per_s"] = peer_inference(peer_model, device)
        record["peer"] = peer
        record["ratio"] = paired["ratio"]
    print(report.summary(record))
    if peer:
        print(f"  PyTorch peer {peer['median_s'] * 1e3:.2f} ms/step (compile={peer['compile']}) "
              f"-> tlgen/PyTorch {record['ratio']:.2f}; parameters tlgen {record['parameters']} "
              f"PyTorch {peer['parameters']}")
    if args.out:
        merge(args.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
