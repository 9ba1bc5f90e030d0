"""Checkpoints of a training run: Orbax CheckpointManager holding, per step, the train
state, each process's Grain iterator position, the config and the state's shapes.

Saves are asynchronous (the device-to-host copy happens before `save` returns, the writes
in the background) and atomic (a tmp directory renamed when complete). Restoring walks back
from the newest step: a checkpoint that cannot be read is moved to `checkpoints_bad/` with a
warning and the previous one is used.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
import re
import shutil
from collections.abc import Callable
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils
from orbax.checkpoint import checkpoint_managers as policies

from tlgen.errors import UserError

log = logging.getLogger(__name__)

ITEMS = ("state", "data", "config", "shapes")


def parse_keep_best(spec: str) -> tuple[str, str] | None:
    """"loss" / "min:loss" -> ("loss", "min"); "max:psnr" -> ("psnr", "max"); "" -> None."""
    if not spec:
        return None
    mode, _, name = spec.rpartition(":")
    mode = mode or "min"
    if mode not in ("min", "max") or not name:
        raise UserError(f"config.train.keep_best is {spec!r}; use a metric name, 'min:NAME' or 'max:NAME'.")
    return name, mode


def shape_table(tree) -> dict[str, list]:
    """{path: [shape, dtype]} for every leaf of a state pytree (arrays or ShapeDtypeStructs)."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(path): [list(x.shape), str(x.dtype)] for path, x in leaves}


@dataclasses.dataclass
class Restored:
    step: int
    state: Any
    first_batch: Any   # the next batch of the restored data iterator


class Checkpointer:
    """The checkpoints of one run in `directory` (a workdir's `checkpoints/`).

    keep: the last `keep` checkpoints are kept; keep_best: also the best one by an eval
    metric ("loss", "min:loss", "max:psnr"; the metrics passed to `save`).
    """

    def __init__(self, directory: str, *, keep: int = 3, keep_best: str = ""):
        self.directory = os.path.abspath(directory)
        self.best = parse_keep_best(keep_best)
        if keep < 1:
            raise UserError(f"config.train.keep_checkpoints must be >= 1, got {keep}.")
        preserve = [policies.LatestN(n=keep)]
        if self.best:
            name, mode = self.best
            preserve.append(policies.BestN(get_metric_fn=lambda m: m[name], reverse=mode == "min",
                                           n=1, keep_checkpoints_without_metrics=False))
        options = ocp.CheckpointManagerOptions(
            enable_async_checkpointing=True, cleanup_tmp_directories=True,
            preservation_policy=policies.AnyPreservationPolicy(preserve))
        self._manager = ocp.CheckpointManager(self.directory, item_names=ITEMS, options=options)

    def steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, step: int, state, data_iter, *, config: dict,
             metrics: dict | None = None) -> None:
        """Starts saving `state`, the iterator position and `config` as checkpoint `step`."""
        self._manager.save(step, metrics=metrics, force=True, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=grain.checkpoint.CheckpointSave(data_iter),
            config=ocp.args.JsonSave(config),
            shapes=ocp.args.JsonSave(shape_table(state))))

    def restore(self, data_iter, abstract_state_for: Callable[[Any], Any]) -> Restored | None:
        """Restores the newest readable checkpoint, or None when there is none.

        Sets `data_iter` to the saved position and takes its next batch, from which
        `abstract_state_for(batch)` builds the target state (ShapeDtypeStructs with
        shardings). UserError when the state's shapes differ from the checkpoint's or it was
        written by a different number of processes.
        """
        for step in reversed(self.steps()):
            path = os.path.join(self.directory, str(step))
            self._check_process_count(path)
            try:
                meta = self._manager.restore(step, args=ocp.args.Composite(
                    shapes=ocp.args.JsonRestore(),
                    data=grain.checkpoint.CheckpointRestore(data_iter)))
            except Exception as e:  # unreadable: any failure of the storage stack
                self._reject(step, e)
                continue
            first = next(data_iter)
            abstract = abstract_state_for(first)
            _check_shapes(shape_table(abstract), meta.shapes, path)
            try:
                state = self._manager.restore(step, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract))).state
            except Exception as e:
                self._reject(step, e)
                continue
            return Restored(step, state, first)
        return None

    def _check_process_count(self, path: str) -> None:
        files = glob.glob(os.path.join(path, "data", "process_*-of-*.json"))
        mine = os.path.join(path, "data",
                            f"process_{jax.process_index()}-of-{jax.process_count()}.json")
        if files and mine not in files:
            counts = sorted({f.rsplit("-of-", 1)[1][:-5] for f in files})
            raise UserError(f"checkpoint {path} was written by {'/'.join(counts)} processes, this "
                            f"run has {jax.process_count()}; resume with the same number of processes.")

    def _reject(self, step: int, error: Exception) -> None:
        path = os.path.join(self.directory, str(step))
        bad = os.path.join(os.path.dirname(self.directory), "checkpoints_bad", str(step))
        log.warning("checkpoint %s cannot be restored (%s: %s); moving it to %s and trying "
                    "the previous one", path, type(error).__name__, str(error).splitlines()[0][:200], bad)
        if jax.process_index() == 0 and os.path.exists(path):
            if os.path.exists(bad):
                shutil.rmtree(bad)
            os.makedirs(os.path.dirname(bad), exist_ok=True)
            shutil.move(path, bad)
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices(f"tlgen_reject_checkpoint_{step}")
        self._manager.reload()

    def wait(self) -> None:
        """Blocks until every started save is on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


def _check_shapes(expected: dict, saved: dict, path: str) -> None:
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
    from tlgen import config as config_lib

    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise UserError(f"{workdir} has no config.json; pass the --workdir of a `tlgen train` run.")
    return config_lib.read(path)


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
        shapes = _nest({k: jax.ShapeDtypeStruct(tuple(shape), dtype) for k, (shape, dtype) in wanted.items()})
        shardings = shardings_for(shapes)
        abstract = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                                shapes, shardings)
        restored = manager.restore(chosen, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
            item=abstract, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract),
            partial_restore=True))).state
    finally:
        manager.close()
    params = {net: (restored["ema"] if "ema" in restored and net in restored["ema"]
                    else restored["params"])[net] for net in networks}
    return int(chosen), params, restored.get("extra", {})
