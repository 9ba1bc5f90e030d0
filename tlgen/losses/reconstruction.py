"""Reconstruction losses: SSIM / MS-SSIM (Wang et al. 2003) and the L1 + MS-SSIM mix.

Images are (..., H, W, C) floats with values in [0, max_val]. SSIM uses an 11-tap
Gaussian window (sigma 1.5) applied separably with 'valid' borders, K1 = 0.01,
K2 = 0.03. MS-SSIM uses 5 scales with 2x average pooling and the standard weights;
contrast-structure terms are clamped at 0 before the fractional power. Images whose
short side is too small for 5 scales (it must exceed 10 * 2**(scales-1) pixels, 160
for 5) get fewer scales with the weights renormalized; that is logged once per size.
"""

from __future__ import annotations

import functools
import logging

import einops
import jax
import jax.numpy as jnp
import numpy as np

log = logging.getLogger(__name__)

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5


def _gaussian_window(size: int = WINDOW_SIZE, sigma: float = WINDOW_SIGMA) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return (g / g.sum()).astype(np.float32)


def _band(n: int, taps: np.ndarray) -> np.ndarray:
    """(n - k + 1, n) matrix whose row i holds the window at columns i..i+k-1 ('valid')."""
    k = len(taps)
    m = np.zeros((n - k + 1, n), np.float32)
    for i in range(n - k + 1):
        m[i, i:i + k] = taps
    return m


def _blur(x: jax.Array) -> jax.Array:
    """Separable Gaussian filter over H and W of (N, H, W, C), per channel, 'valid' borders.

    Two matmuls with banded matrices: the same sums as 1-channel depthwise convolutions,
    which run ~37x slower on CPU and far below the matmul rate on GPU.
    """
    g = _gaussian_window()
    gh, gw = jnp.asarray(_band(x.shape[1], g)), jnp.asarray(_band(x.shape[2], g))
    return jnp.einsum("hH,nHWc,wW->nhwc", gh, x, gw, precision=jax.lax.Precision.HIGHEST)


def ssim_components(a: jax.Array, b: jax.Array, max_val: float = 1.0):
    """Mean luminance-contrast-structure SSIM and contrast-structure term, per
    image and channel: two arrays of shape (N, C) for inputs (N, H, W, C)."""
    if a.shape != b.shape:
        raise ValueError(f"SSIM compares images of one shape, got {a.shape} and {b.shape}")
    if min(a.shape[1:3]) < WINDOW_SIZE:
        raise ValueError(f"images of {a.shape[1:3]} px are smaller than the {WINDOW_SIZE}-px SSIM window")
    c1 = (0.01 * max_val) ** 2
    c2 = (0.03 * max_val) ** 2
    a = a.astype(jnp.float32)
    b = b.astype(jnp.float32)
    moments = _blur(jnp.concatenate([a, b, a * a, b * b, a * b], axis=-1))
    mu_a, mu_b, aa, bb, ab = jnp.split(moments, 5, axis=-1)
    var_a = aa - mu_a ** 2
    var_b = bb - mu_b ** 2
    cov = ab - mu_a * mu_b
    cs = (2 * cov + c2) / (var_a + var_b + c2)
    lum = (2 * mu_a * mu_b + c1) / (mu_a ** 2 + mu_b ** 2 + c1)
    return jnp.mean(lum * cs, axis=(1, 2)), jnp.mean(cs, axis=(1, 2))


def ms_ssim_scales(size: int, max_scales: int = len(MS_SSIM_WEIGHTS)) -> int:
    """Scales usable for images whose short side is `size` pixels."""
    scales = max_scales
    while scales > 1 and size <= (WINDOW_SIZE - 1) * 2 ** (scales - 1):
        scales -= 1
    if size < WINDOW_SIZE:
        raise ValueError(f"images of {size} px are smaller than the {WINDOW_SIZE}-px SSIM window")
    return scales


@functools.lru_cache(maxsize=None)
def _note_scales(size: int, scales: int) -> None:
    log.info("MS-SSIM on %d-px images uses %d of %d scales (weights renormalized)",
             size, scales, len(MS_SSIM_WEIGHTS))


def ms_ssim(a: jax.Array, b: jax.Array, max_val: float = 1.0,
            scales: int | None = None) -> jax.Array:
    """Multi-scale SSIM of images (..., H, W, C) -> (...), averaged over channels (in float32,
    whatever the images' dtype: uint8 with max_val=255 too)."""
    if a.shape != b.shape:
        raise ValueError(f"ms_ssim compares images of one shape, got {a.shape} and {b.shape}")
    (a, lead), (b, _) = (einops.pack([jnp.asarray(x, jnp.float32)], "* h w c") for x in (a, b))
    size = min(a.shape[1:3])
    if scales is None:
        scales = ms_ssim_scales(size)
        if scales < len(MS_SSIM_WEIGHTS):
            _note_scales(size, scales)
    elif not 1 <= scales <= ms_ssim_scales(size):
        raise ValueError(f"images of {size} px take 1 to {ms_ssim_scales(size)} MS-SSIM scales, "
                         f"not {scales}")
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales], np.float64)
    weights = jnp.asarray(weights / weights.sum(), jnp.float32)
    terms = []
    for s in range(scales):
        full, cs = ssim_components(a, b, max_val)
        terms.append(full if s == scales - 1 else cs)
        if s < scales - 1:
            a, b = _avg_pool2(a), _avg_pool2(b)
    terms = jnp.stack(terms, axis=0)                            # (S, N, C)
    positive = terms > 0                    # clamp at 0; keep the gradient finite there
    powered = jnp.where(positive, jnp.where(positive, terms, 1.0) ** weights[:, None, None], 0.0)
    value = jnp.prod(powered, axis=0)
    return einops.unpack(jnp.mean(value, axis=-1), lead, "*")[0]


def _avg_pool2(x: jax.Array) -> jax.Array:
    """2x2 average pooling of (N, H, W, C) (an odd last row/column is dropped)."""
    window = (1, 2, 2, 1)
    return jax.lax.reduce_window(x, 0.0, jax.lax.add, window, window, "VALID") * 0.25


def reconstruction_loss(pred: jax.Array, target: jax.Array, alpha: float = 0.84) -> jax.Array:
    """Paper eq. 3 without the level weight: alpha (1 - MS-SSIM) + (1 - alpha) L1.

    pred, target: (..., H, W, 3) in [-1, 1] (compared after mapping to [0, 1]).
    Returns the per-image loss, shape (...), float32.
    """
    p = (pred.astype(jnp.float32) + 1.0) * 0.5
    t = (target.astype(jnp.float32) + 1.0) * 0.5
    l1 = jnp.mean(jnp.abs(p - t), axis=(-3, -2, -1))
    if alpha == 0:
        return l1
    return alpha * (1.0 - ms_ssim(p, t, 1.0)) + (1.0 - alpha) * l1
