"""Sharding rules: FSDP for large parameters, batches over data×fsdp, logical axis names."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

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


def param_shardings(abstract_state, mesh: Mesh, *, min_bytes: int = 2 ** 20):
    """Shardings for a state pytree (arrays or ShapeDtypeStructs).

    Arrays of at least `min_bytes` are split over "fsdp" along their largest dimension
    divisible by the fsdp size (and along the last dimension over "model" when that axis is
    larger than 1); smaller arrays, scalars and PRNG keys are replicated.
    """
    def one(x):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            return replicated(mesh)
        nbytes = int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize
        return NamedSharding(mesh, _param_spec(tuple(x.shape), nbytes, mesh, min_bytes))
    return jax.tree.map(one, abstract_state)


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
