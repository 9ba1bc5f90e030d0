"""The one training loop every family runs through.

init (or restore) → for each step: this process's batch part → global sharded batch →
jitted step `(state, batch, rng) → (state, metrics)` with donated state → logs, eval,
samples, checkpoints. The step's rng is `fold_in(PRNGKey(seed), step)` and the data
iterator position is checkpointed, so a resumed run repeats exactly what an uninterrupted
one does.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import threading
import time
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from tlgen import config as config_lib
from tlgen import family as family_lib
from tlgen import checkpoint as checkpoint_lib
from tlgen.checkpoint import Checkpointer
from tlgen.data.dataset import data_identity
from tlgen.data.layout import is_dataset
from tlgen.errors import DivergedError, StorageError, TlgenError, UserError
from tlgen.files import check_output_folder
from tlgen.lock import WorkdirLock
from tlgen.metrics.evaluators import METRIC_NETWORKS
from tlgen.parallel import (agree, batch_sharding, compiler_options, gather_params, global_batch,
                            initialize_distributed, is_explicit, make_mesh, param_shardings,
                            replicated)
from tlgen.progress import progress
from tlgen.train.state import all_finite
from tlgen.trained import load_frozen
from tlgen.train.writers import MetricWriter, write_samples

log = logging.getLogger(__name__)

# Config keys a resumed run may change: frequencies, length, housekeeping, where the family
# imports from, the mesh (a layout: the state is restored onto the new one), a moved dataset
# (`data.dir`: its content is checked).
RESUMABLE_CHANGES = ("total_steps", "train.log_every", "train.eval_every", "train.eval_batches",
                     "train.sample_every", "train.ckpt_every", "train.keep_checkpoints",
                     "train.keep_best", "train.deterministic", "train.reshard_data",
                     "data.worker_count", "eval", "family_path", "mesh", "data.dir")

INIT_CPU_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}


class NonFiniteError(DivergedError):
    """The loss or gradients became non-finite with `config.train.nonfinite = "stop"`."""


def _every(step: int, period: int, last: bool = False) -> bool:
    """Periodic work is due: every `period` steps (0 = never), and at the last step."""
    return period > 0 and (step % period == 0 or last)


class _Preemption:
    """Whether the job was asked to stop (SIGTERM; on a TPU/multi-process job the JAX
    coordination service's preemption notice), agreed by all processes at the same step."""

    def __init__(self):
        self.synced = jax.distributed.is_initialized()
        self._flag = False
        self._previous = None
        if not self.synced and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        log.warning("SIGTERM received: saving a checkpoint and stopping")
        self._flag = True

    def reached(self, step: int) -> bool:
        if self.synced:
            return multihost_utils.reached_preemption_sync_point(step)
        return self._flag

    def close(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None


class Engine:
    """A family's training functions jitted once for a mesh: shardings (the size rule and the
    family's sharding rules), the non-finite guard, and its frozen networks, loaded once and
    passed to every function as `frozen=` (never part of the state, so never checkpointed,
    optimized or finite-checked)."""

    def __init__(self, spec: family_lib.Family, fam: family_lib.Training, mesh, config):
        self.spec, self.fam, self.mesh, self.config = spec, fam, mesh, config
        self.explicit = is_explicit(mesh)
        if self.explicit and not spec.explicit_mesh:
            able = [name for name, other in family_lib.builtin().items() if other.explicit_mesh]
            raise UserError(f"config.mesh.axis_types is 'explicit', which the {spec.name} family does not "
                            f"support (the {', '.join(able)} "
                            f"{'family does' if len(able) == 1 else 'families do'}); use 'auto'.")
        self.batch_sharding = batch_sharding(mesh)
        self.min_shard_bytes = int(config.mesh.get("fsdp_min_bytes", 2 ** 20))
        self.abstract = self.shardings = None
        self._step: dict = {}
        self._sample = None
        self._evaluators: dict = {}
        self.compiler_options = compiler_options(mesh.devices.flat[0].platform,
                                                 bool((config.get("train") or {}).get("deterministic")))
        self.frozen = load_frozen(config, mesh, spec)

    def _gathered(self, state):
        """On an Explicit mesh, parameters are all-gathered before the family uses them."""
        if not self.explicit:
            return state
        if hasattr(state, "params"):
            return state.replace(params=gather_params(state.params), ema=gather_params(state.ema))
        return gather_params(state)

    def _init(self, rng, batch, frozen):
        """The family's init; on an Explicit mesh it sees the batch replicated (families take
        an example row from it, a slice sharded rows cannot give)."""
        return self.fam.init(rng, gather_params(batch) if self.explicit else batch, **self._frozen(frozen))

    def _frozen(self, frozen) -> dict:
        """Keyword arguments that hand the frozen networks to a family function (none if it
        has none); they are jit arguments, not constants baked into the program."""
        if not self.frozen:
            return {}
        return {"frozen": gather_params(frozen) if self.explicit else frozen}

    def _jit(self, fn, in_shardings, out_shardings, **kwargs):
        """`fn(..., frozen)` jitted with the frozen networks' shardings appended."""
        frozen = jax.tree.map(lambda x: x.sharding, self.frozen)
        return jax.jit(fn, in_shardings=tuple(in_shardings) + (frozen,), out_shardings=out_shardings,
                       compiler_options=self.compiler_options, **kwargs)

    def abstract_state(self, local_batch):
        """ShapeDtypeStructs (with shardings) of the state `init` makes for this batch shape."""
        if self.abstract is None:
            batch = self.abstract_batch(local_batch)
            shapes = jax.eval_shape(self._init, jax.random.PRNGKey(0), batch, self.frozen)
            params = getattr(shapes, "params", None)
            missing = [n for n in self.spec.networks if params is None or n not in params]
            if missing:
                where = ("in its init's state.params" if params is not None else
                         "there: its init returns no TrainState (tlgen.train.state)")
                raise UserError(f"the family {self.spec.name} names {', '.join(missing)} among the "
                                f"networks inference loads, but it is not {where}.")
            self.shardings = param_shardings(shapes, self.mesh, min_bytes=self.min_shard_bytes,
                                             rules=self.spec.sharding_rules)
            self.abstract = jax.tree.map(
                lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), shapes, self.shardings)
        return self.abstract
    def abstract_batch(self, local_batch):
        count = jax.process_count()
        return jax.tree.map(lambda x: jax.ShapeDtypeStruct(
            (x.shape[0] * count,) + x.shape[1:], x.dtype, sharding=self.batch_sharding), local_batch)

    def init(self, rng, local_batch):
        """The step-0 state, created directly in its shardings."""
        self.abstract_state(local_batch)
        batch = global_batch(local_batch, self.mesh)
        frozen = jax.tree.map(lambda x: x.sharding, self.frozen)
        init = jax.jit(self._init, in_shardings=(replicated(self.mesh), self.batch_sharding, frozen),
                       out_shardings=self.shardings).lower(rng, batch, self.frozen)
        # Init runs once: on CPU, LLVM optimization would cost ~10x its compile time.
        options = INIT_CPU_COMPILER_OPTIONS if jax.default_backend() == "cpu" else None
        return init.compile(compiler_options=options)(rng, batch, self.frozen)

    def jitted_step(self, regularize: bool = False):
        """The jitted step `(state, batch, rng, frozen)` (sharded, donated state, non-finite
        guard), built once (per `regularize` for families with lazy regularization)."""
        if regularize not in self._step:
            step = functools.partial(self.guarded_step, regularize=regularize)
            self._step[regularize] = self._jit(
                step, (self.shardings, self.batch_sharding, replicated(self.mesh)),
                (self.shardings, replicated(self.mesh)), donate_argnums=0)
        return self._step[regularize]

    def step(self, state, batch, rng, step: int = 1):
        """Training step number `step` (0-based; it picks the lazy-regularization program)."""
        every = self.fam.regularize_every
        return self.jitted_step(bool(every) and step % every == 0)(state, batch, rng, self.frozen)

    def guarded_step(self, state, batch, rng, frozen, regularize: bool = False):
        """The family's train_step with the non-finite guard, before jit."""
        extra = {"regularize": regularize} if self.fam.regularize_every else {}
        out = self.fam.train_step(self._gathered(state), batch, rng, **extra, **self._frozen(frozen))
        family = self.spec.name
        if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], Mapping)):
            raise UserError(f"the family {family}'s train_step returned {type(out).__name__}; "
                            "return (state, {metric name: scalar}).")
        new, metrics = out
        shaped = sorted(k for k, v in metrics.items() if jnp.ndim(v))
        if "loss" not in metrics or shaped:
            raise UserError(f"the family {family}'s train_step returned the metrics "
                            f"{', '.join(sorted(metrics)) or 'none'}"
                            + (f" ({', '.join(shaped)} not scalar)" if shaped else "")
                            + "; return scalars, 'loss' among them.")
        ok = jnp.isfinite(metrics["loss"]) & all_finite(new, self.shardings)
        # A cond, not an elementwise select over the state: same result, but the select
        # made XLA:CPU compile the step 3-4x longer (51 s vs 14 s for timescale_ae:tiny).
        new = jax.lax.cond(ok, lambda: new, lambda: state)
        if hasattr(new, "step"):
            new = new.replace(step=state.step + 1)
        metrics = {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}
        metrics["skipped"] = (~ok).astype(jnp.float32)
        return new, metrics

    def checksums(self, state) -> dict:
        """Per-leaf checksums of the state (tlgen.checkpoint.checksums), jitted, replicated."""
        return checkpoint_lib.jitted_checksums(self.shardings, self.mesh)(state)

    def evaluate(self, name: str, evaluator: family_lib.Evaluator, state, batch):
        """One batch of an evaluator's `compute`, jitted once; outputs replicated."""
        if name not in self._evaluators:
            self._evaluators[name] = self._jit(
                lambda s, b, f: evaluator.compute(self._gathered(s), b, **self._frozen(f)),
                (self.shardings, self.batch_sharding), replicated(self.mesh))
        return self._evaluators[name](state, batch, self.frozen)

    def sample(self, state, batch, rng):
        """The family's `sample`, jitted; outputs replicated so every process can read them."""
        if self._sample is None:
            self._sample = self._jit(
                lambda s, b, r, f: self.fam.sample(self._gathered(s), b, r, **self._frozen(f)),
                (self.shardings, self.batch_sharding, replicated(self.mesh)), replicated(self.mesh))
        return self._sample(state, batch, rng, self.frozen)


def _check_loop(config, workdir: str) -> None:
    """UserError for a config without the sections of a run, loop settings no run can follow
    (steps, frequencies, `nonfinite`) and a `workdir` that is a prepared dataset."""
    missing = config_lib.missing_sections(config)
    if missing:
        raise UserError(f"the config has no {', '.join(missing)}; build it on "
                        "tlgen.configs.common.base(family, variant) and give it data (with "
                        "batch_size) and model sections.")
    if int(config.total_steps) < 1:
        raise UserError(f"config.total_steps is {config.total_steps}; train for 1 step or more.")
    if not 0 <= int(config.seed) < family_lib.SEEDS:
        raise UserError(f"config.seed is {config.seed}; use a seed from 0 to {family_lib.SEEDS - 1}.")
    tc = config.train
    for key in ("log_every", "ckpt_every", "eval_every", "eval_batches", "sample_every"):
        if int(tc[key]) < 0:
            unit = "batches" if key == "eval_batches" else "steps"
            raise UserError(f"config.train.{key} is {tc[key]}; use 0 (never) or a positive number of {unit}.")
    if tc.get("eval_split", "validation") not in ("validation", "train"):
        raise UserError(f"config.train.eval_split is {tc.eval_split!r}; use validation or train.")
    if tc.nonfinite not in ("skip", "stop"):
        raise UserError(f"config.train.nonfinite is {tc.nonfinite!r}; use 'skip' or 'stop'.")
    best = checkpoint_lib.check_keep(int(tc.keep_checkpoints), tc.keep_best)
    if best and not (tc.eval_every > 0 and tc.eval_batches > 0):
        raise UserError(f"config.train.keep_best {tc.keep_best!r} ranks evaluations, but the run has "
                        "none; set config.train.eval_every and eval_batches above 0, or clear it with "
                        "--config.train.keep_best=.")
    network, files = METRIC_NETWORKS.get(best[0]) if best else None, config.get("eval", {})
    if network and network not in files:
        raise UserError(f"config.train.keep_best ranks by {best[0]}, which {config.family} does not "
                        "compute while training; rank by another metric.")
    if network and not files[network]:
        raise UserError(f"config.train.keep_best ranks by {best[0]}, which needs the {network} network "
                        f"in config.eval.{network} (README: Evaluation protocol); give its file, or "
                        "rank by another metric.")
    decay = float(tc.get("ema_decay", 0.0))
    if not 0.0 <= decay < 1.0:
        raise UserError(f"config.train.ema_decay is {decay:g}; use 0 (no EMA) up to below 1.")
    if is_dataset(workdir):
        raise UserError(f"--workdir {workdir} is a prepared dataset; give the run a folder of its own.")


def _check_resumable(config, workdir: str) -> None:
    """UserError when `workdir` holds a run of another config (keys that may change aside); a
    run that failed or stopped before its first checkpoint starts again with the new config."""
    path = os.path.join(workdir, "config.json")
    if not (os.path.exists(path) and checkpoint_lib.started(workdir)):
        return
    saved = config_lib.read(path)
    if saved.get("family") != config.family:
        raise UserError(f"{workdir} holds a {saved.get('family')} run, not {config.family}; give this "
                        "run a --workdir of its own.")
    # Weights files may move when the run recorded their contents (`checkpoint.check_weights`).
    recorded = checkpoint_lib.read_record(workdir, checkpoint_lib.WEIGHTS_RECORD) or {}
    config_lib.check_matches(config, path, ignore=RESUMABLE_CHANGES + tuple(recorded))
    schedules = sorted({str(v) for k, v in config_lib.flatten(config_lib.to_dict(config)).items()
                        if k.startswith("optim.") and k.endswith("schedule") and v != "constant"})
    if schedules and int(saved.get("total_steps", config.total_steps)) != int(config.total_steps):
        log.warning("total_steps %d -> %d: the %s learning-rate schedule now spans the new total, so "
                    "the rate jumps where the run resumes", int(saved.total_steps),
                    int(config.total_steps), " and ".join(schedules))


def _check_same_data(config, workdir: str) -> dict | None:
    """The identity of `config.data.dir` (None without one); UserError when the run in
    `workdir` started on a dataset that differs from it (prepared again with other options
    or sources), which would silently change what a resumed run learns."""
    identity = data_identity(config.data.dir) if config.get("data", {}).get("dir") else None
    recorded = (checkpoint_lib.read_record(workdir, checkpoint_lib.DATA_RECORD)
                if identity is not None and checkpoint_lib.started(workdir) else None)
    if recorded is None:
        return identity
    changed = sorted(k for k in set(recorded) | set(identity) if recorded.get(k) != identity.get(k))
    if changed:
        raise UserError(f"{config.data.dir} is not the dataset the run in {workdir} started on: its "
                        f"{', '.join(changed)} changed since; prepare it as it was, or train in a new "
                        "--workdir.")
    return identity


def _on_lead(fn, elsewhere: str) -> None:
    """Runs `fn()` on process 0 only; when it fails, every process of the job raises (process 0
    its own error, the others one saying so), so no process waits for a peer that gave up."""
    error = None
    if jax.process_index() == 0:
        try:
            fn()
        except (TlgenError, OSError) as e:
            error = e
    code = agree(getattr(error, "exit_code", StorageError.exit_code) if error is not None else 0)
    if code:
        raise error if error is not None else (UserError if code == UserError.exit_code
                                               else StorageError)(elsewhere)


def _check_example_batch(spec, config, local) -> None:
    """UserError when the family's `example_batch` (what `tlgen bench` times) is not shaped like
    the batches its pipeline makes (`local`: this process's first)."""
    shapes = lambda tree: {jax.tree_util.keystr(path): (tuple(np.shape(x)), np.asarray(x).dtype.name)
                           for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]}
    real = shapes(local)
    example = shapes(spec.example_batch(config, next(iter(real.values()))[0][0]))
    differ = sorted(k for k in set(real) | set(example) if real.get(k) != example.get(k))
    if differ:
        raise UserError(f"the family {spec.name}'s example_batch differs from its pipeline's batches in "
                        f"{', '.join(f'{k}: {example.get(k)} against {real.get(k)}' for k in differ[:3])}; "
                        "make them alike (tlgen bench times the example).")


def _saved_config(config):
    """The config a run keeps (config.json, each checkpoint): `train.reshard_data` off, as it
    lets one resume change the number of processes, not every later one."""
    saved = config.copy_and_resolve_references()
    if saved.train.get("reshard_data"):
        saved.train.reshard_data = False
    return saved


def _prepare_workdir(config, workdir: str, data: dict | None, weights: dict) -> None:
    """Writes the config, and the identities of its dataset `data` and its `weights` files when
    the run starts (or is first resumed by a tlgen that records them), into `workdir` once
    everything they name has been checked."""
    def write():
        os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
        config_lib.save(_saved_config(config), os.path.join(workdir, "config.json"))
        if data is not None:
            checkpoint_lib.write_record(workdir, checkpoint_lib.DATA_RECORD, data)
        if weights:
            checkpoint_lib.write_record(workdir, checkpoint_lib.WEIGHTS_RECORD, weights)
    _on_lead(write, f"process 0 of this job could not write the config into {workdir}.")


def check_batch(config, mesh=None) -> None:
    """UserError unless the global batch is positive and (given the mesh) splits evenly over
    the mesh and the processes, and each process's devices hold batch shards of their own
    (each process reads its own rows: a `model` axis across processes would mix them)."""
    batch = int(config.data.batch_size)
    if batch < 1:
        raise UserError(f"config.data.batch_size {batch} must be a positive number of samples.")
    if mesh is None:
        return
    shards, processes = mesh.shape["data"] * mesh.shape["fsdp"], jax.process_count()
    if batch % processes:
        raise UserError(f"config.data.batch_size {batch} does not split over the {processes} "
                        "processes; run on a number of processes that divides it (or give a new "
                        "run another batch size).")
    if batch % shards:
        raise UserError(f"config.data.batch_size {batch} must be divisible by data×fsdp = {shards}; "
                        "change config.mesh (or give a new run another batch size).")
    owners = np.vectorize(lambda d: d.process_index)(mesh.devices)      # (data, fsdp, model)
    if np.any(owners != owners[..., :1]):
        local = jax.local_device_count()
        raise UserError(f"config.mesh.model {mesh.shape['model']} spans processes (each has {local} "
                        f"device{'s' * (local != 1)}), so they would share batch shards while each "
                        f"reads its own rows; set config.mesh.model to a divisor of {local}.")


def _fetch(tree):
    """Replicated global arrays -> numpy (every process holds a full copy)."""
    return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)


def init_and_sample_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """Keys for parameter init and for samples, apart from the per-step keys fold_in(seed, step)."""
    return tuple(jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), 2 ** 31 - 1)))


def train(config, workdir: str) -> dict:
    """Trains `config.family` in `workdir`, resuming from its newest checkpoint.

    Returns the final metrics: the last logged train means, "eval/<name>" for the last eval,
    "step", and "preempted" (True when stopped by SIGTERM / a preemption notice after saving).
    Relative paths in `config` (`config.data.dir`, weights files) are made absolute first, as
    the saved run needs them from any folder.
    """
    config_lib.absolute_paths(config)
    initialize_distributed()
    check_output_folder(workdir, "--workdir")
    workdir = os.path.abspath(workdir)
    _check_loop(config, workdir)
    _check_resumable(config, workdir)
    data = _check_same_data(config, workdir)
    weights = checkpoint_lib.check_weights(config, workdir, "give --config.{key} that file, or train "
                                           "in a new --workdir")
    # Everything the config names (family, mesh, frozen networks' files, dataset) is checked
    # before the workdir is written: bad input leaves nothing behind.
    spec = family_lib.of(config)
    check_batch(config)                      # before the family divides by it
    fam = spec.training(config)
    mesh = make_mesh(config.mesh)
    check_batch(config, mesh)
    engine = Engine(spec, fam, mesh, config)
    init_key, sample_key = init_and_sample_keys(config.seed)
    try:
        train_iter = iter(fam.make_pipeline("train", jax.process_index(), jax.process_count()))
    except ValueError as e:   # a split too short for the config's clips, as for evaluation below
        raise UserError(f"{config.data.dir} cannot feed training ({str(e).rstrip('.')}); prepare it "
                        "from longer footage, or shorten the config's clips.") from None
    eval_data = _eval_pipeline(config, fam)
    lock = _lock_workdir(workdir)
    try:
        return _train(config, workdir, engine, fam, train_iter, eval_data, init_key, sample_key,
                      prepare=lambda: _prepare_workdir(config, workdir, data, weights))
    finally:
        lock.release()


def _eval_pipeline(config, fam):
    """The eval split's pipeline when the run evaluates or writes samples (of its batches),
    else None; opened before the workdir is written, so a split too short to feed them is bad
    input, not a crash at the first eval."""
    tc = config.train
    evaluates = tc.eval_every > 0 and tc.eval_batches > 0 and fam.all_evaluators()
    if not evaluates and not (tc.sample_every > 0 and fam.sample is not None):
        return None
    split = tc.get("eval_split", "validation")
    try:
        return fam.make_pipeline(split, jax.process_index(), jax.process_count())
    except (ValueError, UserError) as e:
        reason = str(e).rstrip(".")
        raise UserError(f"{config.data.dir} cannot feed evaluation ({reason}); prepare it with a larger "
                        "--val-fraction, or set --config.train.eval_every=0 and "
                        "--config.train.sample_every=0.") from None


def _lock_workdir(workdir: str) -> WorkdirLock:
    """The work directory's lock, taken by process 0; every process learns the outcome."""
    lock = WorkdirLock(workdir)
    _on_lead(lock.acquire, f"{workdir} is in use by another `tlgen train` (process 0 of this "
                           "job names it).")
    return lock


def _train(config, workdir, engine, fam, train_iter, eval_data, init_key, sample_key, prepare) -> dict:
    """The run once its work directory is checked and locked; `prepare()` writes its config
    when the state is restored or made (a resume refused before then leaves the run as it was)."""
    tc, mesh, lead = config.train, engine.mesh, jax.process_index() == 0
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=tc.keep_checkpoints,
                        keep_best=tc.keep_best)
    preemption = _Preemption()
    writer = bar = None
    try:
        with jax.set_mesh(mesh):
            restored = ckpt.restore(train_iter, engine.abstract_state, engine.checksums,
                                    reshard_data=bool(tc.get("reshard_data", False)))
            pending = []
            if restored:
                start, state, local = restored.step, restored.state, restored.first_batch
                pending = [(int(s), {k: np.float32(v) for k, v in m.items()}) for s, m in restored.pending]
                log.info("resumed from %s/%d", ckpt.directory, start)
                if start >= config.total_steps:
                    reached = (f"has done its total_steps {start}" if start == config.total_steps else
                               f"is at step {start}, past total_steps {config.total_steps}")
                    log.warning("the run %s: nothing to train (raise --config.total_steps to go on)",
                                reached)
            else:
                local = next(train_iter)
                start, state = 0, engine.init(init_key, local)
            _check_example_batch(engine.spec, config, local)
            prepare()
            params = getattr(engine.abstract, "params", engine.abstract)
            log.info("%s: %s mesh %s, %.3g M parameters, global batch %d, steps %d..%d",
                     config.family, config.mesh.get("axis_types", "auto"), dict(mesh.shape),
                     sum(np.prod(x.shape) for x in jax.tree.leaves(params)) / 1e6,
                     config.data.batch_size, start, config.total_steps)
            writer = MetricWriter(workdir, enabled=lead, resume_step=start)
            bar = progress(total=config.total_steps, initial=start, unit="step", desc="train") if lead else None
            loop = _Loop(config, workdir, fam, engine, ckpt, writer, train_iter, eval_data, sample_key, pending)
            return loop.run(state, start, local, preemption, bar)
    finally:
        preemption.close()
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
        ckpt.close()          # last: a failed background save raises here


class _Loop:
    """The step loop with its periodic work (logging, eval, samples, checkpoints)."""

    def __init__(self, config, workdir, fam, engine, ckpt, writer, train_iter, eval_data, sample_key,
                 pending: list):
        self.config, self.workdir, self.fam, self.engine = config, workdir, fam, engine
        self.ckpt, self.writer, self.train_iter, self.sample_key = ckpt, writer, train_iter, sample_key
        self.eval_data = eval_data        # None when the run does not evaluate
        self.step_key = jax.random.PRNGKey(config.seed)
        self.pending: list[tuple[int, dict]] = pending   # (step, metrics) not yet logged
        self.final: dict = {}
        self.last_eval: dict = {}

    def run(self, state, start: int, local, preemption: _Preemption, bar) -> dict:
        tc, total = self.config.train, int(self.config.total_steps)
        self.saved_step = start if start else -1
        self.timer = (time.perf_counter(), start)
        done = start
        for step in range(start, total):
            if local is None:
                local = next(self.train_iter, None)
                if local is None:
                    raise UserError(f"the train pipeline of {self.config.family} ended after {step} "
                                    "steps; training pipelines must repeat forever.")
            batch = global_batch(local, self.engine.mesh)
            local = None
            state, metrics = self.engine.step(state, batch, jax.random.fold_in(self.step_key, step), step)
            done = step + 1
            self.pending.append((done, metrics))
            if bar is not None:
                bar.update(1)
            last = done == total
            if _every(done, tc.log_every) or last:
                self.flush(bar)
            evaluated = _every(done, tc.eval_every, last) and self.evaluate(state, done)
            if _every(done, tc.sample_every, last) and self.fam.sample is not None:
                self.write_samples(state, done)
            if _every(done, tc.ckpt_every) or last or (evaluated and self.ckpt.best):
                self.save(state, done, self.last_eval if evaluated else None)   # every eval a
                # candidate for keep_best
            if preemption.reached(done) and not last:
                self.save(state, done, None)
                self.ckpt.wait()
                log.warning("stopped at step %d after saving a checkpoint", done)
                return {**self.final, "step": done, "preempted": True}
        return {**self.final, "step": done, "preempted": False}

    def check_finite(self) -> tuple[list[dict], list[int]]:
        """Fetches the pending steps' metrics (kept fetched); enforces `nonfinite = "stop"`.
        Returns the metrics and the skipped steps."""
        values = jax.device_get([m for _, m in self.pending])
        self.pending = [(s, m) for (s, _), m in zip(self.pending, values)]
        skipped = [s for s, m in self.pending if m["skipped"] > 0]
        if skipped and self.config.train.nonfinite == "stop":
            raise NonFiniteError(
                f"training stopped at step {skipped[0]}: the loss or gradients are not finite; "
                f"the newest checkpoint in {self.ckpt.directory} holds the last finite state. "
                "Lower the learning rate, or set --config.train.nonfinite=skip to drop such steps.")
        return values, skipped

    def flush(self, bar) -> None:
        """Writes the mean of the pending steps' metrics (and the count of skipped steps)."""
        if not self.pending:
            return
        values, skipped = self.check_finite()
        step = self.pending[-1][0]
        self.pending = []
        if skipped:
            log.warning("skipped %d non-finite step(s), the first at step %d", len(skipped), skipped[0])
        now = time.perf_counter()
        t0, s0 = self.timer
        self.timer = (now, step)
        kept = [m for m in values if not m["skipped"] > 0]     # a skipped step's values are not finite
        keys = sorted({k for m in values for k in m} - {"skipped"})
        means = {k: float(np.mean([m[k] for m in kept if k in m])) if any(k in m for m in kept)
                 else float("nan") for k in keys}                 # nan: no finite step to show
        means["skipped"] = len(skipped)
        means["steps_per_sec"] = (step - s0) / max(now - t0, 1e-9)
        self.final.update(means)
        self.writer.write(step, "train", means)
        if bar is not None:
            bar.set_postfix(loss=f"{means['loss']:.4g}", refresh=False)

    def eval_batches(self):
        """A fresh iterator over the eval split (the same batches every time)."""
        return iter(self.eval_data)

    def evaluate(self, state, step: int) -> bool:
        """Runs every evaluator (eval_step's mean included) over `eval_batches` validation
        batches, accumulating on the host and finalizing once; returns whether eval ran."""
        evaluators = self.fam.all_evaluators()
        if not evaluators or self.config.train.eval_batches <= 0:
            return False
        it = self.eval_batches()
        totals = dict.fromkeys(evaluators)
        for _ in range(self.config.train.eval_batches):
            batch = global_batch(next(it), self.engine.mesh)
            for name, evaluator in evaluators.items():
                outputs = jax.device_get(self.engine.evaluate(name, evaluator, state, batch))
                totals[name] = evaluator.accumulate(totals[name], outputs)
        self.last_eval = {}
        for name, evaluator in evaluators.items():
            for key, value in evaluator.finalize(totals[name]).items():
                if key in self.last_eval:
                    raise UserError(f"two evaluators of the family {self.config.family} report "
                                    f"{key!r}; give each metric one name.")
                self.last_eval[key] = float(value)
        best = self.ckpt.best
        if best and best[0] not in self.last_eval:
            self.save(state, step, None)            # the steps trained so far are kept
            self.ckpt.wait()
            raise UserError(f"config.train.keep_best names {best[0]!r}, but the eval metrics are "
                            f"{', '.join(sorted(self.last_eval))}; step {step} is saved: resume "
                            "with one of those (--config.train.keep_best=NAME).")
        self.final.update({f"eval/{k}": v for k, v in self.last_eval.items()})
        self.writer.write(step, "eval", self.last_eval)
        return True

    def write_samples(self, state, step: int) -> None:
        it = self.eval_batches()
        batch = global_batch(next(it), self.engine.mesh)
        samples = _fetch(self.engine.sample(state, batch, jax.random.fold_in(self.sample_key, step)))
        if jax.process_index() == 0:
            write_samples(os.path.join(self.workdir, "samples"), step, samples)

    def save(self, state, step: int, metrics: dict | None) -> None:
        if step == self.saved_step:
            return
        # Raises before saving when a pending step was non-finite ("stop"); the guarded
        # step never keeps a non-finite state, so what is saved is finite.
        self.check_finite()
        # The steps not yet logged, so a resumed run logs them (at most log_every of them;
        # with no logging but the last step's, not kept: a whole run's worth each save).
        pending = ([[s, {k: float(v) for k, v in m.items()}] for s, m in self.pending]
                   if self.config.train.log_every > 0 else [])
        self.ckpt.save(step, state, self.train_iter, config=config_lib.to_dict(_saved_config(self.config)),
                       metrics=metrics, checksums=jax.device_get(self.engine.checksums(state)),
                       pending=pending)
        self.saved_step = step
