"""Contrastive and reconstruction losses against float64 NumPy/SciPy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P
from scipy import signal

from tlgen.losses.contrastive import contrastive_loss, masked_similarities
from tlgen.losses.reconstruction import MS_SSIM_WEIGHTS, ms_ssim, ms_ssim_scales, reconstruction_loss


def _codes(rng, *shape):
    return rng.normal(size=shape).astype(np.float32)


def _np_masked_cos(u, v, k):
    a, b = u[:k].ravel().astype(np.float64), v[:k].ravel().astype(np.float64)
    return a @ b / np.sqrt((a @ a) * (b @ b))


def _np_contrastive(anchor, pos, valid, levels, tau):
    """Direct per-level loop over the formulation in the module docstring."""
    b, k = valid.shape
    cols = list(anchor) + [pos[i, j] for i in range(b) for j in range(k)]
    col_ok = [True] * b + [bool(valid[i, j]) for i in range(b) for j in range(k)]
    per_band = []
    for j, lev in enumerate(levels):
        losses = []
        for i in range(b):
            if not valid[i, j]:
                continue
            target = b + i * k + j
            allowed = [c for c in range(len(cols)) if c == target or (
                col_ok[c] and c != i and not (c >= b and (c - b) // k == i))]
            logits = np.array([_np_masked_cos(anchor[i], cols[c], lev) / tau for c in allowed])
            pos_logit = _np_masked_cos(anchor[i], cols[target], lev) / tau
            losses.append(np.log(np.sum(np.exp(logits))) - pos_logit)
        per_band.append(np.mean(losses) if losses else 0.0)
    per_band = np.array(per_band)
    has = np.array([valid[:, j].any() for j in range(k)])
    return per_band[has].mean(), per_band


def test_masked_similarities_gram_cumsum_equals_direct():
    rng = np.random.default_rng(0)
    rows, cols = _codes(rng, 3, 4, 2, 2, 3), _codes(rng, 5, 4, 2, 2, 3)
    got = np.asarray(masked_similarities(rows, cols, levels=(1, 2, 4)))
    for li, k in enumerate((1, 2, 4)):
        direct = np.asarray(masked_similarities(rows[:, :k], cols[:, :k], levels=(k,)))[0]
        want = np.array([[_np_masked_cos(r, c, k) for c in cols] for r in rows])
        np.testing.assert_allclose(got[li], want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(direct, want, rtol=1e-5, atol=1e-6)


def test_contrastive_loss_matches_numpy_reference():
    rng = np.random.default_rng(1)
    b, k, m = 4, 3, 4
    anchor, pos = _codes(rng, b, m, 2, 2, 2), _codes(rng, b, k, m, 2, 2, 2)
    valid = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 1, 0]], bool)
    levels, tau = (1, 2, 3), 0.2
    loss, per_band = contrastive_loss(anchor, pos, valid, levels=levels, temperature=tau)
    want_loss, want_band = _np_contrastive(anchor, pos, valid, levels, tau)
    np.testing.assert_allclose(per_band, want_band, rtol=1e-5)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    # an empty band is excluded from the mean
    valid[:, 2] = False
    loss, per_band = contrastive_loss(anchor, pos, valid, levels=levels, temperature=tau)
    assert float(per_band[2]) == 0.0
    np.testing.assert_allclose(loss, np.mean(np.asarray(per_band[:2])), rtol=1e-6)
    # levels outside 1..M, or not one per band, are refused (not wrapped, clamped or dropped)
    for bad, says in [((0, 2, 3), r"levels \(0, 2, 3\) must each keep 1..4 bins"),
                      ((1, 2, 5), r"levels \(1, 2, 5\) must each keep 1..4 bins"),
                      ((1, 2), "levels has 2 entries but pos_valid has 3 gap bands")]:
        with pytest.raises(ValueError, match=says):
            contrastive_loss(anchor, pos, valid, levels=bad, temperature=tau)


def test_contrastive_loss_prefers_matching_slow_bins():
    rng = np.random.default_rng(2)
    anchor = _codes(rng, 6, 3, 2, 2, 2)
    pos = anchor[:, None].repeat(2, axis=1).copy()
    pos[:, :, 2] = _codes(rng, 6, 2, 2, 2, 2)          # fast bin differs
    valid = np.ones((6, 2), bool)
    good, _ = contrastive_loss(anchor, pos, valid, levels=(1, 2), temperature=0.1)
    bad, _ = contrastive_loss(anchor, pos, valid, levels=(3, 3), temperature=0.1)
    assert float(good) < float(bad)


@pytest.mark.parametrize("axis_type", ["auto", "explicit"])
def test_contrastive_loss_on_a_sharded_batch(axis_type):
    devices = jax.devices()[:4]
    kind = jax.sharding.AxisType.Explicit if axis_type == "explicit" else jax.sharding.AxisType.Auto
    mesh = jax.make_mesh((4,), ("data",), axis_types=(kind,), devices=devices)
    rng = np.random.default_rng(3)
    anchor, pos = _codes(rng, 8, 3, 2, 2, 2), _codes(rng, 8, 2, 3, 2, 2, 2)
    valid = rng.random((8, 2)) > 0.3
    want, _ = contrastive_loss(anchor, pos, valid, levels=(1, 3), temperature=0.1)
    shard = lambda x: jax.device_put(x, NamedSharding(mesh, P("data")))
    with jax.set_mesh(mesh):
        got, _ = jax.jit(lambda a, p, v: contrastive_loss(a, p, v, levels=(1, 3), temperature=0.1))(
            shard(anchor), shard(pos), shard(valid))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def _np_ssim_terms(a, b, max_val=1.0):
    x = np.arange(11) - 5.0
    g = np.exp(-0.5 * (x / 1.5) ** 2)
    g /= g.sum()
    win = np.outer(g, g)
    c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
    f = lambda z: signal.convolve2d(z, win, mode="valid")
    mu_a, mu_b = f(a), f(b)
    va, vb, cov = f(a * a) - mu_a ** 2, f(b * b) - mu_b ** 2, f(a * b) - mu_a * mu_b
    cs = (2 * cov + c2) / (va + vb + c2)
    lum = (2 * mu_a * mu_b + c1) / (mu_a ** 2 + mu_b ** 2 + c1)
    return np.mean(lum * cs), np.mean(cs)


def _np_ms_ssim(a, b, scales):
    w = np.array(MS_SSIM_WEIGHTS[:scales])
    w /= w.sum()
    per_channel = []
    for c in range(a.shape[-1]):
        x, y, value = a[..., c], b[..., c], 1.0
        for s in range(scales):
            full, cs = _np_ssim_terms(x, y)
            value *= max(full if s == scales - 1 else cs, 0.0) ** w[s]
            x = x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2).mean((1, 3))
            y = y.reshape(y.shape[0] // 2, 2, y.shape[1] // 2, 2).mean((1, 3))
        per_channel.append(value)
    return np.mean(per_channel)


def test_ms_ssim_matches_float64_reference_and_is_one_for_identical_images():
    rng = np.random.default_rng(4)
    a = rng.random((2, 48, 48, 3))
    b = np.clip(a + 0.15 * rng.normal(size=a.shape), 0, 1)
    fast = jax.jit(ms_ssim, static_argnames=("max_val", "scales"))
    assert ms_ssim_scales(48) == 3 and ms_ssim_scales(64) == 3 and ms_ssim_scales(161) == 5
    got = np.asarray(fast(a.astype(np.float32), b.astype(np.float32)))
    want = [_np_ms_ssim(a[i], b[i], 3) for i in range(2)]
    np.testing.assert_allclose(got, want, rtol=1e-4)
    two = np.asarray(fast(a.astype(np.float32), b.astype(np.float32), scales=2))
    np.testing.assert_allclose(two, [_np_ms_ssim(a[i], b[i], 2) for i in range(2)], rtol=1e-4)
    with pytest.raises(ValueError, match="images of 48 px take 1 to 3 MS-SSIM scales, not 5"):
        ms_ssim(a.astype(np.float32), b.astype(np.float32), scales=5)
    np.testing.assert_allclose(fast(a.astype(np.float32), a.astype(np.float32)), 1.0, atol=1e-5)
    a8, b8 = (np.round(x * 255).astype(np.uint8) for x in (a, b))   # uint8 in [0, 255]: no wrap-around
    np.testing.assert_allclose(fast(a8, b8, 255.0), [_np_ms_ssim(a8[i] / 255, b8[i] / 255, 3) for i in range(2)],
                               rtol=1e-4)
    # anti-correlated images: contrast terms clamp at 0 and the gradient stays finite
    neg = jnp.asarray(1 - a, jnp.float32)
    g = jax.jit(jax.grad(lambda x: jnp.sum(ms_ssim(x, neg))))(jnp.asarray(a, jnp.float32))
    assert bool(jnp.all(jnp.isfinite(g)))
    np.testing.assert_array_equal(fast(jnp.asarray(a, jnp.float32), neg), 0.0)
    with pytest.raises(ValueError, match=r"ms_ssim compares images of one shape, got \(2, 64, 64, 3\) and"):
        ms_ssim(np.zeros((2, 64, 64, 3), np.float32), np.zeros((2, 64, 48, 3), np.float32))


def test_reconstruction_loss_mixes_l1_and_ms_ssim():
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    y = np.clip(x + 0.2, -1, 1)
    l1 = np.mean(np.abs(x - y) / 2, axis=(1, 2, 3))
    np.testing.assert_allclose(reconstruction_loss(x, y, alpha=0.0), l1, rtol=1e-5)
    mix = reconstruction_loss(x, y, alpha=0.5)
    msss = ms_ssim((x + 1) / 2, (y + 1) / 2)
    np.testing.assert_allclose(mix, 0.5 * (1 - msss) + 0.5 * l1, rtol=1e-5)
    np.testing.assert_allclose(reconstruction_loss(x, x, alpha=0.84), 0.0, atol=1e-5)
