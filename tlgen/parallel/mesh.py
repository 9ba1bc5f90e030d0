"""The device mesh: axes ("data", "fsdp", "model") sized from `config.mesh`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
from jax.sharding import AxisType, Mesh

from tlgen.errors import UserError

AXES = ("data", "fsdp", "model")
AXIS_TYPES = {"auto": AxisType.Auto, "explicit": AxisType.Explicit}


def axis_sizes(mesh_cfg, device_count: int) -> tuple[int, int, int]:
    """Resolves the data/fsdp/model sizes of `mesh_cfg` (one of them may be -1 = the rest)."""
    sizes = [int(mesh_cfg.get(name, 1)) for name in AXES]
    if sizes.count(-1) > 1 or any(s == 0 or s < -1 for s in sizes):
        raise UserError(f"config.mesh sizes {dict(zip(AXES, sizes))} are invalid: use positive "
                        "sizes and at most one -1 (= the remaining devices).")
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if device_count % known:
            raise UserError(f"config.mesh fixes {known} devices per replica, which does not divide "
                            f"the {device_count} devices; change config.mesh.")
        sizes[sizes.index(-1)] = device_count // known
    if math.prod(sizes) != device_count:
        raise UserError(f"config.mesh {dict(zip(AXES, sizes))} needs {math.prod(sizes)} devices but "
                        f"{device_count} are present; set one axis to -1 or change the sizes.")
    return tuple(sizes)


def make_mesh(mesh_cfg, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """Builds the ("data", "fsdp", "model") mesh over `devices` (default: all devices).

    `mesh_cfg.axis_types` picks the sharding mode: "auto" (default; the compiler propagates
    shardings, so any model code works) or "explicit" (shardings are part of array types; the
    trainer gathers FSDP-sharded parameters before the step, model code must be
    sharding-clean).
    """
    devices = list(jax.devices() if devices is None else devices)
    kind = str(mesh_cfg.get("axis_types", "auto")).lower()
    if kind not in AXIS_TYPES:
        raise UserError(f"config.mesh.axis_types is {kind!r}; use 'auto' or 'explicit'.")
    sizes = axis_sizes(mesh_cfg, len(devices))
    return jax.make_mesh(sizes, AXES, axis_types=(AXIS_TYPES[kind],) * len(AXES), devices=devices)
