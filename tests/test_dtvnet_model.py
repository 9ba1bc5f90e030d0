"""DTVNet networks: parameter counts, shapes, motion normalization, warp."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tlgen.models import dtvnet
from tlgen.models.flow_ops import resize_flow, warp


def _count(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_base_parameter_counts_match_the_paper_layout():
    image, motion = jnp.zeros((1, 128, 128, 3)), jnp.zeros((1, 512))
    g = jax.eval_shape(lambda: dtvnet.Generator().init(jax.random.key(0), image, motion))
    fe = jax.eval_shape(lambda: dtvnet.FlowEncoder().init(jax.random.key(0), jnp.zeros((1, 32, 128, 128, 2))))
    d = jax.eval_shape(lambda: dtvnet.VideoDiscriminator().init(jax.random.key(0), jnp.zeros((1, 32, 128, 128, 3))))
    assert abs(_count(g["params"]) - 8_336_800) / 8_336_800 < 0.02   # public code; paper 8.42 M
    assert abs(_count(fe["params"]) - 19.8e6) / 19.8e6 < 0.02
    assert abs(_count(d["params"]) - 11.2e6) / 11.2e6 < 0.02
    out = jax.eval_shape(lambda v: dtvnet.Generator().apply(v, image, motion), g)
    assert out[0].shape == (1, 32, 128, 128, 3) and out[1].shape == (1, 32, 64, 64, 2)


TINY = dict(num_frames=4, base_width=8, decoder_width=12, motion_dim=16, content_blocks=1,
            motion_blocks=2, mapping_layers=1, style_layers=1)


def _key(seed: int) -> jax.Array:
    return jax.random.key(seed, impl="rbg")   # compiles faster than threefry on CPU


@pytest.fixture(scope="module")
def tiny():
    gen = dtvnet.Generator(**TINY)
    enc = dtvnet.FlowEncoder(base_width=4, max_width=16, motion_dim=16)
    disc = dtvnet.VideoDiscriminator(base_width=4, max_width=16)
    image = jax.random.uniform(jax.random.key(1), (2, 16, 16, 3), minval=-1, maxval=1)
    flows = jax.random.normal(jax.random.key(2), (2, 4, 16, 16, 2))
    gv = jax.jit(gen.init)(_key(3), image, jnp.zeros((2, 16)))
    ev = jax.jit(enc.init)(_key(4), flows)
    dv = jax.jit(disc.init)(_key(5), jnp.zeros((2, 4, 16, 16, 3)))
    return gen, enc, disc, gv, ev, dv, image, flows


generate = jax.jit(dtvnet.generate)


def test_tiny_networks_shapes_ranges_and_functional_api(tiny):
    gen, enc, disc, gv, ev, dv, image, flows = tiny
    motion = jax.jit(dtvnet.encode_motion)(ev, flows)
    assert motion.shape == (2, 16)
    np.testing.assert_allclose(motion.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(motion.std(-1), 1, atol=1e-3)
    assert dtvnet.generator_from_variables(gv) == gen
    assert dtvnet.flow_encoder_from_variables(ev) == enc
    video, low = generate(gv, image, motion)
    assert video.shape == (2, 4, 16, 16, 3) and low.shape == (2, 4, 8, 8, 2)
    assert float(jnp.abs(video).max()) <= 1.0
    logits = jax.jit(disc.apply)(dv, video)
    assert logits.shape == (2,) and logits.dtype == jnp.float32


def test_generation_of_one_sample_does_not_depend_on_the_rest_of_the_batch(tiny):
    _, _, _, gv, _, _, image, _ = tiny
    motion = jax.random.normal(jax.random.key(7), (2, 16))
    both, _ = generate(gv, image, motion)
    alone, _ = generate(gv, image[:1], motion[:1])
    np.testing.assert_allclose(alone[0], both[0], atol=1e-5)
    assert float(jnp.abs(both[0] - both[1]).max()) > 1e-3


def test_normalize_motion_matches_numpy_and_is_nonzero_at_batch_one():
    v = np.random.default_rng(0).normal(3.0, 2.0, (1, 512)).astype(np.float32)
    ref = (v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + 1e-5)
    out = np.asarray(dtvnet.normalize_motion(jnp.asarray(v)))
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    assert np.abs(out).mean() > 0.5


def test_warp_zero_flow_is_identity_and_integer_shift_moves_pixels():
    image = jax.random.uniform(jax.random.key(0), (2, 6, 7, 3))
    np.testing.assert_allclose(warp(image, jnp.zeros((2, 6, 7, 2))), image, atol=1e-6)
    shift = jnp.broadcast_to(jnp.array([2.0, -1.0]), (2, 6, 7, 2))   # dx = 2, dy = -1
    out = np.asarray(warp(image, shift))
    img = np.asarray(image)
    np.testing.assert_allclose(out[:, 1:, :5], img[:, :5, 2:], atol=1e-6)
    np.testing.assert_allclose(out[:, 0, :5], img[:, 0, 2:], atol=1e-6)      # clamped top row
    np.testing.assert_allclose(out[:, 1:, 5:], img[:, :5, 6:7].repeat(2, 2), atol=1e-6)  # right border
    half = warp(image, jnp.broadcast_to(jnp.array([0.5, 0.0]), (2, 6, 7, 2)))
    np.testing.assert_allclose(half[:, :, :6], (img[:, :, :6] + img[:, :, 1:]) / 2, atol=1e-6)


def test_a_bfloat16_flow_samples_where_its_float32_copy_does_on_wide_frames():
    columns = jnp.broadcast_to(jnp.arange(600.0)[None, :, None], (4, 600, 1))  # bf16 holds no 257
    flow = jax.random.normal(jax.random.key(1), (4, 600, 2)).astype(jnp.bfloat16)
    np.testing.assert_array_equal(warp(columns, jnp.zeros_like(flow)), columns)
    np.testing.assert_array_equal(warp(columns, flow), warp(columns, flow.astype(jnp.float32)))


def test_resize_flow_rescales_vectors():
    flow = jnp.broadcast_to(jnp.array([2.0, 4.0]), (3, 32, 16, 2))
    out = resize_flow(flow, (16, 4))
    assert out.shape == (3, 16, 4, 2)
    np.testing.assert_allclose(out[..., 0], 0.5, atol=1e-6)
    np.testing.assert_allclose(out[..., 1], 2.0, atol=1e-6)
