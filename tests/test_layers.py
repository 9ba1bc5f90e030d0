"""Shared layers: values against NumPy / JAX references and the library layers they replace."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tlgen.models import layers


def test_adain_matches_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 3.0, (2, 5, 6, 4)).astype(np.float32)
    scale, shift = rng.normal(size=(2, 4)).astype(np.float32), rng.normal(size=(2, 4)).astype(np.float32)
    mu, var = x.mean((1, 2), keepdims=True), x.var((1, 2), keepdims=True)
    ref = scale[:, None, None] * (x - mu) / np.sqrt(var + 1e-5) + shift[:, None, None]
    np.testing.assert_allclose(layers.adain(jnp.asarray(x), scale, shift), ref, rtol=1e-4, atol=1e-4)



def test_equalized_dense_scales_unit_weights_by_he_gain():
    layer = layers.EqualizedDense(3)
    x = jnp.ones((1, 8))
    v = layer.init(jax.random.key(0), x)
    k = np.asarray(v["params"]["kernel"])
    np.testing.assert_allclose(layer.apply(v, x), x @ (k * np.sqrt(2 / 8)), rtol=1e-5)



def test_subpixel_upsampling_equals_transposed_convolution():
    x = jax.random.normal(jax.random.key(0), (2, 5, 7, 3))
    layer = layers.SubpixelConvTranspose(4)
    v = layer.init(jax.random.key(1), x)
    ref = jax.lax.conv_transpose(x, v["params"]["kernel"], (2, 2), ((1, 2), (1, 2)),
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    out = layer.apply(v, x)
    assert out.shape == (2, 10, 14, 4)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)



def test_conv3d_equals_a_3d_convolution():
    x = jax.random.normal(jax.random.key(0), (2, 7, 9, 8, 3))
    layer = layers.Conv3d(5, (3, 4, 4), (2, 2, 2), ((1, 1), (1, 1), (1, 2)))
    v = jax.jit(layer.init)(jax.random.key(1), x)
    ref = jax.lax.conv_general_dilated(x, v["params"]["kernel"], (2, 2, 2), ((1, 1), (1, 1), (1, 2)),
                                       dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))
    out = jax.jit(layer.apply)(v, x)
    assert out.shape == ref.shape == (2, 4, 4, 4, 5)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    layer = layers.Conv3d(5, (1, 3, 3), (1, 1, 1), ((0, 0), (1, 1), (1, 1)))   # stride-1 path
    v = jax.jit(layer.init)(jax.random.key(2), x)
    ref = jax.lax.conv_general_dilated(x, v["params"]["kernel"], (1, 1, 1), ((0, 0), (1, 1), (1, 1)),
                                       dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))
    np.testing.assert_allclose(jax.jit(layer.apply)(v, x), ref, rtol=1e-4, atol=1e-4)



@pytest.mark.parametrize("shape,groups,dtype", [((2, 8, 8, 16), 8, jnp.float32),
                                                ((3, 5, 7, 12), 4, jnp.float32),
                                                ((2, 8, 8, 16), 8, jnp.bfloat16)])
def test_group_norm_matches_flax(shape, groups, dtype):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(0.7, 2.0, shape), jnp.float32)
    scale = jnp.asarray(rng.uniform(0.5, 1.5, shape[-1]), jnp.float32)
    bias = jnp.asarray(rng.normal(0, 0.3, shape[-1]), jnp.float32)
    variables = {"params": {"scale": scale, "bias": bias}}
    ours = layers.GroupNorm(num_groups=groups, dtype=dtype)
    ref = __import__("flax").linen.GroupNorm(num_groups=groups, dtype=dtype)
    assert jax.tree.map(jnp.shape, ours.init(jax.random.key(0), x)) == \
        jax.tree.map(jnp.shape, ref.init(jax.random.key(0), x))      # same parameters
    y, y_ref = (jax.jit(m.apply)(variables, x.astype(dtype)) for m in (ours, ref))
    assert y.dtype == y_ref.dtype == dtype
    tol = 1e-5 if dtype == jnp.float32 else 2e-2
    np.testing.assert_allclose(np.asarray(y, np.float32), np.asarray(y_ref, np.float32), atol=tol)
    if dtype == jnp.float32:   # gradients too (the step differentiates through it)
        loss = lambda m: lambda v, x: jnp.sum(jnp.sin(m.apply(v, x)))
        g, g_ref = (jax.jit(jax.grad(loss(m), argnums=(0, 1)))(variables, x) for m in (ours, ref))
        for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref)):
            np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)



def test_upsample2_is_nearest_resize():
    x = jnp.arange(2 * 3 * 4 * 5, dtype=jnp.float32).reshape(2, 3, 4, 5)
    np.testing.assert_array_equal(layers.upsample2(x), jax.image.resize(x, (2, 6, 8, 5), "nearest"))
    np.testing.assert_array_equal(layers.upsample2(x)[:, 1::2, ::2], x)


def test_equalized_dense_lr_multiplier_keeps_the_function_and_slows_the_gradient():
    """StyleGAN2's mapping layers: stored weights 1/lr larger, the same function at init, and
    a gradient step on the stored weights moves the output lr^2 times as much as at lr 1."""
    x = jax.random.normal(jax.random.key(0), (4, 6))
    slow = layers.EqualizedDense(5, gain=1.0, lr_multiplier=0.01)
    fast = layers.EqualizedDense(5, gain=1.0)
    v_slow, v_fast = slow.init(jax.random.key(1), x), fast.init(jax.random.key(1), x)
    np.testing.assert_allclose(v_slow["params"]["kernel"], 100 * v_fast["params"]["kernel"], rtol=1e-6)
    np.testing.assert_allclose(slow.apply(v_slow, x), fast.apply(v_fast, x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fast.apply(v_fast, x), x @ v_fast["params"]["kernel"] / math.sqrt(6),
                               rtol=1e-5, atol=1e-6)
    grad = lambda m, v: jax.grad(lambda p: jnp.sum(m.apply(p, x)))(v)["params"]["kernel"]
    np.testing.assert_allclose(grad(slow, v_slow), 0.01 * grad(fast, v_fast), rtol=1e-5)


def test_equalized_conv_matches_a_scaled_convolution():
    x = jax.random.normal(jax.random.key(0), (2, 6, 5, 3))
    layer = layers.EqualizedConv(4, kernel_size=3)
    v = layer.init(jax.random.key(1), x)
    v = {"params": {**v["params"], "bias": jnp.arange(4.0)}}
    kernel = np.asarray(v["params"]["kernel"])
    assert abs(kernel.std() - 1.0) < 0.3                       # stored as N(0, 1)
    ref = jax.lax.conv_general_dilated(x, kernel * math.sqrt(2 / 27), (1, 1), "SAME",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC")) + jnp.arange(4.0)
    np.testing.assert_allclose(layer.apply(v, x), ref, rtol=1e-5, atol=1e-5)
