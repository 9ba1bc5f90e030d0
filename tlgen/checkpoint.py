"""Checkpoints of a training run: Orbax CheckpointManager holding, per step, the train
state, each process's Grain iterator position, the config and the state's shapes.

Saves are asynchronous (the device-to-host copy happens before `save` returns, the writes
in the background) and atomic (a tmp directory renamed when complete); each records a
checksum of every array of the state. Restoring walks back from the newest step, and tells
corrupt checkpoints from failing storage:

* verifiably corrupt (unreadable metadata, a missing or truncated array file, a checksum
  mismatch): moved to `checkpoints_bad/` with a warning; the previous one is tried;
* anything else that may pass (a storage error, a timeout, running out of memory): retried
  a few times, then the run stops with one sentence (`StorageError`) and the checkpoint
  stays in place; an error of any other kind is raised as it is;
* steps that could not be restored (in `checkpoints/` or moved to `checkpoints_bad/`) never
  lead to a silent start from step 0: the run stops and says so.

With several processes every decision (restore this step, quarantine it, stop) is agreed
by all of them before anyone acts, and the reads run without cross-process barriers, so a
process that fails to read cannot leave the others waiting.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import hashlib
import json
import logging
import os
import re
import shutil
import time
import zlib
from collections.abc import Callable
from typing import Any

import grain
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from jax.sharding import Mesh
from orbax.checkpoint import checkpoint_managers as policies

from tlgen import config as config_lib
from tlgen.errors import StorageError, UserError
from tlgen.files import STORAGE_ERRNOS, storage_sentence, write_text
from tlgen.parallel import agree, alike_leaves, replicated

log = logging.getLogger(__name__)

ITEMS = ("state", "data", "config", "shapes", "pending")


def check_keep(keep: int, keep_best: str) -> tuple[str, str] | None:
    """UserError unless `keep` (config.train.keep_checkpoints) is 1 or more; the parsed
    `keep_best` (`parse_keep_best`)."""
    if keep < 1:
        raise UserError(f"config.train.keep_checkpoints is {keep}; keep 1 or more.")
    return parse_keep_best(keep_best)


def parse_keep_best(spec: str) -> tuple[str, str] | None:
    """"loss" / "min:loss" -> ("loss", "min"); "max:psnr" -> ("psnr", "max"); "" -> None. A
    name may carry the "eval/" its metric is logged under."""
    if not spec:
        return None
    mode, _, name = spec.rpartition(":")
    name = name.removeprefix("eval/")
    mode = mode or "min"
    if mode not in ("min", "max") or not name:
        raise UserError(f"config.train.keep_best is {spec!r}; use a metric name, 'min:NAME' or 'max:NAME'.")
    if not spec.count(":") and ("psnr" in name or "ssim" in name):
        raise UserError(f"config.train.keep_best is {spec!r}, which keeps the lowest {name}, the worst; "
                        f"write 'max:{name}' (or 'min:{name}' to keep the lowest).")
    return name, mode


# Seconds between attempts to read a checkpoint that failed for a reason that may pass.
RETRY_DELAYS_S = (1.0, 4.0, 16.0)
OK, CORRUPT, FAILED = 0, 1, 2
# A checkpoint's part gone: Orbax's "incomplete checkpoint", Grain's "File ... does not exist".
_MISSING_FILE = re.compile(r"incomplete checkpoint|^File .* does not exist")
# Status codes (absl / TensorStore) that say the stored data itself is bad or missing, and
# those that may pass.
_CORRUPT_STATUS = re.compile(r"\b(NOT_FOUND|OUT_OF_RANGE|DATA_LOSS|FAILED_PRECONDITION)\b")
_TRANSIENT_STATUS = re.compile(r"\b(UNAVAILABLE|DEADLINE_EXCEEDED|PERMISSION_DENIED|ABORTED|"
                               r"RESOURCE_EXHAUSTED|CANCELLED)\b")


def shape_table(tree, checksums: dict | None = None) -> dict[str, list]:
    """{path: [shape, dtype(, checksum)]} for every leaf of a state pytree (arrays or
    ShapeDtypeStructs)."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    table = {jax.tree_util.keystr(path): [list(x.shape), str(x.dtype)] for path, x in leaves}
    for path, value in (checksums or {}).items():
        table[path].append(int(value))
    return table


def checksums(tree, shardings=None) -> dict[str, jax.Array]:
    """{path: uint32} per leaf: the sum of the leaf's words (its bit pattern), each times an
    odd multiplier of its row-major position, modulo 2^32. It changes when any bit flips or
    two values trade places. Alike leaves (`alike_leaves`; `shardings` a tree matching
    `tree`) are stacked and reduced together: one reduction per group on the device, not per
    leaf. Jit it."""
    def words(x):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        if x.dtype == jnp.bool_:
            x = x.astype(jnp.uint8)
        width = {1: jnp.uint8, 2: jnp.uint16}.get(x.dtype.itemsize, jnp.uint32)
        return jax.lax.bitcast_convert_type(x, width).astype(jnp.uint32)

    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    sums = {}
    for group in alike_leaves(tree, shardings):
        stacked = jnp.stack([words(flat[i][1]) for i in group])
        position = jnp.arange(stacked[0].size, dtype=jnp.uint32).reshape(stacked.shape[1:])
        weights = position * jnp.uint32(2654435761) + jnp.uint32(1)
        totals = jnp.sum(stacked * weights, axis=tuple(range(1, stacked.ndim)), dtype=jnp.uint32)
        sums.update({i: totals[k] for k, i in enumerate(group)})
    return {jax.tree_util.keystr(path): sums[i] for i, (path, _) in enumerate(flat)}


def jitted_checksums(shardings, mesh: Mesh | None = None) -> Callable:
    """`checksums` of a tree placed by `shardings`, jitted (outputs replicated on `mesh` when
    given, so every process reads them), one program per tree of shardings kept for the
    process: a run trained or loaded again in it reuses the trace and the compiled program."""
    leaves, treedef = jax.tree.flatten(shardings)
    return _jitted_checksums(treedef, tuple(leaves), mesh)


@functools.lru_cache(maxsize=8)
def _jitted_checksums(treedef, leaves: tuple, mesh: Mesh | None) -> Callable:
    shardings = jax.tree.unflatten(treedef, leaves)
    replicated_out = {} if mesh is None else {"out_shardings": replicated(mesh)}
    return jax.jit(functools.partial(checksums, shardings=shardings), in_shardings=(shardings,),
                   **replicated_out)


def corruption(error: BaseException) -> str | None:
    """Why `error`, raised while reading a checkpoint, shows that the stored checkpoint is
    bad (unreadable metadata, a missing or truncated file), or None."""
    for e in _chain(error):
        if isinstance(e, (json.JSONDecodeError, UnicodeDecodeError)):
            return f"unreadable metadata ({type(e).__name__}: {_first_line(e)})"
        if (isinstance(e, FileNotFoundError) or isinstance(e, ValueError) and _MISSING_FILE.search(str(e))
                or isinstance(e, KeyError) and "was not found in the checkpoint" in str(e)):
            return f"a missing file ({_first_line(e)})"
        if isinstance(e, ValueError) and _CORRUPT_STATUS.search(str(e)):
            return f"unreadable array data ({_first_line(e)})"
        if isinstance(e, ValueError) and str(e).startswith("pytree structure error"):
            # Orbax without the state's _METADATA: a tree of dicts where the state was saved
            # (a config's own mismatch is refused before, by the saved shape table)
            return f"unreadable metadata (the state's tree: {_first_line(e)})"
    return None


def transient(error: BaseException) -> bool:
    """True when `error` may pass: a storage or network error, a timeout, out of memory."""
    return any(isinstance(e, (OSError, TimeoutError, MemoryError)) or _TRANSIENT_STATUS.search(str(e))
               for e in _chain(error))


def _chain(error: BaseException | None):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:240]


@dataclasses.dataclass
class Restored:
    step: int
    state: Any
    first_batch: Any   # the next batch of the restored data iterator
    table: dict        # the saved shape table (with checksums)
    pending: list      # [step, {metric: value}] of the steps trained since the last log row


def _state_writer() -> ocp.PyTreeCheckpointHandler:
    """The state's writer: Orbax's, but on CPU without replica-parallel writing. The arrays are
    in host memory already, and splitting each replicated one among its replicas compiled a
    slicing program per array shape (152 programs, 3.4 s, at a long-video run's first save)."""
    if jax.default_backend() != "cpu":
        return ocp.PyTreeCheckpointHandler()
    arrays = ocp.type_handlers.ArrayHandler(use_replica_parallel=False)
    scalars = ocp.type_handlers.ScalarHandler()
    return ocp.PyTreeCheckpointHandler(type_handler_registry=ocp.type_handlers.create_type_handler_registry(
        (jax.Array, arrays), (np.ndarray, ocp.type_handlers.NumpyHandler()),
        (int, scalars), (float, scalars), (np.number, scalars)))


class Checkpointer:
    """The checkpoints of one run in `directory` (a workdir's `checkpoints/`).

    keep: the last `keep` checkpoints are kept; keep_best: also the best one by an eval
    metric ("loss", "min:loss", "max:psnr"; the metrics passed to `save`).
    """

    def __init__(self, directory: str, *, keep: int = 3, keep_best: str = ""):
        self.directory = os.path.abspath(directory)
        self.best = check_keep(keep, keep_best)
        preserve = [policies.LatestN(n=keep)]
        if self.best:
            name, mode = self.best
            preserve.append(policies.BestN(get_metric_fn=lambda m: m[name], reverse=mode == "min",
                                           n=1, keep_checkpoints_without_metrics=False))
        options = ocp.CheckpointManagerOptions(
            enable_async_checkpointing=True, cleanup_tmp_directories=True,
            preservation_policy=policies.AnyPreservationPolicy(preserve))
        writers = ocp.handlers.DefaultCheckpointHandlerRegistry()
        writers.add("state", ocp.args.PyTreeSave, _state_writer())
        for item, args in (("data", grain.checkpoint.CheckpointSave), ("config", ocp.args.JsonSave),
                           ("shapes", ocp.args.JsonSave), ("pending", ocp.args.JsonSave)):
            writers.add(item, args)
        self._manager = ocp.CheckpointManager(self.directory, options=options, handler_registry=writers)

    def steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, step: int, state, data_iter, *, config: dict, metrics: dict | None = None,
             checksums: dict | None = None, pending: list | None = None) -> None:
        """Starts saving `state`, the iterator position, `config`, the state's shapes (with
        `checksums`, if given) and the `pending` metrics not yet logged as checkpoint `step`.
        A storage failure of this or an earlier background save is a `StorageError`; the
        checkpoints already on disk stay restorable."""
        table = shape_table(state, checksums)
        try:
            self._manager.save(step, metrics=metrics, force=True, args=ocp.args.Composite(
                state=ocp.args.PyTreeSave(state),
                data=grain.checkpoint.CheckpointSave(data_iter),
                config=ocp.args.JsonSave(config),
                shapes=ocp.args.JsonSave(table),
                pending=ocp.args.JsonSave(pending or [])))
        except Exception as e:  # noqa: BLE001  (classified: anything else re-raised)
            raise self._save_failure(e) from None

    def _save_failure(self, error: Exception) -> Exception:
        """A StorageError naming the checkpoint folder for a failed write, else `error`."""
        for e in _chain(error):
            if isinstance(e, OSError) and e.errno in STORAGE_ERRNOS:
                return StorageError(f"saving a checkpoint in {self.directory} failed: "
                                    f"{storage_sentence(e, self.directory)} "
                                    f"The newest complete checkpoint in {self.directory} is kept.")
            if "No space left" in str(e):
                return StorageError(f"saving a checkpoint in {self.directory} failed: no space "
                                    "left on the device; free space and run the same command "
                                    "again (the newest complete checkpoint is kept).")
        return error

    def _reader(self) -> ocp.CheckpointManager:
        """A manager for this process alone: it restores without cross-process barriers."""
        me = jax.process_index()
        options = ocp.CheckpointManagerOptions(create=False, multiprocessing_options=(
            ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me})))
        return ocp.CheckpointManager(self.directory, item_names=ITEMS, options=options)

    def restore(self, data_iter, abstract_state_for: Callable[[Any], Any],
                checksums_of: Callable[[Any], dict] | None = None, *,
                reshard_data: bool = False) -> Restored | None:
        """Restores the newest readable checkpoint, or None when the run has none yet.

        Sets `data_iter` to the saved position and takes its next batch, from which
        `abstract_state_for(batch)` builds the target state (ShapeDtypeStructs with
        shardings: the state is restored onto the current mesh, whatever mesh saved it);
        `checksums_of(state)` recomputes the saved checksums (jitted; every process calls
        it). The newest readable checkpoint written by another number of processes is a
        UserError, unless `reshard_data`: then `data_iter` keeps its own (initial) position
        (a corrupt one is set aside first, whatever wrote it). UserError also
        when the state's shapes differ from the checkpoint's; StorageError when storage
        fails or no checkpoint can be restored (see the module docstring).
        """
        steps = self.steps()
        _check_all_see(steps, f"the processes of this job see different checkpoints in {self.directory}")
        bad_dir = os.path.join(os.path.dirname(self.directory), "checkpoints_bad")
        reader = self._reader()
        initial = data_iter.get_state()
        try:
            for step in reversed(steps):
                path = os.path.join(self.directory, str(step))
                processes = self._other_process_count(path)
                _check_all_see(processes, f"the processes of this job see different data files in {path}")
                outcome, reason, restored = self._attempt(reader, step, data_iter, abstract_state_for,
                                                          initial if processes else None)
                verdict = agree(outcome)
                if verdict == OK:
                    reason = self._checksum_mismatch(restored, checksums_of)
                    if reason is None:
                        if processes:
                            self._reshard(path, processes, reshard_data)
                        return restored
                    verdict = CORRUPT
                if verdict == FAILED and processes:
                    self._reshard(path, processes, reshard_data)     # refused: the cause to fix first
                if verdict == FAILED:
                    raise StorageError(f"checkpoint {path} could not be read ("
                                       f"{reason if outcome == FAILED else 'by another process of this job'}"
                                       "); it is kept. Fix the storage and run the same command again.")
                self._quarantine(step, reason or "another process of this job found it corrupt")
                reader.reload()
        finally:
            reader.close()
        if steps or (os.path.isdir(bad_dir) and os.listdir(bad_dir)):
            raise StorageError(f"no checkpoint in {self.directory} can be restored (the unreadable "
                               f"ones are in {bad_dir}); stopping instead of training from step 0. "
                               f"To start over anyway, delete {bad_dir}.")
        return None

    def _attempt(self, reader, step: int, data_iter, abstract_state_for, initial):
        """(OK, None, Restored) | (CORRUPT, reason, None) | (FAILED, reason, None) for one
        step on this process, retrying failures that may pass. `initial`: the data position
        to take instead of the saved one (a checkpoint of another number of processes)."""
        path = os.path.join(self.directory, str(step))
        items = {"shapes": ocp.args.JsonRestore()}
        if initial is None:
            items["data"] = grain.checkpoint.CheckpointRestore(data_iter)
        last = ""
        for attempt, delay in enumerate((0.0,) + tuple(RETRY_DELAYS_S)):
            time.sleep(delay)
            try:
                if initial is not None:
                    data_iter.set_state(initial)
                meta = reader.restore(step, args=ocp.args.Composite(**items))
                first = next(data_iter)
                abstract = abstract_state_for(first)
                _check_shapes(shape_table(abstract), meta.shapes, path)
                state = reader.restore(step, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract))).state
                return OK, None, Restored(step, state, first, meta.shapes, self._pending(reader, step, path))
            except UserError:
                raise
            except Exception as e:  # noqa: BLE001  (classified; anything else re-raised)
                reason = corruption(e)
                if reason:
                    return CORRUPT, reason, None
                if not transient(e):
                    raise
                last = f"{type(e).__name__}: {_first_line(e)}"
                log.warning("reading checkpoint %s failed (%s); attempt %d of %d", path, last,
                            attempt + 1, len(RETRY_DELAYS_S) + 1)
        return FAILED, last, None

    @staticmethod
    def _pending(reader, step: int, path: str) -> list:
        """The metrics of steps not yet logged that checkpoint `step` holds ([] when it has
        none, as older ones, or they cannot be read: they only complete a log row)."""
        if not os.path.isdir(os.path.join(path, "pending")):
            return []
        try:
            return reader.restore(step, args=ocp.args.Composite(pending=ocp.args.JsonRestore())).pending
        except Exception as e:  # noqa: BLE001  (logging data: the state is what matters)
            log.warning("checkpoint %s: the metrics of its unlogged steps cannot be read (%s); the "
                        "first row after it covers fewer steps", path, _first_line(e))
            return []

    def _checksum_mismatch(self, restored: Restored, checksums_of) -> str | None:
        """The first leaf whose checksum differs from the saved one (None if all match or the
        checkpoint has none); the same answer on every process."""
        saved = {k: v[2] for k, v in restored.table.items() if len(v) > 2}
        if not saved or checksums_of is None:
            return None
        now = jax.device_get(checksums_of(restored.state))
        wrong = [k for k, v in saved.items() if int(now[k]) != int(v)]
        return f"a checksum mismatch in {wrong[0]}" if wrong else None

    @staticmethod
    def _other_process_count(path: str) -> str | None:
        """The process count(s) that wrote checkpoint `path` when not this run's; None when it
        is (a file of this count missing: the restore finds it corrupt)."""
        files = glob.glob(os.path.join(path, "data", "process_*-of-*.json"))
        counts = sorted({f.rsplit("-of-", 1)[1][:-5] for f in files})
        return None if not files or str(jax.process_count()) in counts else "/".join(counts)

    @staticmethod
    def _reshard(path: str, processes: str, allowed: bool) -> None:
        """For checkpoint `path`, written by `processes` (not this run's count): the UserError
        that names `train.reshard_data` unless `allowed`, else a warning of what changes."""
        count = jax.process_count()
        if not allowed:
            raise UserError(f"checkpoint {path} was written by {processes} processes, this run has "
                            f"{count}; resume with {processes} processes, or add "
                            f"--config.train.reshard_data=true to go on with {count} "
                            "(the state is restored exactly; the data are read in a new order).")
        log.warning("checkpoint %s was written by %s processes, this run has %d: the state is "
                    "restored onto this run's mesh, the data are read from the start of this "
                    "run's order", path, processes, count)

    def _quarantine(self, step: int, reason: str) -> None:
        """Moves checkpoint `step` to `checkpoints_bad/` (process 0; all wait for it)."""
        path = os.path.join(self.directory, str(step))
        bad = os.path.join(os.path.dirname(self.directory), "checkpoints_bad", str(step))
        log.warning("checkpoint %s is corrupt (%s); moving it to %s and trying the previous one",
                    path, reason, bad)
        if jax.process_index() == 0 and os.path.exists(path):
            if os.path.exists(bad):
                shutil.rmtree(bad)
            os.makedirs(os.path.dirname(bad), exist_ok=True)
            shutil.move(path, bad)
        agree(0)
        self._manager.reload()

    def wait(self) -> None:
        """Blocks until every started save is on disk (StorageError if one failed)."""
        try:
            self._manager.wait_until_finished()
        except Exception as e:  # noqa: BLE001  (classified: anything else re-raised)
            raise self._save_failure(e) from None

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._manager.close()


def _check_all_see(value, what: str) -> None:
    """StorageError(`what`) unless every process of the job has the same `value`."""
    key = zlib.crc32(repr(value).encode()) & 0x7FFFFFFF
    if agree(key) != key or agree(-key) != -key:
        raise StorageError(f"{what}; the storage is not consistent across hosts.")


def _check_shapes(expected: dict, saved: dict, path: str) -> None:
    saved = {k: v[:2] for k, v in saved.items()}     # [shape, dtype]; a checksum may follow
    keys = sorted(set(expected) | set(saved), key=lambda k: (".params" not in k, k))  # params first
    diff = [k for k in keys if expected.get(k) != saved.get(k)]
    if not diff:
        return
    def show(k):
        return (f"{k}: checkpoint {_fmt(saved.get(k))}, config {_fmt(expected.get(k))}")
    listed = "; ".join(show(k) for k in diff[:3]) + (f"; and {len(diff) - 3} more" if len(diff) > 3 else "")
    raise UserError(f"checkpoint {path} does not fit this config's model ({listed}); "
                    "use the config it was trained with or a new --workdir.")


def _fmt(entry) -> str:
    return "absent" if entry is None else f"{tuple(entry[0])} {entry[1]}"


def run_config(workdir: str):
    """The saved config of a `tlgen train` work directory (UserError otherwise)."""
    path = os.path.join(workdir, "config.json")
    if not os.path.isdir(workdir):
        what = "is a file" if os.path.exists(workdir) else "does not exist"
        raise UserError(f"--workdir {workdir} {what}; pass the work directory of a `tlgen train` run.")
    if not os.path.exists(path):
        raise UserError(f"{workdir} has no config.json; pass the --workdir of a `tlgen train` run.")
    return config_lib.read_run(path)


# A work directory's records of what its run started on: the dataset
# (`data.dataset.data_identity`) and the weights files the model reads (`weights_identity`).
DATA_RECORD = "data.json"
WEIGHTS_RECORD = "weights.json"


def started(workdir: str) -> bool:
    """Whether the run in `workdir` has saved a checkpoint (a step folder in checkpoints/, or
    one set aside in checkpoints_bad/; Orbax's temporary folders of an unfinished save do not
    count): until then there is nothing to resume."""
    folders = [os.path.join(workdir, name) for name in ("checkpoints", "checkpoints_bad")]
    return any(os.path.isdir(f) and any(name.isdigit() for name in os.listdir(f)) for f in folders)


def read_record(workdir: str, name: str) -> dict | None:
    """The record `name` of what a `tlgen train` run started on; None when it has none (the
    run names no such input, or started before tlgen kept one). UserError when unreadable."""
    path = os.path.join(workdir, name)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {path} ({e}); delete it to use the run without it.") from None


def write_record(workdir: str, name: str, identity: dict) -> None:
    """Writes the record `name` of what a run starts on (once it has a checkpoint, a resumed
    run keeps it)."""
    path = os.path.join(workdir, name)
    if not os.path.exists(path) or not started(workdir):
        write_text(path, json.dumps(identity, indent=1, sort_keys=True))


def weights_identity(config) -> dict:
    """{config key: SHA-256} of the weights files the model reads (the `model.*` path keys that
    name a file; a missing one is left to its loader's sentence)."""
    def sha256(path: str) -> str:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    return {key: sha256(path) for key, path in config_lib.named_paths(config).items()
            if key in config_lib.MODEL_FILE_KEYS and os.path.isfile(path)}


def check_weights(config, workdir: str, remedy: str) -> dict:
    """`weights_identity(config)`; UserError ending in `remedy` (which may name the `{key}`)
    when a file differs from the one the run in `workdir` started with (its path may differ:
    a moved file is the same weights)."""
    identity = weights_identity(config)
    recorded = (read_record(workdir, WEIGHTS_RECORD) or {}) if identity and started(workdir) else {}
    for key, digest in identity.items():
        if recorded.get(key, digest) != digest:
            path = config_lib.named_paths(config)[key]
            raise UserError(f"{path} ({key}) is not the weights file the run in {workdir} started "
                            f"with: its contents differ; {remedy.format(key=key)}.")
    return identity


_KEY = re.compile(r"\.(\w+)|\['((?:[^'\\]|\\.)*)'\]|\[(\d+)\]")


def _parse_path(path: str) -> tuple:
    """A `shape_table` key like ".params['g']['conv']['kernel']" -> ("params", "g", "conv", "kernel")."""
    keys, pos = [], 0
    for match in _KEY.finditer(path):
        if match.start() != pos:
            raise ValueError(f"cannot parse state path {path!r}")
        attr, key, index = match.groups()
        keys.append(attr if attr is not None else key if key is not None else int(index))
        pos = match.end()
    if pos != len(path):
        raise ValueError(f"cannot parse state path {path!r}")
    return tuple(keys)


def _nest(entries: dict[tuple, Any]) -> dict:
    tree: dict = {}
    for keys, value in entries.items():
        node = tree
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return tree


def _corrupt_for_inference(workdir: str, steps: list[int], chosen: int, reason: str) -> str:
    """The sentence for a checkpoint a user command cannot read."""
    older, others = [s for s in steps if s < chosen], [s for s in steps if s != chosen]
    if older:
        remedy = (f"pass --step {older[-1]} for the one before it, or run `tlgen train --workdir "
                  f"{workdir}` to set it aside and train on.")
    elif others:
        remedy = f"pass --step {others[-1]} for another checkpoint of the run."
    else:
        remedy = "the run has no other checkpoint: train it again in a new --workdir."
    return (f"checkpoint {os.path.join(os.path.abspath(workdir), 'checkpoints', str(chosen))} is "
            f"corrupt ({reason}); {remedy}")


def restore_networks(workdir: str, networks: tuple[str, ...], *, step: int | None = None,
                     shardings_for: Callable[[Any], Any]) -> tuple[int, dict, dict]:
    """Reads only what inference needs from checkpoint `step` (default: the newest) of a
    workdir whose state is a TrainState: for each of `networks` its EMA copy when the run
    keeps one, else its parameters, and the state's `extra`. No optimizer state and no other
    network is read. `shardings_for(abstract tree)` places the arrays.

    Returns (step, {network: params}, extra).
    """
    directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    missing = UserError(f"{workdir} has no checkpoint yet; train it first (`tlgen train --workdir {workdir}`).")
    if not os.path.isdir(directory):
        raise missing
    manager = ocp.CheckpointManager(directory, item_names=ITEMS)
    try:
        steps = sorted(manager.all_steps())
        if not steps:
            raise missing
        chosen = steps[-1] if step is None else step
        if chosen not in steps:
            raise UserError(f"{workdir} has no checkpoint {step}; it has {', '.join(map(str, steps))}.")
        table = manager.restore(chosen, args=ocp.args.Composite(shapes=ocp.args.JsonRestore())).shapes
        entries = {_parse_path(k): v for k, v in table.items()}
        wanted = {}
        for net in networks:
            source = "ema" if any(k[:2] == ("ema", net) for k in entries) else "params"
            found = {k: v for k, v in entries.items() if k[:2] == (source, net)}
            if not found:
                raise UserError(f"checkpoint {directory}/{chosen} holds no network {net!r}; it was "
                                "written by another family or version (use that version's tlgen).")
            wanted.update(found)
        wanted.update({k: v for k, v in entries.items() if k[0] == "extra"})
        shapes = _nest({k: jax.ShapeDtypeStruct(tuple(v[0]), v[1]) for k, v in wanted.items()})
        shardings = shardings_for(shapes)
        abstract = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                                shapes, shardings)
        restored = manager.restore(chosen, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
            item=abstract, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract),
            partial_restore=True))).state
        saved = {k: v[2] for k, v in wanted.items() if len(v) > 2}
        now = jax.device_get(jitted_checksums(shardings)(restored))
        now = {_parse_path(k): v for k, v in now.items()}
        wrong = [k for k, v in saved.items() if int(now[k]) != int(v)]
        if wrong:
            raise StorageError(_corrupt_for_inference(
                workdir, steps, chosen, f"a checksum mismatch in {'/'.join(map(str, wrong[0]))}"))
    except (UserError, StorageError):
        raise
    except Exception as e:  # noqa: BLE001  (a corrupt checkpoint is one sentence; else re-raised)
        reason = corruption(e)
        if reason is None:
            raise
        raise StorageError(_corrupt_for_inference(workdir, steps, chosen, reason)) from None
    finally:
        manager.close()
    params = {net: (restored["ema"] if "ema" in restored and net in restored["ema"]
                    else restored["params"])[net] for net in networks}
    return int(chosen), params, restored.get("extra", {})
