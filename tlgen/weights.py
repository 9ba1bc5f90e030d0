"""Pretrained weights a user supplies (VGG-19, Inception, I3D, ...): read without PyTorch or
TensorFlow, checked by name and shape.

tlgen downloads and ships no weights. A frozen network's loader names the config key or flag
that holds the file; `load_weights` reads a safetensors or `.npz` file and checks it against
the names and shapes the network expects, with one sentence per problem.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping

import numpy as np

from tlgen.errors import UserError

FORMATS = (".safetensors", ".npz")


def read_arrays(path: str, key: str) -> dict[str, np.ndarray]:
    """All arrays of a safetensors or .npz file; `key` names where the path came from."""
    if not path:
        raise UserError(f"{key} is empty; set it to a {' or '.join(FORMATS)} weights file "
                        "(tlgen downloads none).")
    if not os.path.isfile(path):
        raise UserError(f"{key}: the weights file {path} does not exist; give the path of a "
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
    raise UserError(f"{key}: {path} must be a {' or '.join(FORMATS)} file; convert it to one of "
                    "those first.")


def load_weights(path: str, expected: Mapping[str, tuple[int, ...]], *, key: str,
                 dtype=np.float32) -> dict[str, np.ndarray]:
    """The arrays `expected` names, from `path`, as `dtype`.

    Raises one UserError listing, one sentence each, every missing array and every array of
    another shape (extra arrays in the file are ignored).
    """
    arrays = read_arrays(path, key)
    problems = []
    for name, shape in expected.items():
        if name not in arrays:
            problems.append(f"{path} has no array {name!r} (expected shape {tuple(shape)}).")
        elif tuple(arrays[name].shape) != tuple(shape):
            problems.append(f"{path}: {name!r} has shape {tuple(arrays[name].shape)}, expected "
                            f"{tuple(shape)}.")
    if problems:
        shown = " ".join(problems[:5]) + (f" And {len(problems) - 5} more." if len(problems) > 5 else "")
        raise UserError(f"{key} does not hold the expected weights: {shown}")
    return {name: np.asarray(arrays[name], dtype) for name in expected}
