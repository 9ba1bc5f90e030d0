"""The family registry: a config's `family` names the module whose `make_family` plugs
a model family into the one generic trainer."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from tlgen.errors import UserError

# Modules of tlgen.train that are the engine, not families.
ENGINE_MODULES = frozenset({"registry", "state", "trainer", "writers"})


@dataclasses.dataclass(frozen=True)
class Family:
    """What a model family gives the trainer; every function is pure (no I/O inside jit)."""

    init: Callable[[jax.Array, dict], Any]
    """(rng, example global batch) -> state pytree (usually a TrainState) at step 0."""
    train_step: Callable[[Any, dict, jax.Array], tuple[Any, dict]]
    """(state, batch, rng) -> (state, metrics); metrics are fp32 scalars including "loss".
    The trainer advances `state.step` and drops updates whose loss or state is not finite."""
    make_pipeline: Callable[[str, int, int], Any]
    """(split, shard_index, shard_count) -> grain IterDataset of this process's batch part."""
    eval_step: Callable[[Any, dict], dict] | None = None
    """(state, batch) -> fp32 scalar metrics, averaged over `config.train.eval_batches`."""
    sample: Callable[[Any, dict, jax.Array], dict[str, np.ndarray]] | None = None
    """(state, batch, rng) -> {name: uint8 images (N,H,W,3) or videos (N,T,H,W,3)}; pure
    (the trainer jits it)."""
    evaluate: Callable[..., dict] | None = None
    """The family's full `tlgen eval` (workdir, data_dir, ...) -> report dict."""


def available() -> list[str]:
    """Names of the families in tlgen.train."""
    import tlgen.train as package
    return sorted(m.name for m in pkgutil.iter_modules(package.__path__)
                  if m.name not in ENGINE_MODULES and not m.name.startswith("_"))


def module_name(name: str) -> str:
    """`config.family` -> module: a bare name lives in tlgen.train, a dotted path is used as is."""
    return name if "." in name else f"tlgen.train.{name}"


def family(config) -> Family:
    """Imports the family module named by `config.family` and returns its `make_family(config)`."""
    name = str(config.family)
    target = module_name(name)
    try:
        module = importlib.import_module(target)
    except ModuleNotFoundError as e:
        if e.name and target.startswith(e.name):
            raise UserError(f"config.family {name!r} is unknown; available families: "
                            f"{', '.join(available()) or 'none'} (or a module path like pkg.module)."
                            ) from None
        raise
    make = getattr(module, "make_family", None)
    if make is None:
        raise UserError(f"config.family {name!r}: module {target} has no make_family(config).")
    result = make(config)
    if not isinstance(result, Family):
        raise TypeError(f"{target}.make_family returned {type(result).__name__}, not a Family")
    return result
