"""Inference throughput: frames a trained model produces per second.

A family's `inference_benchmark(trained, batch)` names its generation path (DTVNet: the
generator animating images; the timescale autoencoder: the decoder, the inner loop of every
timelapse mode); it runs on the benchmark's live state, seen through the generic inference
view (`tlgen.trained.Trained.from_state`: the EMA parameters when kept). A family without one
is measured through its `sample`. Each is timed like the step (median of synchronized calls
after warm-up).
"""

from __future__ import annotations

import jax
import numpy as np

from tlgen.bench.timing import median, time_calls
from tlgen.trained import Trained


def inference_throughput(built, *, steps: int = 5) -> dict | None:
    """Frames/s of the family's generation path on the benchmark batch (None when it has
    neither an `inference_benchmark` nor a `sample`)."""
    engine = built.engine
    if engine.spec.inference_benchmark is None:
        return sample_throughput(built)
    trained = Trained.from_state(engine.config, built.state, engine.mesh, frozen=engine.frozen)
    call, frames, what = engine.spec.inference_benchmark(trained, built.batch)
    seconds = median(time_calls(call, steps=steps, warmup=2))
    return {"frames_per_s": frames / seconds, "frames": frames, "seconds": seconds, "what": what}


def sample_throughput(built, *, steps: int = 3) -> dict | None:
    """Frames/s of the family's `sample` (jitted by the engine), or None if it has none."""
    engine = built.engine
    if engine.fam.sample is None:
        return None
    rng = jax.random.key(1)
    outputs = {}

    def call():
        outputs.update(engine.sample(built.state, built.batch, rng))
        return outputs

    seconds = median(time_calls(call, steps=steps, warmup=1))
    frames = sum(int(np.prod(np.shape(v)[:-3])) for v in outputs.values() if np.ndim(v) >= 4)
    return {"frames_per_s": frames / seconds, "frames": frames, "seconds": seconds,
            "outputs": {k: list(np.shape(v)) for k, v in outputs.items()}, "what": "sample"}
