#!/usr/bin/env python3
"""Runs `tlgen train` as N cooperating processes on this machine (a multi-host job in small).

Each process gets TLGEN_COORDINATOR=127.0.0.1:<free port>, TLGEN_NUM_PROCESSES and
TLGEN_PROCESS_ID; `tlgen train` passes them to jax.distributed.initialize. On CPU each
process simulates --devices-per-process devices (collectives over gloo); with
--platform gpu each process gets one GPU (CUDA_VISIBLE_DEVICES).

  python launch/local.py -n 2 -- --config configs/timescale_ae_synthetic.py:tiny --workdir runs/x

Everything after `--` goes to `tlgen train`. SIGTERM and SIGINT (Ctrl-C) reach every
process as SIGTERM: they save a checkpoint and stop (exit 75; the processes ignore the
terminal's own SIGINT, which would stop them without saving). If any process fails, the
others are stopped and the exit code is non-zero.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import time

from tlgen.errors import STOPPED

GRACE_SECONDS = 30


def free_port() -> int:
    """A free TCP port for the coordinator, below the kernel's ephemeral range where it can:
    the processes bind it seconds later (after importing JAX), and meanwhile a port of that
    range may be handed to any socket bound to port 0 (gloo's, another job's)."""
    low = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    rng = random.Random()
    for port in [rng.randrange(10000, low) for _ in range(50)] if low > 10000 else []:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def visible_gpus(environ) -> list[str]:
    """The GPUs CUDA_VISIBLE_DEVICES selects in `environ` (empty: none selected, all usable)."""
    return [g.strip() for g in environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]


def process_env(rank: int, count: int, port: int, platform: str, devices: int) -> dict:
    env = dict(os.environ, TLGEN_COORDINATOR=f"127.0.0.1:{port}", TLGEN_NUM_PROCESSES=str(count),
               TLGEN_PROCESS_ID=str(rank))
    if platform == "cpu":
        flags = [f for f in env.get("XLA_FLAGS", "").split()
                 if not f.startswith("--xla_force_host_platform_device_count")]
        env["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={devices}"])
        env["JAX_PLATFORMS"] = "cpu"
    else:       # the rank-th of the GPUs this shell already selected, or GPU `rank`
        visible = visible_gpus(env)
        env["CUDA_VISIBLE_DEVICES"] = visible[rank] if visible else str(rank)
    return env


def stop(procs: list[subprocess.Popen], sig: int) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(sig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--num-processes", type=int, default=2)
    parser.add_argument("--devices-per-process", type=int, default=1,
                        help="simulated CPU devices per process (--platform cpu)")
    parser.add_argument("--platform", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("train_args", nargs=argparse.REMAINDER,
                        help="arguments of `tlgen train` (after --)")
    args = parser.parse_args(argv)
    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    if args.num_processes < 1:
        parser.error("--num-processes must be >= 1")
    if args.devices_per_process < 1:
        parser.error("--devices-per-process must be >= 1")
    visible = visible_gpus(os.environ)
    if args.platform == "gpu" and visible and args.num_processes > len(visible):
        parser.error(f"-n {args.num_processes} processes need as many GPUs, but CUDA_VISIBLE_DEVICES "
                     f"selects {len(visible)}")
    if not train_args:
        parser.error("give the tlgen train arguments after --, e.g. -- --config FILE.py:tiny "
                     "--workdir W")
    port = free_port()
    command = [sys.executable, "-m", "tlgen", "train", *train_args]
    ignore_interrupt = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731
    procs = [subprocess.Popen(command, env=process_env(rank, args.num_processes, port, args.platform,
                                                       args.devices_per_process),
                              preexec_fn=ignore_interrupt)
             for rank in range(args.num_processes)]

    def forward(signum, frame):
        stop(procs, signal.SIGTERM)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)

    failed = None
    while any(p.poll() is None for p in procs):
        bad = [p for p in procs if p.poll() not in (None, 0, STOPPED)]
        if bad and failed is None:
            failed = bad[0]
            print(f"launch/local.py: process {procs.index(failed)} exited with {failed.returncode}; "
                  "stopping the others", file=sys.stderr)
            stop(procs, signal.SIGTERM)
            deadline = time.monotonic() + GRACE_SECONDS
        if failed is not None and time.monotonic() > deadline:
            stop(procs, signal.SIGKILL)
        time.sleep(0.2)
    codes = [p.returncode for p in procs] if failed is None else [failed.returncode]
    code = next((c for c in codes if c != 0), 0)
    return code if code >= 0 else 1   # killed by a signal


if __name__ == "__main__":
    sys.exit(main())
