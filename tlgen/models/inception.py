"""Inception-v3 as used for FID: the `pt_inception-2015-12-05` graph of pytorch-fid and
StyleGAN, to its 2048-d final average pool.

It differs from torchvision's Inception-v3 in the FID blocks: average pools exclude the
zero padding from their count (TensorFlow's behaviour), and the last block (Mixed_7c) pools
its branch with a max instead of an average. Input images in [0, 1] of any size are resized
to 299x299 bilinearly (PyTorch's `interpolate`, half-pixel centres, no antialiasing) and
mapped to [-1, 1] inside the network. Convolutions have no bias and are followed by frozen
batch norm (epsilon 1e-3) and ReLU.

Module names follow the PyTorch ones (`Mixed_5b/branch1x1/conv/kernel` is
`Mixed_5b.branch1x1.conv.weight`), so a published state dict loads by name
(`tlgen.weights.load_torch_weights`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from tlgen.models.layers import FrozenBatchNorm, resize_bilinear
from tlgen.models.pixels import check_pixels

INPUT_SIZE = 299
FEATURES = 2048


class ConvBN(nn.Module):
    """Conv (no bias) + frozen batch norm + ReLU: PyTorch's `BasicConv2d`."""
    features: int
    kernel: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)

    @nn.compact
    def __call__(self, x):
        (ph, pw) = self.padding
        x = nn.Conv(self.features, self.kernel, self.strides, padding=((ph, ph), (pw, pw)),
                    use_bias=False, name="conv")(x)
        return nn.relu(FrozenBatchNorm(1e-3, name="bn")(x))


def _avg_pool(x):
    return nn.avg_pool(x, (3, 3), (1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool(x, stride=2, padding=((0, 0), (0, 0))):
    return nn.max_pool(x, (3, 3), (stride, stride), padding=padding)


class InceptionA(nn.Module):
    pool_features: int

    @nn.compact
    def __call__(self, x):
        b1 = ConvBN(64, (1, 1), name="branch1x1")(x)
        b5 = ConvBN(64, (5, 5), padding=(2, 2), name="branch5x5_2")(ConvBN(48, (1, 1), name="branch5x5_1")(x))
        b3 = ConvBN(64, (1, 1), name="branch3x3dbl_1")(x)
        b3 = ConvBN(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
        b3 = ConvBN(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
        bp = ConvBN(self.pool_features, (1, 1), name="branch_pool")(_avg_pool(x))
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
    @nn.compact
    def __call__(self, x):
        b3 = ConvBN(384, (3, 3), (2, 2), name="branch3x3")(x)
        bd = ConvBN(64, (1, 1), name="branch3x3dbl_1")(x)
        bd = ConvBN(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
        bd = ConvBN(96, (3, 3), (2, 2), name="branch3x3dbl_3")(bd)
        return jnp.concatenate([b3, bd, _max_pool(x)], axis=-1)


class InceptionC(nn.Module):
    channels_7x7: int

    @nn.compact
    def __call__(self, x):
        c = self.channels_7x7
        row, col = dict(kernel=(1, 7), padding=(0, 3)), dict(kernel=(7, 1), padding=(3, 0))
        b1 = ConvBN(192, (1, 1), name="branch1x1")(x)
        b7 = ConvBN(c, (1, 1), name="branch7x7_1")(x)
        b7 = ConvBN(c, **row, name="branch7x7_2")(b7)
        b7 = ConvBN(192, **col, name="branch7x7_3")(b7)
        bd = ConvBN(c, (1, 1), name="branch7x7dbl_1")(x)
        for i, (width, shape) in enumerate([(c, col), (c, row), (c, col), (192, row)], start=2):
            bd = ConvBN(width, **shape, name=f"branch7x7dbl_{i}")(bd)
        bp = ConvBN(192, (1, 1), name="branch_pool")(_avg_pool(x))
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
    @nn.compact
    def __call__(self, x):
        b3 = ConvBN(320, (3, 3), (2, 2), name="branch3x3_2")(ConvBN(192, (1, 1), name="branch3x3_1")(x))
        b7 = ConvBN(192, (1, 1), name="branch7x7x3_1")(x)
        b7 = ConvBN(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
        b7 = ConvBN(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
        b7 = ConvBN(192, (3, 3), (2, 2), name="branch7x7x3_4")(b7)
        return jnp.concatenate([b3, b7, _max_pool(x)], axis=-1)


class InceptionE(nn.Module):
    pool: str   # "avg" (Mixed_7b) or "max" (Mixed_7c, the FID graph's)

    @nn.compact
    def __call__(self, x):
        row, col = dict(kernel=(1, 3), padding=(0, 1)), dict(kernel=(3, 1), padding=(1, 0))
        b1 = ConvBN(320, (1, 1), name="branch1x1")(x)
        b3 = ConvBN(384, (1, 1), name="branch3x3_1")(x)
        b3 = jnp.concatenate([ConvBN(384, **row, name="branch3x3_2a")(b3),
                              ConvBN(384, **col, name="branch3x3_2b")(b3)], axis=-1)
        bd = ConvBN(448, (1, 1), name="branch3x3dbl_1")(x)
        bd = ConvBN(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
        bd = jnp.concatenate([ConvBN(384, **row, name="branch3x3dbl_3a")(bd),
                              ConvBN(384, **col, name="branch3x3dbl_3b")(bd)], axis=-1)
        pooled = _avg_pool(x) if self.pool == "avg" else _max_pool(x, 1, ((1, 1), (1, 1)))
        bp = ConvBN(192, (1, 1), name="branch_pool")(pooled)
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInception(nn.Module):
    """images (N, H, W, 3) in [0, 1] -> pool features (N, 2048). `input_size` is the FID
    protocol's 299 (smaller sizes, 75 at least, only for tests)."""
    input_size: int = INPUT_SIZE

    @nn.compact
    def __call__(self, images):
        check_pixels(images, "images", "(N, H, W, 3)", scale="[0, 1]")
        x = resize_bilinear(images.astype(jnp.float32), (self.input_size,) * 2) * 2.0 - 1.0
        x = ConvBN(32, (3, 3), (2, 2), name="Conv2d_1a_3x3")(x)
        x = ConvBN(32, (3, 3), name="Conv2d_2a_3x3")(x)
        x = _max_pool(ConvBN(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x))
        x = ConvBN(80, (1, 1), name="Conv2d_3b_1x1")(x)
        x = _max_pool(ConvBN(192, (3, 3), name="Conv2d_4a_3x3")(x))
        for name, pool in (("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)):
            x = InceptionA(pool, name=name)(x)
        x = InceptionB(name="Mixed_6a")(x)
        for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
            x = InceptionC(c7, name=name)(x)
        x = InceptionD(name="Mixed_7a")(x)
        x = InceptionE("avg", name="Mixed_7b")(x)
        x = InceptionE("max", name="Mixed_7c")(x)
        return jnp.mean(x, axis=(1, 2))


def abstract_params():
    """ShapeDtypeStructs of the network's parameters (what a weights file must hold)."""
    return jax.eval_shape(lambda: FIDInception().init(jax.random.key(0),
                                                      jnp.zeros((1, 75, 75, 3))))["params"]
