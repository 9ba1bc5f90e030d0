"""StyleGAN-V (Skorokhodov et al., CVPR 2022): a continuous-time video generator and its
sparse-frame discriminator, in plain Flax (NHWC, no custom kernels).

Generator: a content code z (one per video) -> mapping network -> w; a motion trajectory
(noise codes `min_period` frames apart -> padding-free conv1d stack -> per-frame code u,
linearly interpolated between its two neighbouring anchors) -> acyclic positional embedding
v(t); StyleGAN2 synthesis (constant 4x4 input concatenated with v(t) — 4 x 4W/H for frames of
another aspect, `resolution` (H, W) with W a multiple of H/4 —, modulated/demodulated
convolutions, skip-RGB outputs, [1, 3, 3, 1] resampling, equalized learning rate, no noise
inputs). A frame depends only on z, t and the noise codes around t, so a video of any length
is made chunk by chunk: `motion_codes(key, first, count)` draws the codes with indices
first..first+count-1, the same values whatever the chunk.

Discriminator: per-frame StyleGAN2 residual D; at `concat_res` the frames' features are
concatenated along channels; the time differences between the clip's frames (Fourier
features + a learned embedding, through a 2-layer mapping) condition the output by
projection; minibatch standard deviation. Channel widths follow the frames' height.

Plain functions for other JAX code (`cfg` a config's `model`):

    g, d = generator(cfg), discriminator(cfg, num_frames=3)
    z = jax.random.normal(key, (1, cfg.z_dim))             # (B, z_dim): one video's content
    t = jnp.array([[0.0, 2.0, 5.5]])                      # (B, F): frame times, in frames
    codes = motion_codes(key, 0, g.codes_for(5.5), cfg.z_dim)[None]   # (B, L, z_dim)
    gp = g.init(key, z, codes, t)["params"]
    frames = g.apply({"params": gp}, z, codes, t)        # (B, F, H, W, 3) in about [-1, 1]
    dp = d.init(key, frames, t)["params"]
    logits = d.apply({"params": dp}, frames, t)           # (B,)
"""

from __future__ import annotations

import math
from typing import Any

import einops
import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from tlgen.models.layers import (EqualizedConv, EqualizedDense, minibatch_stddev,
                                 modulated_conv, upsample2_fir)
from tlgen.models.pixels import check_pixels, frame_shape

Dtype = Any
SQRT2 = math.sqrt(2.0)
CLAMP = 256.0      # StyleGAN2's activation clamp (`conv_clamp`)


def lrelu(x: jax.Array) -> jax.Array:
    """StyleGAN's activation: leaky ReLU (slope 0.2) with gain sqrt(2)."""
    return nn.leaky_relu(x, 0.2) * jnp.asarray(SQRT2, x.dtype)


def clamp(x: jax.Array, bound: float | None) -> jax.Array:
    """x clipped to +-bound; None: x unchanged."""
    return x if bound is None else jnp.clip(x, -bound, bound)


def conv_clamp(dtype: Dtype) -> float | None:
    """StyleGAN-V's activation clamp for compute `dtype`: +-256 in reduced precision (the public
    code clamps when it trains in mixed precision, its default), none in float32."""
    return None if jnp.dtype(dtype) == jnp.float32 else CLAMP


def base_shape(resolution) -> tuple[int, int, int]:
    """(height, width, width of the 4-high base map) of frames of `resolution` (N or (H, W));
    ValueError unless H is a power of two from 4 and W a multiple of H/4."""
    h, w = frame_shape(resolution)
    if h < 4 or h & (h - 1) or w % (h // 4) or w < 1:
        raise ValueError(f"resolution {h}x{w}: the height must be a power of two and the width a "
                         f"multiple of a quarter of it")
    return h, w, 4 * w // h


def normalize_2nd_moment(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    """x scaled to unit mean square over its last axis (StyleGAN's latent normalization)."""
    return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


def channels(res: int, base: int, cap: int) -> int:
    """Feature maps at resolution `res`: min(base / res, cap)."""
    return min(base // res, cap)


class Mapping(nn.Module):
    """z (B, z_dim) -> w (B, w_dim): 2nd-moment normalization, `layers` x FC + lrelu at a
    learning-rate multiplier of 0.01. With `embed`, the input is a conditioning vector first
    embedded by a plain FC (the discriminator's mapping of time differences)."""
    features: int
    layers: int
    embed: bool = False
    lr_multiplier: float = 0.01
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.embed:
            x = EqualizedDense(self.features, gain=1.0, dtype=self.dtype, name="embed")(x)
        x = normalize_2nd_moment(x.astype(jnp.float32)).astype(self.dtype)
        for i in range(self.layers):
            x = lrelu(EqualizedDense(self.features, gain=1.0, lr_multiplier=self.lr_multiplier,
                                     dtype=self.dtype, name=f"fc{i}")(x))
        return x


def linspaced_frequencies(num: int, min_period: float, max_period: float) -> np.ndarray:
    """Angular frequencies of periods log-spaced from max_period down to min_period (frames)."""
    periods = 2.0 ** np.linspace(np.log2(min_period), np.log2(max_period), num)
    return (2 * np.pi / periods)[::-1].astype(np.float32)


def _check_covered(idx: jax.Array, anchors: int, min_period: float, first) -> None:
    """ValueError when concrete anchor indices `idx` (the left anchor of each time) fall
    outside the `anchors` the codes make (each time needs its left and right anchor)."""
    if isinstance(idx, jax.core.Tracer) or isinstance(first, jax.core.Tracer) or not idx.size:
        return
    lo, hi = int(jnp.min(idx)), int(jnp.max(idx))
    if lo < 0 or hi + 1 >= anchors:
        first = int(first)
        raise ValueError(
            f"times from {(lo + first) * min_period:g} to {(hi + first + 1) * min_period:g} frames "
            f"need the motion codes of anchors {lo + first}..{hi + first + 1}; the codes given "
            f"(from index {first}) make anchors {first}..{first + anchors - 1}: pass "
            f"`codes_for(t_max)` codes from index floor(t_min / min_period).")


class Motion(nn.Module):
    """Motion noise codes + frame times -> the acyclic positional embedding v(t), (B, F, 2*dim).

    codes (B, L, z_dim): the noise codes with indices first..first+L-1 (anchor k sits at time
    k * min_period); t (B, F) float times in frames, with first * min_period <= t and
    L >= floor(t / min_period) - first + 2 + 2 * (kernel - 1). Called outside `jax.jit`, times
    the codes do not cover raise ValueError (under jit they give NaN frames).
    """
    z_dim: int = 512
    dim: int = 256
    kernel: int = 11
    min_period: float = 16.0
    max_period: float = 1024.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, codes: jax.Array, t: jax.Array, first: jax.Array | int = 0) -> jax.Array:
        d = self.min_period
        traj = codes.astype(self.dtype)
        for i in range(2):        # padding-free conv1d stack: anchor j sees codes j..j+2(k-1)
            traj = _conv1d(traj, self.z_dim, self.kernel, name=f"conv{i}", dtype=self.dtype,
                           parent=self)
        t = t.astype(jnp.float32)
        left = jnp.floor(t / d)
        idx = (left - jnp.asarray(first, jnp.float32)).astype(jnp.int32)          # (B, F)
        anchors = codes.shape[1] - 2 * (self.kernel - 1)
        _check_covered(idx, anchors, d, first)
        covered = ((idx >= 0) & (idx + 1 < anchors))[..., None]         # else NaN (a gather would wrap)
        u_left = jnp.take_along_axis(traj, idx[..., None], axis=1).astype(jnp.float32)
        u_right = jnp.take_along_axis(traj, idx[..., None] + 1, axis=1).astype(jnp.float32)
        t_left = left * d
        alpha = ((t - t_left) / d)[..., None]
        freqs = jnp.asarray(linspaced_frequencies(self.dim, self.min_period, self.max_period))
        phase_scales = self.max_period / (2 * np.pi / freqs)
        dense = lambda n, name: EqualizedDense(n, gain=1.0, use_bias=False, name=name)
        periods = jnp.tanh(dense(self.dim, "periods")(u_left)) + 1
        phases = dense(self.dim, "phases")(u_left) * phase_scales
        aligners = dense(2 * self.dim, "aligners")

        def embed(time):
            raw = freqs * periods * time[..., None] + phases
            return jnp.concatenate([jnp.sin(raw), jnp.cos(raw)], axis=-1)

        remove = embed(t_left) * (1 - alpha) + embed(t_left + d) * alpha
        add = aligners(u_left) * (1 - alpha) + aligners(u_right) * alpha
        return jnp.where(covered, embed(t) - remove + add, jnp.nan)


def _conv1d(x, features, kernel, *, name, dtype, parent):
    """Padding-free 1-D conv (B, L, C) -> (B, L - kernel + 1, features), equalized lr 0.01, lrelu."""
    lr = 0.01
    cin = x.shape[-1]
    w = parent.param(name + "_kernel", nn.initializers.normal(1.0 / lr), (kernel, cin, features))
    b = parent.param(name + "_bias", nn.initializers.zeros, (features,))
    y = jax.lax.conv_general_dilated(x, (w * (lr / math.sqrt(cin * kernel))).astype(dtype), (1,), "VALID",
                                     dimension_numbers=("NWC", "WIO", "NWC"))
    return nn.leaky_relu(y + (b * lr).astype(dtype), 0.2)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (+ 2x upsampling) + bias + lrelu."""
    features: int
    up: bool = False
    fused: bool = False
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
        cin = x.shape[-1]
        styles = EqualizedDense(cin, gain=1.0, bias_init=nn.initializers.ones, name="affine")(w)
        kernel = self.param("kernel", nn.initializers.normal(1.0), (3, 3, cin, self.features))
        y = modulated_conv(x.astype(self.dtype), kernel, styles, up=self.up, fused=self.fused)
        y = lrelu(y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(y.dtype))
        return clamp(y, conv_clamp(self.dtype))


class ToRGB(nn.Module):
    """Modulated 1x1 conv to RGB, no demodulation."""
    fused: bool = False
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
        cin = x.shape[-1]
        styles = EqualizedDense(cin, gain=1.0, bias_init=nn.initializers.ones, name="affine")(w)
        kernel = self.param("kernel", nn.initializers.normal(1.0), (1, 1, cin, 3))
        y = modulated_conv(x.astype(self.dtype), kernel, styles / math.sqrt(cin), demodulate=False,
                           fused=self.fused)
        y = clamp(y + self.param("bias", nn.initializers.zeros, (3,)).astype(y.dtype), conv_clamp(self.dtype))
        return y.astype(jnp.float32)


class Generator(nn.Module):
    """(z (B, z_dim), motion codes (B, L, z_dim), t (B, F)) -> frames (B, F, H, W, 3);
    `resolution` N (N x N) or (H, W)."""
    resolution: int | tuple[int, int]
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 2
    channel_base: int = 16384
    channel_max: int = 512
    time_dim: int = 256
    motion_kernel: int = 11
    min_period: float = 16.0
    max_period: float = 1024.0
    fused_modconv: bool = False
    dtype: Dtype = jnp.float32

    def codes_for(self, t_max: float) -> int:
        """Noise codes (from index 0) that frames up to time `t_max` need."""
        return int(math.floor(t_max / self.min_period)) + 2 + 2 * (self.motion_kernel - 1)

    @nn.compact
    def __call__(self, z: jax.Array, codes: jax.Array, t: jax.Array,
                 first: jax.Array | int = 0) -> jax.Array:
        if t.ndim != 2 or codes.ndim != 3:
            raise ValueError(f"t must be (B, F) frame times and codes (B, L, z_dim); got "
                             f"{t.shape} and {codes.shape}.")
        b, f = t.shape
        w = Mapping(self.w_dim, self.mapping_layers, dtype=self.dtype, name="mapping")(z)
        v = Motion(codes.shape[-1], self.time_dim, self.motion_kernel, self.min_period,
                   self.max_period, dtype=self.dtype, name="motion")(codes, t, first)
        w = jnp.repeat(w, f, axis=0)                                    # (B*F, w_dim)
        v = einops.rearrange(v, "b f c -> (b f) c")
        ch = lambda res: channels(res, self.channel_base, self.channel_max)
        height, _, base = base_shape(self.resolution)
        const = self.param("const", nn.initializers.normal(1.0), (4, base, ch(4)))
        x = jnp.concatenate([jnp.broadcast_to(const, (b * f, 4, base, ch(4))),
                             jnp.broadcast_to(v[:, None, None, :], (b * f, 4, base, v.shape[-1]))],
                            axis=-1).astype(self.dtype)
        kw = dict(fused=self.fused_modconv, dtype=self.dtype)
        x = SynthesisLayer(ch(4), name="b4_conv1", **kw)(x, w)
        img = ToRGB(name="b4_torgb", **kw)(x, w)
        res = 8
        while res <= height:
            x = SynthesisLayer(ch(res), up=True, name=f"b{res}_conv0", **kw)(x, w)
            x = SynthesisLayer(ch(res), name=f"b{res}_conv1", **kw)(x, w)
            img = upsample2_fir(img) + ToRGB(name=f"b{res}_torgb", **kw)(x, w)
            res *= 2
        return einops.rearrange(img, "(b f) h w c -> b f h w c", b=b)


def log_spaced_coefficients(max_frames: int) -> np.ndarray:
    """StyleGAN-V's fixed Fourier coefficients of time differences: pi * 2^i / T for
    i < log2 T, T = max_frames rounded up to a power of two."""
    res = 2 ** int(np.ceil(np.log2(max(max_frames, 2))))
    return (np.pi * 2.0 ** np.arange(int(np.log2(res))) / res).astype(np.float32)


def residual_down_block(conv, x: jax.Array, name: str, mid: int, out: int,
                        bound: float | None = None) -> jax.Array:
    """StyleGAN2's residual discriminator block: 3x3 conv + lrelu, downsampling 3x3 conv + lrelu,
    each clamped to +-`bound`, plus a downsampling 1x1 skip without bias (not clamped), / sqrt(2).
    conv(features, kernel, name, **kw) makes an `EqualizedConv`; (N, H, W, C) -> (N, H/2, W/2, out)."""
    skip = conv(out, 1, f"{name}_skip", use_bias=False, down=True)(x)
    x = clamp(lrelu(conv(mid, 3, f"{name}_conv0")(x)), bound)
    x = clamp(lrelu(conv(out, 3, f"{name}_conv1", down=True)(x)), bound)
    return (skip + x) * jnp.asarray(math.sqrt(0.5), x.dtype)


class Discriminator(nn.Module):
    """(frames (B, F, H, W, 3) in [-1, 1], t (B, F)) -> logits (B,) float32; `resolution` N
    (N x N) or (H, W)."""
    resolution: int | tuple[int, int]
    num_frames: int = 3
    channel_base: int = 16384
    channel_max: int = 512
    concat_res: int = 16
    frames_div: int = 2
    mbstd_group: int = 4
    max_frames: int = 1024       # time differences embedded (learned table size, Fourier range)
    time_embed_dim: int = 256
    time_conditioning: bool = True   # False: differences multiplied by 0 (the paper's ablation)
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, frames: jax.Array, t: jax.Array) -> jax.Array:
        height, width, _ = base_shape(self.resolution)
        check_pixels(frames, "frames", f"(B, {self.num_frames}, {height}, {width}, 3)")
        b, f = frames.shape[:2]
        ch = lambda res: channels(res, self.channel_base, self.channel_max)
        x = einops.rearrange(frames, "b f h w c -> (b f) h w c").astype(self.dtype)
        if self.concat_res >= height or self.concat_res < 8:
            raise ValueError(f"concat_res {self.concat_res} must be a block resolution from 8 to half "
                             f"the frames' height {height} (which must be 16 or more)")
        conv = lambda n, k, name, **kw: EqualizedConv(n, k, gain=1.0, dtype=self.dtype, name=name, **kw)
        bound = conv_clamp(self.dtype)
        x = clamp(lrelu(conv(ch(height), 1, "fromrgb")(x)), bound)
        res = height
        while res > 4:
            if res == self.concat_res:
                x = einops.rearrange(x, "(b f) h w c -> b h w (f c)", f=f)
            out = ch(res // 2) // (self.frames_div if res // 2 == self.concat_res else 1)
            x = residual_down_block(conv, x, f"b{res}", ch(res), out, bound)
            res //= 2
        x = minibatch_stddev(x.astype(jnp.float32), self.mbstd_group)
        x = clamp(lrelu(EqualizedConv(ch(4), 3, gain=1.0, name="b4_conv")(x)), bound)
        x = lrelu(EqualizedDense(ch(4), gain=1.0, name="b4_fc")(einops.rearrange(x, "b h w c -> b (h w c)")))
        cmap = Mapping(ch(4), 2, embed=True, name="time_mapping")(self.time_features(t))
        out = EqualizedDense(ch(4), gain=1.0, name="b4_out")(x)
        return jnp.sum(out * cmap, axis=-1) / math.sqrt(ch(4))

    def time_features(self, t: jax.Array) -> jax.Array:
        """(B, F) times -> (B, (F-1) * (time_embed_dim + 2 * n_fourier)): each consecutive
        difference as a learned embedding of its rounded value + sin/cos Fourier features."""
        diffs = (t[:, 1:] - t[:, :-1]).astype(jnp.float32)
        if not self.time_conditioning:
            diffs = diffs * 0.0
        table = nn.Embed(self.max_frames, self.time_embed_dim, embedding_init=nn.initializers.normal(1.0),
                         name="time_embed")
        learned = table(jnp.clip(jnp.round(diffs), 0, self.max_frames - 1).astype(jnp.int32))
        raw = diffs[..., None] * jnp.asarray(log_spaced_coefficients(self.max_frames))
        feats = jnp.concatenate([learned, jnp.sin(raw), jnp.cos(raw)], axis=-1)
        if not self.time_conditioning:
            feats = feats * 0.0
        return einops.rearrange(feats, "b k c -> b (k c)")


def motion_codes(key: jax.Array, first, count: int, z_dim: int) -> jax.Array:
    """Noise codes with indices first..first+count-1 of the video with `key`: (count, z_dim);
    code i is drawn from fold_in(key, i), so every chunk sees the same codes."""
    idx = jnp.asarray(first, jnp.int32) + jnp.arange(count, dtype=jnp.int32)
    return jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i), (z_dim,)))(idx)


def generator(cfg, dtype: Dtype = jnp.float32) -> Generator:
    """The generator of a model config (`config.model`)."""
    return Generator(resolution=frame_shape(cfg.resolution), z_dim=int(cfg.z_dim), w_dim=int(cfg.w_dim),
                     mapping_layers=int(cfg.mapping_layers), channel_base=int(cfg.channel_base),
                     channel_max=int(cfg.channel_max), time_dim=int(cfg.time_dim),
                     motion_kernel=int(cfg.motion_kernel), min_period=float(cfg.min_period),
                     max_period=float(cfg.max_period), fused_modconv=bool(cfg.fused_modconv),
                     dtype=dtype)


def discriminator(cfg, num_frames: int, dtype: Dtype = jnp.float32) -> Discriminator:
    """The discriminator of a model config for clips of `num_frames` frames."""
    return Discriminator(resolution=frame_shape(cfg.resolution), num_frames=num_frames,
                         channel_base=int(cfg.d_channel_base), channel_max=int(cfg.channel_max),
                         concat_res=int(cfg.concat_res), frames_div=int(cfg.frames_div),
                         mbstd_group=int(cfg.mbstd_group), max_frames=int(cfg.max_frames),
                         time_conditioning=bool(cfg.time_conditioning), dtype=dtype)
