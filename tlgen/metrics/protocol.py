"""tlgen's evaluation protocol for FID, KID, FVD, LPIPS and SWD: one definition, written into
every report that uses it (report["protocol"]).

* FID: Inception-v3 of pytorch-fid / StyleGAN (`pt_inception-2015-12-05`), the 2048-d final
  pool of every frame; frames resized to 299x299 bilinearly (half-pixel centres, no
  antialiasing, as PyTorch's `interpolate`) and mapped from [0, 1] to [-1, 1] inside the
  network; Fréchet distance ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2)) of the
  float64 means and unbiased covariances (`tlgen.metrics.distribution`).
* KID: the same features; unbiased MMD^2 with the kernel (x.y / 2048 + 1)^3, mean (and
  standard deviation) over 100 subsets of min(1000, sizes) samples.
* FVD: I3D (Kinetics-400), the 400 logits averaged over positions, of the first 16 frames
  of each clip (stride 1), every frame resized to 224x224 bilinearly and mapped to
  [-1, 1]; the Fréchet distance as for FID, trace term Tr(S1) + Tr(S2) - 2 Tr(sqrt(S1 S2)).
* LPIPS v0.1 (AlexNet unless the file holds VGG-16): generated frame t against real frame t
  of the same clip, averaged.
* SWD (ProGAN, weight-free): 128 random 7x7 patches per frame and Laplacian level (down to
  16 px), descriptors normalized per channel, 512 random directions; x1e3, mean over levels.

The clips `tlgen eval` scores are drawn with `CLIP_SEED`, not the run's seed: every run
evaluated on a dataset sees the same clips. Scores are reported to 4 significant figures;
the sample counts, split and seed are in the report beside them. A metric whose weights were not given is listed as not computed, with
the flag that would compute it — never silently left out.
"""

from __future__ import annotations

import dataclasses

import einops
import numpy as np

from tlgen.metrics import distribution as dist
from tlgen.metrics.perceptual import I3D, LPIPS, Inception

FVD_FRAMES = 16
CLIP_SEED = 1                                # the clips of `tlgen eval`, the same for every run
LPIPS_MIN_SIZE = {"alex": 31, "vgg": 16}     # smaller frames vanish in the backbone's pools
PROTOCOL = {
    "fid": "pt_inception-2015-12-05 pool features (2048-d) of every frame, resized to 299x299 "
           "bilinearly (half-pixel centres, no antialiasing); Fréchet distance of float64 "
           "means and unbiased covariances",
    "kid": "the FID features; unbiased MMD^2, kernel (x.y/2048 + 1)^3, mean over 100 subsets "
           "of min(1000, n) samples",
    "fvd": f"I3D Kinetics-400 logits (400-d, averaged over positions) of the first {FVD_FRAMES} "
           "frames of each clip (stride 1), frames resized to 224x224 bilinearly, in [-1, 1]; "
           "Fréchet distance as FID",
    "lpips": "LPIPS v0.1, generated frame t against real frame t, mean",
    "swd": "sliced Wasserstein distance of 7x7 Laplacian-pyramid patches (128 per frame and "
           "level, to 16 px), 512 directions, x1e3, mean over levels",
}
FLAGS = {"fid": "--inception", "kid": "--inception", "fvd": "--i3d", "lpips": "--lpips"}


def eval_clips(data_dir: str, split: str, *, lengths: tuple[int, ...], stride: int, num_clips: int,
               with_masks: bool, with_flow: bool = True, with_mean: bool = False, context: int = 0
               ) -> tuple[list[dict], int, list[str]]:
    """The clips a family's `tlgen eval` scores, batch 1, with flow, masks and the block's mean
    image as asked (`clip_dataset`): up to `num_clips` distinct ones, drawn with `CLIP_SEED`, of
    the first of `lengths` frames (`stride` records apart), and `context` more on each side, the
    split holds. Returns (batches, that length, notes); UserError when it holds none."""
    from tlgen.data.pipelines import clip_count, clip_dataset
    from tlgen.errors import UserError

    around = f" and {context} more on each side" if context else ""
    counts = {n: clip_count(data_dir, split, n + 2 * context, stride) for n in dict.fromkeys(lengths)}
    length = next((n for n in lengths if counts[n]), None)
    if length is None:
        raise UserError(f"the {split} split of {data_dir} has no clip of {lengths[-1]} frames {stride} apart"
                        f"{around}; prepare it with a larger --val-fraction or from longer footage.")
    notes = [] if length == lengths[0] else [
        f"the {split} split has no clip of {lengths[0]} frames{around}: the clips scored, and the "
        f"distribution metrics, have {length}"]
    available = counts[length]
    if available < num_clips:
        notes.append(f"the {split} split holds {available} distinct clips of {length} frames{around}: "
                     f"{available} scored, not {num_clips}")
    batches = iter(clip_dataset(data_dir, split, length=length + 2 * context, stride=stride, batch_size=1,
                                seed=CLIP_SEED, with_flow=with_flow, with_masks=with_masks,
                                with_mean=with_mean))
    return [next(batches) for _ in range(min(num_clips, available))], length, notes


@dataclasses.dataclass(frozen=True)
class Networks:
    """The metric networks a user supplied (None: not given)."""
    inception: Inception | None = None
    i3d: I3D | None = None
    lpips: LPIPS | None = None

    @classmethod
    def load(cls, inception: str | None = None, i3d: str | None = None, lpips: str | None = None,
             mesh=None) -> "Networks":
        """Loads the files given (a missing or wrong file is one sentence naming its flag)."""
        return cls(Inception.load(inception, mesh=mesh) if inception else None,
                   I3D.load(i3d, mesh=mesh) if i3d else None,
                   LPIPS.load(lpips, mesh=mesh) if lpips else None)


KID_SUBSET = 1000       # KID's subset size (StyleGAN-ADA)


def four_figures(value: float) -> float:
    """A score as the protocol reports it: rounded to 4 significant figures."""
    return float(f"{value:.4g}")


def mean_scores(rows: list[dict]) -> dict:
    """The mean of each score over per-clip rows of one method (the keys of the first row),
    to 4 significant figures."""
    return {k: four_figures(np.mean([r[k] for r in rows])) for k in rows[0]}


UNPAIRED = "the generated videos have no real counterpart to compare frame by frame"


def real_features(real: np.ndarray, networks: Networks) -> dict:
    """The features of uint8 real clips (N, T, H, W, 3) that `video_metrics` compares with,
    for the networks given and the clips' sizes: {"inception": FeatureStats of every frame
    (2 or more), "i3d": of the clips' first FVD_FRAMES frames (2 or more clips that long)}.
    Computed once, they serve every `video_metrics` call on the same real clips."""
    n, t = real.shape[:2]
    out = {}
    if networks.inception is not None and n * t >= 2:
        frames = einops.rearrange(real, "n t h w c -> (n t) h w c")
        out["inception"] = dist.FeatureStats(2048, keep=True).update(networks.inception.features(frames))
    if networks.i3d is not None and t >= FVD_FRAMES and n >= 2:
        out["i3d"] = dist.FeatureStats(400).update(networks.i3d.features(real[:, :FVD_FRAMES]))
    return out


def video_metrics(real: np.ndarray, fake: np.ndarray, networks: Networks, *, seed: int = 0,
                  paired: bool = True, features: dict | None = None) -> dict:
    """Scores of generated clips against real ones, both uint8 (N, T, H, W, 3) (T = 1 for
    still images), with the protocol: {"scores", "not_computed", "samples", "protocol",
    "caveats"} (what the sample sizes mean for the scores). `paired`: clip i was made from
    real clip i (LPIPS compares them); unpaired clips (a generator's) have no LPIPS.
    `features`: `real_features(real, networks)` when already computed."""
    if real.shape != fake.shape:
        raise ValueError(f"real and generated clips must have one shape, got {real.shape} and {fake.shape}")
    n, t = real.shape[:2]
    real_frames, fake_frames = (einops.rearrange(x, "n t h w c -> (n t) h w c") for x in (real, fake))
    features = real_features(real, networks) if features is None else features
    scores, missing, caveats = {}, {}, []
    if "inception" in features:
        a = features["inception"]
        b = dist.FeatureStats(2048, keep=True).update(networks.inception.features(fake_frames))
        scores["fid"] = dist.frechet_from_stats(a, b)
        scores["kid"], scores["kid_std"] = dist.kernel_inception_distance(
            a.features, b.features, subset_size=KID_SUBSET, seed=seed)
        caveats += _small_sample("fid", n * t, "frames", 2048)
        if n * t <= KID_SUBSET:
            caveats.append(f"kid_std is 0 (up to rounding): each subset is the whole set of {n * t} frames "
                           f"(subsets of at most {KID_SUBSET})")
    elif networks.inception is not None:
        missing["fid"] = missing["kid"] = _too_few(n * t, "frame")
    if "i3d" in features:
        b = dist.FeatureStats(400).update(networks.i3d.features(fake[:, :FVD_FRAMES]))
        scores["fvd"] = dist.frechet_from_stats(features["i3d"], b)
        caveats += _small_sample("fvd", n, "clips", 400)
    elif networks.i3d is not None:
        missing["fvd"] = (f"the clips have {t} frame{'s' * (t != 1)}; the protocol needs {FVD_FRAMES}"
                          if t < FVD_FRAMES else _too_few(n, "clip"))
    if not paired:
        missing["lpips"] = UNPAIRED
    elif networks.lpips is not None and min(real.shape[2:4]) >= LPIPS_MIN_SIZE[networks.lpips.net]:
        scores["lpips"] = float(np.mean(networks.lpips.distance(fake_frames, real_frames)))
    elif networks.lpips is not None:
        missing["lpips"] = (f"frames of {min(real.shape[2:4])} px are smaller than LPIPS-"
                            f"{networks.lpips.net} takes ({LPIPS_MIN_SIZE[networks.lpips.net]} px)")
    scores.update(dist.swd(real_frames, fake_frames, seed=seed, min_size=min(16, real.shape[2])))
    for name, flag in FLAGS.items():
        if name not in scores and name not in missing:
            missing[name] = f"give {flag} FILE; `tlgen convert-weights` makes one"
    used = {k: PROTOCOL[k] for k in PROTOCOL if k in scores or k == "swd"}
    return {"scores": {k: four_figures(v) for k, v in scores.items()},
            "not_computed": missing,
            "samples": {"clips": int(n), "frames_per_clip": int(t), "frames": int(n * t)},
            "protocol": {**used, "seed": seed},
            "caveats": caveats}


def _too_few(count: int, what: str) -> str:
    return f"{count} {what}{'s' * (count != 1)}; a distance between distributions needs 2 or more"


def _small_sample(name: str, count: int, what: str, features: int) -> list[str]:
    """The note for a Fréchet distance from fewer samples than features (else none)."""
    if count >= features:
        return []
    return [f"{name} from {count} {what}, fewer than its {features} features: the covariances are "
            "singular and the score is biased by the sample size; compare it only with scores from "
            f"as many {what}"]
