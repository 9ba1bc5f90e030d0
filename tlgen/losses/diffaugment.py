"""Differentiable augmentation of video clips for GAN discriminators (DiffAugment, Zhao et al.
2020), applied identically to every frame of a clip and to real and fake clips alike.

`augment_clips(key, clips, p)`: each of colour (brightness, saturation, contrast about the
clip's mean), translation (up to 1/8 of each side by default, zero fill) and cutout (a zeroed half-size square) is applied to a
clip with probability `p`, one draw of its parameters per clip. p = 1 is DiffAugment; an
adaptive p (ADA's heuristic, `ada_update`) raises p while the discriminator overfits.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

OPS = ("color", "translation", "cutout")


def augment_clips(key: jax.Array, clips: jax.Array, p=1.0, ops=OPS, shift=None) -> jax.Array:
    """clips (B, F, H, W, C) in [-1, 1] -> augmented clips of the same shape (float32);
    `shift`: the largest translation (rows, columns), default 1/8 of each side."""
    unknown = set(ops) - set(OPS)
    if unknown:
        raise ValueError(f"unknown augmentations {sorted(unknown)}; choose from {OPS}")
    x = clips.astype(jnp.float32)
    b, _, h, w, _ = x.shape
    keys = dict(zip(OPS, jax.random.split(key, len(OPS))))
    per_clip = lambda v: v.reshape((b,) + (1,) * (x.ndim - 1))     # (B,) -> broadcast over a clip
    for op in ops:
        k_on, k_a, k_b, k_c = jax.random.split(keys[op], 4)
        on = per_clip(jax.random.uniform(k_on, (b,)) < p)
        if op == "color":
            y = x + per_clip(jax.random.uniform(k_a, (b,)) - 0.5)
            mean = jnp.mean(y, axis=-1, keepdims=True)
            y = (y - mean) * per_clip(jax.random.uniform(k_b, (b,)) * 2) + mean
            mean = jnp.mean(y, axis=(1, 2, 3, 4), keepdims=True)          # the clip's mean
            y = (y - mean) * per_clip(jax.random.uniform(k_c, (b,)) + 0.5) + mean
        elif op == "translation":
            sy, sx = shift or (int(h * 0.125 + 0.5), int(w * 0.125 + 0.5))
            dy = jax.random.randint(k_a, (b,), 0, 2 * sy + 1)
            dx = jax.random.randint(k_b, (b,), 0, 2 * sx + 1)
            padded = jnp.pad(x, ((0, 0), (0, 0), (sy, sy), (sx, sx), (0, 0)))
            y = jax.vmap(lambda clip, oy, ox: jax.lax.dynamic_slice(
                clip, (0, oy, ox, 0), clip.shape[:1] + (h, w) + clip.shape[-1:]))(padded, dy, dx)
        else:   # cutout
            ch, cw = h // 2, w // 2
            cy = jax.random.randint(k_a, (b, 1), 0, h + (1 - ch % 2)) - ch // 2
            cx = jax.random.randint(k_b, (b, 1), 0, w + (1 - cw % 2)) - cw // 2
            rows, cols = jnp.arange(h)[None], jnp.arange(w)[None]
            inside = (((rows >= cy) & (rows < cy + ch))[:, :, None]
                      & ((cols >= cx) & (cols < cx + cw))[:, None, :])        # (B, H, W)
            y = x * (~inside)[:, None, :, :, None]
        x = jnp.where(on, y, x)
    return x


def ada_update(p: jax.Array, real_logits: jax.Array, *, target: float = 0.6, images: int,
               speed_kimg: float = 500.0, max_p: float = 1.0) -> jax.Array:
    """ADA's adaptive probability: p moves by images / (speed_kimg * 1000) towards more
    augmentation while E[sign(D(real))] exceeds `target`, towards less below it; in [0, max_p]."""
    rt = jnp.mean(jnp.sign(real_logits.astype(jnp.float32)))
    return jnp.clip(p + jnp.sign(rt - target) * images / (speed_kimg * 1000.0), 0.0, max_p)
