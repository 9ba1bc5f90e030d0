"""Pixel ranges shared by the models (uint8 [0, 255] images <-> float32 [-1, 1]) and the frame
size settings they are built for."""

import operator

import jax
import jax.numpy as jnp
import numpy as np


def to_model_range(images: jax.Array | np.ndarray) -> jax.Array:
    """uint8 images/videos in [0, 255] -> float32 in [-1, 1]."""
    return jnp.asarray(images, jnp.float32) / 127.5 - 1.0


def check_pixels(x: jax.Array, what: str, layout: str, scale: str = "[-1, 1]") -> None:
    """ValueError unless `x` has the rank of `layout` (e.g. "(B, 3, H, W, 3)", and its sizes
    where the layout names a number); TypeError unless it holds floats (uint8 values would run through a
    network unchanged). `scale` is the range the caller takes, named in the message."""
    sizes = [s.strip() for s in layout.strip("()").split(",")]
    if x.ndim != len(sizes) or any(s.isdigit() and n != int(s) for s, n in zip(sizes, x.shape)):
        raise ValueError(f"{what} must be {layout}; got shape {tuple(x.shape)}.")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        convert = {"[-1, 1]": "tlgen.models.pixels.to_model_range converts uint8",
                   "[0, 1]": "divide uint8 by 255"}.get(scale, "cast to float32")
        raise TypeError(f"{what} holds {x.dtype}; give floats in {scale} ({convert}).")


def to_uint8(x: jax.Array) -> jax.Array:
    """Model output in [-1, 1] -> uint8 in [0, 255] (rounded, clipped)."""
    return jnp.clip(jnp.round((x.astype(jnp.float32) + 1.0) * 127.5), 0, 255).astype(jnp.uint8)


def unit_float(images: np.ndarray) -> np.ndarray:
    """NumPy images as float64 in [0, 1]: uint8 scaled by 1/255, floats taken as they are."""
    x = np.asarray(images)
    return x.astype(np.float64) / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)


def frame_shape(size) -> tuple[int, int]:
    """(height, width) of a frame-size setting: N or (N,) is N x N, (H, W) as given."""
    values = tuple(size) if isinstance(size, (tuple, list)) else (size,)
    if len(values) not in (1, 2) or any(isinstance(v, bool) for v in values):
        raise ValueError("a frame size is N (square) or (height, width)")
    try:
        return operator.index(values[0]), operator.index(values[-1])
    except TypeError:
        raise ValueError("a frame size is N (square) or (height, width), in whole pixels") from None
