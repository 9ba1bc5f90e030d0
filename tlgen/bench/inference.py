"""Inference throughput: frames a trained model produces per second.

* dtvnet: the generator animating the batch's first frames with sampled motion
  (`tlgen.models.dtvnet.generate`), T frames per image — the generation rate.
* timescale_ae: decoding codes to frames (`tlgen.models.timescale_ae.decode`), the inner
  loop of every timelapse synthesis mode.

Each is jitted alone and timed like the step (median of synchronized calls after warm-up).
"""

from __future__ import annotations

import jax
import numpy as np

from tlgen.bench.timing import median, time_calls
from tlgen.train.state import compute_dtype


def _dtvnet(config, state, batch):
    from tlgen.models import dtvnet
    dtype = compute_dtype(config)
    variables = {"params": state.params["g"]["generator"],
                 "batch_stats": state.extra["batch_stats"]["generator"]}
    image = dtvnet.to_model_range(batch["frames"][:, 0])
    motion = dtvnet.sample_motion(jax.random.PRNGKey(0), image.shape[0], int(config.model.motion_dim))
    fn = jax.jit(lambda v, i, m: dtvnet.generate(v, i, m, dtype)[0])
    frames = image.shape[0] * int(config.data.num_frames)
    return (lambda: fn(variables, image, motion)), frames


def _timescale_ae(config, state, batch):
    from tlgen.models import timescale_ae as ae
    dtype = compute_dtype(config)
    params = state.params["ae"]
    w = jax.jit(lambda p, x: ae.encode(p, x, cfg=config.model, dtype=dtype))(params, batch["anchor"])
    fn = jax.jit(lambda p, c: ae.decode(p, c, cfg=config.model, dtype=dtype))
    return (lambda: fn(params, w)), int(w.shape[0])


ADAPTERS = {"dtvnet": _dtvnet, "timescale_ae": _timescale_ae}
WHAT = {"dtvnet": "generator: image + sampled motion -> T frames",
        "timescale_ae": "decoder: codes -> frames"}


def inference_throughput(config, family, state, batch, *, steps: int = 5) -> dict | None:
    """Frames/s of the family's generation path at the benchmark batch; for families not
    listed above, of its `sample` (None if it has none)."""
    adapter = ADAPTERS.get(str(config.family))
    if adapter is None:
        return sample_throughput(family, state, batch)
    call, frames = adapter(config, state, batch)
    seconds = median(time_calls(call, steps=steps, warmup=2))
    return {"frames_per_s": frames / seconds, "frames": frames, "seconds": seconds,
            "what": WHAT[str(config.family)]}


def sample_throughput(family, state, batch, *, steps: int = 3) -> dict | None:
    """Frames/s of the family's `sample` (inference), or None if it has none."""
    if family.sample is None:
        return None
    rng = jax.random.key(1)
    sample = jax.jit(family.sample)
    outputs = {}

    def call():
        outputs.update(sample(state, batch, rng))
        return outputs

    times = time_calls(call, steps=steps, warmup=1)
    frames = sum(int(np.prod(np.shape(v)[:-3])) for v in outputs.values()
                 if np.ndim(v) >= 4)
    seconds = median(times)
    return {"frames_per_s": frames / seconds, "frames": frames, "seconds": seconds,
            "outputs": {k: list(np.shape(v)) for k, v in outputs.items()}}
