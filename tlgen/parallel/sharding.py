"""Sharding rules: FSDP for large parameters, batches over data×fsdp, logical axis names."""

from __future__ import annotations

import re
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from tlgen.errors import UserError

BATCH_AXES = ("data", "fsdp")
# Logical activation axes -> mesh axes.
LOGICAL_RULES = {"batch": BATCH_AXES, "time": None, "height": None, "width": None,
                 "channels": "model"}


def replicated(mesh: Mesh) -> NamedSharding:
    """The same full copy on every device."""
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) dimension split over data×fsdp, the rest replicated."""
    return NamedSharding(mesh, P(BATCH_AXES))


def is_explicit(mesh: Mesh) -> bool:
    """True when the mesh uses Explicit axis types."""
    return all(t == AxisType.Explicit for t in mesh.axis_types)


def _param_spec(shape: tuple[int, ...], nbytes: int, mesh: Mesh, min_bytes: int) -> P:
    spec: list = [None] * len(shape)
    if len(shape) == 0 or nbytes < min_bytes:
        return P()
    model, fsdp = mesh.shape["model"], mesh.shape["fsdp"]
    if model > 1 and len(shape) >= 2 and shape[-1] % model == 0:
        spec[-1] = "model"   # output features/channels: tensor parallel
    if fsdp > 1:
        for i in sorted(range(len(shape)), key=lambda i: -shape[i]):
            if spec[i] is None and shape[i] % fsdp == 0:
                spec[i] = "fsdp"
                break
    return P(*spec)


def param_shardings(abstract_state, mesh: Mesh, *, min_bytes: int = 2 ** 20,
                    rules: Sequence[tuple[str, Sequence]] = ()):
    """Shardings for a state pytree (arrays or ShapeDtypeStructs).

    `rules`: (regex, partition spec) pairs, first match wins, searched in each leaf's path
    written with slashes ("params/g/encoder/kernel"; optimizer moments such as
    "opt_state/g/0/mu/encoder/kernel" match the same pattern), as big_vision does. A
    matching leaf takes the rule's spec (an entry per dimension: None, a mesh axis or a
    tuple of axes). Other arrays of at least `min_bytes` are split over "fsdp" along their
    largest dimension divisible by the fsdp size (and along the last dimension over "model"
    when that axis is larger than 1); smaller arrays, scalars and PRNG keys are replicated.
    """
    compiled = [(re.compile(pattern), tuple(spec)) for pattern, spec in rules]

    def one(path, x):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            return replicated(mesh)
        name = path_name(path)
        for pattern, spec in compiled:
            if pattern.search(name):
                return NamedSharding(mesh, _checked_rule(name, pattern.pattern, spec, x.shape, mesh))
        nbytes = int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize
        return NamedSharding(mesh, _param_spec(tuple(x.shape), nbytes, mesh, min_bytes))
    return jax.tree_util.tree_map_with_path(one, abstract_state)


def path_name(path) -> str:
    """A pytree key path as "a/b/0/c" (dict keys, attribute names and indices)."""
    parts = []
    for key in path:
        for attr in ("key", "name", "idx"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
        else:
            parts.append(str(key))
    return "/".join(parts)


def _checked_rule(name: str, pattern: str, spec: tuple, shape, mesh: Mesh) -> P:
    if len(spec) > len(shape):
        raise UserError(f"sharding rule {pattern!r} gives {len(spec)} dimensions to {name}, "
                        f"which has shape {tuple(shape)}; fix the family's sharding_rules.")
    for dim, axes in zip(shape, spec):
        group = (axes,) if isinstance(axes, str) else tuple(axes or ())
        unknown = [a for a in group if a not in mesh.shape]
        size = int(np.prod([mesh.shape[a] for a in group if a in mesh.shape]))
        if unknown or dim % size:
            raise UserError(f"sharding rule {pattern!r} splits {name} (shape {tuple(shape)}) over "
                            f"{group}, which {'are not mesh axes' if unknown else f'do not divide {dim}'}; "
                            "fix the family's sharding_rules or config.mesh.")
    return P(*spec)


def place(tree, shardings):
    """Host (numpy) arrays -> global arrays in `shardings`; every process passes the same
    values (multi-process safe)."""
    def one(x, sharding):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])
    return jax.tree.map(one, tree, shardings)


def alike_leaves(tree, shardings=None) -> list[list[int]]:
    """Positions of `tree`'s leaves (in `jax.tree.leaves` order) grouped by shape, dtype and
    sharding (`shardings`: a tree matching `tree`, e.g. a state's, and on an Explicit mesh the
    sharding in each leaf's type). A check or reduction over every leaf done per group
    (stacked, or combined elementwise) is one kernel per group instead of one per leaf, and
    moves no shard: a state holds the same shapes over and over (parameters, their optimizer
    moments, their EMA)."""
    leaves = jax.tree.leaves(tree)
    kinds = (jax.tree.structure(tree).flatten_up_to(shardings) if shardings is not None
             else [None] * len(leaves))
    groups: dict = {}
    for i, (x, kind) in enumerate(zip(leaves, kinds)):
        groups.setdefault((tuple(x.shape), x.dtype, kind, jax.typeof(x).sharding), []).append(i)
    return list(groups.values())


def gather_params(tree):
    """Inside a jitted function on an Explicit mesh: all-gathers every array to replicated.

    FSDP with Explicit axis types: parameters are stored sharded and gathered for use.
    """
    return jax.tree.map(lambda x: jax.sharding.reshard(x, P()), tree)


def logical_spec(names: Sequence[str | None]) -> P:
    """PartitionSpec for logical axis names (batch, time, height, width, channels)."""
    unknown = [n for n in names if n is not None and n not in LOGICAL_RULES]
    if unknown:
        raise ValueError(f"unknown logical axes {unknown}; known: {sorted(LOGICAL_RULES)}")
    return P(*(LOGICAL_RULES[n] if n is not None else None for n in names))


def constrain(x: jax.Array, names: Sequence[str | None]) -> jax.Array:
    """Sharding constraint by logical names under the current mesh (`jax.set_mesh`).

    A no-op without a mesh, and for mesh axes that do not divide the dimension.
    """
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty:
        return x
    spec = []
    for dim, axes in zip(x.shape, logical_spec(names)):
        group = (axes,) if isinstance(axes, str) else tuple(axes or ())
        size = int(np.prod([mesh.shape[a] for a in group])) if group else 1
        spec.append(axes if group and size > 1 and dim % size == 0 else None)
    if is_explicit(mesh):
        return jax.sharding.reshard(x, P(*spec))
    return jax.lax.with_sharding_constraint(x, P(*spec))


def global_batch(local_batch: dict, mesh: Mesh) -> dict:
    """Assembles each process's part of the batch into global arrays split over data×fsdp.

    Process p's rows become rows [p·B_local, (p+1)·B_local) of the global batch.
    """
    sharding = batch_sharding(mesh)
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch)
