"""`tlgen bench`: one benchmark record for one config, measured in one process.

The record holds compile time, training-step time (median of N device-synchronized
steps after warm-up), samples/s and frames/s, FLOPs per step (matmul + conv, counted from
the step's jaxpr; XLA's cost analyses kept beside it), the device's matmul peak in the
step's dtype measured in the same run, MFU, peak memory, the input pipeline's frames/s
and its ratio to what the step consumes, and inference frames/s (`tlgen.bench.inference`;
the family's `sample` for families it does not know).

Bench data: when `config.data.dir` is empty or not a folder the step runs on a synthetic
batch of the right shapes (random uint8 frames, valid masks, small gaps) built from the
family's `example_batch(config, batch_size)`, so a benchmark needs no prepared dataset; the
pipeline measurement is then skipped. With a prepared dataset the step runs on the
pipeline's first batch and the pipeline's frames/s are measured too.
"""

from __future__ import annotations

import datetime
import logging
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import ml_collections
import numpy as np

from tlgen.bench import flops as flops_lib
from tlgen.bench import inference as inference_lib
from tlgen.bench import layers as layers_lib
from tlgen.bench import step as step_lib
from tlgen.bench.peak import cost_flops, matmul_peak
from tlgen.bench.timing import median, time_alternating, time_calls
import tlgen
from tlgen import family as family_lib
from tlgen.errors import UserError
from tlgen.train.trainer import check_batch

log = logging.getLogger(__name__)


def bench_config(config: ml_collections.ConfigDict, batch: int | None = None
                 ) -> ml_collections.ConfigDict:
    """`config` as benchmarked: its global batch `batch` (unchanged if None; checked to be
    positive), and no `data.dir` when that is not a folder (a synthetic batch stands in, and
    the family is built without a dataset)."""
    config = config.copy_and_resolve_references()
    if batch is not None:
        if batch < 1:
            raise UserError(f"--batch must be a positive number of samples, got {batch}.")
        config.data.batch_size = int(batch)
    check_batch(config)
    if config.data.get("dir", "") and not has_dataset(config):
        log.warning("config.data.dir %s is not a folder: benchmarking on a synthetic batch",
                    config.data.dir)
        config.data.dir = ""
    return config


def has_dataset(config: ml_collections.ConfigDict) -> bool:
    """True when `config.data.dir` names a folder."""
    data_dir = config.data.get("dir", "") if "data" in config else ""
    return bool(data_dir) and os.path.isdir(str(data_dir))


def synthetic_batch(spec: Mapping[str, jax.ShapeDtypeStruct], seed: int = 0) -> dict:
    """Random numpy arrays of `spec`'s shapes: uint8 frames (..., H, W, 3) in [0, 255],
    booleans True, other integers in [0, 4) (a few videos, label maps of a few classes), floats
    in [0, 1) ascending along the last axis (a clip's frame times come in order: a peer indexing
    its motion codes by time relies on it)."""
    rng = np.random.default_rng(seed)
    batch = {}
    for name, s in spec.items():
        dtype = np.dtype(s.dtype)
        if dtype == np.uint8 and len(s.shape) >= 3 and s.shape[-1] == 3:
            batch[name] = rng.integers(0, 256, s.shape, dtype=np.uint8)
        elif dtype == np.bool_:
            batch[name] = np.ones(s.shape, bool)
        elif np.issubdtype(dtype, np.integer):
            batch[name] = rng.integers(0, 4, s.shape).astype(dtype)
        else:
            batch[name] = np.sort(rng.random(s.shape), axis=-1).astype(dtype)
    return batch


def _frame_shapes(batch: Mapping[str, Any]) -> list[tuple[int, ...]]:
    """Shapes of the batch's images: its uint8 arrays ending in (H, W, 3)."""
    shapes = [np.shape(v) for v in batch.values() if getattr(v, "dtype", None) == np.uint8]
    return [s for s in shapes if len(s) >= 4 and s[-1] == 3]


def count_frames(batch: Mapping[str, Any]) -> int:
    """Images in a batch: every uint8 array ending in (H, W, 3) counts its leading dims."""
    return sum(int(np.prod(shape[:-3])) for shape in _frame_shapes(batch))


def frame_sizes(batch: Mapping[str, Any]) -> list[str]:
    """The batch's image sizes, "HxW", largest first."""
    sizes = {shape[-3:-1] for shape in _frame_shapes(batch)}
    return [f"{h}x{w}" for h, w in sorted(sizes, key=lambda s: -s[0] * s[1])]


def bench_batch(spec: family_lib.Family, training: family_lib.Training,
                config: ml_collections.ConfigDict) -> tuple[dict, str]:
    """The batch the step is timed on, and where it came from ("pipeline" | "synthetic")."""
    if has_dataset(config):
        return next(iter(training.make_pipeline("train", 0, 1))), "pipeline"
    return synthetic_batch(batch_spec(spec, config), seed=int(config.get("seed", 0))), "synthetic"


def batch_spec(spec: family_lib.Family, config: ml_collections.ConfigDict) -> dict:
    """Shapes and dtypes of one global batch: the family's `example_batch(config, batch_size)`."""
    arrays = spec.example_batch(config, int(config.data.batch_size))
    return {k: jax.ShapeDtypeStruct(np.shape(v), np.asarray(v).dtype) for k, v in arrays.items()}


def count_parameters(state) -> dict[str, int]:
    """Trainable parameters per network of a TrainState-like state (`state.params`)."""
    params = getattr(state, "params", None)
    if params is None and isinstance(state, Mapping):
        params = state.get("params")
    if not isinstance(params, Mapping):
        return {"all": _size(params)}
    return {str(name): _size(tree) for name, tree in params.items()}


def _size(tree) -> int:
    return int(sum(np.prod(np.shape(leaf)) for leaf in jax.tree.leaves(tree)))


def memory_peak_bytes(device: jax.Device) -> tuple[int, str]:
    """Peak memory: the device allocator's peak on GPU/TPU, the process's max RSS on CPU."""
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "peak_bytes_in_use" in stats:
        return int(stats["peak_bytes_in_use"]), "device peak_bytes_in_use"
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, "process max RSS"


def environment() -> dict:
    """Device kind, counts and library versions for the record."""
    import flax
    import optax
    device = jax.devices()[0]
    return {
        "platform": device.platform, "device_kind": device.device_kind,
        "device_count": jax.device_count(), "host_cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(), "tlgen": tlgen.__version__, "jax": jax.__version__,
        "jaxlib": _version("jaxlib"),
        "flax": flax.__version__, "optax": optax.__version__, "numpy": np.__version__,
        "hostname": platform.node(),
    }


def _version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def pipeline_throughput(config: ml_collections.ConfigDict, *, batches: int = 20,
                        warmup: int = 2) -> dict:
    """Frames/s of the family's training pipeline on one core (worker_count = 0)."""
    config = config.copy_and_resolve_references()
    if "worker_count" in config.data:
        config.data.worker_count = 0
    iterator = iter(family_lib.of(config).training(config).make_pipeline("train", 0, 1))
    for _ in range(warmup):
        next(iterator)
    frames = 0
    start = time.perf_counter()
    for _ in range(batches):
        frames += count_frames(next(iterator))
    seconds = time.perf_counter() - start
    return {"frames_per_s": frames / seconds, "batches": batches, "cores": 1,
            "seconds": seconds}


def run_benchmark(config: ml_collections.ConfigDict, *, steps: int = 10, batch: int | None = None,
                  layers: int = 0, pipeline: bool = True, inference: bool = True,
                  alongside: Callable[[], Any] | None = None,
                  host_batch: tuple[dict, str] | None = None) -> dict:
    """Benchmarks `config`'s training step (and pipeline, inference); returns the record.

    `layers` > 0 adds a per-layer table of the `layers` costliest conv/dense layers.
    `alongside` (a synchronized call, e.g. a PyTorch peer's step) is timed after each step;
    record["alongside"] holds its times and the median of the per-pair step/alongside ratios.
    `host_batch`: the (batch, source) of `bench_batch` when the caller already built it.
    """
    config = bench_config(config, batch)
    spec = family_lib.of(config)
    training = spec.training(config)
    device = jax.devices()[0]
    dtype = str(config.get("dtype", "float32"))
    record: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "time": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "config": config.to_dict() if hasattr(config, "to_dict") else dict(config),
        "family": str(config.family), "variant": str(config.get("variant", "")),
        "dtype": dtype, "batch": int(config.data.batch_size), "steps": steps,
        "environment": environment(),
    }
    host_batch, source = host_batch or bench_batch(spec, training, config)
    record["data"], record["frame_sizes"] = source, frame_sizes(host_batch)
    frames_per_step = count_frames(host_batch)

    log.info("%s batch %s ready; compiling the step", source,
             {k: np.shape(v) for k, v in host_batch.items()})
    built = step_lib.build(spec, training, config, host_batch)
    log.info("compiled in %.1f s; timing %d steps", built.lower_s + built.compile_s, steps)
    record["compile"] = {"lower_s": built.lower_s, "compile_s": built.compile_s}
    record["parameters"] = count_parameters(built.state)
    # MFU counts the step's matmul + conv FLOPs from its jaxpr (backend-independent). XLA's
    # own counts are kept for reference: the lowered program's (all ops, whole step) and the
    # compiled one's (per device; on GPU blind to cuDNN/cuBLAS calls).
    devices = built.mesh.size
    flops = flops_lib.jaxpr_flops(built.jaxpr.jaxpr)
    record["xla_flops"] = {"lowered": cost_flops(built.lowered),
                           "compiled_per_device": cost_flops(built.compiled)}
    if alongside is None:
        times = time_calls(built.step, steps=steps, warmup=2)
    else:
        times, other = time_alternating(built.step, alongside, steps=steps, warmup=2)
        record["alongside"] = {"median_s": median(other), "min_s": min(other), "max_s": max(other),
                               "ratio": median([t / o for t, o in zip(times, other)])}
    step_s = median(times)
    record["step"] = {
        "median_s": step_s, "min_s": min(times), "max_s": max(times),
        "samples_per_s": record["batch"] / step_s, "frames_per_step": frames_per_step,
        "frames_per_s": frames_per_step / step_s, "flops": flops,
        "flops_per_s": flops / step_s,
        "memory": _memory_analysis(built.compiled),
        "metrics": {k: float(v) for k, v in built.last_metrics().items()},
    }
    every = int(training.regularize_every or 0)
    if every:       # the regularized step, every `every` steps: timed too, and the mean step
        call, jaxpr = built.regularized()
        lazy = median(time_calls(call, steps=steps, warmup=1))
        record["step"]["regularized"] = {"every": every, "median_s": lazy,
                                         "flops": flops_lib.jaxpr_flops(jaxpr.jaxpr)}
        record["step"]["mean_s"] = ((every - 1) * step_s + lazy) / every
    record["memory_peak_bytes"], record["memory_source"] = memory_peak_bytes(device)   # before the
    log.info("step %.2f ms; measuring the matmul peak", step_s * 1e3)             # peak's arrays
    peak = matmul_peak(dtype, device=device)
    record["peak"] = peak
    record["devices"] = devices
    record["mfu"] = flops / devices / step_s / peak["flops_per_s"]

    if inference:
        with jax.set_mesh(built.mesh):
            record["inference"] = inference_lib.inference_throughput(built)
    if pipeline and has_dataset(config):
        log.info("measuring the input pipeline")
        pipe = pipeline_throughput(config)
        pipe["ratio_to_step"] = pipe["frames_per_s"] / record["step"]["frames_per_s"]
        record["pipeline"] = pipe
    if layers:
        log.info("timing each conv/dense layer")
        with jax.set_mesh(built.mesh):
            engine = built.engine
            rows = layers_lib.layer_table(lambda *a: engine.guarded_step(*a, engine.frozen),
                                          built.state, built.batch,
                                          built.rng, peak_flops_per_s=peak["flops_per_s"],
                                          max_layers=layers,
                                          compiler_options=built.engine.compiler_options)
        record["layers"] = rows
        record["layers_share_of_step"] = sum(r["seconds"] * r["count"] for r in rows) / step_s
    return record


def _memory_analysis(compiled) -> dict | None:
    try:
        stats = compiled.memory_analysis()
    except (NotImplementedError, jax.errors.JaxRuntimeError):  # not every backend reports it
        return None
    if stats is None:
        return None
    return {name: int(getattr(stats, name)) for name in
            ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes",
             "alias_size_in_bytes") if hasattr(stats, name)}
