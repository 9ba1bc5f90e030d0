"""Long videos of dynamic scenes (Brooks et al., NeurIPS 2022), the super-resolution stage:
frames `scale` times larger than the low-resolution video's, each made from a window of
2 * context + 1 low-resolution frames around it. Plain Flax, (B, T, H, W, C) layout.

Generator: an alias-free per-frame generator (StyleGAN3-T: modulated 3x3 convolutions,
leaky ReLUs between Kaiser-windowed FIR up- and downsampling, sampling rates, cutoffs and
margins per layer from `layer_specs`) with no constant or Fourier input: every layer takes
the low-resolution window (its frames stacked on the channel axis, replicate-padded to a
square plus a margin, Kaiser-resampled to the layer's sampling rate) concatenated to its
input features. One latent z per video styles every frame. A frame depends only on its
window and z, so a video is upscaled in passes of any length with the same frames.

Discriminator: StyleGAN2's residual discriminator on frame stacks: the low-resolution
frames upsampled (`upsample_linear`) and the high-resolution frames, all stacked on the
channel axis, zero-padded to a square; no minibatch-stddev. The training family zeroes the
low-resolution part for most samples (the paper: 90 %).

    g, d = generator(cfg), discriminator(cfg)             # (`cfg` a config's `model`)
    h, w = cfg.size[0] // cfg.scale, cfg.size[1] // cfg.scale
    lowres = jnp.zeros((1, 2 + 2 * cfg.context, h, w, 3))  # (B, T + 2 context, h, w, 3)
    z = jax.random.normal(key, (1, cfg.z_dim))
    gp = g.init(key, lowres, z)["params"]
    frames = g.apply({"params": gp}, lowres, z)   # (B, T, h * scale, w * scale, 3)
    middle = upsample_linear(lowres[:, cfg.context:-cfg.context], cfg.scale)
    dp = d.init(key, middle, frames)["params"]
    logits = d.apply({"params": dp}, middle, frames)   # (B,)
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import einops
import jax
import jax.numpy as jnp
import numpy as np
import scipy.signal
from flax import linen as nn

from tlgen.models.layers import EqualizedConv, EqualizedDense, modulated_conv, upfirdn
from tlgen.models.long_video import kaiser_taps, pad_square
from tlgen.models.pixels import check_pixels
from tlgen.models.stylegan_v import CLAMP, Mapping, channels, clamp, lrelu, residual_down_block

Dtype = Any


# ----------------------------------------------------------------------------- layer schedule

@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One synthesis layer: channels out, sizes (H, W) in and out, the sampling rate of its
    input, and its filtered leaky ReLU (up/down factors and filters, pads per axis)."""
    features: int
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    in_rate: float
    up: int
    down: int
    up_taps: np.ndarray
    down_taps: np.ndarray
    pads: tuple[tuple[int, int], tuple[int, int]]
    to_rgb: bool


def lowpass(numtaps: int, cutoff: float, width: float, fs: float) -> np.ndarray:
    """A Kaiser-windowed low-pass of unit DC gain; one tap ([1]) is no filter."""
    return np.ones(1) if numtaps == 1 else scipy.signal.firwin(numtaps, cutoff, width=width, fs=fs)


@functools.lru_cache(maxsize=None)
def layer_specs(size: tuple[int, int], channel_base: int, channel_max: int, num_layers: int = 14,
                num_critical: int = 2, margin: int = 10, first_cutoff: float = 2.0,
                first_stopband: float = 2 ** 2.1, last_stopband_rel: float = 2 ** 0.3,
                filter_size: int = 6, lrelu_upsampling: int = 2) -> tuple[LayerSpec, ...]:
    """StyleGAN3-T's schedule for frames of `size` (H, W): num_layers layers + ToRGB. Cutoffs
    grow geometrically from `first_cutoff` to half the resolution max(size) over the
    non-critical layers, sampling rates are the powers of two above twice the stopbands,
    sizes the rate (scaled to the aspect) plus `margin` per side, the last two exactly `size`."""
    if not 0 <= num_critical < num_layers:
        raise ValueError(f"num_critical {num_critical} must be from 0 to num_layers - 1 ({num_layers - 1})")
    res = max(size)
    e = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1.0)
    cutoffs = first_cutoff * (res / 2 / first_cutoff) ** e
    stopbands = first_stopband * (res / 2 * last_stopband_rel / first_stopband) ** e
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, res))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = [tuple(int(np.ceil(r * s / res)) + 2 * margin for s in size) for r in rates]
    sizes[-2:] = [tuple(size)] * 2
    feats = np.rint(np.minimum(channel_base / 2 / cutoffs, channel_max)).astype(int)
    specs = []
    for i in range(num_layers + 1):
        j = max(i - 1, 0)
        rgb = i == num_layers
        tmp = max(rates[j], rates[i]) * (1 if rgb else lrelu_upsampling)
        up, down = int(np.rint(tmp / rates[j])), int(np.rint(tmp / rates[i]))
        up_n = filter_size * up if up > 1 and not rgb else 1
        down_n = filter_size * down if down > 1 and not rgb else 1
        kernel = 1 if rgb else 3
        pads = []
        for a in range(2):
            total = ((sizes[i][a] - 1) * down + 1 - (sizes[j][a] + kernel - 1) * up + up_n + down_n - 2)
            lo = (total + up) // 2
            pads.append((lo, total - lo))
        specs.append(LayerSpec(
            features=3 if rgb else int(feats[i]), in_size=sizes[j], out_size=sizes[i],
            in_rate=float(rates[j]), up=up, down=down,
            up_taps=lowpass(up_n, cutoffs[j], half_widths[j] * 2, tmp),
            down_taps=lowpass(down_n, cutoffs[i], half_widths[i] * 2, tmp),
            pads=tuple(pads), to_rgb=rgb))
    return tuple(specs)


# ----------------------------------------------------------------------------- conditioning

def kaiser_resample(x: jax.Array, rate: float) -> jax.Array:
    """(N, H, W, C) resampled by `rate` (a power of two, or 1) with the Kaiser low-pass of
    `kaiser_taps`, edges replicated: down by s = 1 / rate or up by s = rate."""
    if rate == 1:
        return x
    s = int(round(1 / rate if rate < 1 else rate))
    taps = kaiser_taps(s)
    n = len(taps)
    if rate < 1:
        x = jnp.pad(x, ((0, 0), (s, s), (s, s), (0, 0)), mode="edge")
        pad = ((n - s + 1) // 2, (n - s) // 2)
        return upfirdn(x, taps, down=s, pads=[pad, pad])[:, 1:-1, 1:-1]
    x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    pad = ((n + s - 1) // 2, (n - s) // 2)
    return upfirdn(x, taps, up=s, pads=[pad, pad], gain=s * s)[:, s:-s, s:-s]


def fit(x: jax.Array, size: tuple[int, int]) -> jax.Array:
    """(N, H, W, C) centre-cropped to `size` where larger, edge-replicated around where smaller."""
    for axis, target in zip((1, 2), size):
        n = x.shape[axis]
        if n > target:
            x = jax.lax.slice_in_dim(x, (n - target) // 2, (n - target) // 2 + target, axis=axis)
        elif n < target:
            pad = [(0, 0)] * 4
            pad[axis] = ((target - n) // 2, target - n - (target - n) // 2)
            x = jnp.pad(x, pad, mode="edge")
    return x


def windows(lowres: jax.Array, context: int) -> jax.Array:
    """(B, T + 2 context, h, w, C) -> (B * T, h, w, C * (2 context + 1)): frame t's window
    t .. t + 2 context stacked on the channel axis."""
    span = 2 * context + 1
    t = lowres.shape[1] - 2 * context
    stacked = jnp.stack([lowres[:, s:s + t] for s in range(span)], axis=-1)
    return einops.rearrange(stacked, "b t h w c s -> (b t) h w (c s)")


def downsample_area(frames: jax.Array, scale: int) -> jax.Array:
    """uint8 frames (..., H, W, C) reduced `scale` times by area averaging, rounded: the
    low-resolution frames of `tlgen prepare --size` (OpenCV's INTER_AREA) for a whole factor."""
    mean = einops.reduce(jnp.asarray(frames, jnp.float32), "... (h a) (w b) c -> ... h w c", "mean",
                         a=scale, b=scale)
    return jnp.round(mean).astype(jnp.uint8)


def upsample_linear(x: jax.Array, scale: int) -> jax.Array:
    """Frames (..., h, w, C) upsampled `scale` times in space by linear interpolation (StyleGAN's
    zero-stuffing + triangle filter, zeros beyond the border): (..., h * scale, w * scale, C)."""
    half = np.arange(1, 2 * scale, 2, dtype=np.float64)
    taps = np.concatenate([half, half[::-1]]) / (2 * scale * scale)
    x, lead = einops.pack([x], "* h w c")
    n = len(taps)
    pad = ((n + scale - 1) // 2, (n - scale) // 2)
    y = upfirdn(x, taps, up=scale, pads=[pad, pad], gain=scale * scale)
    return einops.unpack(y, lead, "* h w c")[0]


# ----------------------------------------------------------------------------- generator

class Generator(nn.Module):
    """(lowres (B, T + 2 context, h, w, 3) in [-1, 1], z (B, z_dim)) -> frames (B, T, H, W, 3),
    (H, W) = `size` = scale * (h, w)."""
    size: tuple[int, int] = (144, 256)
    scale: int = 4
    context: int = 4
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 2
    channel_base: int = 32768
    channel_max: int = 512
    num_layers: int = 14
    margin: int = 10
    output_scale: float = 0.25
    dtype: Dtype = jnp.float32

    @property
    def lowres_size(self) -> tuple[int, int]:
        """(h, w) of the low-resolution frames."""
        return tuple(s // self.scale for s in self.size)

    def specs(self) -> tuple[LayerSpec, ...]:
        """The layers' sizes, sampling rates and filters (`layer_specs`)."""
        return layer_specs(tuple(self.size), self.channel_base, self.channel_max, self.num_layers,
                           margin=self.margin)

    @nn.compact
    def __call__(self, lowres: jax.Array, z: jax.Array) -> jax.Array:
        check_pixels(lowres, "lowres", "(B, T, h, w, 3)")
        if lowres.shape[1] < 2 * self.context + 1:
            raise ValueError(f"lowres has {lowres.shape[1]} frames; each output frame needs "
                             f"{self.context} low-res frames of context on either side, so give "
                             f"at least {2 * self.context + 1}.")
        b, t_in, h, w, _ = lowres.shape
        if (h, w) != self.lowres_size:
            raise ValueError(f"low-resolution frames are {h}x{w}, the generator takes "
                             f"{self.lowres_size[0]}x{self.lowres_size[1]}")
        t = t_in - 2 * self.context
        edge = max(h, w)
        cond = windows(lowres.astype(self.dtype), self.context)
        cond = pad_square(cond, edge, margin=self.margin, mode="edge")
        w_all = jnp.repeat(Mapping(self.w_dim, self.mapping_layers, dtype=self.dtype, name="mapping")(z), t, axis=0)
        resampled = {}
        x = None
        for i, spec in enumerate(self.specs()):
            if spec.in_rate not in resampled:
                resampled[spec.in_rate] = kaiser_resample(cond, spec.in_rate / edge)
            c = fit(resampled[spec.in_rate], spec.in_size)
            x = c if x is None else jnp.concatenate([x, c], axis=-1)
            cin = x.shape[-1]
            styles = EqualizedDense(cin, gain=1.0, bias_init=nn.initializers.ones, dtype=self.dtype,
                                    name=f"layer{i}_affine")(w_all)
            k = 1 if spec.to_rgb else 3
            kernel = self.param(f"layer{i}_kernel", nn.initializers.normal(1.0), (k, k, cin, spec.features))
            bias = self.param(f"layer{i}_bias", nn.initializers.zeros, (spec.features,)).astype(self.dtype)
            if spec.to_rgb:
                x = modulated_conv(x, kernel, styles / math.sqrt(cin), demodulate=False)
                x = clamp(x + bias, CLAMP)
                continue
            x = modulated_conv(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), kernel, styles)
            x = upfirdn(x + bias, spec.up_taps, up=spec.up, pads=spec.pads, gain=spec.up ** 2)
            x = clamp(lrelu(x), CLAMP)
            x = upfirdn(x, spec.down_taps, down=spec.down)
        x = x * self.output_scale
        return einops.rearrange(x, "(b t) h w c -> b t h w c", b=b).astype(jnp.float32)


# ----------------------------------------------------------------------------- discriminator

class Discriminator(nn.Module):
    """(lowres upsampled (B, F, H, W, 3), frames (B, F, H, W, 3)) in [-1, 1] -> one fp32 logit
    per sample (B,); the 6 F channels zero-padded to a square, its side the power of two from
    max(H, W) (at least 8)."""
    channel_base: int = 16384
    channel_max: int = 512
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, lowres_up: jax.Array, frames: jax.Array) -> jax.Array:
        check_pixels(frames, "frames", "(B, T, H, W, 3)")
        check_pixels(lowres_up, "lowres_up", "(B, T, H, W, 3)")
        x = einops.rearrange(jnp.concatenate([lowres_up, frames], axis=-1), "b f h w c -> b h w (c f)")
        _, h, w, _ = x.shape
        res = max(8, 1 << (max(h, w) - 1).bit_length())
        x = pad_square(x.astype(self.dtype), res)
        ch = lambda r: channels(r, self.channel_base, self.channel_max)
        conv = lambda n, k, name, **kw: EqualizedConv(n, k, gain=1.0, dtype=self.dtype, name=name, **kw)
        x = clamp(lrelu(conv(ch(res), 1, "fromrgb")(x)), CLAMP)       # the public clamps at any precision
        while res > 4:
            x = residual_down_block(conv, x, f"b{res}", ch(res), ch(res // 2), CLAMP)
            res //= 2
        x = clamp(lrelu(conv(ch(4), 3, "b4_conv")(x)), CLAMP)
        x = lrelu(EqualizedDense(ch(4), gain=1.0, dtype=self.dtype, name="b4_fc")(
            einops.rearrange(x, "b h w c -> b (h w c)")))
        return EqualizedDense(1, gain=1.0, dtype=self.dtype, name="b4_out")(x)[:, 0].astype(jnp.float32)


# ----------------------------------------------------------------------------- from configs

def generator(cfg, dtype: Dtype = jnp.float32) -> Generator:
    """The generator of `config.model`."""
    return Generator(size=tuple(cfg.size), scale=int(cfg.scale), context=int(cfg.context),
                     z_dim=int(cfg.z_dim), w_dim=int(cfg.w_dim), mapping_layers=int(cfg.mapping_layers),
                     channel_base=int(cfg.channel_base), channel_max=int(cfg.channel_max),
                     num_layers=int(cfg.num_layers), margin=int(cfg.margin), dtype=dtype)


def discriminator(cfg, dtype: Dtype = jnp.float32) -> Discriminator:
    """The discriminator of `config.model`."""
    return Discriminator(channel_base=int(cfg.d_channel_base), channel_max=int(cfg.channel_max), dtype=dtype)
