"""Optical-flow operations on NHWC arrays: backward warping and flow resizing.

A flow field has shape (..., H, W, 2) and holds per-pixel displacements in pixels, (dx, dy),
with x along the width axis and y along the height axis.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp


def warp(image: jax.Array, flow: jax.Array) -> jax.Array:
    """Backward-warps `image` by `flow` with bilinear sampling.

    out[..., y, x, :] = image[..., y + flow[..., y, x, 1], x + flow[..., y, x, 0], :].
    Border handling: sample coordinates are clamped to the image ("replicate" border), so
    pixels pulled from outside the frame repeat the nearest edge pixel. Shapes: image
    (..., H, W, C), flow (..., H, W, 2); leading axes must match. Differentiable in both.
    Sample positions are computed in float32 at least (bfloat16 cannot hold pixel positions
    past 256).
    """
    height, width = image.shape[-3], image.shape[-2]
    flow = flow.astype(jnp.promote_types(flow.dtype, jnp.float32))
    ys, xs = jnp.meshgrid(jnp.arange(height, dtype=flow.dtype),
                          jnp.arange(width, dtype=flow.dtype), indexing="ij")
    x = jnp.clip(xs + flow[..., 0], 0, width - 1)
    y = jnp.clip(ys + flow[..., 1], 0, height - 1)
    x0 = jnp.clip(jnp.floor(x), 0, width - 2 if width > 1 else 0)
    y0 = jnp.clip(jnp.floor(y), 0, height - 2 if height > 1 else 0)
    wx = (x - x0)[..., None].astype(image.dtype)
    wy = (y - y0)[..., None].astype(image.dtype)
    x0, y0 = x0.astype(jnp.int32), y0.astype(jnp.int32)
    x1 = jnp.minimum(x0 + 1, width - 1)
    y1 = jnp.minimum(y0 + 1, height - 1)

    flat = image.reshape(image.shape[:-3] + (height * width, image.shape[-1]))

    def gather(yi, xi):
        index = (yi * width + xi).reshape(yi.shape[:-2] + (height * width, 1))
        return jnp.take_along_axis(flat, index, axis=-2).reshape(image.shape)

    top = gather(y0, x0) * (1 - wx) + gather(y0, x1) * wx
    bottom = gather(y1, x0) * (1 - wx) + gather(y1, x1) * wx
    return top * (1 - wy) + bottom * wy


def resize_flow(flow: jax.Array, size: Sequence[int]) -> jax.Array:
    """Resizes flow fields (..., H, W, 2) to (..., h, w, 2), rescaling the vectors.

    Bilinear resampling (antialiased when shrinking); dx is multiplied by w / W and dy by
    h / H so the vectors stay in pixels of the new grid.
    """
    height, width = flow.shape[-3], flow.shape[-2]
    new_h, new_w = size
    resized = jax.image.resize(flow, flow.shape[:-3] + (new_h, new_w, 2), method="linear")
    return resized * jnp.asarray([new_w / width, new_h / height], flow.dtype)
