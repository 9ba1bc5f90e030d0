"""Multi-process start-up: one JAX process per host (TPU VM worker, SLURM task, local)."""

from __future__ import annotations

import logging
import os

import jax
import numpy as np

from tlgen.errors import UserError

log = logging.getLogger(__name__)

ENV_COORDINATOR = "TLGEN_COORDINATOR"
ENV_NUM_PROCESSES = "TLGEN_NUM_PROCESSES"
ENV_PROCESS_ID = "TLGEN_PROCESS_ID"
ENV_AUTO = "TLGEN_DISTRIBUTED"    # "auto": let JAX detect the cluster (TPU pod, SLURM, ...)
# Seconds without a heartbeat after which the coordination service declares a process dead
# and stops the others (JAX's default is 100).
ENV_HEARTBEAT = "TLGEN_HEARTBEAT_TIMEOUT"
DEFAULT_HEARTBEAT_S = 30


def _int_env(name: str, default: int | None = None) -> int | None:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{name}={value!r} must be a whole number.") from None


def _cluster_detected() -> bool:
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_STEP_ID" in os.environ:
        return True
    hosts = os.environ.get("TPU_WORKER_HOSTNAMES", "")
    return "," in hosts


def initialize_distributed(coordinator: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None, *, auto: bool | None = None) -> tuple[int, int]:
    """Starts JAX's multi-process runtime when this is one process of several.

    Explicit: `coordinator` ("host:port"), `num_processes`, `process_id`, or the env vars
    TLGEN_COORDINATOR / TLGEN_NUM_PROCESSES / TLGEN_PROCESS_ID (set by launch/local.py).
    Automatic: inside a multi-task SLURM step or a GKE TPU pod (TPU_WORKER_HOSTNAMES), or with
    TLGEN_DISTRIBUTED=auto / `auto=True` (Cloud TPU VMs: launch/tpu_pod.sh sets it),
    `jax.distributed.initialize()` finds its peers.
    CPU collectives use gloo. Must run before anything queries devices; a second call is a
    no-op. Returns (process_index, process_count).
    """
    if jax.distributed.is_initialized():
        return jax.process_index(), jax.process_count()
    coordinator = coordinator or os.environ.get(ENV_COORDINATOR)
    if num_processes is None:
        num_processes = _int_env(ENV_NUM_PROCESSES)
    if process_id is None:
        process_id = _int_env(ENV_PROCESS_ID)
    if auto is None:
        auto = os.environ.get(ENV_AUTO, "").lower() == "auto" or _cluster_detected()
    if not (coordinator or auto):
        return 0, 1
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    heartbeat = _int_env(ENV_HEARTBEAT, DEFAULT_HEARTBEAT_S)
    if coordinator:
        if num_processes is None or process_id is None:
            raise UserError(f"{ENV_COORDINATOR} is set, so {ENV_NUM_PROCESSES} and "
                            f"{ENV_PROCESS_ID} must be set too.")
        if not 0 <= process_id < num_processes:
            raise UserError(f"process id {process_id} is outside 0..{num_processes - 1}.")
        jax.distributed.initialize(coordinator, num_processes=num_processes, process_id=process_id,
                                   heartbeat_timeout_seconds=heartbeat)
    else:
        try:
            jax.distributed.initialize(heartbeat_timeout_seconds=heartbeat)
        except ValueError as e:     # JAX found no cluster to join
            why = str(e).rstrip(".")
            raise UserError(f"{ENV_AUTO}=auto, but JAX found no cluster here ({why}); unset it to "
                            f"run one process, or set {ENV_COORDINATOR}, {ENV_NUM_PROCESSES} and "
                            f"{ENV_PROCESS_ID}.") from None
    log.info("process %d of %d, %d local / %d global devices", jax.process_index(),
             jax.process_count(), jax.local_device_count(), jax.device_count())
    return jax.process_index(), jax.process_count()


def agree(value: int) -> int:
    """The largest `value` (an int32) over the processes of the job, returned to every
    process; `value` itself in a one-process run. Every process must call it."""
    if jax.process_count() == 1:
        return int(value)
    from jax.experimental import multihost_utils
    return int(np.max(multihost_utils.process_allgather(np.asarray([value], np.int32))))
