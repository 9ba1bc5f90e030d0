"""Matmul and convolution FLOPs of a JAX function, counted from its jaxpr.

Backend-independent: XLA's cost analysis of a GPU program counts the convolutions and
matmuls it hands to cuDNN/cuBLAS as 0 (or -1) FLOPs, so the harness counts them here.
A convolution counts 2 FLOPs per multiply-add over in-bounds taps only (padding and
dilation holes excluded), the same rule as XLA's HloCostAnalysis; elementwise work is not
counted (MFU conventionally counts the matrix work).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import numpy as np
from jax.extend import core as jcore


def _valid_taps(size: int, kernel: int, stride: int, pad: tuple[int, int], lhs_dil: int,
                rhs_dil: int, out: int) -> int:
    """(output position, kernel tap) pairs of one spatial dim that land on real input."""
    dilated = (size - 1) * lhs_dil + 1
    pos = (np.arange(out)[:, None] * stride + np.arange(kernel)[None, :] * rhs_dil - pad[0])
    valid = (pos >= 0) & (pos < dilated) & (pos % lhs_dil == 0)
    return int(valid.sum())


def conv_flops(eqn) -> float:
    """FLOPs of one `conv_general_dilated` equation."""
    p = eqn.params
    lhs, rhs = (v.aval.shape for v in eqn.invars[:2])
    out = eqn.outvars[0].aval.shape
    dn = p["dimension_numbers"]
    lhs_spec, rhs_spec, out_spec = dn.lhs_spec, dn.rhs_spec, dn.out_spec
    in_features = lhs[lhs_spec[1]] // p["feature_group_count"]
    taps = 1
    for i in range(len(lhs_spec) - 2):
        taps *= _valid_taps(lhs[lhs_spec[2 + i]], rhs[rhs_spec[2 + i]], p["window_strides"][i],
                            p["padding"][i], p["lhs_dilation"][i], p["rhs_dilation"][i],
                            out[out_spec[2 + i]])
    return 2.0 * out[out_spec[0]] * out[out_spec[1]] * in_features * taps


def dot_flops(eqn) -> float:
    """FLOPs of one `dot_general` equation: 2 x batch x M x N x K."""
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    lhs, rhs = (v.aval.shape for v in eqn.invars[:2])
    rhs_free = [d for i, d in enumerate(rhs) if i not in rc and i not in rb]
    return 2.0 * math.prod(lhs) * math.prod(rhs_free)


def _sub_jaxprs(value):
    if isinstance(value, jcore.ClosedJaxpr):
        yield value.jaxpr
    elif isinstance(value, jcore.Jaxpr):
        yield value


def jaxpr_flops(jaxpr) -> float:
    """Matmul + conv FLOPs of a jaxpr, recursing into calls (scan bodies times their length,
    the costliest branch of a cond, one iteration of a while loop)."""
    total = 0.0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "conv_general_dilated":
            total += conv_flops(eqn)
        elif name == "dot_general":
            total += dot_flops(eqn)
        elif name == "cond":
            total += max(jaxpr_flops(b.jaxpr) for b in eqn.params["branches"])
        else:
            inner = sum(jaxpr_flops(j) for v in eqn.params.values() for j in _sub_jaxprs(v))
            total += inner * (eqn.params.get("length", 1) if name == "scan" else 1)
    return total


def count_flops(fn: Callable, *args) -> float:
    """Matmul + conv FLOPs of `fn(*args)` (arrays or ShapeDtypeStructs); traces only."""
    return jaxpr_flops(jax.make_jaxpr(fn)(*args).jaxpr)
