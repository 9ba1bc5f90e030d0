"""Per-layer cost table: each weight layer of a step timed alone, forward + backward.

The layers are found by tracing the step abstractly with `flax.linen.intercept_methods`
(no device work): a layer is a module without submodules that owns a "kernel" parameter
(nn.Conv, nn.Dense and custom ones alike). Every distinct (layer, input shape) is then
compiled on its own, its FLOPs counted from its jaxpr and its forward+backward time
measured like the step. A layer whose FLOP rate is far below the device's matmul rate is
where the step loses time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from tlgen.bench.flops import count_flops, jaxpr_flops
from tlgen.bench.timing import median, time_calls

@dataclasses.dataclass
class LayerCall:
    """One distinct layer configuration applied to one input shape, and how often."""
    module: nn.Module
    shape: tuple[int, ...]
    dtype: Any
    path: str
    count: int = 1


def _signature(module: nn.Module) -> str:
    fields = {f.name: getattr(module, f.name) for f in dataclasses.fields(module)
              if f.name not in ("parent", "name")}
    return f"{type(module).__name__}{sorted(fields.items(), key=lambda kv: kv[0])!r}"


def _is_weight_layer(module: nn.Module) -> bool:
    """A module with a "kernel" parameter and no submodule parameters."""
    try:
        params = module.variables.get("params", {})
    except ValueError:  # an unbound module has no variables
        return False
    return "kernel" in params and not any(isinstance(v, Mapping) for v in params.values())


def collect_layers(fn: Callable, *args) -> list[LayerCall]:
    """The distinct weight-layer calls (single array input) of `fn(*args)`, traced abstractly."""
    found: dict[tuple, LayerCall] = {}

    def interceptor(next_fun, call_args, kwargs, context):
        out = next_fun(*call_args, **kwargs)
        module = context.module
        if (context.method_name == "__call__" and len(call_args) == 1 and not kwargs
                and hasattr(call_args[0], "shape") and _is_weight_layer(module)):
            x = call_args[0]
            key = (_signature(module), tuple(x.shape), str(x.dtype))
            if key in found:
                found[key].count += 1
            else:
                path = "/".join(str(p) for p in module.scope.path) if module.scope else ""
                found[key] = LayerCall(module.clone(parent=None, name=None), tuple(x.shape),
                                       x.dtype, path)
        return out

    with nn.intercept_methods(interceptor):
        # a fresh function: a cached trace of `fn` would run no Python, so no interceptor
        jax.eval_shape(lambda *a: fn(*a), *args)
    return list(found.values())


def _describe(module: nn.Module) -> str:
    text = type(module).__name__
    kernel = getattr(module, "kernel_size", None)
    if kernel is not None:
        text += f" {tuple(kernel) if isinstance(kernel, (tuple, list)) else (kernel, kernel)}"
    if getattr(module, "strides", None) not in (None, 1, (1, 1), (1, 1, 1)):
        text += f" s{module.strides}"
    if getattr(module, "features", None) is not None:
        text += f" ->{module.features}"
    return text


def layer_cost(call: LayerCall, *, steps: int = 5, compiler_options: dict | None = None) -> dict:
    """Compiles (with the step's `compiler_options`) and times `call`'s layer forward +
    backward (grads of params and input)."""
    module = call.module
    x = jax.random.normal(jax.random.key(0), call.shape, jnp.float32).astype(call.dtype)
    params = jax.jit(module.init)(jax.random.key(1), x)

    out = jax.eval_shape(module.apply, params, x)
    cotangent = jax.random.normal(jax.random.key(2), out.shape, jnp.float32).astype(out.dtype)

    def fwd_bwd(params, x, cotangent):  # a real cotangent: constants would be folded away
        y, vjp = jax.vjp(lambda p, v: module.apply(p, v), params, x)
        return y, vjp(cotangent)  # y too, else the forward pass is dead code

    traced = jax.jit(fwd_bwd, compiler_options=compiler_options).trace(params, x, cotangent)
    flops = jaxpr_flops(traced.jaxpr.jaxpr)
    compiled = traced.lower().compile()
    seconds = median(time_calls(lambda: compiled(params, x, cotangent), steps=steps, warmup=1))
    return {"layer": _describe(module), "path": call.path, "input": list(call.shape),
            "dtype": str(jnp.dtype(call.dtype)), "count": call.count, "flops": flops,
            "seconds": seconds, "flops_per_s": flops / seconds}


def forward_flops(call: LayerCall) -> float:
    """Forward FLOPs of one call of the layer (traced, not compiled)."""
    x = jax.ShapeDtypeStruct(call.shape, call.dtype)
    params = jax.eval_shape(call.module.init, jax.random.key(0), x)
    return count_flops(call.module.apply, params, x)


def layer_table(fn: Callable, *args, peak_flops_per_s: float, steps: int = 5,
                max_layers: int | None = None, compiler_options: dict | None = None) -> list[dict]:
    """The distinct conv/dense layers of `fn(*args)` with their FLOPs, time and rate.

    With `max_layers`, only the layers with the most FLOPs (forward FLOPs x calls) are
    compiled and timed. Rows are sorted by total time (time x count) and carry
    `peak_fraction` (rate over `peak_flops_per_s`) and `slow` (rate under half of it).
    """
    calls = sorted(collect_layers(fn, *args), key=lambda c: -forward_flops(c) * c.count)
    rows = [layer_cost(call, steps=steps, compiler_options=compiler_options)
            for call in calls[:max_layers]]
    for row in rows:
        row["peak_fraction"] = row["flops_per_s"] / peak_flops_per_s
        row["slow"] = row["peak_fraction"] < 0.5
    return sorted(rows, key=lambda r: -r["seconds"] * r["count"])
