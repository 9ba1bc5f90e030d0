"""The metrics of `tlgen.metrics.protocol` as trainer evaluators (`tlgen.family.Evaluator`):
computed on the eval batches during training, on the devices, with the frozen networks the
family loads; accumulated on the host; finalized once — so `train.keep_best` can name them.

Each takes `real(state, batch)` and `fake(state, batch)`: the family's real and generated
images (N, H, W, 3) or clips (N, T, H, W, 3), in [0, 1], from one eval batch.
"""

from __future__ import annotations

from collections.abc import Callable

import einops
import jax.numpy as jnp
import numpy as np

from tlgen.family import Evaluator, mean_of
from tlgen.metrics import distribution, perceptual
from tlgen.metrics.distribution import FeatureStats, frechet_from_stats
from tlgen.models import i3d as i3d_model
from tlgen.models import inception as inception_model


# The training-time metrics of the networks `config.eval` names: metric -> its key there.
METRIC_NETWORKS = {"fid": "inception", "fvd": "i3d", "lpips": "lpips"}


def _frechet(name: str, dim: int, features: Callable, real: Callable, fake: Callable) -> Evaluator:
    def compute(state, batch, frozen):
        return {"real": features(frozen, real(state, batch)), "fake": features(frozen, fake(state, batch))}

    def accumulate(total, out):
        total = total or (FeatureStats(dim), FeatureStats(dim))
        total[0].update(out["real"])
        total[1].update(out["fake"])
        return total
    return Evaluator(compute, accumulate, lambda total: {name: frechet_from_stats(*total)})


def fid(real: Callable, fake: Callable) -> Evaluator:
    """"fid" of frames (clips are taken frame by frame), with frozen["inception"]."""
    def features(frozen, x):
        frames = einops.rearrange(x, "... h w c -> (...) h w c")
        return perceptual.inception_features(frozen["inception"], frames)
    return _frechet("fid", inception_model.FEATURES, features, real, fake)


def fvd(real: Callable, fake: Callable) -> Evaluator:
    """"fvd" of clips (as long as the eval batches make them), with frozen["i3d"]."""
    def features(frozen, clips):
        return perceptual.i3d_features(frozen["i3d"], clips)
    return _frechet("fvd", i3d_model.NUM_CLASSES, features, real, fake)


def lpips(real: Callable, fake: Callable) -> Evaluator:
    """"lpips": the mean distance of paired frames, with frozen["lpips"] (AlexNet or VGG-16,
    told apart by its layers)."""
    def compute(state, batch, frozen):
        a, b = (f(state, batch) for f in (fake, real))
        a, b = (einops.rearrange(x, "... h w c -> (...) h w c") for x in (a, b))
        net = "vgg" if "conv12" in frozen["lpips"] else "alex"
        return {"lpips": jnp.mean(perceptual.lpips_distance(frozen["lpips"], a, b, net))}
    return mean_of(compute)


def frozen_networks(paths) -> dict[str, Callable[[], dict]]:
    """Loaders of the metric networks named by a config section (`config.eval`: inception,
    i3d, lpips file paths; empty = not used), for a family's `frozen`."""
    kinds = {"inception": perceptual.Inception, "i3d": perceptual.I3D, "lpips": perceptual.LPIPS}
    return {name: (lambda cls=cls, path=paths[name], name=name:
                   cls.load(path, key=f"config.eval.{name}").params)
            for name, cls in kinds.items() if paths.get(name)}


def metric_evaluators(paths, real: Callable, fake: Callable) -> dict[str, Evaluator]:
    """The metrics of the networks `paths` names (see `frozen_networks`) as one evaluator,
    "networks": the real and generated images of a batch are made once and go to each."""
    makers = {"inception": fid, "i3d": fvd, "lpips": lpips}
    parts = {key: make(lambda state, pair: pair[0], lambda state, pair: pair[1])
             for key, make in makers.items() if paths.get(key)}
    if not parts:
        return {}

    def compute(state, batch, frozen):
        pair = (real(state, batch), fake(state, batch))
        return {key: part.compute(state, pair, frozen) for key, part in parts.items()}

    def accumulate(total, out):
        total = total or dict.fromkeys(parts)
        return {key: part.accumulate(total[key], out[key]) for key, part in parts.items()}

    def finalize(total):
        return {name: value for key, part in parts.items() for name, value in part.finalize(total[key]).items()}
    return {"networks": Evaluator(compute, accumulate, finalize)}


def swd(fake: Callable, times: Callable = lambda batch: batch["time"]) -> Evaluator:
    """"swd" of frames and "motion_swd" of frame differences per time-gap band
    (`tlgen.metrics.distribution`), weight-free: fake(state, batch) -> uint8 clips made at
    the frame times `times(batch)` (frames) of the real clips batch["frames"]."""
    def compute(state, batch):
        return {"real": batch["frames"], "fake": fake(state, batch), "time": times(batch)}

    def accumulate(total, out):
        total = total or {"real": [], "fake": [], "time": []}
        for key in total:
            total[key].append(np.asarray(out[key]))
        return total

    def finalize(total):
        real, fake_clips, gaps = (np.concatenate(total[k]) for k in ("real", "fake", "time"))
        flat = lambda x: einops.rearrange(x, "n t h w c -> (n t) h w c")
        return {"swd": distribution.swd(flat(real), flat(fake_clips))["swd"],
                **distribution.motion_swd(real, fake_clips, gaps)}
    return Evaluator(compute, accumulate, finalize)
