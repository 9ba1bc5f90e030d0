"""The super-resolution stage's model functions against NumPy/SciPy/OpenCV and by hand: the
FIR resampler, the conditioning windows and resamplers, the layer schedule and parameter
counts of the public model, and that a frame depends on its own low-resolution window only."""

import cv2
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import scipy.signal

from tlgen.configs import long_video_sr_city
from tlgen.models import long_video_sr as sr
from tlgen.models.layers import upfirdn


@pytest.mark.parametrize("up, down, taps", [(1, 2, 12), (4, 2, 24), (3, 1, 7), (4, 1, 24), (2, 1, 12)])
def test_upfirdn_equals_scipy_on_both_axes(up, down, taps):
    rng = np.random.default_rng(up * 10 + down)
    x = rng.normal(size=(2, 9, 11, 3))
    f = rng.normal(size=taps)
    # scipy: upsample to (n - 1) * up + 1, full convolution, keep every down-th sample
    ref = x
    for axis in (1, 2):
        ref = scipy.signal.upfirdn(f, ref, up=up, down=down, axis=axis)
    pad = (taps - 1, taps - 1 - (up - 1))
    got = np.asarray(jax.jit(lambda x: upfirdn(x, f, up=up, down=down, pads=[pad, pad]))(x))
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    cropped, padded = jax.jit(lambda x: (upfirdn(x, f, up=up, pads=[(-1, taps), (0, taps)], gain=4.0),
                                         upfirdn(x, f, up=up, pads=[(0, taps), (0, taps)])))(x)
    np.testing.assert_allclose(np.asarray(cropped), 4 * np.asarray(padded)[:, 1:], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("up, down, taps, pads", [(2, 1, 12, ((6, 5), (6, 5))), (1, 2, 12, ((-1, -1), (5, 5))),
                                                   (4, 2, 7, ((3, 2), (0, 0))), (2, 2, 4, ((5, -2), (1, 3)))])
def test_upfirdn_gradients_equal_its_matrix_transpose(up, down, taps, pads):
    """upfirdn is linear, y = A x: its gradient (the transposed filter, a rule of its own) is
    A^T g, with A built column by column from unit inputs; second order (as R1 takes it)
    equals the same function written with A."""
    rng = np.random.default_rng(up * 100 + down * 10 + taps)
    f = rng.normal(size=taps)
    x = jnp.asarray(rng.normal(size=(1, 14, 11, 2)), jnp.float32)
    op = lambda v: upfirdn(v, f, up=up, down=down, pads=list(pads), gain=2.0)
    y = jax.eval_shape(op, x)
    basis = jnp.eye(x.size, dtype=jnp.float32).reshape((x.size,) + x.shape)
    a = np.asarray(jax.jit(jax.vmap(lambda e: op(e[None])[0]))(basis[:, 0]), np.float64).reshape(x.size, -1).T
    g = rng.normal(size=y.shape)
    (grad,) = jax.jit(lambda v, c: jax.vjp(op, v)[1](c))(x, jnp.asarray(g, jnp.float32))
    np.testing.assert_allclose(np.asarray(grad).ravel(), a.T @ g.ravel(), rtol=1e-5, atol=1e-5)
    w = jnp.asarray(rng.normal(size=y.shape), jnp.float32)
    a32 = jnp.asarray(a, jnp.float32)
    r1 = lambda fn: jax.jit(jax.grad(lambda v: jnp.sum(jax.grad(lambda z: jnp.sum(jnp.sin(fn(z)) * w))(v) ** 2)))(x)
    got, ref = np.asarray(r1(op)), np.asarray(r1(lambda v: (a32 @ v.ravel()).reshape(y.shape)))
    assert np.linalg.norm(got - ref) < 1e-5 * np.linalg.norm(ref)              # float32 sums


def test_public_schedule_and_parameter_counts():
    cfg = long_video_sr_city.get_config("base").model
    specs = sr.layer_specs((144, 256), 32768, 512)
    assert len(specs) == 15 and specs[-1].to_rgb and specs[-1].features == 3
    assert [s.features for s in specs[:14]] == [512] * 9 + [362, 256, 181, 128, 128]
    assert specs[0].in_size == (29, 36) and specs[3].out_size == (38, 52) and specs[13].out_size == (144, 256)
    assert (specs[3].up, specs[3].down, len(specs[3].up_taps), specs[3].pads) == (4, 2, 24, ((-6, -9), (-6, -9)))
    assert specs[13].pads == ((-11, -12), (-11, -12)) and [s.in_rate for s in specs[::4]] == [16, 32, 128, 256]
    for s in specs[:14]:
        assert abs(s.up_taps.sum() - 1) < 1e-6 and abs(s.down_taps.sum() - 1) < 1e-6
    g, d = sr.generator(cfg), sr.discriminator(cfg)
    lowres, frames = jnp.zeros((1, 9, 36, 64, 3)), jnp.zeros((1, 4, 144, 256, 3))
    count = lambda shapes: sum(int(np.prod(a.shape)) for a in jax.tree.leaves(shapes))
    assert count(jax.eval_shape(g.init, jax.random.key(0), lowres, jnp.zeros((1, 512)))) == 27_169_940
    assert count(jax.eval_shape(d.init, jax.random.key(0), frames, frames)) == 23_997_825


def test_windows_stack_each_frames_neighbours():
    video = jnp.arange(2 * 7 * 2 * 2 * 3, dtype=jnp.float32).reshape(2, 7, 2, 2, 3)
    w = np.asarray(sr.windows(video, 2))                      # T = 3 frames, 5-frame windows
    assert w.shape == (6, 2, 2, 15)
    for b in range(2):
        for t in range(3):
            for s in range(5):
                np.testing.assert_array_equal(w[b * 3 + t][..., np.arange(3) * 5 + s], video[b, t + s])


def test_kaiser_resampling_keeps_flat_frames_and_sizes():
    resample = jax.jit(sr.kaiser_resample, static_argnums=1)
    flat = jnp.full((1, 20, 20, 2), 0.7)
    down, up = resample(flat, 0.25), resample(flat, 2.0)
    assert down.shape == (1, 5, 5, 2) and up.shape == (1, 40, 40, 2)
    for out in (down, up):     # unit DC gain inside; at the edges the filters reach the zero padding
        inner = np.asarray(out)[:, 2:-2, 2:-2]
        np.testing.assert_allclose(inner, 0.7, atol=1e-5)
        np.testing.assert_allclose(np.asarray(out), 0.7, atol=0.7 * 0.015)
    ramp = jnp.broadcast_to(jnp.arange(20.0)[None, None, :, None], (1, 20, 20, 1))
    down = np.asarray(resample(ramp, 0.5))[0, 5, 2:-2, 0]
    np.testing.assert_allclose(down, 2 * np.arange(2, 8) + 0.5, atol=1e-3)  # sample k between 2k, 2k+1


def test_fit_crops_centres_and_replicates_edges():
    x = jnp.arange(5.0)[None, :, None, None] * jnp.ones((1, 5, 4, 1))
    assert np.asarray(sr.fit(x, (3, 4)))[0, :, 0, 0].tolist() == [1, 2, 3]
    assert np.asarray(sr.fit(x, (8, 4)))[0, :, 0, 0].tolist() == [0, 0, 1, 2, 3, 4, 4, 4]


@pytest.mark.parametrize("scale", [2, 4])
def test_upsample_linear_interpolates_at_half_pixel_centres(scale):
    row = np.random.default_rng(scale).normal(size=9)
    x = jnp.asarray(np.broadcast_to(row[None, None, :, None], (1, 9, 9, 1)))
    got = np.asarray(sr.upsample_linear(x, scale))[0, 4 * scale, :, 0]
    centres = (np.arange(9 * scale) + 0.5) / scale - 0.5
    inside = (centres >= 0) & (centres <= 8)
    np.testing.assert_allclose(got[inside], np.interp(centres[inside], np.arange(9), row), atol=1e-5)
    assert got.shape == (9 * scale,)


def test_downsample_area_is_opencv_inter_area():
    frames = np.random.default_rng(0).integers(0, 256, (3, 32, 48, 3), dtype=np.uint8)
    got = np.asarray(sr.downsample_area(frames, 4))
    ref = np.stack([cv2.resize(f, (12, 8), interpolation=cv2.INTER_AREA) for f in frames])
    assert got.shape == ref.shape and np.abs(got.astype(int) - ref).max() <= 1


def test_a_frame_depends_on_its_window_and_z_only():
    cfg = ml_collections.ConfigDict(dict(size=(16, 32), scale=2, context=1, z_dim=8, w_dim=8,
                                         mapping_layers=1, channel_base=256, channel_max=8,
                                         num_layers=3, margin=2, d_channel_base=128))
    g = sr.generator(cfg)
    lowres = jax.random.uniform(jax.random.key(1), (2, 6, 8, 16, 3), minval=-1, maxval=1)
    z = jax.random.normal(jax.random.key(2), (2, 8))
    params = jax.jit(g.init)(jax.random.key(0), lowres, z)
    run = jax.jit(g.apply)
    out = np.asarray(run(params, lowres, z))
    assert out.shape == (2, 4, 16, 32, 3)
    changed = np.asarray(run(params, lowres.at[0, 5].set(0.0), z))          # frame 5: window of output 3
    np.testing.assert_array_equal(changed[:, :3], out[:, :3])
    np.testing.assert_array_equal(changed[1], out[1])
    assert np.abs(changed[0, 3] - out[0, 3]).max() > 1e-4
    other_z = np.asarray(run(params, lowres, z[::-1]))
    assert np.abs(other_z[0] - out[0]).max() > 1e-4


def test_a_size_of_any_aspect_generates_and_is_judged_on_the_next_power_of_two():
    """12x20 (longer side not a power of two): the generator makes frames of that size, and D
    sees them zero-padded, centred, to the 32x32 square (its parameters are those of 32)."""
    cfg = ml_collections.ConfigDict(dict(size=(12, 20), scale=2, context=1, z_dim=8, w_dim=8,
                                         mapping_layers=1, channel_base=256, channel_max=8,
                                         num_layers=3, margin=2, d_channel_base=128))
    g, d = sr.generator(cfg), sr.discriminator(cfg)
    lowres = jax.random.uniform(jax.random.key(1), (1, 6, 6, 10, 3), minval=-1, maxval=1)
    frames = jax.jit(g.apply)(jax.jit(g.init)(jax.random.key(0), lowres, jnp.zeros((1, 8))),
                              lowres, jnp.ones((1, 8)))
    assert frames.shape == (1, 4, 12, 20, 3) and np.isfinite(frames).all()
    up = jax.random.uniform(jax.random.key(3), frames.shape, minval=-1, maxval=1)
    params = jax.jit(d.init)(jax.random.key(4), up, frames)
    square = lambda x: jnp.pad(x, ((0, 0), (0, 0), (10, 10), (6, 6), (0, 0)))
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(
        jnp.shape, jax.eval_shape(d.init, jax.random.key(4), square(up), square(frames)))
    np.testing.assert_allclose(*jax.jit(lambda p: (d.apply(p, up, frames), d.apply(p, square(up), square(frames))))(params),
                               rtol=1e-5, atol=1e-6)
