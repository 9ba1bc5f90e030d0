"""The device's measured matmul rate: the denominator of MFU, measured in the same run."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from tlgen.bench.timing import median, time_calls

# Matrix side per platform: large enough to reach the unit's rate, small enough to be quick.
_DEFAULT_SIZE = {"cpu": 1024, "gpu": 8192, "cuda": 8192, "rocm": 8192, "tpu": 8192}


def cost_flops(stage) -> float:
    """FLOPs from XLA's cost analysis of a `jax.stages.Lowered` or `Compiled` (0 if unknown).

    Prefer the Lowered stage: it analyses the whole (unpartitioned) program before
    backend passes. A GPU-compiled program hands convolutions and matmuls to cuDNN/cuBLAS
    custom calls, which its cost analysis counts as 0 or -1 FLOPs.
    """
    analysis = stage.cost_analysis()
    if isinstance(analysis, (list, tuple)):  # older JAX: one dict per program
        analysis = analysis[0] if analysis else {}
    return max(float((analysis or {}).get("flops", 0.0)), 0.0)


def matmul_peak(dtype: str = "float32", *, size: int | None = None, steps: int = 10,
                device: jax.Device | None = None) -> dict:
    """Measures FLOP/s of an (n, n) @ (n, n) product in `dtype` on `device`.

    Timed like the training step (median of `steps` synchronized calls after warm-up),
    on random data (zeros run faster on some chips). Returns
    ``{"flops_per_s", "size", "dtype", "seconds", "flops"}``.
    """
    device = device or jax.devices()[0]
    n = size or _DEFAULT_SIZE.get(device.platform, 2048)
    keys = jax.random.split(jax.random.key(0), 2)
    a, b = (jax.device_put(jax.random.normal(k, (n, n), jnp.float32).astype(dtype), device)
            for k in keys)
    product = jax.jit(lambda x, y: jnp.matmul(x, y, preferred_element_type=x.dtype))
    compiled = product.lower(a, b).compile()
    flops = 2.0 * n ** 3
    seconds = median(time_calls(lambda: compiled(a, b), steps=steps, warmup=2))
    return {"flops_per_s": flops / seconds, "size": n, "dtype": str(jnp.dtype(dtype)),
            "seconds": seconds, "flops": flops}
