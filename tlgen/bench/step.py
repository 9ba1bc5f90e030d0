"""The training step to benchmark, built by the trainer's own engine.

The step is the one `tlgen train` runs: the family's `train_step` wrapped with the
non-finite guard, jitted over `config.mesh` with the state's shardings, the batch sharded
over the data axes and the state donated. Its rng is `fold_in(PRNGKey(seed), step)`.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any

import jax
import ml_collections

from tlgen import family as family_lib
from tlgen.parallel import global_batch, make_mesh
from tlgen.train import trainer


@dataclasses.dataclass
class BuiltStep:
    """A compiled training step with its live state (donated and replaced every step)."""
    engine: trainer.Engine     # mesh, compiler options
    jaxpr: Any                 # the traced step (FLOP counts)
    lowered: Any
    compiled: Any
    state: Any
    batch: dict
    rng: jax.Array
    lower_s: float
    compile_s: float
    metrics: dict = dataclasses.field(default_factory=dict)

    @property
    def mesh(self):
        return self.engine.mesh

    def step(self, compiled=None):
        """One training step on the fixed batch (the state is donated and replaced), by the
        plain step or another `compiled` program of it."""
        self.state, self.metrics = (compiled or self.compiled)(self.state, self.batch, self.rng,
                                                               self.engine.frozen)
        return self.state

    def last_metrics(self) -> dict:
        return jax.device_get(self.metrics)

    def regularized(self):
        """(call, jaxpr) of the family's lazy-regularization step (e.g. R1, which the trainer
        runs every `regularize_every` steps in place of the plain one), compiled here."""
        with jax.set_mesh(self.mesh):
            traced, _, compiled, _, _ = _compile(self.engine, self.state, self.batch, self.rng,
                                                 regularize=True)
        return functools.partial(self.step, compiled), traced.jaxpr


def _compile(engine: trainer.Engine, state, batch, rng, regularize: bool = False):
    """(traced, lowered, compiled, lower_s, compile_s) of the trainer's jitted step."""
    start = time.perf_counter()
    traced = engine.jitted_step(regularize).trace(state, batch, rng, engine.frozen)
    lowered = traced.lower()
    lower_s = time.perf_counter() - start
    start = time.perf_counter()
    compiled = lowered.compile()
    return traced, lowered, compiled, lower_s, time.perf_counter() - start


def build(spec: family_lib.Family, training: family_lib.Training,
          config: ml_collections.ConfigDict, host_batch: dict) -> BuiltStep:
    """Initializes the state on the mesh, then lowers and compiles the trainer's step."""
    mesh = make_mesh(config.mesh)
    trainer.check_batch(config, mesh)
    engine = trainer.Engine(spec, training, mesh, config)
    init_key, _ = trainer.init_and_sample_keys(int(config.seed))
    with jax.set_mesh(mesh):
        state = engine.init(init_key, host_batch)
        batch = global_batch(host_batch, mesh)
        rng = jax.random.fold_in(jax.random.PRNGKey(int(config.seed)), 0)
        traced, lowered, compiled, lower_s, compile_s = _compile(engine, state, batch, rng)
    return BuiltStep(engine, traced.jaxpr, lowered, compiled, state, batch, rng, lower_s, compile_s)
