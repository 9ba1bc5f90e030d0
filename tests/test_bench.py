"""Benchmark harness: finite positive measurements, FLOPs against hand counts, the peak."""

import json
import math
import os
import subprocess
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from tlgen.bench import flops, harness, layers, peak, report
from tlgen.family import Family, Training
from tlgen.models.layers import EqualizedConv

B, H, W, CIN, COUT, K = 8, 12, 12, 3, 16, 3


def conv_flops() -> int:
    """Hand count of a VALID, bias-free KxK conv: 2 * B * Ho * Wo * Cout * K * K * Cin."""
    return 2 * B * (H - K + 1) * (W - K + 1) * COUT * K * K * CIN


class ConvNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Conv(COUT, (K, K), padding="VALID", use_bias=False)(x)


def training(config):
    """A one-conv family (this module is its package: config.family = "tests.test_bench")."""
    model, tx = ConvNet(), optax.sgd(1e-3)

    def frames(batch):
        return batch["frames"].astype(jnp.float32) / 255.0

    def init(rng, batch):
        params = model.init(rng, frames(batch))["params"]
        return {"params": params, "opt": tx.init(params)}

    def train_step(state, batch, rng):
        def loss_fn(params):
            return jnp.mean(model.apply({"params": params}, frames(batch)) ** 2)
        loss, grads = jax.value_and_grad(loss_fn)(state["params"])
        updates, opt = tx.update(grads, state["opt"])
        return {"params": optax.apply_updates(state["params"], updates), "opt": opt}, {"loss": loss}

    def sample(state, batch, rng):
        return {"frames": batch["frames"]}

    return Training(init=init, train_step=train_step, make_pipeline=lambda *a: None, sample=sample)


def example_batch(config, batch_size):
    return {"frames": np.zeros((batch_size, H, W, CIN), np.uint8),
            "time": np.zeros((batch_size,), np.float32)}


FAMILY = Family(name="tests.test_bench", training=training, example_batch=example_batch)


def toy_config():
    config = ml_collections.ConfigDict(dict(
        family="tests.test_bench", variant="tiny", seed=0, dtype="float32",
        data=dict(dir="", batch_size=4), mesh=dict(data=-1, fsdp=1, model=1, axis_types="auto")))
    config.lock()
    return config


def test_matmul_peak_is_a_positive_rate():
    result = peak.matmul_peak("float32", size=128, steps=3)
    assert result["flops"] == 2 * 128 ** 3
    assert math.isfinite(result["flops_per_s"]) and result["flops_per_s"] > 0


def test_dense_flops_match_hand_count():
    dense = nn.Dense(7, use_bias=False)
    x = jnp.zeros((5, 11), jnp.float32)
    params = dense.init(jax.random.key(0), x)
    compiled = jax.jit(lambda p, v: dense.apply(p, v)).lower(params, x).compile()
    assert peak.cost_flops(compiled) == 2 * 5 * 11 * 7
    assert flops.count_flops(lambda p, v: dense.apply(p, v), params, x) == 2 * 5 * 11 * 7


@pytest.mark.parametrize("strides,padding,lhs_dilation", [
    ((1, 1), "SAME", (1, 1)), ((2, 2), "SAME", (1, 1)), ((2, 2), ((1, 2), (0, 1)), (1, 1)),
    ((1, 1), ((2, 1), (2, 1)), (2, 2))])
def test_jaxpr_conv_flops_match_xla(strides, padding, lhs_dilation):
    # XLA counts in-bounds taps only (padding and dilation holes excluded); so must we
    x, w = jnp.ones((2, 9, 10, 3)), jnp.ones((3, 3, 3, 5))
    conv = lambda x, w: jax.lax.conv_general_dilated(
        x, w, strides, padding, lhs_dilation=lhs_dilation,
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    assert flops.count_flops(conv, x, w) == peak.cost_flops(jax.jit(conv).lower(x, w))


def test_harness_on_tiny_family(tmp_path):
    record = harness.run_benchmark(toy_config(), steps=2, batch=B, layers=4)
    step = record["step"]
    assert record["batch"] == B and record["data"] == "synthetic"
    assert step["frames_per_step"] == B
    for value in (step["median_s"], step["samples_per_s"], step["frames_per_s"],
                  step["flops_per_s"], record["peak"]["flops_per_s"], record["mfu"],
                  record["memory_peak_bytes"], record["compile"]["compile_s"],
                  record["inference"]["frames_per_s"]):
        assert math.isfinite(value) and value > 0
    # step = forward conv + weight gradient (no input gradient); XLA adds elementwise ops
    assert step["flops"] == 2 * conv_flops()
    assert 2 * conv_flops() <= record["xla_flops"]["lowered"] <= 2 * conv_flops() * 1.1
    assert math.isfinite(step["metrics"]["loss"])
    (row,) = record["layers"]
    # the layer alone: forward, weight gradient and input gradient, one convolution's worth each
    assert row["count"] == 1 and row["flops"] == 3 * conv_flops() and row["seconds"] > 0
    path = tmp_path / "r.json"
    report.write_json(record, str(path))
    assert json.loads(path.read_text())["step"]["flops"] == step["flops"]
    assert "MFU" in report.summary(record) and f"batch {B} of {H}x{W} frames on" in report.summary(record)


class SquareKernelNet(nn.Module):
    """Two identical layers and a downsampling one, with integer kernel sizes."""
    @nn.compact
    def __call__(self, x):
        x = EqualizedConv(5, 3, use_bias=False, name="a")(x)
        x = EqualizedConv(5, 3, use_bias=False, name="b")(x)
        return EqualizedConv(4, 1, use_bias=False, down=True, name="c")(x)


def test_layer_table_merges_repeated_layers_and_counts_their_flops():
    net, x = SquareKernelNet(), jnp.ones((2, 8, 8, 5))
    params = net.init(jax.random.key(0), x)
    rows = layers.layer_table(lambda p, v: net.apply(p, v), params, x, peak_flops_per_s=1e11, steps=1)
    by_layer = {row["layer"]: row for row in rows}
    assert sorted(by_layer) == ["EqualizedConv (1, 1) ->4", "EqualizedConv (3, 3) ->5"]
    conv3 = by_layer["EqualizedConv (3, 3) ->5"]
    # SAME 3x3 on 8x8: 2 + 3 * 6 + 2 = 22 in-bounds taps per axis; forward and two gradients
    assert conv3["count"] == 2 and conv3["flops"] == 3 * 2 * 2 * 22 ** 2 * 5 * 5
    # the 1x1 downsampling conv is a matmul over the (2, 4, 4) blurred pixels
    assert by_layer["EqualizedConv (1, 1) ->4"]["flops"] == 3 * 2 * (2 * 4 * 4) * 5 * 4
    assert all(row["seconds"] > 0 and row["peak_fraction"] > 0 for row in rows)


def test_alongside_call_is_timed_after_each_step():
    calls = []

    def other():
        calls.append(1)
        time.sleep(0.02)

    record = harness.run_benchmark(toy_config(), steps=3, batch=B, alongside=other,
                                   pipeline=False, inference=False)
    paired = record["alongside"]
    assert len(calls) == 3 + 2                       # every timed and warm-up step
    assert 0.02 <= paired["min_s"] <= paired["median_s"] <= paired["max_s"]
    assert 0 < paired["ratio"] < record["step"]["max_s"] / 0.02


def test_step_compiler_options_follow_the_platform_and_xla_flags(monkeypatch):
    from tlgen.parallel import compiler_options as step_compiler_options
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
    assert step_compiler_options("cpu") == {
        "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_REDUCE"}
    assert step_compiler_options("cpu", deterministic=True) == step_compiler_options("cpu")
    assert step_compiler_options("gpu") is None
    assert step_compiler_options("gpu", deterministic=True) == {"xla_gpu_deterministic_ops": True}
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_experimental_ynn_fusion_type=")
    assert step_compiler_options("cpu") is None       # the user's XLA_FLAGS choose


def test_synthetic_batch_shapes_and_frame_count():
    spec = {"anchor": jax.ShapeDtypeStruct((3, 8, 8, 3), jnp.uint8),
            "positive": jax.ShapeDtypeStruct((3, 2, 8, 8, 3), jnp.uint8),
            "pos_valid": jax.ShapeDtypeStruct((3, 2), jnp.bool_),
            "gap": jax.ShapeDtypeStruct((3, 2), jnp.float32),
            "masks": jax.ShapeDtypeStruct((3, 8, 8), jnp.uint8)}
    batch = harness.synthetic_batch(spec)
    assert {k: v.shape for k, v in batch.items()} == {k: s.shape for k, s in spec.items()}
    assert batch["pos_valid"].all() and batch["anchor"].dtype == np.uint8
    assert batch["anchor"].max() > 4 and batch["masks"].dtype == np.uint8   # frames; label maps
    assert set(np.unique(batch["masks"])) <= {0, 1, 2, 3}                     # of a few classes
    assert harness.count_frames(batch) == 3 + 6
    assert harness.frame_sizes({**batch, "low": np.zeros((3, 2, 4, 6, 3), np.uint8)}) == ["8x8", "4x6"]
    gap = batch["gap"]                                 # times of a clip come in order
    assert ((gap >= 0) & (gap < 1)).all() and (np.diff(gap, axis=-1) >= 0).all()


def test_a_gan_records_its_regularized_step_the_mean_step_and_the_command(tmp_path, capsys):
    from tlgen.cli.main import main
    out = str(tmp_path / "gan.json")
    argv = ["bench", "--config", "tests/engine_config.py:gan", "--steps", "2", "--json", out]
    assert main(argv) == 0
    [record] = json.loads(open(out).read())
    step, every = record["step"], record["config"]["model"]["r1_every"]
    lazy = step["regularized"]
    assert lazy["every"] == every and lazy["flops"] > step["flops"] > 0       # R1: one more gradient
    assert step["mean_s"] == pytest.approx(((every - 1) * step["median_s"] + lazy["median_s"]) / every)
    assert record["command"] == "tlgen " + " ".join(argv) and record["environment"]["tlgen"]
    assert "the regularized step" in capsys.readouterr().out
    assert record["inference"]["frames"] == 4 and record["inference"]["what"] == "sample"   # 4 fakes


def test_a_configs_missing_default_dataset_is_benchmarked_without_it(tmp_path):
    from tlgen import config as config_lib
    from tlgen import family as family_lib
    config = config_lib.load("configs/fgla_landscape.py:tiny", [f"data.dir={tmp_path}/water32"])
    benched = harness.bench_config(config)
    assert benched.data.dir == "" and config.data.dir == f"{tmp_path}/water32"     # a copy
    family_lib.of(benched).training(benched)        # FGLA reads its masks from data.dir: none


def test_bad_batch_is_a_user_error():
    from tlgen.errors import UserError
    with pytest.raises(UserError):
        harness.bench_config(toy_config(), 0)


@pytest.mark.parametrize("args, env, says", [
    ([], {}, "name a folder for the records"),
    (["huge"], {}, "VARIANT is huge, not base or tiny"),
    (["tiny", "0"], {}, "STEPS is 0, not a positive whole number"),
    ([], {"TLGEN_GPU_JOBS": "stylegan_v foo"}, "TLGEN_GPU_JOBS names foo"),
])
def test_gpu_script_refuses_bad_input_in_one_sentence_before_any_work(tmp_path, args, env, says):
    out = tmp_path / "out"
    argv = ["bash", "bench/gpu.sh"] + ([str(out)] + args if args or env else [])
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **env},
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 2 and says in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()


def test_append_json_keeps_the_records_before_it(tmp_path):
    from tlgen.bench.report import append_json
    path = str(tmp_path / "records.json")
    append_json({"run": 1}, path)
    append_json({"run": 2}, path)
    with open(path) as f:
        assert json.load(f) == [{"run": 1}, {"run": 2}]
