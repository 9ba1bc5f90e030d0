"""FGLA's model functions against NumPy references and hand cases: partial convolution, the
per-region independence of the motion encoder, the latent map, accumulated warping, the
edge-aware TV loss and speed control."""

import jax
import jax.numpy as jnp
import numpy as np

from tlgen.families.fgla.training import edge_aware_tv, region_masks
from tlgen.models import fgla
from tlgen.models.flow_ops import warp


def numpy_partial_conv(x, mask, kernel, bias, stride, padding):
    """Liu et al.'s partial convolution, window by window."""
    b, h, w, _ = x.shape
    k = kernel.shape[0]
    xp = np.pad(x * mask[..., None], ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    mp = np.pad(mask, ((0, 0), (padding, padding), (padding, padding)))
    ho, wo = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    out = np.zeros((b, ho, wo, kernel.shape[-1]))
    new = np.zeros((b, ho, wo))
    for n in range(b):
        for i in range(ho):
            for j in range(wo):
                win = xp[n, i * stride:i * stride + k, j * stride:j * stride + k]
                m = mp[n, i * stride:i * stride + k, j * stride:j * stride + k]
                if m.sum() > 0:
                    out[n, i, j] = np.einsum("hwc,hwcf->f", win, kernel) * (k * k / m.sum()) + bias
                    new[n, i, j] = 1
    return out, new


def test_partial_conv_matches_the_mask_renormalized_numpy_reference():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 9, 9, 3))
    mask = (rng.random((2, 9, 9)) < 0.3).astype(np.float64)
    mask[1, :, :] = 0
    mask[1, 4, 4] = 1                                # one pixel: most windows empty
    kernel, bias = rng.standard_normal((3, 3, 3, 4)), rng.standard_normal(4)
    for stride in (1, 2):
        got, got_mask = fgla.partial_conv(jnp.asarray(x, jnp.float32), jnp.asarray(mask, jnp.float32),
                                          jnp.asarray(kernel, jnp.float32), jnp.asarray(bias, jnp.float32),
                                          stride, 1)
        want, want_mask = numpy_partial_conv(x, mask, kernel, bias, stride, 1)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(np.asarray(got_mask), want_mask)
    assert want_mask[1].sum() < want_mask[1].size    # the empty windows were exercised


def _encoder():
    enc = fgla.MotionEncoder(widths=(8, 8, 8), latent_dim=2)
    flow = jnp.zeros((1, 16, 16, 2))
    masks = jnp.ones((1, 3, 16, 16))
    return enc, jax.jit(enc.init)(jax.random.key(0), flow, masks)["params"]


def test_changing_the_flow_outside_a_region_leaves_its_latent_unchanged():
    """The paper's key property: latent i reads only region i's flow."""
    enc, params = _encoder()
    classes = np.zeros((16, 16), np.uint8)
    classes[:6] = 1                                  # sky on top, water below, ground between
    classes[11:] = 2
    masks = region_masks(jnp.asarray(classes)[None], 3)
    rng = np.random.default_rng(1)
    flow = rng.standard_normal((1, 16, 16, 2)).astype(np.float32)
    other = flow.copy()
    other[0, classes != 1] += 5 * rng.standard_normal(((classes != 1).sum(), 2))
    apply = jax.jit(enc.apply)
    a = np.asarray(apply({"params": params}, jnp.asarray(flow), masks))
    b = np.asarray(apply({"params": params}, jnp.asarray(other), masks))
    np.testing.assert_allclose(b[0, 1], a[0, 1], rtol=1e-5, atol=1e-6)   # sky: unchanged
    assert np.abs(b[0, 0] - a[0, 0]).max() > 1e-3                         # the others read their change
    assert np.abs(b[0, 2] - a[0, 2]).max() > 1e-3


def test_an_absent_region_gives_a_zero_latent_and_finite_gradients():
    enc, params = _encoder()
    masks = jnp.zeros((2, 3, 16, 16)).at[:, 0].set(1.0)       # only region 0 present
    flow = jax.random.normal(jax.random.key(2), (2, 16, 16, 2))
    z = jax.jit(enc.apply)({"params": params}, flow, masks)
    assert np.all(np.asarray(z[:, 1:]) == 0) and np.all(np.isfinite(np.asarray(z)))
    grads = jax.jit(jax.grad(lambda p: jnp.sum(enc.apply({"params": p}, flow, masks) ** 2)))(params)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree.leaves(grads))


def test_global_variant_ignores_masks_and_gives_one_latent():
    enc = fgla.MotionEncoder(widths=(8, 8), latent_dim=2, per_region=False)
    flow = jax.random.normal(jax.random.key(3), (1, 16, 16, 2))
    masks = region_masks(jnp.asarray(np.arange(256).reshape(1, 16, 16) % 3, jnp.uint8), 3)
    params = jax.jit(enc.init)(jax.random.key(0), flow, masks)["params"]
    apply = jax.jit(enc.apply)
    z, z_other = apply({"params": params}, flow, masks), apply({"params": params}, flow, jnp.ones_like(masks))
    assert z.shape == (1, 1, 2)
    np.testing.assert_array_equal(np.asarray(z), np.asarray(z_other))


def test_latent_map_paints_each_region_latent_into_its_mask():
    classes = np.array([[0, 1], [2, 1]], np.uint8)
    masks = region_masks(jnp.asarray(classes)[None], 3)
    latents = jnp.asarray([[[1.0, -1.0], [2.0, 3.0], [4.0, 5.0]]])
    got = np.asarray(fgla.latent_map(latents, masks))[0]
    np.testing.assert_array_equal(got, np.asarray(latents)[0][classes])
    one = np.asarray(fgla.latent_map(latents[:, :1], masks))[0]
    np.testing.assert_array_equal(one, np.broadcast_to([1.0, -1.0], (2, 2, 2)))


def _image(size=24):
    rng = np.random.default_rng(4)
    return jnp.asarray(rng.uniform(-1, 1, (1, size, size, 3)), jnp.float32)


def test_accumulated_warping_equals_sequential_composition_of_a_known_flow():
    """Frame t is I_0 warped once by t * F: for an integer shift it is the sequential
    composition exactly (inside the unclamped area), and for a half-pixel shift frame 2 is
    the exact one-pixel shift, sharp, where warping the warped frame again blurs it."""
    image = _image()
    for dx, dy in ((1.0, 2.0), (0.5, 0.0)):
        flow = jnp.broadcast_to(jnp.asarray([dx, dy]), image.shape[:3] + (2,))
        frames, totals = fgla.animate_flows(image, lambda frame, _: flow, jnp.zeros(4))
        np.testing.assert_allclose(np.asarray(totals[-1]), 4 * np.asarray(flow), rtol=1e-6)
        sequential = image
        for t in range(4):
            sequential = warp(sequential, flow)
            exact = np.roll(np.asarray(image), (-int((t + 1) * dy), -int((t + 1) * dx)), axis=(1, 2))
            inside = (slice(None), slice(0, 24 - 8), slice(0, 24 - 8))
            if dx == 1.0:
                np.testing.assert_allclose(np.asarray(frames[t])[inside], np.asarray(sequential)[inside], atol=1e-6)
            elif t % 2 == 1:
                np.testing.assert_allclose(np.asarray(frames[t])[inside], exact[inside], atol=1e-6)
                assert np.abs(np.asarray(sequential)[inside] - exact[inside]).max() > 0.1


def test_edge_aware_tv_against_a_hand_computed_case():
    # 2x2 flow and image: right neighbours (0,0)-(0,1), (1,0)-(1,1); above: (0,0)-(1,0), (0,1)-(1,1).
    flow = np.zeros((1, 2, 2, 2), np.float32)
    flow[0, 0, 1] = [1.0, -2.0]                      # |ΔF|_1 = 3 to its left and below neighbours
    image = np.zeros((1, 2, 2, 3), np.float32)
    image[0, 1, :, 0] = 0.1                          # bottom row differs by 0.1 in red
    sigma = 0.1
    right = (3.0 * np.exp(0.0) + 0.0) / 2            # row 0: image equal, |ΔF| = 3; row 1: no ΔF
    above = (0.0 + 3.0 * np.exp(-0.1 / sigma)) / 2   # column 1: |ΔI| = 0.1, |ΔF| = 3
    got = float(edge_aware_tv(jnp.asarray(flow), jnp.asarray(image), sigma))
    np.testing.assert_allclose(got, right + above, rtol=1e-6)


def test_speed_two_is_every_second_frame_of_speed_one_for_a_constant_flow():
    image = _image()
    flow = jnp.broadcast_to(jnp.asarray([0.7, -0.3]), image.shape[:3] + (2,))
    slow, _ = fgla.animate_flows(image, lambda frame, _: flow, jnp.zeros(8), speed=1.0)
    fast, _ = fgla.animate_flows(image, lambda frame, _: flow, jnp.zeros(4), speed=2.0)
    np.testing.assert_allclose(np.asarray(fast), np.asarray(slow)[1::2], atol=1e-5)
    assert np.abs(np.asarray(fast[0]) - np.asarray(slow[0])).max() > 0.05
