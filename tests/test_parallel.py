"""Mesh, sharding rules, global batches, and sharded == single-device training steps."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

from tests import engine_config
from tlgen.errors import UserError
from tlgen.checkpoint import checksums
from tlgen.parallel import (alike_leaves, batch_sharding, constrain, global_batch, logical_spec,
                            make_mesh, param_shardings, place)
from tlgen.parallel.mesh import axis_sizes
from tlgen import family as family_lib
from tlgen.train.state import all_finite
from tlgen.train.trainer import Engine


def mesh_cfg(**kw):
    return ml_collections.ConfigDict(dict(dict(data=-1, fsdp=1, model=1, axis_types="auto"), **kw))


def test_axis_sizes_fill_the_rest_and_reject_bad_sizes():
    assert axis_sizes(mesh_cfg(), 8) == (8, 1, 1)
    assert axis_sizes(mesh_cfg(fsdp=4), 8) == (2, 4, 1)
    assert axis_sizes(mesh_cfg(data=2, fsdp=-1, model=2), 8) == (2, 2, 2)
    for bad in (mesh_cfg(fsdp=3), mesh_cfg(data=-1, fsdp=-1), mesh_cfg(data=2, fsdp=2), mesh_cfg(fsdp=0)):
        with pytest.raises(UserError, match="config.mesh"):
            axis_sizes(bad, 8)


@pytest.mark.parametrize("kind,expected", [("auto", AxisType.Auto), ("explicit", AxisType.Explicit)])
def test_make_mesh_axis_types(kind, expected):
    mesh = make_mesh(mesh_cfg(fsdp=2, axis_types=kind))
    assert dict(mesh.shape) == {"data": 4, "fsdp": 2, "model": 1}
    assert mesh.axis_types == (expected,) * 3
    with pytest.raises(UserError, match="axis_types"):
        make_mesh(mesh_cfg(axis_types="manual"))


def test_param_shardings_fsdp_rules():
    mesh = make_mesh(mesh_cfg(data=1, fsdp=4, model=2))
    tree = {
        "kernel": jax.ShapeDtypeStruct((3, 3, 64, 512), jnp.float32),   # 1.2 MB
        "odd": jax.ShapeDtypeStruct((513, 515), jnp.float32),           # nothing divides
        "bias": jax.ShapeDtypeStruct((512,), jnp.float32),              # small
        "count": jax.ShapeDtypeStruct((), jnp.int32),
        "key": jax.eval_shape(lambda: jax.random.key(0)),
    }
    specs = {k: s.spec for k, s in param_shardings(tree, mesh, min_bytes=2 ** 20).items()}
    # model takes the last (output) dim; fsdp the largest remaining divisible dim.
    assert specs["kernel"] == P(None, None, "fsdp", "model")
    assert specs["odd"] == P(None, None)
    assert specs["bias"] == P() and specs["count"] == P() and specs["key"] == P()
    no_model = make_mesh(mesh_cfg(data=2, fsdp=4))
    assert param_shardings(tree, no_model, min_bytes=2 ** 20)["kernel"].spec == P(None, None, None, "fsdp")


def sharded_state(axis_types="auto"):
    """A state-like tree on 8 devices: leaves of one shape in two shardings, and others."""
    mesh = make_mesh(mesh_cfg(data=2, fsdp=4, axis_types=axis_types))
    rows, whole = NamedSharding(mesh, P("fsdp", None)), NamedSharding(mesh, P())
    rng = np.random.default_rng(0)
    values = {"w": rng.normal(size=(8, 6)), "mu": rng.normal(size=(8, 6)), "ema": rng.normal(size=(8, 6)),
              "other": rng.normal(size=(8, 6)), "half": rng.normal(size=(8, 6)).astype(jnp.bfloat16),
              "b": rng.normal(size=(6,)), "n": np.arange(5, dtype=np.int32), "on": np.array([True, False])}
    values = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in values.items()}
    shardings = {k: rows if k in ("w", "mu", "ema") else whole for k in values}
    return mesh, values, shardings


def test_alike_leaves_group_by_shape_dtype_and_sharding():
    _, values, shardings = sharded_state()
    names = sorted(values)                  # jax.tree.leaves order of a dict
    named = lambda groups: sorted(sorted(names[i] for i in g) for g in groups)
    assert named(alike_leaves(values, shardings)) == [["b"], ["ema", "mu", "w"], ["half"], ["n"], ["on"], ["other"]]
    assert named(alike_leaves(values)) == [["b"], ["ema", "mu", "other", "w"], ["half"], ["n"], ["on"]]


def numpy_checksum(x: np.ndarray) -> int:
    """The checksum's definition in NumPy: words times (position * 2654435761 + 1), summed,
    modulo 2^32 (uint64 arithmetic wraps modulo 2^64, a multiple of 2^32)."""
    x = np.asarray(x).astype(np.uint8) if np.asarray(x).dtype == bool else np.asarray(x)
    words = x.view({1: np.uint8, 2: np.uint16}.get(x.dtype.itemsize, np.uint32)).ravel().astype(np.uint64)
    weights = (np.arange(words.size, dtype=np.uint64) * 2654435761 + 1) % 2 ** 32
    return int(np.sum(words * weights) % 2 ** 32)


@pytest.mark.parametrize("axis_types", ["auto", "explicit"])
def test_finiteness_and_checksums_of_alike_leaves_on_a_sharded_state(axis_types):
    """Both reduce alike leaves together: each leaf still counts on its own, wherever its shards lie."""
    mesh, values, shardings = sharded_state(axis_types)
    state = place(values, shardings)
    finite = jax.jit(lambda t: all_finite(t, shardings), in_shardings=(shardings,))
    sums = jax.jit(lambda t: checksums(t, shardings), in_shardings=(shardings,))
    assert bool(finite(state))
    expected = {f"['{k}']": numpy_checksum(v) for k, v in values.items()}
    assert {k: int(v) for k, v in sums(state).items()} == expected
    assert {k: int(v) for k, v in jax.jit(checksums)(values).items()} == expected     # one device
    for name in ("w", "mu", "ema", "other", "half", "b"):
        for bad in (np.inf, np.nan):
            broken = dict(values, **{name: values[name].copy()})
            broken[name].reshape(-1)[-1] = bad
            assert not bool(finite(place(broken, shardings))), (name, bad)
        swapped = dict(values, **{name: values[name][::-1].copy()})
        changed = {k for k, v in sums(place(swapped, shardings)).items() if int(v) != expected[k]}
        assert changed == {f"['{name}']"}


def test_global_batch_rows_land_on_their_devices():
    mesh = make_mesh(mesh_cfg(fsdp=2))
    local = {"x": np.arange(16 * 3, dtype=np.float32).reshape(16, 3), "i": np.arange(16)}
    batch = global_batch(local, mesh)
    assert batch["x"].sharding.is_equivalent_to(batch_sharding(mesh), 2)
    np.testing.assert_array_equal(np.asarray(batch["x"]), local["x"])
    for shard in batch["i"].addressable_shards:   # 8 devices, 2 rows each, in order
        np.testing.assert_array_equal(np.asarray(shard.data), local["i"][shard.index])
        assert shard.data.shape == (2,)


def test_logical_axes_constrain_activations():
    assert logical_spec(("batch", "time", "height", "width", "channels")) == P(
        ("data", "fsdp"), None, None, None, "model")
    with pytest.raises(ValueError, match="unknown logical axes"):
        logical_spec(("pixels",))
    mesh = make_mesh(mesh_cfg(fsdp=2))
    x = jnp.ones((8, 4, 6))
    with jax.set_mesh(mesh):
        y = jax.jit(lambda v: constrain(v * 2, ("batch", "height", "channels")))(x)
    assert y.sharding.spec == P(("data", "fsdp"))
    assert constrain(x, ("batch", None, None)) is x   # no mesh: unchanged


def run_steps(config, mesh, steps=3):
    """Initializes and runs `steps` guarded training steps of the engine test family."""
    spec = family_lib.of(config)
    fam = spec.training(config)
    engine = Engine(spec, fam, mesh, config)
    it = iter(fam.make_pipeline("train", 0, 1))
    local = next(it)
    losses = []
    with jax.set_mesh(mesh):
        state = engine.init(jax.random.PRNGKey(0), local)
        for step in range(steps):
            batch = global_batch(local if step == 0 else next(it), mesh)
            state, metrics = engine.step(state, batch, jax.random.fold_in(jax.random.PRNGKey(1), step))
            losses.append(float(metrics["loss"]))
    return jax.device_get(state), losses, engine


@pytest.fixture(scope="module")
def single_device_run():
    config = engine_config.get_config("regression")
    return run_steps(config, make_mesh(mesh_cfg(data=1), devices=jax.devices()[:1]))


@pytest.mark.parametrize("axis_types", ["auto", "explicit"])
def test_sharded_step_matches_single_device(axis_types, single_device_run):
    config = engine_config.get_config("regression")
    config.mesh.update(data=2, fsdp=4, axis_types=axis_types)   # fsdp_min_bytes=0: all sharded
    sharded = make_mesh(config.mesh)
    ref_state, ref_losses, _ = single_device_run
    state, losses, engine = run_steps(config, sharded)
    kernel = engine.shardings.params["net"]["Dense_0"]["kernel"]
    assert "fsdp" in kernel.spec and kernel.mesh.axis_types[0] == sharded.axis_types[0]
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), state, ref_state)
    assert int(state.step) == 3
