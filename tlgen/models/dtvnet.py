"""DTVNet: animate a still image into a time-lapse clip driven by a motion vector.

Three networks (Zhang et al., ECCV 2020), all NHWC / NTHWC:

* `FlowEncoder`: 3-D convs over a clip of T optical flows (B, T, H, W, 2) -> a motion vector
  (B, D), D = 512 in the paper.
* `Generator` (the "dynamic video generator"): a shared encoder maps the image to features at
  half resolution; a content stream of residual blocks refines them; a motion stream of
  residual + AdaIN blocks, styled by adaptive motion vectors from equalized-LR linear layers,
  emits T low-resolution flows; a decoder fuses both and emits all T frames at once (frame 0
  reconstructs the input image).
* `VideoDiscriminator`: 3-D conv / instance norm / LeakyReLU blocks -> one logit per clip.

Motion-vector normalization: the public code batch-normalizes the motion vector over the batch
without affine parameters, which is exactly zero at batch size 1 (single-image inference). Here
every vector is instead standardized over its own D features (`normalize_motion`): zero mean,
unit variance per sample, independent of the batch. A vector sampled from N(0, I) is nearly
unchanged by it, so sampled and encoded motion live on the same sphere.

Upsampling in the decoder is the paper's 3x3 stride-2 transposed convolution (PyTorch padding 1,
output padding 1), computed exactly as a 2x2 convolution to the four output phases followed by
depth-to-space (`SubpixelConvTranspose`): same parameters and same function as a transposed
convolution, but its backward pass is several times faster on CPU than `nn.ConvTranspose`'s.

At 128^2 x 32 frames with the default widths the generator has 8,336,800 parameters, like the
public code (the paper's 8.42 M has one more 3x3 conv in the decoder).

Images enter in [-1, 1] (`to_model_range`) and frames leave in [-1, 1] (tanh).
"""

from __future__ import annotations

from typing import Any

import einops
import jax
import jax.numpy as jnp
from flax import linen as nn

from tlgen.models.layers import (Conv3dPyramid, EqualizedDense, SubpixelConvTranspose,
                                 VideoDiscriminator, adain, instance_norm)  # noqa: F401  (DTVNet's critic)
from tlgen.models.pixels import check_pixels, to_model_range, to_uint8  # noqa: F401  (part of this module's API)

Dtype = Any
Variables = dict


# ----------------------------------------------------------------------------- pure functions

def normalize_motion(motion: jax.Array, eps: float = 1e-5) -> jax.Array:
    """Standardizes each motion vector over its features: (m - mean) / sqrt(var + eps)."""
    return instance_norm(motion.astype(jnp.float32), axes=(-1,), eps=eps)


def sample_motion(rng: jax.Array, batch: int, motion_dim: int) -> jax.Array:
    """Draws `batch` motion vectors from N(0, I) (normalized later by the generator)."""
    return jax.random.normal(rng, (batch, motion_dim), jnp.float32)


def _reflect_pad(x: jax.Array, pad: int) -> jax.Array:
    return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


# ----------------------------------------------------------------------------- layers

def _adain_style_bias(key, shape, dtype=jnp.float32):
    """Bias of the AdaIN style layer: ones for the scale half, zeros for the shift half."""
    half = shape[0] // 2
    return jnp.concatenate([jnp.ones((half,), dtype), jnp.zeros((shape[0] - half,), dtype)])


class ResidualBlock(nn.Module):
    """x + [reflect-pad, 3x3 conv, BN, ReLU, reflect-pad, 3x3 conv, BN](x)."""
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        width = x.shape[-1]
        y = x
        for i in range(2):
            y = nn.Conv(width, (3, 3), padding="VALID", use_bias=False, dtype=self.dtype,
                        name=f"conv{i}")(_reflect_pad(y, 1))
            y = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                             dtype=self.dtype, name=f"bn{i}")(y)
            if i == 0:
                y = nn.relu(y)
        return x + y


class _ConvBNReLU(nn.Module):
    features: int
    kernel: int = 3
    stride: int = 1
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        pad = self.kernel // 2
        x = nn.Conv(self.features, (self.kernel, self.kernel), strides=self.stride,
                    padding=((pad, pad), (pad, pad)), use_bias=False, dtype=self.dtype, name="conv")(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                         dtype=self.dtype, name="bn")(x)
        return nn.relu(x)


# ----------------------------------------------------------------------------- networks

class Generator(nn.Module):
    """Dynamic video generator: (image (B, H, W, 3) in [-1, 1], motion (B, D)) ->
    (video (B, T, H, W, 3) in [-1, 1], flows (B, T, H/2, W/2, 2) in pixels of the half grid).

    H and W must be even. Widths default to the paper's (base 64 -> 128-channel content
    stream, 64-channel motion stream, 96-channel decoder).
    """
    num_frames: int = 32
    base_width: int = 64
    decoder_width: int = 96
    motion_dim: int = 512
    content_blocks: int = 9
    motion_blocks: int = 6
    mapping_layers: int = 3
    style_layers: int = 2
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, image: jax.Array, motion: jax.Array, train: bool = False):
        check_pixels(image, "image", "(B, H, W, 3)")
        if image.shape[1] % 2 or image.shape[2] % 2:
            raise ValueError(f"image height and width must be even, got {image.shape[1:3]}")
        dt, t = self.dtype, self.num_frames
        x = image.astype(dt)
        # Shared encoder -> (B, H/2, W/2, 2 * base).
        x = nn.Conv(self.base_width, (5, 5), padding="VALID", use_bias=False, dtype=dt,
                    name="encoder_conv0")(_reflect_pad(x, 2))
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                                 dtype=dt, name="encoder_bn0")(x))
        x = _ConvBNReLU(2 * self.base_width, stride=2, dtype=dt, name="encoder_down")(x, train)
        shared = _ConvBNReLU(2 * self.base_width, dtype=dt, name="encoder_conv2")(x, train)

        # Content stream.
        content = shared
        for i in range(self.content_blocks):
            content = ResidualBlock(dtype=dt, name=f"content_{i}")(content, train)

        # Motion stream: adaptive motion vectors drive AdaIN after each residual block.
        latent = normalize_motion(motion).astype(dt)
        for i in range(self.mapping_layers):
            latent = nn.leaky_relu(EqualizedDense(self.motion_dim, dtype=dt, name=f"mapping_{i}")(latent), 0.2)
        m = _ConvBNReLU(self.base_width, dtype=dt, name="motion_in")(shared, train)
        for i in range(self.motion_blocks):
            m = ResidualBlock(dtype=dt, name=f"motion_{i}")(m, train)
            style = latent
            for j in range(self.style_layers):
                style = nn.leaky_relu(EqualizedDense(self.motion_dim, dtype=dt, name=f"motion_{i}_adapt_{j}")(style), 0.2)
            style = EqualizedDense(2 * self.base_width, bias_init=_adain_style_bias, dtype=dt,
                                   name=f"motion_{i}_style")(style)
            scale, shift = jnp.split(style, 2, axis=-1)
            m = adain(m, scale, shift)
        flows = nn.leaky_relu(nn.Conv(2 * t, (3, 3), padding=((1, 1), (1, 1)), dtype=dt,
                                      name="to_flows")(m), 0.1)

        # Decoder: fuse content and flows, upsample, emit all frames.
        y = jnp.concatenate([content, flows], axis=-1)
        y = _ConvBNReLU(self.decoder_width, dtype=dt, name="decoder_conv0")(y, train)
        y = _ConvBNReLU(self.decoder_width, dtype=dt, name="decoder_conv1")(y, train)
        y = SubpixelConvTranspose(self.decoder_width, dtype=dt, name="decoder_up")(y)
        y = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                                 dtype=dt, name="decoder_up_bn")(y))
        y = nn.Conv(3 * t, (5, 5), padding="VALID", dtype=dt, name="to_frames")(_reflect_pad(y, 2))
        y = jnp.tanh(y.astype(jnp.float32))

        video = einops.rearrange(y, "b h w (t c) -> b t h w c", c=3)
        flows = einops.rearrange(flows.astype(jnp.float32), "b h w (t c) -> b t h w c", c=2)
        return video, flows


class FlowEncoder(nn.Module):
    """Optical flow encoder: flows (B, T, H, W, 2) in pixels -> normalized motion (B, D)."""
    base_width: int = 32
    max_width: int = 512
    motion_dim: int = 512
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, flows: jax.Array, train: bool = False) -> jax.Array:
        check_pixels(flows, "flows", "(B, T, H, W, 2)", scale="pixels")
        x = Conv3dPyramid(self.base_width, self.max_width, self.max_width, norm="batch",
                          activate_first=False, dtype=self.dtype, name="pyramid")(flows, train)
        x = nn.Dense(self.motion_dim, dtype=self.dtype, name="fc")(x)
        return normalize_motion(x)


# ----------------------------------------------------------------------------- functional API

def generator_from_variables(variables: Variables, dtype: Dtype = jnp.float32) -> Generator:
    """Rebuilds the `Generator` that owns `variables` (its sizes are read off the shapes)."""
    p = variables["params"]
    count = lambda prefix: sum(1 for k in p if k.startswith(prefix) and k[len(prefix):].isdigit())
    return Generator(
        num_frames=p["to_frames"]["kernel"].shape[-1] // 3,
        base_width=p["encoder_conv0"]["kernel"].shape[-1],
        decoder_width=p["decoder_conv0"]["conv"]["kernel"].shape[-1],
        motion_dim=p["mapping_0"]["kernel"].shape[-1],
        content_blocks=count("content_"),
        motion_blocks=count("motion_"),
        mapping_layers=count("mapping_"),
        style_layers=sum(1 for k in p if k.startswith("motion_0_adapt_")),
        dtype=dtype)


def flow_encoder_from_variables(variables: Variables, dtype: Dtype = jnp.float32) -> FlowEncoder:
    """Rebuilds the `FlowEncoder` that owns `variables` (its sizes are read off the shapes)."""
    p = variables["params"]
    return FlowEncoder(base_width=p["pyramid"]["conv0"]["kernel"].shape[-1],
                       max_width=p["pyramid"]["head"]["kernel"].shape[-1],
                       motion_dim=p["fc"]["kernel"].shape[-1], dtype=dtype)


def encode_motion(variables: Variables, flows: jax.Array, dtype: Dtype = jnp.float32) -> jax.Array:
    """Flow-encoder inference: flows (B, T, H, W, 2) in pixels -> normalized motion (B, D).

    `variables` = {"params", "batch_stats"} of a `FlowEncoder` (running BN statistics used).
    """
    return flow_encoder_from_variables(variables, dtype).apply(variables, flows, False)


def generate(variables: Variables, image: jax.Array, motion: jax.Array,
             dtype: Dtype = jnp.float32) -> tuple[jax.Array, jax.Array]:
    """Generator inference: image (B, H, W, 3) in [-1, 1], motion (B, D) ->
    (video (B, T, H, W, 3) in [-1, 1], low-res flows (B, T, H/2, W/2, 2)).

    `variables` = {"params", "batch_stats"} of a `Generator`; `motion` is normalized inside,
    so raw N(0, I) samples and `encode_motion` outputs are both valid.
    """
    return generator_from_variables(variables, dtype).apply(variables, image, motion, False)
