"""VGG-19's convolutional features up to relu4_1 (ImageNet weights, user-supplied).

Layers conv1_1 ... conv4_1 with torchvision's names (`features.0` ... `features.19`), so a
torchvision or timm VGG-19 file loads as it is. Input: images (N, H, W, 3) in [0, 1],
normalized by ImageNet's mean and std inside. Two flavours share the weights:
* the classifier's own (`pool="max"`, zero padding): the perceptual-loss network;
* WCT²'s encoder (`pool="haar"`, reflection padding): each pooling keeps the low-frequency
  part and returns the high-frequency parts, which a decoder puts back with `haar_unpool`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from tlgen.models.layers import conv2d, haar_pool
from tlgen.models.pixels import check_pixels

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# (name, width, torchvision index) of each conv up to conv4_1; a 2x pooling precedes the
# first conv of stages 2-4.
LAYERS = (("conv1_1", 64, 0), ("conv1_2", 64, 2), ("conv2_1", 128, 5), ("conv2_2", 128, 7),
          ("conv3_1", 256, 10), ("conv3_2", 256, 12), ("conv3_3", 256, 14), ("conv3_4", 256, 16),
          ("conv4_1", 512, 19))
TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def torch_prefixes() -> dict[str, str]:
    """Flax module -> torchvision module names."""
    return {name: f"features.{index}" for name, _, index in LAYERS}


def normalize(images: jax.Array) -> jax.Array:
    """[0, 1] RGB -> ImageNet-normalized input."""
    return (images - jnp.asarray(MEAN, images.dtype)) / jnp.asarray(STD, images.dtype)


class Conv3x3(nn.Module):
    """A 3x3 conv (kernel, bias as `nn.Conv` names them) with zero ("zero") or reflection
    ("reflect") padding of 1, run as `layers.conv2d` (XLA:CPU ran the reflection-padded
    "VALID" form 4.4x slower: 74 vs 17 ms for 64 channels at 64², batch 8)."""
    width: int
    padding: str = "zero"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (3, 3, x.shape[-1], self.width))
        bias = self.param("bias", nn.initializers.zeros, (self.width,))
        pad = ((1, 1), (1, 1))
        if self.padding == "reflect":
            x, pad = jnp.pad(x, ((0, 0),) + pad + ((0, 0),), mode="reflect"), ((0, 0), (0, 0))
        return conv2d(x.astype(self.dtype), kernel.astype(self.dtype), (1, 1), pad) + bias.astype(self.dtype)


def conv3x3(x: jax.Array, width: int, name: str, padding: str, dtype=jnp.float32) -> jax.Array:
    """`Conv3x3` named `name` applied to x (inside a compact module)."""
    return Conv3x3(width, padding, dtype, name=name)(x)


class VGG19(nn.Module):
    """images (N, H, W, 3) in [0, 1] -> ({tap: features} for relu1_1 ... relu4_1, or up to
    `last`; [high-frequency parts of each Haar pooling] (empty with max pooling))."""
    pool: str = "max"                 # "max" | "haar"
    padding: str = "zero"             # "zero" | "reflect"
    last: str = "relu4_1"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, images: jax.Array) -> tuple[dict[str, jax.Array], list[jax.Array]]:
        check_pixels(images, "images", "(N, H, W, 3)", scale="[0, 1]")
        names = [name for name, _, _ in LAYERS]
        used = names[:names.index(self.last.replace("relu", "conv")) + 1]
        pools = sum(1 for name in used[1:] if name.endswith("_1"))     # one before each block
        if self.pool == "haar" and any(n % 2 ** pools for n in images.shape[1:3]):
            raise ValueError(f"images of {images.shape[1]}x{images.shape[2]} px: Haar pooling up to "
                             f"{self.last} halves them {pools} times, so H and W must be multiples of "
                             f"{2 ** pools}.")
        x = normalize(images.astype(jnp.float32)).astype(self.dtype)
        taps, highs = {}, []
        for name, width, _ in LAYERS:
            if name.endswith("_1") and name != "conv1_1":
                if self.pool == "haar":
                    x, high = haar_pool(x)
                    highs.append(high)
                else:
                    x = nn.max_pool(x, (2, 2), (2, 2))
            x = nn.relu(conv3x3(x, width, name, self.padding, self.dtype))
            relu = name.replace("conv", "relu")
            if relu in TAPS:
                taps[relu] = x
            if relu == self.last:
                break
        return taps, highs


def abstract_params(last: str = "relu4_1"):
    """ShapeDtypeStructs of the parameters up to `last` (what a weights file must hold)."""
    x = jnp.zeros((1, 16, 16, 3))
    return jax.eval_shape(lambda: VGG19(last=last).init(jax.random.key(0), x))["params"]

