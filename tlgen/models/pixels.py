"""Pixel ranges shared by the models: uint8 [0, 255] images <-> float32 [-1, 1]."""

import jax
import jax.numpy as jnp
import numpy as np


def to_model_range(images: jax.Array | np.ndarray) -> jax.Array:
    """uint8 images/videos in [0, 255] -> float32 in [-1, 1]."""
    return jnp.asarray(images, jnp.float32) / 127.5 - 1.0


def to_uint8(x: jax.Array) -> jax.Array:
    """Model output in [-1, 1] -> uint8 in [0, 255] (rounded, clipped)."""
    return jnp.clip(jnp.round((x.astype(jnp.float32) + 1.0) * 127.5), 0, 255).astype(jnp.uint8)


def unit_float(images: np.ndarray) -> np.ndarray:
    """NumPy images as float64 in [0, 1]: uint8 scaled by 1/255, floats taken as they are."""
    x = np.asarray(images)
    return x.astype(np.float64) / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)
