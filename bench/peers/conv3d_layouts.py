"""A strided 3-D convolution computed two ways, forward + backward, in JAX (and PyTorch):
as a 3-D conv, and with the temporal taps folded into channels of a batched 2-D conv.

  python bench/peers/conv3d_layouts.py      # prints ms and GFLOP/s per layout and shape

Same function (checked); the second form reaches XLA:CPU's fast 2-D conv path.
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tlgen.bench.timing import median, time_calls  # noqa: E402

DN3, DN2 = ("NDHWC", "DHWIO", "NDHWC"), ("NHWC", "HWIO", "NHWC")


def conv3d(x, w, strides, pad):
    return jax.lax.conv_general_dilated(x, w, strides, pad, dimension_numbers=DN3)


def conv3d_folded(x, w, strides, pad):
    """The same 3-D conv: gather the kt time taps of each output step into channels, then
    one 2-D conv over (batch x output steps)."""
    kt, st = w.shape[0], strides[0]
    x = jnp.pad(x, ((0, 0), pad[0], (0, 0), (0, 0), (0, 0)))
    tout = (x.shape[1] - kt) // st + 1
    taps = np.arange(tout)[:, None] * st + np.arange(kt)[None]
    xs = x[:, taps]                                              # (B, tout, kt, H, W, C)
    b, _, _, h, wd, c = xs.shape
    xs = xs.transpose(0, 1, 3, 4, 2, 5).reshape(b * tout, h, wd, kt * c)
    w2 = w.transpose(1, 2, 0, 3, 4).reshape(w.shape[1], w.shape[2], kt * c, w.shape[-1])
    y = jax.lax.conv_general_dilated(xs, w2, strides[1:], pad[1:], dimension_numbers=DN2)
    return y.reshape((b, tout) + y.shape[1:])


# DTVNet base critic / flow-encoder layers at batch 8, 32 frames of 128^2 (and the tiny ones).
SHAPES = [((8, 32, 128, 128, 3), 32, (3, 4, 4), (1, 2, 2)),
          ((8, 32, 64, 64, 32), 64, (4, 4, 4), (2, 2, 2)),
          ((8, 16, 32, 32, 64), 128, (4, 4, 4), (2, 2, 2)),
          ((8, 8, 32, 32, 3), 8, (3, 4, 4), (1, 2, 2)),
          ((8, 8, 16, 16, 8), 16, (4, 4, 4), (2, 2, 2))]


def main() -> None:
    dtype = jnp.bfloat16 if jax.devices()[0].platform == "gpu" else jnp.float32
    shapes = SHAPES if dtype == jnp.bfloat16 else SHAPES[3:]
    for shape, cout, k, s in shapes:
        x = jax.random.normal(jax.random.key(0), shape, dtype)
        w = (0.1 * jax.random.normal(jax.random.key(1), k + (shape[-1], cout))).astype(dtype)
        pad = ((1, 1),) * 3
        ref = conv3d(x, w, s, pad)
        err = float(jnp.linalg.norm((conv3d_folded(x, w, s, pad) - ref).astype(jnp.float32))
                    / jnp.linalg.norm(ref.astype(jnp.float32)))
        ct = jax.random.normal(jax.random.key(2), ref.shape, dtype)
        for name, f in (("conv3d", conv3d), ("folded2d", conv3d_folded)):
            def fwd_bwd(x, w, ct, f=f):
                y, vjp = jax.vjp(lambda a, b: f(a, b, s, pad), x, w)
                return y, vjp(ct)
            compiled = jax.jit(fwd_bwd).lower(x, w, ct).compile()
            t = median(time_calls(lambda: compiled(x, w, ct), steps=5, warmup=2))
            flops = 3 * 2 * np.prod(ref.shape) * np.prod(k) * shape[-1]
            print(f"jax {name:9s} {shape} k{k} s{s} {jnp.dtype(dtype).name}: {t * 1e3:8.2f} ms "
                  f"{flops / t / 1e12:7.3f} TFLOP/s (rel err {err:.1e})")
    try:
        import torch
    except ImportError:
        return
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    tdt = torch.bfloat16 if dev == "cuda" else torch.float32
    for shape, cout, k, s in shapes:
        b, t, h, w_, c = shape
        conv = torch.nn.Conv3d(c, cout, k, s, 1, bias=False).to(dev, tdt)
        x = torch.randn(b, c, t, h, w_, device=dev, dtype=tdt, requires_grad=True)

        def step():
            y = conv(x)
            y.backward(torch.ones_like(y))
            if dev == "cuda":
                torch.cuda.synchronize()
        times = time_calls(step, steps=5, warmup=2)
        y = conv(x)
        flops = 3 * 2 * y.numel() * np.prod(k) * c
        print(f"torch conv3d {shape} k{k} s{s}: {median(times) * 1e3:8.2f} ms "
              f"{flops / median(times) / 1e12:7.3f} TFLOP/s")


if __name__ == "__main__":
    main()
