"""Image-quality metrics: PSNR, SSIM, MS-SSIM on images (..., H, W, C) in [0, max_val].

Jitted (`max_val`, `scales` static): an evaluation calling them on arrays compiles each once
per shape instead of running op by op."""

from __future__ import annotations

import functools

import einops
import jax
import jax.numpy as jnp

from tlgen.losses import reconstruction

__all__ = ["psnr", "ssim", "ms_ssim"]


@functools.partial(jax.jit, static_argnames="max_val")
def psnr(a: jax.Array, b: jax.Array, max_val: float = 1.0) -> jax.Array:
    """Peak signal-to-noise ratio in dB per image: (..., H, W, C) -> (...); identical images
    score 100 dB (as `tlgen.metrics.animation.masked_psnr`), not infinity."""
    mse = jnp.mean((a.astype(jnp.float32) - b.astype(jnp.float32)) ** 2, axis=(-3, -2, -1))
    return jnp.minimum(10.0 * jnp.log10(max_val ** 2 / jnp.maximum(mse, 1e-20)), 100.0)


@functools.partial(jax.jit, static_argnames="max_val")
def ssim(a: jax.Array, b: jax.Array, max_val: float = 1.0) -> jax.Array:
    """Single-scale SSIM (11-tap Gaussian window, sigma 1.5) per image, channel mean."""
    (a, lead), (b, _) = (einops.pack([x], "* h w c") for x in (a, b))
    full, _ = reconstruction.ssim_components(a, b, max_val)
    return einops.unpack(jnp.mean(full, axis=-1), lead, "*")[0]


ms_ssim = jax.jit(reconstruction.ms_ssim, static_argnames=("max_val", "scales"))
