"""Timescale autoencoder model: shapes, mask, interpolation, level lookup."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from tlgen.models import timescale_ae as ae

CFG = ml_collections.ConfigDict(dict(image_size=32, widths=(8, 16, 16), blocks=1,
                                     num_bins=4, bin_channels=3))


@pytest.fixture(scope="module")
def params():
    return jax.jit(lambda key: ae.init(key, CFG))(jax.random.key(0))


def test_encode_decode_shapes_and_dtypes(params):
    frames = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    encode = jax.jit(lambda p, x: ae.encode(p, x, cfg=CFG))
    decode = jax.jit(lambda p, w, dtype: ae.decode(p, w, cfg=CFG, dtype=dtype), static_argnums=2)
    w = encode(params, frames)
    assert w.shape == (2, 4, 8, 8, 3) and w.dtype == jnp.float32
    # uint8 input is the same as its [-1, 1] float version
    w_float = encode(params, frames.astype(np.float32) / 127.5 - 1)
    np.testing.assert_allclose(w, w_float, atol=1e-5)
    with pytest.raises(TypeError, match=r"frames of dtype int(32|64): give uint8 \(0..255\) or floats in \[-1, 1\]"):
        encode(params, frames.astype(np.int64))                 # not silently read as [-1, 1]
    x = decode(params, w, jnp.float32)
    assert x.shape == (2, 32, 32, 3) and x.dtype == jnp.float32
    assert float(jnp.max(jnp.abs(x))) <= 1.0
    x16 = decode(params, w, jnp.bfloat16)
    assert x16.dtype == jnp.float32 and 0 < float(jnp.max(jnp.abs(x16 - x))) < 0.1   # bf16 ran
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))


def test_background_decoder_starts_at_the_background_and_relights_it(params):
    cfg = ml_collections.ConfigDict(dict(CFG.to_dict(), background=True))
    p = jax.jit(lambda key: ae.init(key, cfg))(jax.random.key(0))
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    background = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    w = ae.encode(p, frames, cfg=cfg)
    # the output layer starts at zero: an untrained decoder outputs the background
    np.testing.assert_allclose(ae.decode(p, w, background, cfg=cfg),
                               np.broadcast_to(background / 127.5 - 1, (2, 32, 32, 3)), atol=1e-6)
    # gain g and RGB offset o (here the output layer's bias): background * (1 + g) + o in [0, 1]
    p = {**p, "dec_out": {**p["dec_out"], "bias": jnp.asarray([0.5, 0.1, -0.2, 0.0])}}
    want = 2 * (background / 255.0 * 1.5 + np.array([0.1, -0.2, 0.0])) - 1
    np.testing.assert_allclose(ae.decode(p, w, background[None].repeat(2, 0), cfg=cfg),
                               np.broadcast_to(want, (2, 32, 32, 3)), atol=1e-5)
    with pytest.raises(ValueError, match="background"):
        ae.decode(p, w, cfg=cfg)
    # the paper's decoder has no background parameters
    assert not any("background" in k for k in params) and "dec_background_0" in p


@pytest.mark.parametrize("background", [True, False])
def test_additive_decoder_sums_the_bins_contributions(background):
    """Each bin decoded alone; masking drops exactly its share: with a background image
    u = B (1 + sum g_m) + sum o_m, so u(w) - B = sum_m (u(bin m alone) - B); without one
    the output is tanh of the summed contributions."""
    cfg = ml_collections.ConfigDict(dict(CFG.to_dict(), background=background, additive=True))
    p = jax.jit(lambda key: ae.init(key, cfg))(jax.random.key(0))
    rng = np.random.default_rng(2)
    # a random output layer (the background decoder's starts at zero)
    p = {**p, "dec_out": {"kernel": jnp.asarray(rng.normal(0, 0.05, p["dec_out"]["kernel"].shape)),
                          "bias": jnp.asarray(rng.normal(0, 0.05, p["dec_out"]["bias"].shape))}}
    frames = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    bg = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) if background else None
    w = ae.encode(p, frames, cfg=cfg)
    decode = jax.jit(lambda w: ae.decode(p, w, bg, cfg=cfg))
    if background:
        share = lambda w: (np.asarray(decode(w), np.float64) + 1) / 2 - bg / 255.0
    else:
        share = lambda w: np.arctanh(np.asarray(decode(w), np.float64))
    alone = [share(w * (np.arange(4) == m)[:, None, None, None]) for m in range(4)]
    assert min(float(np.abs(a).mean()) for a in alone) > 1e-3     # every bin contributes
    np.testing.assert_allclose(share(w), sum(alone), atol=2e-5)
    np.testing.assert_allclose(share(ae.mask(w, 2)), alone[0] + alone[1], atol=2e-5)
    np.testing.assert_allclose(share(jnp.zeros_like(w)), 0.0, atol=1e-6)   # no bins: nothing
    assert p["dec_in"]["kernel"].shape[-2] == 3 + 4              # a bin's code + its one-hot index


def test_bad_resolution_is_rejected():
    for size, error in ((30, "divisible"), ((32, 34), "divisible"), ((32, 48, 3), "height, width")):
        bad = ml_collections.ConfigDict(dict(CFG.to_dict(), image_size=size))
        with pytest.raises(ValueError, match=error):
            ae.init(jax.random.key(0), bad)


def test_frames_of_any_aspect_run_on_the_square_models_parameters(params):
    """(height, width) frames: the same parameter shapes as a square model's (the network is
    convolutional), so the square model's parameters run on them, into a latent map of their
    aspect; N and (N,) mean N x N."""
    cfg = ml_collections.ConfigDict(dict(CFG.to_dict(), image_size=(32, 48)))
    shapes = lambda tree: jax.tree.map(jnp.shape, tree)
    assert shapes(jax.eval_shape(lambda: ae.init(jax.random.key(0), cfg))) == shapes(params)
    frames = np.random.default_rng(3).integers(0, 256, (2, 32, 48, 3), dtype=np.uint8)
    w = ae.encode(params, frames, cfg=cfg)
    assert w.shape == (2, 4, 8, 12, 3)
    assert ae.decode(params, w, cfg=cfg).shape == (2, 32, 48, 3)
    with pytest.raises(ValueError, match=r"frames must be \(B, 32, 48, 3\)"):
        ae.encode(params, frames.transpose(0, 2, 1, 3), cfg=cfg)
    with pytest.raises(ValueError, match=r"w must be \(B, 4, 8, 12, 3\)"):
        ae.decode(params, w[:, :, :, :8], cfg=cfg)
    for same in (32, (32,), [32, 32]):
        cfg = ml_collections.ConfigDict(dict(CFG.to_dict(), image_size=same))
        assert ae.model_from_config(cfg).image_size == (32, 32)


def test_mask_keeps_slow_bins():
    w = jnp.arange(2 * 4 * 2 * 2 * 1, dtype=jnp.float32).reshape(2, 4, 2, 2, 1) + 1
    m = ae.mask(w, 2)
    np.testing.assert_array_equal(m[:, :2], w[:, :2])
    assert float(jnp.abs(m[:, 2:]).sum()) == 0
    per_example = ae.mask(w, jnp.array([1, 3]))
    np.testing.assert_array_equal(per_example[0], ae.mask(w[0], 1))
    np.testing.assert_array_equal(per_example[1], ae.mask(w[1], 3))
    traced = jax.jit(ae.mask)(w, jnp.int32(4))
    np.testing.assert_array_equal(traced, w)
    assert float(jnp.abs(ae.mask(w, 0)).sum()) == 0


def test_level_of_gap_and_bins_for_period():
    periods = [1.0, 2.0, 4.0, 8.0]
    got = ae.level_of_gap(jnp.array([0.5, 1.0, 1.9, 2.0, 5.0, 100.0]), periods)
    np.testing.assert_array_equal(got, [0, 0, 0, 1, 2, 3])
    # keep k bins <-> level M-k
    np.testing.assert_array_equal(ae.bins_for_period(jnp.array([1.0, 4.0, 8.0]), periods, 4),
                                  [4, 2, 1])


def test_slerp_endpoints_norms_and_degenerate_cases():
    rng = np.random.default_rng(1)
    a = jnp.asarray(rng.normal(size=(3, 4, 2, 2, 2)), jnp.float32)
    b = jnp.asarray(rng.normal(size=(3, 4, 2, 2, 2)), jnp.float32) * 3
    np.testing.assert_allclose(ae.slerp(a, b, 0.0), a, atol=1e-5)
    np.testing.assert_allclose(ae.slerp(a, b, 1.0), b, atol=1e-5)
    t = 0.3
    mid = ae.slerp(a, b, t)
    norm = lambda x: np.linalg.norm(np.asarray(x).reshape(3, 4, -1), axis=-1)
    np.testing.assert_allclose(norm(mid), 0.7 * norm(a) + 0.3 * norm(b), rtol=1e-5)
    # the direction lies on the great circle: equal angle split
    fa, fb, fm = (np.asarray(x).reshape(3, 4, -1) for x in (a, b, mid))
    ang = lambda u, v: np.arccos(np.clip(np.sum(u * v, -1) / norm(u.reshape(3, 4, 2, 2, 2))
                                         / norm(v.reshape(3, 4, 2, 2, 2)), -1, 1))
    np.testing.assert_allclose(ang(fa, fm), t * ang(fa, fb), rtol=1e-4, atol=1e-5)
    # parallel vectors and zero (masked) bins fall back to lerp, no NaN
    par = ae.slerp(a, 2 * a, 0.5)
    np.testing.assert_allclose(par, 1.5 * a, rtol=1e-5)
    np.testing.assert_allclose(ae.slerp(a, -a, 0.25), 0.5 * a, atol=1e-5)    # opposite: no arc to take
    zero = ae.slerp(ae.mask(a, 2), b, 0.25)
    np.testing.assert_allclose(zero[:, 2:], 0.25 * b[:, 2:], rtol=1e-5)
    # per-example t (a sequence of interpolants) and gradients stay finite
    seq = ae.slerp(a[:1], b[:1], jnp.linspace(0, 1, 5)[:, None])
    assert seq.shape == (5, 4, 2, 2, 2)
    g = jax.grad(lambda x: jnp.sum(ae.slerp(x, x, 0.5)))(a)
    assert bool(jnp.all(jnp.isfinite(g)))
    np.testing.assert_allclose(ae.lerp(a, b, 0.25), a + 0.25 * (b - a), rtol=1e-6)
