"""Trained models for inference: one loader for every family.

`load(workdir)` reads the run's config, finds its family (`tlgen.family`) and restores from
the newest (or a given) checkpoint only what inference needs: for each of the family's
`networks` its EMA copy when the run keeps one, else its parameters, and the state's
`extra` (BatchNorm statistics, ...). Optimizer states, discriminators and everything else in
the checkpoint stay on disk. Arrays are placed on a mesh with the training sharding rules
(size rule + the family's `sharding_rules`); frozen networks are read when first used.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

from jax.sharding import Mesh

from tlgen import config as config_lib
from tlgen import family as family_lib
from tlgen.errors import UserError
from tlgen.parallel import make_mesh, param_shardings, place

# The inference mesh when none is given: every device on the data axis.
DEFAULT_MESH = {"data": -1, "fsdp": 1, "model": 1, "axis_types": "auto"}


@dataclasses.dataclass
class Trained:
    """A trained model of any family, ready for inference.

    params: {network: parameter pytree} for the family's `networks` (EMA copies when kept).
    extra: model state that gradients do not train (e.g. {"batch_stats": ...}).
    frozen: {name: pytree} of the family's frozen networks, read from their files on first
      use (inference that needs none never touches them).
    """
    config: Any
    family: family_lib.Family
    step: int
    params: dict
    extra: dict
    mesh: Mesh
    workdir: str | None = None

    @property
    def dtype(self):
        """The compute dtype of `config.dtype`."""
        return config_lib.compute_dtype(self.config)

    @functools.cached_property
    def frozen(self) -> dict:
        """{name: parameter pytree} of the family's frozen networks, read on first use from
        the files the run was trained with (checked by content when the run recorded them)."""
        if self.workdir:
            from tlgen.checkpoint import check_weights
            check_weights(self.config, self.workdir, "give the file it was trained with (`tlgen "
                          "animate --help` names the option)")
        return load_frozen(self.config, self.mesh, self.family)

    def data_dir(self, given: str | None = None) -> str:
        """The dataset a command reads: `given` (its --data), else the one the run trained on,
        which may have moved since: then one sentence asking for --data."""
        if given:
            return given
        own = self.config.data.dir
        if own and not os.path.exists(own):
            raise UserError(f"{own}, the dataset {self.workdir or 'the run'} was trained on "
                            "(its config.data.dir), is not there any more; pass --data DIR with "
                            "where it is now, or another prepared dataset.")
        return own

    @classmethod
    def from_state(cls, config, state, mesh: Mesh, *, step: int = 0, frozen: dict | None = None
                   ) -> "Trained":
        """The inference view of a live TrainState (e.g. a freshly initialized one)."""
        spec = family_lib.of(config)
        ema = state.ema or {}
        params = {net: ema[net] if net in ema else state.params[net] for net in spec.networks}
        trained = cls(config, spec, step, params, dict(state.extra), mesh)
        if frozen is not None:
            trained.__dict__["frozen"] = dict(frozen)
        return trained


def shardings_for(config, mesh: Mesh, spec: family_lib.Family):
    """(abstract tree) -> its shardings by the training rules of `config` on `mesh`."""
    min_bytes = int(config.mesh.get("fsdp_min_bytes", 2 ** 20))
    return lambda tree: param_shardings(tree, mesh, min_bytes=min_bytes, rules=spec.sharding_rules)


def load_frozen(config, mesh: Mesh, spec: family_lib.Family) -> dict:
    """The family's frozen networks, read from their files once and placed like parameters."""
    if spec.frozen is None:
        return {}
    trees = {name: loader() for name, loader in spec.frozen(config).items()}
    return place(trees, shardings_for(config, mesh, spec)(trees))


def load(workdir: str, *, step: int | None = None, mesh: Mesh | None = None,
         command: str | None = None) -> Trained:
    """Loads checkpoint `step` (default: the newest) of a `tlgen train` work directory; with
    `command` ("eval", "animate", ...), first checks that the run's family has it."""
    from tlgen import checkpoint       # Orbax: imported when a run is loaded, not with this module

    config = checkpoint.run_config(workdir)
    spec = family_lib.of(config)
    if command is not None:
        spec.command(command)
    if mesh is None:
        import ml_collections
        mesh = make_mesh(ml_collections.ConfigDict(DEFAULT_MESH))
    chosen, params, extra = checkpoint.restore_networks(
        workdir, spec.networks, step=step, shardings_for=shardings_for(config, mesh, spec))
    return Trained(config, spec, chosen, params, extra, mesh, os.path.abspath(workdir))

