"""Pretrained weights a user supplies (VGG-19, Inception, I3D, ...): read without PyTorch or
TensorFlow, checked by name and shape.

tlgen downloads and ships no weights. A frozen network's loader names the config key or flag
that holds the file; `load_weights` reads a safetensors or `.npz` file and checks it against
the names and shapes the network expects, with one sentence per problem.

Files keep the published PyTorch names and layouts (`tlgen convert-weights` writes them from
a `.pth` or TorchScript file). `torch_layout` / `from_torch` map them onto a Flax parameter
tree whose module names follow the PyTorch ones: a Flax path ("Mixed_5b", "branch1x1",
"conv", "kernel") is the tensor "Mixed_5b.branch1x1.conv.weight", transposed from PyTorch's
(out, in, *window) to Flax's (*window, in, out); batch norms map scale/bias/mean/var to
weight/bias/running_mean/running_var. `prefixes` renames modules whose PyTorch names differ
("conv0" -> "features.0").
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping

import numpy as np

from tlgen.errors import UserError
from tlgen.files import not_a_file

FORMATS = (".safetensors", ".npz")


def read_arrays(path: str, key: str) -> dict[str, np.ndarray]:
    """All arrays of a safetensors or .npz file; `key` names where the path came from."""
    if not path:
        raise UserError(f"{key} is empty; set it to a {' or '.join(FORMATS)} weights file "
                        "(tlgen downloads none).")
    if not os.path.isfile(path):
        raise UserError(f"{key}: the weights file {path} {not_a_file(path)}; give the path of a "
                        f"{' or '.join(FORMATS)} file.")
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    try:
        if path.endswith(".safetensors"):
            return dict(load_file(path))
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as npz:
                return {name: npz[name] for name in npz.files}
    except (SafetensorError, OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{key}: {path} is not a readable weights file ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:160] if str(e) else 'no detail'}).") from None
    raise UserError(f"{key}: {path} must be a {' or '.join(FORMATS)} file; convert a PyTorch "
                    "file with `tlgen convert-weights` first.")


def load_weights(path: str, expected: Mapping[str, tuple[int, ...]], *, key: str,
                 dtype=np.float32) -> dict[str, np.ndarray]:
    """The arrays `expected` names, from `path`, as `dtype` (see `checked`)."""
    return checked(read_arrays(path, key), expected, path=path, key=key, dtype=dtype)


def checked(arrays: Mapping[str, np.ndarray], expected: Mapping[str, tuple[int, ...]], *,
            path: str, key: str, dtype=np.float32) -> dict[str, np.ndarray]:
    """The arrays `expected` names, as `dtype`. Raises one UserError listing, one sentence
    each, every missing array, every array of another shape and every array holding NaN or
    infinity (extra arrays are ignored)."""
    if expected and not any(name in arrays for name in expected):      # another network's file
        first = next(iter(expected))
        raise UserError(f"{key} does not hold the expected weights: {path} has none of the "
                        f"{len(expected)} arrays they need (such as {first!r}); is it the file of "
                        "another network?")
    problems = []
    for name, shape in expected.items():
        if name not in arrays:
            problems.append(f"{path} has no array {name!r} (expected shape {tuple(shape)}).")
        elif tuple(arrays[name].shape) != tuple(shape):
            problems.append(f"{path}: {name!r} has shape {tuple(arrays[name].shape)}, expected "
                            f"{tuple(shape)}.")
        elif not np.all(np.isfinite(arrays[name])):
            problems.append(f"{path}: {name!r} holds NaN or infinite values (a damaged file?).")
    if problems:
        shown = " ".join(problems[:5]) + (f" And {len(problems) - 5} more." if len(problems) > 5 else "")
        raise UserError(f"{key} does not hold the expected weights: {shown}")
    return {name: np.asarray(arrays[name], dtype) for name in expected}


_LEAF_NAMES = {"kernel": "weight", "scale": "weight", "bias": "bias", "mean": "running_mean",
               "var": "running_var"}


def _torch_name(path: tuple[str, ...], prefixes: Mapping[str, str]) -> str:
    module = "/".join(path[:-1])
    return f"{prefixes.get(module, '.'.join(path[:-1]))}.{_LEAF_NAMES[path[-1]]}"


def _flat(tree, prefix=()) -> dict[tuple[str, ...], object]:
    if isinstance(tree, Mapping):
        return {k: v for key, sub in tree.items() for k, v in _flat(sub, prefix + (str(key),)).items()}
    return {prefix: tree}


def _torch_shape(path: tuple[str, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    if path[-1] == "kernel":                 # (*window, in, out) <- (out, in, *window)
        return (shape[-1], shape[-2]) + tuple(shape[:-2])
    return tuple(shape)


def torch_layout(abstract_params, prefixes: Mapping[str, str] | None = None) -> dict[str, tuple]:
    """{PyTorch name: PyTorch shape} of every leaf of a Flax parameter tree (arrays or
    ShapeDtypeStructs): what a weights file must hold."""
    return {_torch_name(path, prefixes or {}): _torch_shape(path, tuple(leaf.shape))
            for path, leaf in _flat(abstract_params).items()}


def from_torch(arrays: Mapping[str, np.ndarray], abstract_params,
               prefixes: Mapping[str, str] | None = None) -> dict:
    """The Flax parameter tree shaped like `abstract_params` from PyTorch-named arrays."""
    params: dict = {}
    for path, _ in _flat(abstract_params).items():
        value = np.asarray(arrays[_torch_name(path, prefixes or {})], np.float32)
        if path[-1] == "kernel":
            value = np.transpose(value, tuple(range(2, value.ndim)) + (1, 0))
        node = params
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return params


def load_torch_weights(path: str, abstract_params, *, key: str,
                       prefixes: Mapping[str, str] | None = None,
                       arrays: Mapping[str, np.ndarray] | None = None) -> dict:
    """The Flax parameters shaped like `abstract_params` from a weights file with PyTorch
    names (or from its `arrays`, already read), every name and shape checked (one sentence
    each)."""
    arrays = read_arrays(path, key) if arrays is None else arrays
    layout = torch_layout(abstract_params, prefixes)
    return from_torch(checked(arrays, layout, path=path, key=key), abstract_params, prefixes)
