"""LPIPS v0.1 (Zhang et al.): a learned perceptual distance between images.

Both images go through a backbone (AlexNet, the default, or VGG-16: ImageNet weights) after
a fixed input scaling; the features of five ReLU layers are unit-normalized over channels,
their squared difference weighted per channel by a learned 1x1 "linear" head, averaged over
positions and summed over layers. Input: images (N, H, W, 3) in [0, 1].

Parameter names map to the published files: the backbone to torchvision's ("conv0" is
`features.0`), the heads to the LPIPS repository's ("lin0" is `lin0.model.1`);
`tlgen convert-weights --kind lpips-alex` merges the two files into one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from tlgen.models.pixels import check_pixels

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
# (width, kernel, stride, padding, max-pool before) per conv; the taps are the ReLUs of
# these convs (AlexNet) or of each stage's last conv (VGG-16).
ALEX = ((64, 11, 4, 2, False), (192, 5, 1, 2, True), (384, 3, 1, 1, True), (256, 3, 1, 1, False),
        (256, 3, 1, 1, False))
ALEX_TORCH = (0, 3, 6, 8, 10)
VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def _vgg16_layers():
    """(width, pool before, tap after, torch index) per conv of VGG-16's features."""
    layers, index = [], 0
    for s, stage in enumerate(VGG16_STAGES):
        for j, width in enumerate(stage):
            pool = s > 0 and j == 0
            index += int(pool)
            layers.append((width, pool, j == len(stage) - 1, index))
            index += 2                                 # conv, ReLU
    return layers


def torch_prefixes(net: str) -> dict[str, str]:
    """Flax module -> PyTorch module names of `net` ("alex" | "vgg")."""
    indices = ALEX_TORCH if net == "alex" else [t for *_, t in _vgg16_layers()]
    names = {f"conv{k}": f"features.{i}" for k, i in enumerate(indices)}
    return {**names, **{f"lin{k}": f"lin{k}.model.1" for k in range(5)}}


class LPIPS(nn.Module):
    """(images a, images b) in [0, 1] -> distance (N,)."""
    net: str = "alex"

    def features(self, x):
        """The backbone's tapped ReLU features of images in [0, 1]."""
        x = (x * 2.0 - 1.0 - jnp.asarray(SHIFT)) / jnp.asarray(SCALE)
        taps = []
        if self.net == "alex":
            layers = [(w, k, s, p, pool, True) for w, k, s, p, pool in ALEX]
        else:
            layers = [(w, 3, 1, 1, pool, tap) for w, pool, tap, _ in _vgg16_layers()]
        for k, (width, kernel, stride, pad, pool, tap) in enumerate(layers):
            if pool:
                x = nn.max_pool(x, (3, 3) if self.net == "alex" else (2, 2),
                                (2, 2), padding="VALID")
            x = nn.relu(nn.Conv(width, (kernel, kernel), (stride, stride), padding=((pad, pad), (pad, pad)),
                                name=f"conv{k}")(x))
            if tap:
                taps.append(x)
        return taps

    @nn.compact
    def __call__(self, a, b):
        for what, x in (("a", a), ("b", b)):
            check_pixels(x, what, "(N, H, W, 3)", scale="[0, 1]")
        n = a.shape[0]
        taps = self.features(jnp.concatenate([a, b], axis=0).astype(jnp.float32))
        if any(0 in f.shape[1:3] for f in taps):
            raise ValueError(f"images of {a.shape[1]}x{a.shape[2]} px leave LPIPS-{self.net}'s deepest "
                             "features empty; give larger images.")
        total = 0.0
        for i, f in enumerate(taps):
            f = f / (jnp.sqrt(jnp.sum(f * f, axis=-1, keepdims=True)) + 1e-10)
            diff = jnp.square(f[:n] - f[n:])
            total = total + jnp.mean(nn.Conv(1, (1, 1), use_bias=False, name=f"lin{i}")(diff), axis=(1, 2, 3))
        return total


def abstract_params(net: str = "alex"):
    """ShapeDtypeStructs of the parameters of `net` (what a weights file must hold)."""
    x = jnp.zeros((1, 64, 64, 3))
    return jax.eval_shape(lambda: LPIPS(net).init(jax.random.key(0), x, x))["params"]
