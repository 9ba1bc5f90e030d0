"""Weights files of the metric networks with random values (no PyTorch needed): He-scaled
kernels, unit batch norms, positive LPIPS heads, under the published names."""

import numpy as np
from safetensors.numpy import save_file

from tlgen.weights import torch_layout


def write(path, abstract_params, prefixes=None, seed=0) -> str:
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, shape in torch_layout(abstract_params, prefixes).items():
        if name.endswith("running_var") or (name.endswith(".weight") and len(shape) == 1):
            arrays[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)   # bn var / scale
        elif len(shape) > 1:
            fan_in = int(np.prod(shape[1:]))
            value = rng.normal(0, np.sqrt(2 / fan_in), shape)
            arrays[name] = np.abs(value).astype(np.float32) if name.startswith("lin") else value.astype(np.float32)
        else:
            arrays[name] = np.zeros(shape, np.float32)
    save_file(arrays, path)
    return path
