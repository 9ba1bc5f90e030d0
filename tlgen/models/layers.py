"""Layers shared by the model families (pure Flax linen, NHWC / NTHWC).

* normalization: `instance_norm`, `adain` (adaptive instance norm), `group_norm` /
  `GroupNorm` (the fast form of `flax.linen.GroupNorm`), `FrozenBatchNorm` (inference-only
  batch norm of pretrained networks);
* equalized learning rate (ProGAN/StyleGAN): `EqualizedDense`, `EqualizedConv` (optionally
  StyleGAN2's downsampling conv);
* style modulation (StyleGAN2): `modulated_conv`, `minibatch_stddev`;
* resampling: `upsample2` (nearest, by broadcasting), `resize_bilinear` (PyTorch's bilinear
  interpolation), `SubpixelConvTranspose` / `conv_transpose2x` (a 3x3 stride-2 transposed
  conv as a 2x2 conv + depth-to-space), StyleGAN2's `fir_blur`, `upsample2_fir`, `downsample2`,
  Haar wavelet `haar_pool` / `haar_unpool` (WCT²);
* video: `Conv3d` (a 3-D conv folded into 2-D convs), `conv2d` (a 2-D conv on XLA:CPU's fast
  path, gradients of gradients included), `Conv3dPyramid` and `VideoDiscriminator`.
"""

from __future__ import annotations

import math
from typing import Any

import einops
import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

Dtype = Any


# ----------------------------------------------------------------------------- normalization

def instance_norm(x: jax.Array, axes: tuple[int, ...], eps: float = 1e-5,
                  mask: jax.Array | None = None) -> jax.Array:
    """Normalizes `x` to zero mean / unit variance over `axes` (no learned scale/shift).

    With `mask` (x's shape without the channel axis, 0/1) the statistics are over the masked
    positions only (none: mean 0, variance 0)."""
    x32 = x.astype(jnp.float32)
    if mask is None:
        mean = jnp.mean(x32, axis=axes, keepdims=True)
        var = jnp.mean(jnp.square(x32 - mean), axis=axes, keepdims=True)
    else:
        w = mask[..., None].astype(jnp.float32)
        count = jnp.maximum(jnp.sum(w, axis=axes, keepdims=True), 1.0)
        mean = jnp.sum(x32 * w, axis=axes, keepdims=True) / count
        var = jnp.sum(jnp.square(x32 - mean) * w, axis=axes, keepdims=True) / count
    return ((x32 - mean) * jax.lax.rsqrt(var + eps)).astype(x.dtype)


def adain(x: jax.Array, scale: jax.Array, shift: jax.Array, eps: float = 1e-5) -> jax.Array:
    """Adaptive instance norm: scale * instance_norm(x) + shift.

    x: (B, H, W, C); scale, shift: (B, C). Statistics over H, W per sample and channel.
    """
    normalized = instance_norm(x, axes=(1, 2), eps=eps)
    return scale[:, None, None, :].astype(x.dtype) * normalized + shift[:, None, None, :].astype(x.dtype)


def group_norm(x: jax.Array, scale: jax.Array, bias: jax.Array, groups: int,
               eps: float = 1e-6) -> jax.Array:
    """Group normalization of (N, ..., C) over all positions and the channels of each group.

    Same values as `flax.linen.GroupNorm` (statistics in float32, variance as
    E[x^2] - E[x]^2), computed as two per-channel sums over positions followed by a
    tiny per-group sum: on CPU this ran 7.6x faster forward and 1.9x forward+backward
    than the (positions, channels-in-group) reduction of the library layer (bench/NOTES.md).
    """
    n, c = x.shape[0], x.shape[-1]
    x32 = x.astype(jnp.float32).reshape(n, -1, c)
    count = x32.shape[1] * (c // groups)
    mean = jnp.sum(x32, axis=1).reshape(n, groups, -1).sum(-1) / count         # (N, G)
    mean_sq = jnp.sum(x32 * x32, axis=1).reshape(n, groups, -1).sum(-1) / count
    inv = jax.lax.rsqrt(jnp.maximum(mean_sq - mean * mean, 0.0) + eps)
    mul = jnp.repeat(inv, c // groups, axis=1) * scale                          # (N, C)
    add = bias - jnp.repeat(mean, c // groups, axis=1) * mul
    shape = (n,) + (1,) * (x.ndim - 2) + (c,)
    return x32.reshape(x.shape) * mul.reshape(shape) + add.reshape(shape)


class GroupNorm(nn.Module):
    """`group_norm` with learned per-channel scale and bias (the parameters of
    `flax.linen.GroupNorm`: "scale" ones, "bias" zeros, float32); output in `dtype`."""
    num_groups: int
    dtype: Any = jnp.float32
    epsilon: float = 1e-6

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
        return group_norm(x, scale, bias, self.num_groups, self.epsilon).astype(self.dtype)


class FrozenBatchNorm(nn.Module):
    """Batch norm with fixed statistics (pretrained networks, inference only): parameters
    "scale", "bias", "mean", "var", all in "params" (PyTorch: weight, bias, running_mean,
    running_var)."""
    epsilon: float = 1e-3

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
        mean = self.param("mean", nn.initializers.zeros, (c,), jnp.float32)
        var = self.param("var", nn.initializers.ones, (c,), jnp.float32)
        mul = scale * jax.lax.rsqrt(var + self.epsilon)
        return x * mul.astype(x.dtype) + (bias - mean * mul).astype(x.dtype)


# ----------------------------------------------------------------------------- equalized learning rate

class EqualizedDense(nn.Module):
    """Dense layer with an equalized learning rate (Karras et al.).

    The kernel is stored as N(0, 1 / lr_multiplier^2) and scaled at run time by
    gain * lr_multiplier / sqrt(fan_in); the bias is stored divided by lr_multiplier and
    scaled back. Defaults (gain sqrt(2), lr_multiplier 1) give the He-scaled layer of
    ProGAN and DTVNet; StyleGAN2's mapping network uses gain 1 and lr_multiplier 0.01.
    """
    features: int
    bias_init: Any = nn.initializers.zeros
    gain: float = math.sqrt(2.0)
    lr_multiplier: float = 1.0
    use_bias: bool = True
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        lr = self.lr_multiplier
        kernel = self.param("kernel", nn.initializers.normal(1.0 / lr), (x.shape[-1], self.features))
        scale = self.gain * lr / math.sqrt(x.shape[-1])
        y = x.astype(self.dtype) @ (kernel * scale).astype(self.dtype)
        if not self.use_bias:
            return y
        bias = self.param("bias", lambda k, s: self.bias_init(k, s) / lr, (self.features,))
        return y + (bias * lr).astype(self.dtype)


class EqualizedConv(nn.Module):
    """2-D convolution (NHWC) with an equalized learning rate: the kernel (k, k, Cin, Cout) is
    stored as N(0, 1) and scaled by gain / sqrt(k * k * Cin). SAME padding and stride 1, or
    with `down` StyleGAN2's downsampling conv: the [1, 3, 3, 1] low-pass, then stride 2
    ((H, W) -> (H/2, W/2)); gradients of gradients (R1) stay on XLA's fast CPU path."""
    features: int
    kernel_size: int = 3
    use_bias: bool = True
    gain: float = math.sqrt(2.0)
    down: bool = False
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k, cin = self.kernel_size, x.shape[-1]
        kernel = self.param("kernel", nn.initializers.normal(1.0), (k, k, cin, self.features))
        kernel = (kernel * (self.gain / math.sqrt(k * k * cin))).astype(self.dtype)
        x = x.astype(self.dtype)
        if not self.down:
            y = jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
        elif k == 1:
            y = downsample2(x) @ kernel[0, 0]
        else:   # blur to H + k - 2, then a stride-2 conv with the kernel padded to an even size
            x = fir_blur(x, (k // 2 + 1, k // 2 + 1))
            even = k + k % 2
            kernel = jnp.pad(kernel, ((0, even - k), (0, even - k), (0, 0), (0, 0)))
            y = conv2d(x, kernel, (2, 2), ((0, even - k), (0, even - k)))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(self.dtype)
        return y


# ----------------------------------------------------------------------------- resampling

def upsample2(x: jax.Array) -> jax.Array:
    """Nearest-neighbour 2x upsampling of (N, H, W, C) by repeats, a broadcast (its gradient is
    a 2x2 sum; `jax.image.resize` gathers and scatters) that explicit sharding can follow."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def haar_pool(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Haar wavelet pooling (WCT²): (N, H, W, C) -> the low-frequency part LL (N, H/2, W/2, C)
    and the high-frequency parts (LH, HL, HH) stacked as (N, H/2, W/2, C, 3). Orthonormal:
    `haar_unpool` inverts it exactly. LL is twice the 2x2 average."""
    q = einops.rearrange(x, "n (h a) (w b) c -> a b n h w c", a=2, b=2)
    (p00, p01), (p10, p11) = q[0], q[1]
    ll = (p00 + p01 + p10 + p11) / 2
    lh = (-p00 + p01 - p10 + p11) / 2          # horizontal change
    hl = (-p00 - p01 + p10 + p11) / 2          # vertical change
    hh = (p00 - p01 - p10 + p11) / 2
    return ll, jnp.stack([lh, hl, hh], axis=-1)


def haar_unpool(ll: jax.Array, high: jax.Array) -> jax.Array:
    """The inverse of `haar_pool`: (LL (N, h, w, C), highs (N, h, w, C, 3)) -> (N, 2h, 2w, C)."""
    lh, hl, hh = high[..., 0], high[..., 1], high[..., 2]
    p00 = (ll - lh - hl + hh) / 2
    p01 = (ll + lh - hl - hh) / 2
    p10 = (ll - lh + hl - hh) / 2
    p11 = (ll + lh + hl + hh) / 2
    return einops.rearrange(jnp.stack([jnp.stack([p00, p01]), jnp.stack([p10, p11])]),
                            "a b n h w c -> n (h a) (w b) c")


# StyleGAN2's resampling filter [1, 3, 3, 1] (per axis; the 2-D filter is its outer product).
FIR = np.array([1.0, 3.0, 3.0, 1.0]) / 8.0


def fir_blur(x: jax.Array, pad: tuple[int, int], gain: float = 1.0, axes=(1, 2)) -> jax.Array:
    """The [1, 3, 3, 1] low-pass of (N, H, W, C) with `pad` = (before, after) zeros on both
    spatial axes: (H, W) -> (H + before + after - 3, ...); the filter over all `axes` sums to
    `gain` (other layouts: `axes`, e.g. (1,) for time in (B, T, H, W, C))."""
    widths = [(0, 0)] * x.ndim
    for axis in axes:
        widths[axis] = pad
    x = jnp.pad(x, widths)
    taps = FIR * gain ** (1 / len(axes))
    for axis in axes:
        n = x.shape[axis] - 3
        x = sum(float(taps[k]) * jax.lax.slice_in_dim(x, k, k + n, axis=axis) for k in range(4))
    return x


def downsample2(x: jax.Array, axes=(1, 2)) -> jax.Array:
    """StyleGAN2's 2x downsampling (`upfirdn2d.downsample2d`): [1, 3, 3, 1] low-pass, keep
    every other pixel. (N, H, W, C) -> (N, H/2, W/2, C); or along other `axes`."""
    return upfirdn(x, FIR, down=2, pads=[(1, 1)] * len(axes), axes=axes)


def upsample2_fir(x: jax.Array, axes=(1, 2)) -> jax.Array:
    """StyleGAN2's 2x upsampling (`upfirdn2d.upsample2d`: zeros inserted, [1, 3, 3, 1] low-pass
    with gain 2 per axis): per axis out[2i] = x[i-1]/4 + 3x[i]/4, out[2i+1] = 3x[i]/4 + x[i+1]/4,
    zero beyond the border. (N, H, W, C) -> (N, 2H, 2W, C); or along other `axes` (linear
    interpolation at half-sample centres, e.g. time)."""
    for axis in axes:
        n = x.shape[axis]
        pad = [(0, 0)] * x.ndim
        pad[axis] = (1, 1)
        xp = jnp.pad(x, pad)
        lo, mid, hi = (jax.lax.slice_in_dim(xp, k, k + n, axis=axis) for k in range(3))
        both = jnp.stack([0.25 * lo + 0.75 * mid, 0.75 * mid + 0.25 * hi], axis=axis + 1)
        x = both.reshape(x.shape[:axis] + (2 * n,) + x.shape[axis + 1:])
    return x


def upfirdn(x: jax.Array, taps, *, up: int = 1, down: int = 1, pads=None, gain: float = 1.0,
            axes=(1, 2)) -> jax.Array:
    """StyleGAN's `upfirdn2d` with a separable filter, along each of `axes`: insert up - 1 zeros
    after every sample, pad (before, after) zeros (negative: crop; `pads` one pair per axis,
    default none), convolve with `taps` times gain^(1/len(axes)), keep every down-th sample.
    Length n -> (n * up + before + after - len(taps)) // down + 1. Upsampling alone runs
    polyphase: each output phase is a short filter over the input, no zeros inserted. The
    gradient is the transposed filter run the same way (up and down swapped), not XLA's
    transpose of the slices (reverse mode only, as StyleGAN's own)."""
    taps = tuple(float(t) for t in np.asarray(taps, np.float64)[::-1] * gain ** (1 / len(axes)))
    pads = pads or [(0, 0)] * len(axes)
    for axis, (before, after) in zip(axes, pads):
        x = _upfirdn_axis(x, taps, up, down, int(before), int(after), axis % x.ndim)
    return x


def _upfirdn_axis(x: jax.Array, taps: tuple, up: int, down: int, before: int, after: int,
                  axis: int) -> jax.Array:
    """`upfirdn` along one axis with correlation taps, and its transpose as its gradient."""
    n = x.shape[axis]

    @jax.custom_vjp
    def apply(x):
        n_out = (n * up + before + after - len(taps)) // down + 1
        if up > 1 and down == 1:
            return _polyphase_up(x, np.asarray(taps), up, before, n_out, axis)
        if up > 1:
            stuffed = jnp.stack([x] + [jnp.zeros_like(x)] * (up - 1), axis=axis + 1)
            x = stuffed.reshape(x.shape[:axis] + (n * up,) + x.shape[axis + 1:])
        return _fir(_pad(x, axis, before, after), np.asarray(taps), n_out, down, axis)

    def transpose(_, g):
        # stuff by down, pad K - 1 - before, correlate with the reversed taps, keep every up-th
        k = len(taps)
        return (_upfirdn_axis(g, taps[::-1], down, up, k - 1 - before,
                              n * up + before - g.shape[axis] * down, axis),)

    apply.defvjp(lambda x: (apply(x), None), transpose)
    return apply(x)


def _pad(x: jax.Array, axis: int, before: int, after: int) -> jax.Array:
    """Zeros before/after along `axis` (negative: cropped)."""
    config = [(0, 0, 0)] * x.ndim
    config[axis] = (int(before), int(after), 0)
    return jax.lax.pad(x, jnp.zeros((), x.dtype), config)


def _fir(x: jax.Array, taps: np.ndarray, n: int, step: int, axis: int) -> jax.Array:
    """out[i] = sum_k taps[k] x[i * step + k] for i < n (a correlation, every step-th output)."""
    return sum(float(t) * jax.lax.slice_in_dim(x, k, k + (n - 1) * step + 1, step, axis=axis)
               for k, t in enumerate(taps))


def _polyphase_up(x: jax.Array, taps: np.ndarray, up: int, before: int, n_out: int, axis: int) -> jax.Array:
    """`upfirdn` with down = 1 along `axis`: output i = up * a + p takes taps[k0 + up j] times
    x[a + j + c] (k0, c fixed per phase p), so each phase is a correlation of x with every
    up-th tap; the phases are interleaved."""
    per_phase = -(-n_out // up)
    phases, starts = [], []
    for p in range(up):
        k0 = (before - p) % up
        starts.append((p - before + k0) // up)
        phases.append(taps[k0::up])
    lo = max(0, -min(starts))
    hi = max(0, max(s + per_phase + len(t) - 1 for s, t in zip(starts, phases)) - x.shape[axis])
    x = _pad(x, axis, lo, hi)
    out = jnp.stack([_fir(jax.lax.slice_in_dim(x, s + lo, x.shape[axis], axis=axis), t, per_phase, 1, axis)
                     if len(t) else jnp.zeros_like(jax.lax.slice_in_dim(x, 0, per_phase, axis=axis))
                     for s, t in zip(starts, phases)], axis=axis + 1)
    out = out.reshape(out.shape[:axis] + (per_phase * up,) + out.shape[axis + 2:])
    return jax.lax.slice_in_dim(out, 0, n_out, axis=axis)


def resize_bilinear(images: jax.Array, size: tuple[int, int]) -> jax.Array:
    """Bilinear resize of (N, H, W, C) to `size` with half-pixel centres and no antialiasing:
    PyTorch's `F.interpolate(mode="bilinear", align_corners=False)`, the resize of the FID
    and FVD protocols (`jax.image.resize` antialiases when shrinking)."""
    n, h, w, c = images.shape
    scale = jnp.asarray([size[0] / h, size[1] / w], jnp.float32)
    return jax.image.scale_and_translate(images, (n, size[0], size[1], c), (1, 2), scale,
                                         jnp.zeros(2, jnp.float32), method="linear", antialias=False)


class SubpixelConvTranspose(nn.Module):
    """3x3 stride-2 transposed conv (PyTorch padding=1, output_padding=1): (H, W) -> (2H, 2W),
    as `conv_transpose2x` with a kernel of its own."""
    features: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (3, 3, x.shape[-1], self.features))
        return conv_transpose2x(x.astype(self.dtype), kernel.astype(self.dtype))


# _TAPS[phase, offset]: the 3x3 kernel tap linking input offset (0 or +1) to output phase; 3 = none.
_TAPS = np.array([[1, 3], [0, 2]])


def conv_transpose2x(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """3x3 stride-2 transposed conv of (N, H, W, Cin) with `kernel` (3, 3, Cin, Cout) -> (N, 2H,
    2W, Cout): the function of `lax.conv_transpose(x, kernel, (2, 2), ((1, 2), (1, 2)))`,
    computed as a 2x2 conv to the 4 output phases + depth-to-space (~5x faster backward on CPU)."""
    cin, cout = kernel.shape[2:]
    padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))
    taps = _TAPS.T  # (offset, phase)
    phases = padded[taps[:, None, :, None], taps[None, :, None, :]]  # (dy, dx, py, px, ci, co)
    phases = phases.transpose(0, 1, 4, 2, 3, 5).reshape(2, 2, cin, 4 * cout)
    y = jax.lax.conv_general_dilated(x, phases, (1, 1), ((0, 1), (0, 1)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    b, h, w, _ = y.shape
    y = y.reshape(b, h, w, 2, 2, cout).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(b, 2 * h, 2 * w, cout)


# ----------------------------------------------------------------------------- style modulation

def modulated_conv(x: jax.Array, kernel: jax.Array, styles: jax.Array, *, demodulate: bool = True,
                   up: bool = False, fused: bool = False, eps: float = 1e-8) -> jax.Array:
    """StyleGAN2's modulated convolution of (N, H, W, Cin) with `kernel` (k, k, Cin, Cout) scaled
    per sample by `styles` (N, Cin), SAME padding; with `demodulate` each output channel is
    divided by the norm of its modulated weights (unit output variance for unit input).

    `up`: StyleGAN2's upsampling conv (`conv2d_resample`, up=2), (H, W) -> (2H, 2W): the whole
    output of a 3x3 stride-2 transposed conv, (2H + 1, 2W + 1), then the [1, 3, 3, 1] low-pass
    with gain 4 and one zero of padding on each side. `fused`: per-sample weights (a grouped conv);
    otherwise the input is scaled, convolved with the shared kernel and the output rescaled,
    the same function (measure which is faster: `bench/stylegan_v_modconv.py`).
    """
    styles = styles.astype(x.dtype)
    kernel = kernel.astype(x.dtype)
    if up:   # conv_transpose2x omits the whole output's first row/column; one zero row and
        # column in front of x put it back: y = [0, whole output] on both axes
        x = jnp.pad(x, ((0, 0), (1, 0), (1, 0), (0, 0)))
    dcoefs = None
    if demodulate:
        sq = jnp.sum(jnp.square(kernel.astype(jnp.float32)), axis=(0, 1))           # (Cin, Cout)
        dcoefs = jax.lax.rsqrt(jnp.square(styles.astype(jnp.float32)) @ sq + eps)  # (N, Cout)
    conv = (conv_transpose2x if up else
            lambda v, k: jax.lax.conv_general_dilated(v, k, (1, 1), "SAME",
                                                      dimension_numbers=("NHWC", "HWIO", "NHWC")))
    if fused:
        weights = kernel[None] * styles[:, None, None, :, None]
        if dcoefs is not None:
            weights = weights * dcoefs[:, None, None, None, :].astype(x.dtype)
        y = jax.vmap(lambda v, k: conv(v[None], k)[0])(x, weights)
    else:
        y = conv(x * styles[:, None, None, :], kernel)
        if dcoefs is not None:
            y = y * dcoefs[:, None, None, :].astype(y.dtype)
    return fir_blur(y, (0, 1), gain=4.0) if up else y


def minibatch_stddev(x: jax.Array, group_size: int, num_channels: int = 1) -> jax.Array:
    """StyleGAN's minibatch standard deviation: (N, H, W, C) -> (N, H, W, C + num_channels), the
    new channels the std over groups of `group_size` samples (sample i is in group i mod N/G),
    averaged over pixels and channel groups. N must be divisible by min(group_size, N)."""
    n, h, w, c = x.shape
    g = min(group_size, n)
    if n % g or c % num_channels:
        raise ValueError(f"minibatch stddev: a batch of {n} does not split into groups of {g}, or "
                         f"{c} channels into {num_channels}; use a batch divisible by the group size")
    y = x.astype(jnp.float32).reshape(g, n // g, h, w, num_channels, c // num_channels)
    y = jnp.sqrt(jnp.var(y, axis=0) + 1e-8)                       # (n/G, H, W, F, c/F)
    y = jnp.mean(y, axis=(1, 2, 4))                               # (n/G, F)
    y = jnp.broadcast_to(jnp.tile(y, (g, 1))[:, None, None, :], (n, h, w, num_channels))
    return jnp.concatenate([x, y.astype(x.dtype)], axis=-1)


# ----------------------------------------------------------------------------- video

class Conv3d(nn.Module):
    """3-D convolution (a bias with `use_bias`), run as one 2-D convolution per output frame batch.

    The kt temporal taps are stacked on the channel axis and the output frames folded into
    the batch: same kernel (kt, kh, kw, Cin, Cout) and result as a 3-D convolution, but XLA
    on CPU runs 2-D convolutions on its fast path and 3-D ones as plain loops (~50x slower).
    padding: ((t0, t1), (h0, h1), (w0, w1)) zero padding.
    """
    features: int
    kernel_size: tuple[int, int, int]
    strides: tuple[int, int, int] = (1, 1, 1)
    padding: tuple[tuple[int, int], ...] = ((0, 0), (0, 0), (0, 0))
    dtype: Dtype = jnp.float32
    use_bias: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            tuple(self.kernel_size) + (x.shape[-1], self.features))
        y = conv3d(x.astype(self.dtype), kernel.astype(self.dtype), self.strides, self.padding)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(self.dtype)
        return y


def conv3d(x: jax.Array, kernel: jax.Array, strides=(1, 1, 1),
           padding=((0, 0), (0, 0), (0, 0))) -> jax.Array:
    """3-D convolution of (B, T, H, W, Cin) with `kernel` (kt, kh, kw, Cin, Cout), zero `padding`
    ((t0, t1), (h0, h1), (w0, w1)): the kt temporal taps stacked on the channel axis and the
    output frames folded into the batch, one 2-D convolution (XLA on CPU runs 2-D convolutions
    on its fast path and 3-D ones as plain loops, ~50x slower)."""
    kt, kh, kw, cin, cout = kernel.shape
    x = jnp.pad(x, ((0, 0), tuple(padding[0]), (0, 0), (0, 0), (0, 0)))
    b, t = x.shape[:2]
    st = strides[0]
    t_out = (t - kt) // st + 1
    taps = (x[:, :(t_out - 1) * st + 1:st] if kt == 1 else
            jnp.concatenate([x[:, d:d + (t_out - 1) * st + 1:st] for d in range(kt)], axis=-1))
    flat = kernel.transpose(1, 2, 0, 3, 4).reshape(kh, kw, kt * cin, cout)
    y = conv2d(einops.rearrange(taps, "b t h w c -> (b t) h w c"), flat, strides[1:], padding[1:])
    return einops.rearrange(y, "(b t) h w c -> b t h w c", b=b)


def conv2d(x: jax.Array, kernel: jax.Array, strides, padding) -> jax.Array:
    """NHWC 2-D convolution with zero `padding` ((top, bottom), (left, right)), written so its
    gradients, second-order ones included (gradient penalties), stay on XLA's fast CPU path:
    a stride-2 conv with an even kernel runs as space-to-depth + a stride-1 conv, and a
    stride-1 conv as a "SAME" conv (on the padded input, cropped, when `padding` is not
    "SAME"'s own; XLA:CPU differentiates "VALID" convs twice ~10-30x slower)."""
    kh, kw, cin, cout = kernel.shape
    padding = tuple(tuple(p) for p in padding)
    same = (((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2))
    if tuple(strides) == (1, 1) and padding == same:   # no pad and crop around it
        return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))
    x = jnp.pad(x, ((0, 0),) + padding + ((0, 0),))
    if tuple(strides) == (2, 2) and kh % 2 == 0 and kw % 2 == 0:
        b, h, w, _ = x.shape
        h, w = h - h % 2, w - w % 2
        x = x[:, :h, :w].reshape(b, h // 2, 2, w // 2, 2, cin).transpose(0, 1, 3, 2, 4, 5)
        x = x.reshape(b, h // 2, w // 2, 4 * cin)
        kernel = kernel.reshape(kh // 2, 2, kw // 2, 2, cin, cout).transpose(0, 2, 1, 3, 4, 5)
        kh, kw = kh // 2, kw // 2
        kernel = kernel.reshape(kh, kw, 4 * cin, cout)
    elif tuple(strides) != (1, 1):
        return jax.lax.conv_general_dilated(x, kernel, tuple(strides), "VALID",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))
    y = jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    top, left = (kh - 1) // 2, (kw - 1) // 2
    return y[:, top:y.shape[1] - (kh - 1 - top), left:y.shape[2] - (kw - 1 - left)]


class Conv3dPyramid(nn.Module):
    """Strided 3-D conv stack: (B, T, H, W, C) -> (B, out_features).

    A (3, 4, 4) conv with stride (1, 2, 2), then (4, 4, 4) stride-2 blocks (time stride 1 with
    a (3, 4, 4) kernel once fewer than 4 frames remain) with `norm` and LeakyReLU 0.2, doubling
    the width up to `max_width`, while the short spatial side exceeds 4; a last "valid" conv
    whose kernel spans what remains. No biases. At 128^2 x 32 this is the paper's layout.
    `last_slope`: the LeakyReLU slope after the last strided block (DTVNet's critic: 0.01).
    """
    base_width: int
    max_width: int
    out_features: int
    norm: str  # "batch" (BatchNorm3d) or "instance" (InstanceNorm3d, no affine)
    activate_first: bool
    dtype: Dtype = jnp.float32
    last_slope: float = 0.2

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        x = Conv3d(self.base_width, (3, 4, 4), (1, 2, 2), ((1, 1),) * 3, self.dtype, name="conv0")(x)
        if self.activate_first:
            x = nn.leaky_relu(x, 0.2)
        width, i = self.base_width, 0
        while min(x.shape[2], x.shape[3]) > 4:
            i += 1
            width = min(2 * width, self.max_width)
            tk, ts = (4, 2) if x.shape[1] >= 4 else (3, 1)
            x = Conv3d(width, (tk, 4, 4), (ts, 2, 2), ((1, 1),) * 3, self.dtype, name=f"conv{i}")(x)
            if self.norm == "batch":
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                                 dtype=self.dtype, name=f"bn{i}")(x)
            else:
                x = instance_norm(x, axes=(1, 2, 3))
            x = nn.leaky_relu(x, self.last_slope if min(x.shape[2], x.shape[3]) <= 4 else 0.2)
        x = Conv3d(self.out_features, x.shape[1:4], dtype=self.dtype, name="head")(x)
        return x.reshape(x.shape[0], self.out_features)


class VideoDiscriminator(nn.Module):
    """Video critic: clip (B, T, H, W, 3) in [-1, 1] -> one fp32 logit per clip (B,);
    `last_slope` as in `Conv3dPyramid`."""
    base_width: int = 32
    max_width: int = 512
    dtype: Dtype = jnp.float32
    last_slope: float = 0.2

    @nn.compact
    def __call__(self, video: jax.Array) -> jax.Array:
        x = Conv3dPyramid(self.base_width, self.max_width, 1, norm="instance", activate_first=True,
                          dtype=self.dtype, last_slope=self.last_slope, name="pyramid")(video, False)
        return x[:, 0].astype(jnp.float32)
