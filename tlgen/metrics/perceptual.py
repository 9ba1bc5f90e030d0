"""The pretrained networks of the metrics — FID's Inception-v3, FVD's I3D, LPIPS — read from
files a user supplies (safetensors or .npz with the published PyTorch names; see
`tlgen convert-weights`), applied in fixed-size jitted batches, the batch split over the
devices of a mesh when one is given.

    inception = Inception.load("pt_inception.safetensors")      # flag --inception
    features = inception.features(frames)                       # uint8 (N, H, W, 3) -> (N, 2048)
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import einops
import jax
import jax.numpy as jnp
import numpy as np

from tlgen.models import i3d as i3d_model
from tlgen.models import inception as inception_model
from tlgen.models import lpips as lpips_model
from tlgen.models.layers import resize_bilinear
from tlgen.parallel import batch_sharding, compiler_options, replicated
from tlgen.weights import load_torch_weights, read_arrays

BATCH = 16     # images or clips per call (fewer when there are fewer; a multiple of the devices)


def _unit(x) -> jax.Array:
    """uint8 images -> float32 in [0, 1]; floats are taken as already in [0, 1]; other integer
    types (whose range is not known) are refused."""
    x = jnp.asarray(x)
    if x.dtype == jnp.uint8:
        return x.astype(jnp.float32) / 255.0
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"images must be uint8 (0..255) or floats in [0, 1], not {x.dtype}")
    return x.astype(jnp.float32)


def inception_features(params, images, size: int = inception_model.INPUT_SIZE) -> jax.Array:
    """FID's pool features (N, 2048) of images (N, H, W, 3), uint8 or in [0, 1] (traceable)."""
    return inception_model.FIDInception(size).apply({"params": params}, _unit(images))


def i3d_features(params, clips, size: int = i3d_model.INPUT_SIZE) -> jax.Array:
    """FVD's averaged logits (N, 400) of clips (N, T, H, W, 3), uint8 or in [0, 1]: frames
    resized to size x size bilinearly and mapped to [-1, 1] (traceable)."""
    frames = resize_bilinear(einops.rearrange(_unit(clips), "n t h w c -> (n t) h w c"), (size, size))
    clips = einops.rearrange(frames, "(n t) h w c -> n t h w c", n=clips.shape[0])
    return i3d_model.I3D().apply({"params": params}, clips * 2.0 - 1.0)


def lpips_distance(params, a, b, net: str) -> jax.Array:
    """LPIPS distances (N,) of image pairs, uint8 or in [0, 1] (traceable)."""
    return lpips_model.LPIPS(net).apply({"params": params}, _unit(a), _unit(b))


@functools.lru_cache(maxsize=None)
def _jitted(fn, mesh, arrays: int, **static):
    """`fn` jitted once per (function, mesh, static arguments) for every network object."""
    fn = functools.partial(fn, **static)
    platform = jax.default_backend() if mesh is None else mesh.devices.flat[0].platform
    options = compiler_options(platform)
    if mesh is None:
        return jax.jit(fn, compiler_options=options)
    return jax.jit(fn, in_shardings=(replicated(mesh),) + (batch_sharding(mesh),) * arrays,
                   out_shardings=replicated(mesh), compiler_options=options)


@dataclasses.dataclass
class _Network:
    """A network's parameters, applied batch by batch (the batch split over `mesh`). The
    parameters go to the devices once, not with every batch; the batches are all dispatched
    before the first result is fetched."""
    params: Any
    mesh: jax.sharding.Mesh | None = None

    def __post_init__(self):
        self.params = jax.device_put(self.params, None if self.mesh is None else replicated(self.mesh))

    def _apply(self, fn, *arrays: np.ndarray, **static) -> np.ndarray:
        jitted = _jitted(fn, self.mesh, len(arrays), **static)
        devices = 1 if self.mesh is None else self.mesh.size
        size = -(-min(BATCH, len(arrays[0])) // devices) * devices     # one compiled shape
        out = []
        for start in range(0, len(arrays[0]), size):
            chunk = [np.asarray(a[start:start + size]) for a in arrays]
            pad = size - len(chunk[0])
            chunk = [np.concatenate([c, np.repeat(c[-1:], pad, axis=0)]) if pad else c for c in chunk]
            out.append((jitted(self.params, *chunk), size - pad))
        return np.concatenate([np.asarray(y)[:n] for y, n in out])


class Inception(_Network):
    """FID's Inception-v3: images -> 2048-d pool features."""

    @classmethod
    def load(cls, path: str, key: str = "--inception", mesh=None) -> "Inception":
        """pytorch-fid's Inception-v3 from a safetensors / .npz file (`key` names it in errors)."""
        return cls(load_torch_weights(path, inception_model.abstract_params(), key=key), mesh)

    def features(self, images, size: int = inception_model.INPUT_SIZE) -> np.ndarray:
        """uint8 (N, H, W, 3) or floats in [0, 1] -> (N, 2048) float32 (images resized to
        size x size: the protocol's 299; smaller only for tests)."""
        return self._apply(inception_features, images, size=size)


class I3D(_Network):
    """FVD's I3D: clips -> 400 averaged logits."""

    @classmethod
    def load(cls, path: str, key: str = "--i3d", mesh=None) -> "I3D":
        """I3D (Kinetics-400) from a safetensors / .npz file (`key` names it in errors)."""
        return cls(load_torch_weights(path, i3d_model.abstract_params(), key=key), mesh)

    def features(self, clips, size: int = i3d_model.INPUT_SIZE) -> np.ndarray:
        """uint8 clips (N, T, H, W, 3) (or floats in [0, 1]) -> (N, 400): every frame resized
        to size x size bilinearly (half-pixel, no antialiasing) and mapped to [-1, 1]."""
        return self._apply(i3d_features, clips, size=size)


@dataclasses.dataclass
class LPIPS(_Network):
    """LPIPS v0.1 distance between image pairs."""
    net: str = "alex"

    @classmethod
    def load(cls, path: str, key: str = "--lpips", mesh=None) -> "LPIPS":
        """The backbone (AlexNet or VGG-16) is recognized from the file's layers."""
        arrays = read_arrays(path, key)
        net = "vgg" if "features.28.weight" in arrays else "alex"
        params = load_torch_weights(path, lpips_model.abstract_params(net), key=key,
                                    prefixes=lpips_model.torch_prefixes(net), arrays=arrays)
        return cls(params, mesh, net)

    def distance(self, a, b) -> np.ndarray:
        """Images a, b (N, H, W, 3), uint8 or in [0, 1] -> (N,) distances."""
        return self._apply(lpips_distance, a, b, net=self.net)
