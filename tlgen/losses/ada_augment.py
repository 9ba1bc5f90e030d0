"""ADA's `bgc` augmentation of video clips (Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data"), the default of the public StyleGAN-V and long-video super-resolution
trainers: pixel blitting (x-flip, 90° rotations, integer translation), general geometric
transforms (isotropic scaling, rotation, anisotropic scaling, fractional translation) and colour
transforms (brightness, contrast, luma flip, hue rotation, saturation), each applied to a clip
with probability `p` (rotation: either of its two draws, p in all), with ADA's distributions.
One draw per clip, applied to every frame of it, real and fake alike.

`bgc_transforms(key, batch, p, size)` draws the inverse pixel transforms and colour matrices;
`apply_transforms(clips, g_inv, colour)` applies them as ADA does: reflect-pad the frame by
the margin the transform needs, upsample 2× with the orthogonal `sym6` wavelet low-pass, sample
bilinearly (zeros outside), downsample 2× with the same filter. The margin is each clip's own
(ADA takes the largest over the batch, so a clip's pixels depend on the others'); the padding
is static (the largest margin, W - 1 and H - 1), masked to the clip's margin, so shapes never
depend on the draw.
"""

from __future__ import annotations

import einops
import jax
import jax.numpy as jnp
import numpy as np

from tlgen.models.layers import upfirdn

# The symlet-6 decomposition low-pass (PyWavelets' `sym6` dec_lo), normalized to sum 1.
_SYM6 = np.array([0.015404109327027373, 0.0034907120842174702, -0.11799011114819057,
                  -0.048311742585633, 0.4910559419267466, 0.787641141030194, 0.3379294217276218,
                  -0.07263752278646252, -0.021060292512300564, 0.04472490177066578,
                  0.0017677118642428036, -0.007800708325034148])
SYM6 = _SYM6 / _SYM6.sum()
_PAD = len(SYM6) // 4                      # output margin (low-res pixels) cropped after sampling

XINT_MAX, SCALE_STD, ANISO_STD, XFRAC_STD = 0.125, 0.2, 0.2, 0.125
BRIGHTNESS_STD, CONTRAST_STD, SATURATION_STD = 0.2, 0.5, 1.0
_LUMA = np.array([1.0, 1.0, 1.0, 0.0]) / np.sqrt(3.0)


def _matrices(rows) -> jax.Array:
    """Nested lists of (B,) arrays or scalars -> (B, n, m)."""
    batch = next(jnp.shape(x) for row in rows for x in row if jnp.ndim(x))
    return jnp.stack([jnp.stack([jnp.broadcast_to(jnp.asarray(x, jnp.float32), batch) for x in row], -1)
                      for row in rows], -2)


def _translate(tx, ty):
    return _matrices([[1, 0, tx], [0, 1, ty], [0, 0, 1]])


def _scale(sx, sy):
    return _matrices([[sx, 0, 0], [0, sy, 0], [0, 0, 1]])


def _rotate(theta):
    c, s = jnp.cos(theta), jnp.sin(theta)
    return _matrices([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _rotate3d(v: np.ndarray, theta):
    """Rotation by theta about the unit axis v[:3] (homogeneous 4×4)."""
    vx, vy, vz = (float(a) for a in v[:3])
    s, c = jnp.sin(theta), jnp.cos(theta)
    cc = 1 - c
    return _matrices([[vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0],
                      [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0],
                      [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0],
                      [0, 0, 0, 1]])


def bgc_transforms(key: jax.Array, batch: int, p, size: tuple[int, int]) -> tuple[jax.Array, jax.Array]:
    """(g_inv (B, 3, 3): output pixel -> input pixel, centred coordinates; colour (B, 4, 4):
    homogeneous RGB map) of ADA's `bgc` pipeline at probability p for frames of `size` (H, W)."""
    h, w = size
    keys = iter(jax.random.split(key, 26))
    uniform = lambda shape=(batch,): jax.random.uniform(next(keys), shape)
    normal = lambda shape=(batch,): jax.random.normal(next(keys), shape)

    def gate(value, default, prob=p):
        """value where a clip's draw falls under prob (one draw per clip), else default."""
        return jnp.where(uniform((batch,) + (1,) * (jnp.ndim(value) - 1)) < prob, value, default)

    g = jnp.broadcast_to(jnp.eye(3), (batch, 3, 3))
    flip = gate(jnp.floor(uniform() * 2), 0.0)
    g = g @ _scale(1 - 2 * flip, 1)                                        # its own inverse
    g = g @ _rotate(np.pi / 2 * gate(jnp.floor(uniform() * 4), 0.0))
    t = gate((uniform((batch, 2)) * 2 - 1) * XINT_MAX, 0.0)
    g = g @ _translate(-jnp.round(t[:, 0] * w), -jnp.round(t[:, 1] * h))
    s = gate(jnp.exp2(normal() * SCALE_STD), 1.0)
    g = g @ _scale(1 / s, 1 / s)
    p_rot = 1 - jnp.sqrt(jnp.clip(1 - p, 0.0, 1.0))                       # P(pre or post) = p
    g = g @ _rotate(gate((uniform() * 2 - 1) * np.pi, 0.0, p_rot))
    s = gate(jnp.exp2(normal() * ANISO_STD), 1.0)
    g = g @ _scale(1 / s, s)
    g = g @ _rotate(gate((uniform() * 2 - 1) * np.pi, 0.0, p_rot))
    t = gate(normal((batch, 2)) * XFRAC_STD, 0.0)
    g = g @ _translate(-t[:, 0] * w, -t[:, 1] * h)

    vv = np.outer(_LUMA, _LUMA)
    c = jnp.broadcast_to(jnp.eye(4), (batch, 4, 4))
    b = gate(normal() * BRIGHTNESS_STD, 0.0)
    c = _matrices([[1, 0, 0, b], [0, 1, 0, b], [0, 0, 1, b], [0, 0, 0, 1]]) @ c
    k = gate(jnp.exp2(normal() * CONTRAST_STD), 1.0)
    c = _matrices([[k, 0, 0, 0], [0, k, 0, 0], [0, 0, k, 0], [0, 0, 0, 1]]) @ c
    flip = gate(jnp.floor(uniform() * 2), 0.0)
    c = (np.eye(4) - 2 * vv * flip[:, None, None]) @ c                    # Householder reflection
    c = _rotate3d(_LUMA, gate((uniform() * 2 - 1) * np.pi, 0.0)) @ c
    sat = gate(jnp.exp2(normal() * SATURATION_STD), 1.0)
    c = (vv + (np.eye(4) - vv) * sat[:, None, None]) @ c
    return g, c


def _bilinear(image: jax.Array, iy: jax.Array, ix: jax.Array) -> jax.Array:
    """image (H, W, K) at fractional pixel indices (h, w) -> (h, w, K); zeros outside.
    `jax.scipy.ndimage.map_coordinates` gives the same values, per channel: its gradient took
    twice as long here (831 against 407 ms at 144×256, 24 channels)."""
    y0, x0 = jnp.floor(iy), jnp.floor(ix)
    out = 0.0
    for dy, wy in ((0, 1 - (iy - y0)), (1, iy - y0)):
        for dx, wx in ((0, 1 - (ix - x0)), (1, ix - x0)):
            yy, xx = y0 + dy, x0 + dx
            valid = (yy >= 0) & (yy < image.shape[0]) & (xx >= 0) & (xx < image.shape[1])
            v = image[jnp.clip(yy, 0, image.shape[0] - 1).astype(jnp.int32),
                      jnp.clip(xx, 0, image.shape[1] - 1).astype(jnp.int32)]
            out = out + v * (wy * wx * valid)[..., None]
    return out


def _warp(image: jax.Array, g_inv: jax.Array) -> jax.Array:
    """One clip's frames stacked on channels (H, W, K), warped by g_inv as ADA does."""
    h, w, _ = image.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    corners = jnp.array([[-cx, -cy, 1.0], [cx, -cy, 1.0], [cx, cy, 1.0], [-cx, cy, 1.0]]) @ g_inv.T
    xy = corners[:, :2]
    margin = (jnp.concatenate([jnp.max(-xy, 0), jnp.max(xy, 0)])
              + jnp.array([2 * _PAD - cx, 2 * _PAD - cy] * 2))
    mx0, my0, mx1, my1 = jnp.ceil(jnp.clip(margin, 0, jnp.array([w - 1, h - 1] * 2)))

    def within_margin(x: jax.Array, step: int) -> jax.Array:
        """x (canvas, or canvas upsampled `step` times) zeroed beyond this clip's margin."""
        rows = jnp.arange(x.shape[0]) // step - (h - 1)
        cols = jnp.arange(x.shape[1]) // step - (w - 1)
        inside = ((rows >= -my0) & (rows < h + my1))[:, None] & ((cols >= -mx0) & (cols < w + mx1))[None]
        return x * inside[:, :, None]

    # The largest margin, statically; zeros beyond this clip's margin, as in a padded frame.
    canvas = jnp.pad(image, ((h - 1, h - 1), (w - 1, w - 1), (0, 0)), mode="reflect")
    up = upfirdn(within_margin(canvas, 1)[None], SYM6, up=2,
                 pads=[(len(SYM6) // 2, len(SYM6) // 2 - 1)] * 2, gain=4.0)[0]
    up = within_margin(up, 2)
    # Output pixel centres (upsampled, centred) -> input (upsampled, centred): 2 G((X + ½) / 2) - ½.
    ho, wo = 2 * (h + 2 * _PAD), 2 * (w + 2 * _PAD)
    yo, xo = jnp.meshgrid(jnp.arange(ho) + 0.5 - ho / 2, jnp.arange(wo) + 0.5 - wo / 2, indexing="ij")
    src = jnp.stack([(xo + 0.5) / 2, (yo + 0.5) / 2, jnp.ones_like(xo)], -1) @ g_inv.T
    ix = 2 * src[..., 0] - 0.5 + up.shape[1] / 2 - 0.5
    iy = 2 * src[..., 1] - 0.5 + up.shape[0] / 2 - 0.5
    sampled = _bilinear(up, iy, ix)
    return upfirdn(sampled[None], SYM6[::-1], down=2, pads=[(-1, -1)] * 2)[0]


def apply_transforms(clips: jax.Array, g_inv: jax.Array | None, colour: jax.Array | None) -> jax.Array:
    """clips (B, F, H, W, 3) warped by `g_inv` (B, 3, 3), then mapped by `colour` (B, 4, 4),
    each clip's transform on all its frames; None skips a stage."""
    x = clips.astype(jnp.float32)
    f = x.shape[1]
    if g_inv is not None:
        stacked = einops.rearrange(x, "b f h w c -> b h w (f c)")
        x = einops.rearrange(jax.vmap(_warp)(stacked, g_inv.astype(jnp.float32)),
                             "b h w (f c) -> b f h w c", f=f)
    if colour is not None:
        colour = colour.astype(jnp.float32)
        x = jnp.einsum("bij,bfhwj->bfhwi", colour[:, :3, :3], x) + colour[:, None, None, None, :3, 3]
    return x


def augment_clips(key: jax.Array, clips: jax.Array, p=1.0) -> jax.Array:
    """clips (B, F, H, W, 3) in [-1, 1] -> ADA `bgc`-augmented clips (float32), one draw per clip."""
    g_inv, colour = bgc_transforms(key, clips.shape[0], p, clips.shape[2:4])
    return apply_transforms(clips, g_inv, colour)
