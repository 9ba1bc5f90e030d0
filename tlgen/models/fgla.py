"""FGLA (Xue et al., ACM MM 2021): landscape animation by fine-grained, per-region motion.

* `MotionEncoder`: partial convolutions over an optical flow field, run once per semantic
  region with that region's mask, each pass pooled to one latent: (flow (B, H, W, 2), masks
  (B, R, H, W)) -> latents (B, R, D) (the paper: 6 regions x 2). A pass reads only the flow
  inside its region (partial convolutions renormalize by the mask, `partial_conv`), so
  changing the flow outside region i leaves latent i unchanged; an empty region gives a
  defined zero latent. With `per_region=False` (the paper's "w/o LM" ablation, in the
  spirit of Animating Landscape) a plain CNN encodes the whole flow into one latent.
* `latent_map`: each region's latent painted into its mask: (B, H, W, D).
* `MotionGenerator`: a U-Net with skip connections (instance norm + LeakyReLU 0.1) from
  image ⊕ latent map to a flow, tanh / `flow_divisor` in half-image units (as
  `grid_sample`'s), returned in pixels.
* `animate_flows`: every output frame is the input image warped once by the flow
  accumulated from frame 0 (F_0->t = F_t + F_0->t-1), so frames do not blur.

NHWC; images in [-1, 1]; flows (..., H, W, 2) in pixels (dx, dy), backward (frame t+1 at p
samples frame t at p + flow, as `tlgen.models.flow_ops.warp`).
"""

from __future__ import annotations

from typing import Any

import einops
import jax
import jax.numpy as jnp
from flax import linen as nn

from tlgen.models.flow_ops import warp
from tlgen.models.layers import instance_norm, upsample2
from tlgen.models.pixels import check_pixels

Dtype = Any


# ----------------------------------------------------------------------------- partial conv

def partial_conv(x: jax.Array, mask: jax.Array, kernel: jax.Array, bias: jax.Array | None,
                 stride: int = 1, padding: int = 0) -> tuple[jax.Array, jax.Array]:
    """Partial convolution (Liu et al.): out = W^T (X ⊙ M) sum(1)/sum(M) + b where the window
    holds any of the mask, else 0; the new mask is 1 where it did (paper eq. 1-2).

    x (B, H, W, C), mask (B, H, W) of 0/1, kernel (k, k, C, F). sum(1) is the window's area
    k * k (the mask is shared by the channels). Returns (out (B, H', W', F), mask (B, H', W')).
    """
    k = kernel.shape[0]
    pad = ((padding, padding), (padding, padding))
    dims = ("NHWC", "HWIO", "NHWC")
    m = mask[..., None].astype(x.dtype)
    out = jax.lax.conv_general_dilated(x * m, kernel.astype(x.dtype), (stride, stride), pad,
                                       dimension_numbers=dims)
    covered = jax.lax.conv_general_dilated(m, jnp.ones((k, k, 1, 1), x.dtype), (stride, stride),
                                           pad, dimension_numbers=dims)[..., 0]
    valid = covered > 0
    out = out * (k * k / jnp.maximum(covered, 1.0))[..., None]
    if bias is not None:
        out = out + bias.astype(x.dtype)
    return out * valid[..., None], valid.astype(mask.dtype)


class PartialConv(nn.Module):
    """(x (B, H, W, C), mask (B, H, W) of 0/1) -> (features, updated mask): a convolution over
    the masked pixels only, renormalized by their share of the window (`partial_conv`)."""
    features: int
    kernel: int = 3
    stride: int = 1
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, mask):
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (self.kernel, self.kernel, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return partial_conv(x.astype(self.dtype), mask, kernel, bias, self.stride, self.kernel // 2)


def _act(x, mask=None):
    """Instance norm (over the mask's positions when given) + LeakyReLU 0.1."""
    return nn.leaky_relu(instance_norm(x, (1, 2), mask=mask), 0.1)


# ----------------------------------------------------------------------------- networks

class MotionEncoder(nn.Module):
    """(flow (B, H, W, 2) in pixels, masks (B, R, H, W)) -> latents (B, R, latent_dim).

    `widths`: channels of the stride-2 partial convolutions; the last layer's output is
    averaged over the positions its mask still covers and mapped to the latent. Flows are
    divided by `flow_scale` pixels on the way in. With `per_region=False` masks are ignored:
    one global latent (B, 1, D) from plain convolutions.
    """
    widths: tuple[int, ...] = (32, 64, 128, 128)
    latent_dim: int = 2
    per_region: bool = True
    flow_scale: float = 4.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, flow, masks):
        check_pixels(flow, "flow", "(B, H, W, 2)", scale="pixels")
        if masks.ndim != 4 or masks.shape[0] != flow.shape[0] or masks.shape[2:] != flow.shape[1:3]:
            raise ValueError(f"masks must be (B, R, H, W) for flow {tuple(flow.shape)}; got shape "
                             f"{tuple(masks.shape)}.")
        b, r = masks.shape[:2]
        if not self.per_region:
            masks = jnp.ones((b, 1) + masks.shape[2:], masks.dtype)
            r = 1
        x = einops.repeat(flow.astype(self.dtype) / self.flow_scale, "b h w c -> (b r) h w c", r=r)
        m = einops.rearrange(masks, "b r h w -> (b r) h w").astype(self.dtype)
        for i, width in enumerate(self.widths):
            x, m = PartialConv(width, 3, 2, self.dtype, name=f"pconv{i}")(x, m)
            x = _act(x, m) * m[..., None]
        count = jnp.sum(m, axis=(1, 2))[:, None]
        pooled = jnp.sum(x * m[..., None], axis=(1, 2)) / jnp.maximum(count, 1.0)
        z = nn.Dense(self.latent_dim, dtype=self.dtype, name="to_latent")(pooled)
        z = jnp.where(count > 0, z, 0.0)                   # an empty region: a zero latent
        return einops.rearrange(z.astype(jnp.float32), "(b r) d -> b r d", b=b)


def latent_map(latents: jax.Array, masks: jax.Array) -> jax.Array:
    """latents (B, R, D), masks (B, R, H, W) -> (B, H, W, D): L(x, y) = z_k where mask k is 1
    (paper eq. 5); pixels of no region get 0. With one latent (B, 1, D) it fills the image."""
    if latents.shape[1] == 1:
        return jnp.broadcast_to(latents[:, 0, None, None, :], masks.shape[:1] + masks.shape[2:] + latents.shape[-1:])
    return jnp.einsum("brhw,brd->bhwd", masks.astype(latents.dtype), latents)


class MotionGenerator(nn.Module):
    """(image (B, H, W, 3) in [-1, 1], latent map (B, H, W, D)) -> flow (B, H, W, 2) in pixels.

    A U-Net: `widths` stride-2 convs down, 3x3 convs at each level, nearest-upsampling convs
    back up with the down path's features concatenated (skip connections); instance norm +
    LeakyReLU 0.1 after every conv but the last, whose tanh is divided by `flow_divisor`
    (half-image units: 1 is half the image) and converted to pixels.
    """
    widths: tuple[int, ...] = (32, 64, 128, 256)
    flow_divisor: float = 32.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, image, latents_map):
        check_pixels(image, "image", "(B, H, W, 3)")
        step = 2 ** (len(self.widths) - 1)
        if image.shape[1] % step or image.shape[2] % step:
            raise ValueError(f"image height and width must be multiples of {step} (one halving per "
                             f"width after the first); got {image.shape[1:3]}.")
        conv = lambda f, name, s=1: nn.Conv(f, (3, 3), (s, s), padding=((1, 1), (1, 1)),
                                            dtype=self.dtype, name=name)
        x = jnp.concatenate([image, latents_map], axis=-1).astype(self.dtype)
        x = _act(conv(self.widths[0], "in")(x))
        skips = []
        for i, width in enumerate(self.widths[1:]):
            skips.append(x)
            x = _act(conv(width, f"down{i}", 2)(x))
            x = _act(conv(width, f"down{i}_conv")(x))
        for i, skip in reversed(list(enumerate(skips))):
            x = _act(conv(skip.shape[-1], f"up{i}")(upsample2(x)))
            x = _act(conv(skip.shape[-1], f"up{i}_conv")(jnp.concatenate([x, skip], axis=-1)))
        flow = jnp.tanh(conv(2, "to_flow")(x).astype(jnp.float32)) / self.flow_divisor
        h, w = image.shape[1:3]
        return flow * jnp.asarray([w / 2.0, h / 2.0], jnp.float32)


# ----------------------------------------------------------------------------- animation

def animate_flows(image: jax.Array, step_flow, step_inputs, speed: float = 1.0):
    """Frames 1..T-1 of an animation of `image` (B, H, W, 3), one per entry of `step_inputs`
    (a pytree with a leading axis of T - 1, e.g. per-step latent maps): at step t,
    `step_flow(frame_t, input_t)` gives the flow F_t (B, H, W, 2) from the latest frame; it is
    scaled by `speed`, accumulated from frame 0 (F_0->t = speed F_t + F_0->t-1), and frame
    t+1 = warp(image, F_0->t): every frame is the input warped once (Algorithm 1).

    Returns (frames (T-1, B, H, W, 3), accumulated flows (T-1, B, H, W, 2)).
    """
    def body(carry, step_input):
        frame, total = carry
        total = total + speed * step_flow(frame, step_input)
        nxt = warp(image, total)
        return (nxt, total), (nxt, total)

    zero = jnp.zeros(image.shape[:-1] + (2,), jnp.float32)
    _, (frames, totals) = jax.lax.scan(body, (image, zero), step_inputs)
    return frames, totals
