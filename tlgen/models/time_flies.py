"""Time Flies (Cheng et al.): a still image animated by a reference time-lapse, region class by
region class.

A frame is made from the image I and three consecutive reference frames V = (F_t, F_t+1,
F_t+2). The frozen image encoder E_GI (VGG-19 conv1_1 ... relu4_1 with Haar wavelet pooling,
`vgg19.VGG19(pool="haar")`) gives I's relu4_1 features and the high-frequency parts of its
three poolings; the trained video encoder E_GV (VGG-19 up to relu2_1 with a 9-channel conv1_1)
gives V's relu1_1 and relu2_1 features; the decoder D_G mirrors E_GI, puts the high
frequencies back by Haar unpooling, and modulates twice: **classwise AdaIN** with E_GV's
relu2_1 statistics where its features have relu2_1's shape, **classwise NoiseAdaIN** (eq. 3)
with relu1_1's where they have relu1_1's, each region of I taking the statistics of the same
class in V. The noise z_t of NoiseAdaIN is N(1, σ_z) noise smoothed over (t, y, x) by a 3x3x3
Gaussian, so that it varies smoothly between consecutive frames.

Classes are integer label maps (B, H, W) turned into per-class weights at each feature size
(`class_weights`: the share of each class in a feature pixel). A class absent from V takes the
statistics of V's whole feature map (the paper, below its eq. 2); a class absent from I has no
pixels to change.
"""

from __future__ import annotations

import einops
import jax
import jax.numpy as jnp
from flax import linen as nn

from tlgen.models import vgg19
from tlgen.models.layers import haar_unpool
from tlgen.models.pixels import check_pixels

EPS = 1e-5


def class_weights(masks: jax.Array, num_classes: int, size: tuple[int, int]) -> jax.Array:
    """Label maps (B, H, W) -> the share of each class in each pixel of a (h, w) = `size` grid
    (B, h, w, S), by area averaging (H, W multiples of h, w). Rows sum to 1."""
    one_hot = jax.nn.one_hot(masks, num_classes, dtype=jnp.float32)
    return einops.reduce(one_hot, "b (h p) (w q) s -> b h w s", "mean", h=size[0], w=size[1])


def class_stats(x: jax.Array, weights: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per-class mean and variance of features x (B, H, W, C) under weights (B, H, W, S):
    ((B, S, C), (B, S, C), pixel counts (B, S)). An empty class has mean 0 and variance 0."""
    x = x.astype(jnp.float32)
    count = jnp.sum(weights, axis=(1, 2))
    safe = jnp.maximum(count, 1e-6)[..., None]
    mean = jnp.einsum("bhws,bhwc->bsc", weights, x) / safe
    var = jnp.einsum("bhws,bhwc->bsc", weights, jnp.square(x)) / safe - jnp.square(mean)
    return mean, jnp.maximum(var, 0.0), count


def classwise_adain(x: jax.Array, y: jax.Array, wx: jax.Array, wy: jax.Array,
                    noise: jax.Array | None = None) -> jax.Array:
    """Classwise AdaIN (eq. 2), or NoiseAdaIN (eq. 3) with `noise` z (B, H, W, C): each class s
    of x (B, H, W, C) gets σ(y_s) (x_s − μ(x_s)) / σ(x_s) + μ(y_s) z, with the statistics of
    y (B, h, w, C) over its own class weights `wy`; `wx` are x's. A class that y lacks (less
    than one pixel) takes the statistics of the whole of y, as the paper does below its eq. 2."""
    mx, vx, _ = class_stats(x, wx)
    my, vy, cy = class_stats(y, wy)
    mall, vall, _ = class_stats(y, jnp.ones_like(y[..., :1], jnp.float32))   # all of y: (B, 1, C)
    present = (cy >= 1.0)[..., None]
    my, vy = jnp.where(present, my, mall), jnp.where(present, vy, vall)
    scale = jnp.sqrt(vy + EPS) * jax.lax.rsqrt(vx + EPS)
    # sum_s w_s (a_s x - a_s mu_x,s + mu_y,s z), as three per-pixel mixtures of class values
    mix = lambda v: jnp.einsum("bhws,bsc->bhwc", wx, v)
    z = 1.0 if noise is None else noise.astype(jnp.float32)
    out = mix(scale) * x.astype(jnp.float32) - mix(scale * mx) + mix(my) * z
    return out.astype(x.dtype)


def gaussian3(sigma: float) -> jax.Array:
    """The normalized 3-tap Gaussian (g(-1), g(0), g(1))."""
    g = jnp.exp(-0.5 * jnp.square(jnp.arange(-1.0, 2.0)) / sigma ** 2)
    return g / jnp.sum(g)


def smoothed_noise(key: jax.Array, first, count: int, shape: tuple[int, int, int],
                   sigma_z: float = 0.5, blur: float = 1.0) -> jax.Array:
    """NoiseAdaIN's noise z_t for frames first ... first+count-1: (count, H, W, C) = `shape`,
    N(1, σ_z²) white noise smoothed by the separable 3x3x3 Gaussian of std `blur` pixels/frames
    (reflected at the image borders). Frame t's white noise comes from its own key, so any
    chunking of the frames gives the same z."""
    steps = first - 1 + jnp.arange(count + 2)
    white = jax.vmap(lambda t: jax.random.normal(jax.random.fold_in(key, t + 1), shape))(steps)
    g = gaussian3(blur)
    z = g[0] * white[:-2] + g[1] * white[1:-1] + g[2] * white[2:]
    for axis in (1, 2):
        z = jnp.pad(z, [(1, 1) if a == axis else (0, 0) for a in range(4)], mode="reflect")
        n = z.shape[axis] - 2
        z = sum(g[k] * jax.lax.slice_in_dim(z, k, k + n, axis=axis) for k in range(3))
    return 1.0 + sigma_z * z


class VideoEncoder(nn.Module):
    """E_GV: clip (B, 3, H, W, 3) in [0, 1] -> (relu1_1 (B, H, W, 64), relu2_1 (B, H/2, W/2, 128));
    VGG-19's first layers with conv1_1 widened to the clip's 9 channels."""
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, clip: jax.Array) -> tuple[jax.Array, jax.Array]:
        check_pixels(clip, "clip", "(B, 3, H, W, 3)", scale="[0, 1]")
        x = einops.rearrange(vgg19.normalize(clip.astype(jnp.float32)), "b f h w c -> b h w (f c)")
        relu1_1 = nn.relu(vgg19.conv3x3(x.astype(self.dtype), 64, "conv1_1", "zero", self.dtype))
        x = nn.relu(vgg19.conv3x3(relu1_1, 64, "conv1_2", "zero", self.dtype))
        x = nn.max_pool(x, (2, 2), (2, 2))
        relu2_1 = nn.relu(vgg19.conv3x3(x, 128, "conv2_1", "zero", self.dtype))
        return relu1_1, relu2_1


def video_encoder_params(vgg: dict) -> dict:
    """E_GV's initial parameters from VGG-19's: conv1_2 and conv2_1 as they are, conv1_1's
    kernel repeated over the three frames and divided by three (a still clip then gives VGG's
    own relu1_1)."""
    kernel = vgg["conv1_1"]["kernel"]
    return {"conv1_1": {"kernel": jnp.concatenate([kernel / 3] * 3, axis=2), "bias": vgg["conv1_1"]["bias"]},
            "conv1_2": vgg["conv1_2"], "conv2_1": vgg["conv2_1"]}


class Decoder(nn.Module):
    """D_G: E_GI's relu4_1 features and high frequencies, E_GV's features and the class
    weights -> the frame (B, H, W, 3) in [0, 1] (unclipped). Mirrors VGG-19 with reflection
    padding; `noise` None gives plain classwise AdaIN at relu1_1 too."""
    num_classes: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, content, highs, relu1_1, relu2_1, image_masks, clip_masks, noise=None):
        conv = lambda x, width, name: nn.relu(vgg19.conv3x3(x, width, name, "reflect", self.dtype))
        weights = lambda masks, f: class_weights(masks, self.num_classes, f.shape[1:3])
        x = conv(content.astype(self.dtype), 256, "dec4_1")
        x = haar_unpool(x, highs[2].astype(self.dtype))
        for name in ("dec3_4", "dec3_3", "dec3_2"):
            x = conv(x, 256, name)
        x = haar_unpool(conv(x, 128, "dec3_1"), highs[1].astype(self.dtype))
        x = conv(x, 128, "dec2_2")
        x = classwise_adain(x, relu2_1, weights(image_masks, x), weights(clip_masks, relu2_1))
        x = haar_unpool(conv(x, 64, "dec2_1"), highs[0].astype(self.dtype))
        x = conv(x, 64, "dec1_2")
        x = classwise_adain(x, relu1_1, weights(image_masks, x), weights(clip_masks, relu1_1), noise)
        x = vgg19.conv3x3(x, 3, "dec1_1", "reflect", self.dtype)
        return x.astype(jnp.float32)


class Generator(nn.Module):
    """E_GV + D_G: (E_GI's output for I, clip V (B, 3, H, W, 3), I's labels (B, H, W), V's first
    frame's labels (B, H, W), noise z_t (B, H, W, 64) or None) -> frame (B, H, W, 3)."""
    num_classes: int
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        self.video_encoder = VideoEncoder(self.dtype)
        self.decoder = Decoder(self.num_classes, self.dtype)

    def __call__(self, encoded, clip, image_masks, clip_masks, noise=None):
        taps, highs = encoded
        relu1_1, relu2_1 = self.video_encoder(clip)
        return self.decoder(taps["relu4_1"], highs, relu1_1, relu2_1, image_masks, clip_masks, noise)

    def encode_video(self, clip):
        """E_GV's (relu1_1, relu2_1) features of a clip (B, 3, H, W, 3) in [0, 1]."""
        return self.video_encoder(clip)
