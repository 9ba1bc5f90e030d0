"""Long videos of dynamic scenes (Brooks et al., NeurIPS 2022), the low-resolution stage: a
video generator whose temporal latents carry change over hundreds to thousands of frames,
and a discriminator of whole clips. Plain Flax, (B, T, H, W, C) layout, no custom kernels.

Temporal latents: white noise (`noise_channels` per frame) low-pass filtered by a bank of
Kaiser-windowed filters with log-spaced cutoff periods (`filter_bank`, applied by FFT),
each normalized to unit variance, then a per-frame mapping MLP -> w(t). Coarse layers take
w(t) downsampled in time by a Kaiser low-pass (`kaiser_downsample2`).

Generator: a learned spatial input plus a per-frame linear map of the coarsest w; temporal
3-D residual blocks (modulated 3x3x3 convolutions whose styles vary per frame, linear 2x
upsampling in time and/or space) then spatial blocks (1x3x3) and a modulated 1x1 to RGB.
Every temporal level carries a margin of frames on each side (`margins`) that its zero
padding may corrupt and that is cropped away, so the frames a call returns do not depend on
where the call starts: a video of any length is made chunk by chunk, the same frames as in
one pass, when chunks start at multiples of `time_scale` and the noise is drawn by global
frame index (`temporal_noise`).

Discriminator: the clip zero-padded to a square, 3-D residual blocks halving space (and
time after the first), then the features of each remaining frame flattened, a 1-D conv
stack over time and two dense layers -> one logit per clip (its length is fixed).

    g = generator(cfg)                                   # (`cfg` a config's `model`)
    frames = 2 * g.time_scale
    d = discriminator(cfg, frames)
    noise = temporal_noise(key, g.first_noise(0), g.noise_length(frames), g.noise_channels)
    gp = g.init(key, noise, frames)["params"]
    video = g.apply({"params": gp}, noise, frames)      # (1, frames, H, W, 3), about [-1, 1]
    dp = d.init(key, video)["params"]
    logits = d.apply({"params": dp}, video)              # (1,)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import einops
import jax
import jax.numpy as jnp
import numpy as np
import scipy.signal
from flax import linen as nn

from tlgen.models.layers import EqualizedDense, conv3d, downsample2, upfirdn, upsample2_fir
from tlgen.models.pixels import check_pixels
from tlgen.models.stylegan_v import CLAMP, Mapping, clamp, lrelu

Dtype = Any
NOISE_BLOCK = 256     # frames of noise drawn from one key (chunks draw whole blocks)


# ----------------------------------------------------------------------------- temporal latents

@functools.lru_cache(maxsize=None)
def filter_bank(count: int, min_period: float, max_period: float) -> np.ndarray:
    """(count, taps) float64 low-pass filters, filter i cutting off at a period of p_i frames,
    p_i log-spaced from min_period to max_period: a Kaiser-windowed sinc of ceil(p_i) taps and
    transition width 6 / p_i cycles per frame (`scipy.signal.firwin`), scaled to unit L2
    norm (white noise of unit variance in, unit variance out), in the last ceil(p_i) of
    `taps` = ceil(max_period) columns, as the public code aligns them (so filters of different
    lengths see different stretches of the noise and their outputs are nearly uncorrelated)."""
    periods = np.clip(2.0 ** np.linspace(np.log2(min_period), np.log2(max_period), count),
                      min_period, max_period)        # 2 ** log2(300) is 300.0000000000001
    taps = int(math.ceil(max_period))
    bank = np.zeros((count, taps))
    for i, p in enumerate(periods):
        n = int(math.ceil(p))
        f = scipy.signal.firwin(n, 1.0 / p, width=6.0 / p, fs=1.0)
        bank[i, taps - n:] = f / np.linalg.norm(f)
    bank.flags.writeable = False                 # cached: one array for every caller
    return bank


def filter_noise(noise: jax.Array, bank: np.ndarray) -> jax.Array:
    """noise (B, L + taps - 1, C) -> (B, L, C * count): every channel through every filter
    (valid cross-correlation, by FFT; channel c * count + i is channel c through filter i)."""
    count, taps = bank.shape
    b, n, c = noise.shape
    size = 1 << (n - 1).bit_length()
    spectrum = np.fft.rfft(bank[:, ::-1], size).astype(np.complex64)           # (count, F)
    x = jnp.fft.rfft(noise.astype(jnp.float32), size, axis=1)                  # (B, F, C)
    y = jnp.fft.irfft(x[:, :, :, None] * spectrum.T[None, :, None, :], size, axis=1)
    return y[:, taps - 1:n].reshape(b, n - taps + 1, c * count)


def temporal_noise(key: jax.Array, first, count: int, channels: int) -> jax.Array:
    """(1, count, channels) white noise of global frame indices first..first+count-1: frames
    [k * NOISE_BLOCK, (k + 1) * NOISE_BLOCK) come from `fold_in(key, k)`, so a frame's noise
    is the same whichever window it is drawn in. `first` may be traced; `count` is static."""
    first = jnp.asarray(first, jnp.int32)
    block0 = jnp.floor_divide(first, NOISE_BLOCK)
    blocks = -(-count // NOISE_BLOCK) + 1
    draws = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(key, k), (NOISE_BLOCK, channels)))(
        block0 + jnp.arange(blocks))
    flat = draws.reshape(blocks * NOISE_BLOCK, channels)
    return jax.lax.dynamic_slice_in_dim(flat, first - block0 * NOISE_BLOCK, count)[None]


@functools.lru_cache(maxsize=None)
def kaiser_taps(scale: int = 2) -> np.ndarray:
    """The 6 * scale-tap Kaiser low-pass of resampling by `scale` (cutoff 1 / (2 scale) cycle
    per sample of the finer rate, unit DC gain)."""
    taps = scipy.signal.firwin(6 * scale, 1.0, width=6.0, fs=4.0 * scale)
    taps.flags.writeable = False                 # cached: one array for every caller
    return taps


def kaiser_downsample2(x: jax.Array, axis: int = 1) -> jax.Array:
    """2x downsampling along `axis` by the 12-tap Kaiser low-pass, zero padded (5, 5): sample k
    sits between inputs 2k and 2k+1. Length L (even) -> L / 2."""
    return upfirdn(x, kaiser_taps(2), down=2, pads=[(5, 5)], axes=(axis,))


# ----------------------------------------------------------------------------- generator layers

def pad_square(x: jax.Array, edge: int, axes=(1, 2), margin: int = 0, mode: str = "constant") -> jax.Array:
    """`x` padded around its centre along the two `axes` (H, W) to edge + 2 margin each (zeros,
    or `mode` as `jnp.pad` takes it)."""
    pad = [(0, 0)] * x.ndim
    for axis in axes:
        n = x.shape[axis]
        pad[axis] = ((edge - n) // 2 + margin, edge - n - (edge - n) // 2 + margin)
    return jnp.pad(x, pad, mode=mode)


def center_crop(x: jax.Array, size: int, axis: int) -> jax.Array:
    """The middle `size` entries of `axis` (the first (len - size) // 2 dropped)."""
    start = (x.shape[axis] - size) // 2
    return jax.lax.slice_in_dim(x, start, start + size, axis=axis)


def modulated_conv3d(x: jax.Array, kernel: jax.Array, styles: jax.Array, *, demodulate: bool = True,
                     eps: float = 1e-8) -> jax.Array:
    """x (B, T, H, W, Cin) scaled per frame and channel by `styles` (B, T, Cin), convolved with
    `kernel` (kt, kh, kw, Cin, Cout) (zero "same" padding), each output frame's channels
    divided by the norm of the kernel modulated by that frame's styles (`demodulate`)."""
    kt, kh, kw, cin, _ = kernel.shape
    kernel = kernel * (1.0 / math.sqrt(kt * kh * kw * cin))
    y = conv3d(x * styles[:, :, None, None, :].astype(x.dtype), kernel.astype(x.dtype),
               padding=((kt // 2, kt // 2), (kh // 2, kh // 2), (kw // 2, kw // 2)))
    if demodulate:
        sq = jnp.sum(jnp.square(kernel.astype(jnp.float32)), axis=(0, 1, 2))          # (Cin, Cout)
        y = y * jax.lax.rsqrt(jnp.square(styles.astype(jnp.float32)) @ sq + eps)[:, :, None, None].astype(y.dtype)
    return y


class ResBlock3d(nn.Module):
    """Modulated residual block: two modulated convs (kt x 3 x 3) and a 1x1 skip, summed /
    sqrt(2), then 2x linear upsampling in time (`time_up`) and space (`space_up`), centre
    crops to `out_time` frames and `out_size`, bias and leaky ReLU (clamped to +-256).
    w (B, T, w_dim) is the latent at the input's frames."""
    features: int
    kernel_time: int
    time_up: bool
    space_up: bool
    out_time: int
    out_size: tuple[int, int]
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
        cin, kt = x.shape[-1], self.kernel_time
        affine = lambda name: EqualizedDense(cin, bias_init=nn.initializers.ones, gain=1.0,
                                             dtype=jnp.float32, name=name)
        normal = nn.initializers.normal(1.0)
        k0 = self.param("conv0", normal, (kt, 3, 3, cin, cin))
        k1 = self.param("conv1", normal, (kt, 3, 3, cin, self.features))
        skip = self.param("skip", normal, (cin, self.features))
        b0 = self.param("bias0", nn.initializers.zeros, (cin,))
        b1 = self.param("bias1", nn.initializers.zeros, (self.features,))
        h = modulated_conv3d(x, k0, affine("affine0")(w))
        h = clamp(lrelu(h + b0.astype(h.dtype)), CLAMP)
        h = modulated_conv3d(h, k1, affine("affine1")(w))
        h = (h + x @ (skip / math.sqrt(cin)).astype(x.dtype)) * jnp.asarray(math.sqrt(0.5), h.dtype)
        if self.time_up:
            h = upsample2_fir(h, axes=(1,))
        h = center_crop(h, self.out_time, 1)
        if self.space_up:
            h = upsample2_fir(h, axes=(2, 3))
        h = center_crop(center_crop(h, self.out_size[0], 2), self.out_size[1], 3)
        return clamp(lrelu(h + b1.astype(h.dtype)), CLAMP)


class ToRGB(nn.Module):
    """Modulated 1x1 conv to RGB (no demodulation), bias, clamp, times `output_scale`."""
    output_scale: float = 0.25

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
        cin = x.shape[-1]
        styles = EqualizedDense(cin, bias_init=nn.initializers.ones, gain=1.0, name="affine")(w)
        kernel = self.param("kernel", nn.initializers.normal(1.0), (1, 1, 1, cin, 3))
        bias = self.param("bias", nn.initializers.zeros, (3,))
        y = modulated_conv3d(x, kernel, styles, demodulate=False)
        return clamp(y + bias.astype(y.dtype), CLAMP) * self.output_scale


class Generator(nn.Module):
    """Temporal noise (B, noise_length(frames), noise_channels) -> video (B, frames, H, W, 3);
    `frames` a multiple of `time_scale` (2 ** temporal upsamplings)."""
    size: tuple[int, int] = (36, 64)
    input_channels: int = 512
    temporal_channels: Sequence[int] = (512, 512, 512, 512, 256, 256)
    temporal_time_up: Sequence[bool] = (True, True, True, True, True, False)
    temporal_space_up: Sequence[bool] = (False, True, False, True, False, False)
    spatial_channels: Sequence[int] = (128, 128, 64, 64)
    spatial_space_up: Sequence[bool] = (True, False, True, False)
    kernel_time: int = 3
    latent_dim: int = 1024
    filters: int = 128
    min_period: float = 125.0
    max_period: float = 5000.0
    mapping_layers: int = 2
    padding: int = 8
    dtype: Dtype = jnp.float32

    @property
    def time_scale(self) -> int:
        """Output frames per temporal latent: 2 per temporal upsampling."""
        return 2 ** sum(map(bool, self.temporal_time_up))

    def whole_scales(self, frames: int) -> int:
        """`frames` rounded up to a multiple of the time scale (what one call can make)."""
        return -(-frames // self.time_scale) * self.time_scale

    @property
    def noise_channels(self) -> int:
        """White-noise channels: each goes through every filter of the bank."""
        if self.latent_dim % self.filters:
            raise ValueError(f"latent_dim {self.latent_dim} is not a multiple of filters {self.filters}")
        return self.latent_dim // self.filters

    def margins(self) -> list[int]:
        """Frames of margin on each side of each temporal block's input, at its own rate: the
        next block's margin (upsampled: halved, rounded up) plus `padding`, 0 after the last."""
        out, found = 0, []
        for up in reversed(self.temporal_time_up):
            out = (-(-out // 2) if up else out) + self.padding
            found.append(out)
        return found[::-1]

    def rates(self) -> list[int]:
        """Output frames per input frame of each temporal block's input (time_scale ... 1)."""
        rate, found = self.time_scale, []
        for up in self.temporal_time_up:
            found.append(rate)
            rate //= 2 if up else 1
        return found

    def latent_margin(self) -> int:
        """Frames of latent w(t) on each side of a call's frames: enough that every block's
        latent, after the Kaiser downsamplings' zero-padded borders, is the same as in any
        other window; a multiple of time_scale (the downsampling grid)."""
        need = max(r * (m + 8) for r, m in zip(self.rates(), self.margins()))
        return -(-need // self.time_scale) * self.time_scale

    def bank(self) -> np.ndarray:
        """The low-pass filter bank of the temporal latents (`filter_bank`)."""
        return filter_bank(self.filters, self.min_period, self.max_period)

    def noise_length(self, frames: int) -> int:
        """Noise frames a call making `frames` frames takes."""
        return frames + 2 * self.latent_margin() + self.bank().shape[1] - 1

    def first_noise(self, first_frame):
        """Global index of the first noise frame of a call whose first frame is `first_frame`
        (frame n's latent filters noise n - taps + 1 - margin ... n + margin)."""
        return first_frame - self.latent_margin() - (self.bank().shape[1] - 1)

    def sizes(self) -> list[tuple[int, int]]:
        """(H, W) at each spatial scale, coarsest first: ceil(size / 2^k)."""
        ups = sum(map(bool, self.temporal_space_up)) + sum(map(bool, self.spatial_space_up))
        return [tuple(-(-s // 2 ** k) for s in self.size) for k in range(ups, -1, -1)]

    @nn.compact
    def __call__(self, noise: jax.Array, frames: int) -> jax.Array:
        s = self.time_scale
        if frames % s:
            raise ValueError(f"frames {frames} is not a multiple of the time scale {s}")
        mapping = Mapping(self.latent_dim, self.mapping_layers, dtype=jnp.float32, name="mapping")
        w = mapping(filter_noise(noise, self.bank()))                        # (B, frames + 2M, D)
        margin = self.latent_margin()
        if w.shape[1] != frames + 2 * margin:
            raise ValueError(f"noise of {noise.shape[1]} frames; {frames} frames need "
                             f"{self.noise_length(frames)}")
        # Each temporal block's latent: w at its input rate, centred on the call's frames.
        latents, rate, coarse = [], 1, w
        margins, rates = self.margins(), self.rates()
        for r, m in zip(reversed(rates), reversed(margins)):
            while rate < r:
                coarse, rate = kaiser_downsample2(coarse), rate * 2
            latents.append(center_crop(coarse, frames // r + 2 * m, 1))
        latents = latents[::-1]
        sizes = self.sizes()
        first = EqualizedDense(self.input_channels, gain=1.0, name="temporal_input")(latents[0])
        spatial = self.param("spatial_input", nn.initializers.normal(1.0),
                             sizes[0] + (self.input_channels,))
        x = ((first[:, :, None, None, :] + spatial) * math.sqrt(0.5)).astype(self.dtype)
        level = 0
        last = len(self.temporal_channels) - 1
        for i, (c, tu, su) in enumerate(zip(self.temporal_channels, self.temporal_time_up,
                                            self.temporal_space_up)):
            level += bool(su)
            out_time = frames if i == last else frames // (rates[i] // (2 if tu else 1)) + 2 * margins[i + 1]
            x = ResBlock3d(c, self.kernel_time, bool(tu), bool(su), out_time, sizes[level],
                           self.dtype, name=f"temporal{i}")(x, latents[i])
        w_frames = center_crop(w, frames, 1)
        for i, (c, su) in enumerate(zip(self.spatial_channels, self.spatial_space_up)):
            level += bool(su)
            x = ResBlock3d(c, 1, False, bool(su), frames, sizes[level], self.dtype,
                           name=f"spatial{i}")(x, w_frames)
        return ToRGB(name="to_rgb")(x, w_frames).astype(jnp.float32)


# ----------------------------------------------------------------------------- discriminator

class DBlock3d(nn.Module):
    """Residual block: conv (kt x 3 x 3) + lrelu, conv + 2x blur-downsampling (space, and
    time with `time_down`) + lrelu, plus a downsampled 1x1 skip without bias; / sqrt(2)."""
    features: int
    kernel_time: int
    time_down: bool
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cin, kt = x.shape[-1], self.kernel_time
        axes = (1, 2, 3) if self.time_down else (2, 3)

        def conv(v, cout, k, name, bias=True):
            kernel = self.param(f"{name}_kernel", nn.initializers.normal(1.0), (k, 3, 3, cin, cout))
            y = conv3d(v, (kernel / math.sqrt(k * 9 * cin)).astype(self.dtype),
                       padding=((k // 2, k // 2), (1, 1), (1, 1)))
            return y, self.param(f"{name}_bias", nn.initializers.zeros, (cout,)).astype(self.dtype)

        h, b = conv(x, cin, kt, "conv0")
        h = clamp(lrelu(h + b), CLAMP)
        h, b = conv(h, self.features, kt, "conv1")
        h = clamp(lrelu(downsample2(h, axes) + b), CLAMP)
        skip = self.param("skip", nn.initializers.normal(1.0), (cin, self.features))
        s = clamp(downsample2(x, axes) @ (skip / math.sqrt(cin)).astype(self.dtype), CLAMP)
        return (h + s) * jnp.asarray(math.sqrt(0.5), h.dtype)


class Discriminator(nn.Module):
    """Clip (B, frames, H, W, 3) in [-1, 1] -> one fp32 logit per clip (B,)."""
    frames: int = 128
    max_edge: int = 64
    input_channels: int = 32
    channels: Sequence[int] = (64, 128, 256, 512)
    kernel_time: int = 5
    head_channels: int = 1024
    head_convs: int = 4
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, video: jax.Array) -> jax.Array:
        check_pixels(video, "video", "(B, T, H, W, 3)")
        b, t, h, w, _ = video.shape
        if t != self.frames:
            raise ValueError(f"the discriminator takes clips of {self.frames} frames, not {t}")
        if max(h, w) > self.max_edge:
            raise ValueError(f"frames of {h}x{w} px: the discriminator takes up to {self.max_edge} px "
                             "a side (max_edge)")
        x = pad_square(video.astype(self.dtype), self.max_edge, axes=(2, 3))
        x = clamp(lrelu(EqualizedDense(self.input_channels, gain=1.0, dtype=self.dtype,
                                       name="from_rgb")(x)), CLAMP)
        for i, c in enumerate(self.channels):
            x = DBlock3d(c, 1 if i == 0 else self.kernel_time, i > 0, self.dtype, name=f"block{i}")(x)
        x = einops.rearrange(x, "b t h w c -> b t (h w c)")
        for i in range(self.head_convs):
            k = 1 if i == 0 else 3
            kernel = self.param(f"head{i}_kernel", nn.initializers.normal(1.0),
                                (k, 1, 1, x.shape[-1], self.head_channels))
            y = conv3d(x[:, :, None, None], (kernel / math.sqrt(k * x.shape[-1])).astype(self.dtype),
                       padding=((k // 2, k // 2), (0, 0), (0, 0)))[:, :, 0, 0]
            x = lrelu(y + self.param(f"head{i}_bias", nn.initializers.zeros,
                                     (self.head_channels,)).astype(self.dtype))
        x = lrelu(EqualizedDense(self.head_channels, gain=1.0, dtype=self.dtype,
                                 name="fc")(x.reshape(b, -1)))
        return EqualizedDense(1, gain=1.0, dtype=self.dtype, name="out")(x)[:, 0].astype(jnp.float32)


# ----------------------------------------------------------------------------- from configs

def generator(cfg, dtype: Dtype = jnp.float32) -> Generator:
    """The generator of `config.model`."""
    return Generator(
        size=tuple(cfg.size), input_channels=int(cfg.input_channels),
        temporal_channels=tuple(cfg.temporal_channels), temporal_time_up=tuple(cfg.temporal_time_up),
        temporal_space_up=tuple(cfg.temporal_space_up), spatial_channels=tuple(cfg.spatial_channels),
        spatial_space_up=tuple(cfg.spatial_space_up), kernel_time=int(cfg.kernel_time),
        latent_dim=int(cfg.latent_dim), filters=int(cfg.filters), min_period=float(cfg.min_period),
        max_period=float(cfg.max_period), mapping_layers=int(cfg.mapping_layers),
        padding=int(cfg.padding), dtype=dtype)


def discriminator(cfg, frames: int, dtype: Dtype = jnp.float32) -> Discriminator:
    """The discriminator of `config.model` for clips of `frames` frames."""
    return Discriminator(frames=frames, max_edge=max(cfg.size), input_channels=int(cfg.d_input_channels),
                         channels=tuple(cfg.d_channels), kernel_time=int(cfg.d_kernel_time),
                         head_channels=int(cfg.d_head_channels), head_convs=int(cfg.d_head_convs),
                         dtype=dtype)
