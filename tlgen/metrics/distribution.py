"""Distances between distributions of samples: Fréchet distance (FID, FVD), KID and the
sliced Wasserstein distance on Laplacian-pyramid patches (SWD, weight-free).

Feature statistics stream: `FeatureStats.update` takes one batch of feature vectors at a
time (the features of a batch gathered from every device and process, so every process
holds the same statistics), keeping sums in float64; `FeatureStats.merge` joins two
accumulations. All functions here are NumPy, on the host.
"""

from __future__ import annotations

import numpy as np

from tlgen.models.pixels import unit_float


class FeatureStats:
    """Streaming count, mean and covariance (float64) of D-dimensional features; with
    `keep=True` also the features themselves (KID needs them)."""

    def __init__(self, dim: int, keep: bool = False):
        self.count = 0
        self.sum = np.zeros(dim, np.float64)
        self.outer = np.zeros((dim, dim), np.float64)
        self.kept: list[np.ndarray] | None = [] if keep else None

    def update(self, features: np.ndarray) -> "FeatureStats":
        """Adds features (..., dim) (float64 sums; kept as float32 when `keep`)."""
        f = np.asarray(features, np.float64).reshape(-1, self.sum.shape[0])
        self.count += len(f)
        self.sum += f.sum(axis=0)
        self.outer += f.T @ f
        if self.kept is not None:
            self.kept.append(np.asarray(features, np.float32).reshape(f.shape))
        return self

    def merge(self, other: "FeatureStats") -> "FeatureStats":
        """Adds another process's or batch's statistics of the same features."""
        self.count += other.count
        self.sum += other.sum
        self.outer += other.outer
        if self.kept is not None and other.kept is not None:
            self.kept += other.kept
        return self

    @property
    def mean(self) -> np.ndarray:
        """The features' mean (dim,) float64."""
        return self.sum / max(self.count, 1)

    @property
    def cov(self) -> np.ndarray:
        """The unbiased covariance (divides by count - 1, as numpy.cov and pytorch-fid)."""
        if self.count < 2:
            raise ValueError(f"a covariance needs at least 2 samples, got {self.count}")
        mean = self.mean
        return (self.outer - self.count * np.outer(mean, mean)) / (self.count - 1)

    @property
    def features(self) -> np.ndarray:
        """The kept features (count, dim) float32 (KID needs them; FID does not)."""
        if self.kept is None:
            raise ValueError("these statistics keep no features (FeatureStats(keep=True))")
        return np.concatenate(self.kept) if self.kept else np.zeros((0, len(self.sum)), np.float32)


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(cov1) + Tr(cov2) - 2 Tr((cov1 cov2)^(1/2)).

    The trace of the square root is the sum of the square roots of the eigenvalues of the
    symmetric positive semi-definite cov1^(1/2) cov2 cov1^(1/2) (the same eigenvalues as
    cov1 cov2), eigenvalues within rounding of zero (below n * eps * the largest) taken as 0:
    real, and stable for the singular covariances of fewer samples than dimensions, where a
    general matrix square root is not (and where the square roots of rounding errors would
    add up to a visible bias). Its nonzero eigenvalues are those of the r x r matrix
    S V' cov2 V S, with V S^2 V' the rank-r part of cov1: a covariance of fewer samples than
    dimensions costs one eigendecomposition of cov1, not three n^3 products.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    values, vectors = np.linalg.eigh((cov1 + cov1.T) / 2)
    kept = _significant(values) > 0
    range1 = vectors[:, kept] * np.sqrt(values[kept])                # (n, r)
    middle = range1.T @ cov2 @ range1
    trace_root = np.sum(np.sqrt(_significant(np.linalg.eigvalsh((middle + middle.T) / 2))))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_root)


def _significant(values: np.ndarray) -> np.ndarray:
    """Eigenvalues of a PSD matrix with those within rounding of zero set to zero."""
    tol = len(values) * np.finfo(np.float64).eps * max(float(np.max(np.abs(values), initial=0.0)), 1e-300)
    return np.where(values > tol, values, 0.0)


def frechet_from_stats(a: FeatureStats, b: FeatureStats) -> float:
    """The Fréchet distance of two accumulations (FID with Inception features, FVD with I3D)."""
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)


def kernel_inception_distance(a: np.ndarray, b: np.ndarray, *, subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID: the unbiased MMD^2 with the cubic kernel k(x, y) = (x.y / d + 1)^3, averaged over
    `subsets` random subsets of min(`subset_size`, len(a), len(b)) samples of each set (the
    StyleGAN-ADA protocol: 100 subsets of 1000). Returns (mean, standard deviation)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(a)} and {len(b)}")
    d = a.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = ((p @ q.T / d + 1) ** 3 for p, q in ((x, x), (y, y), (x, y)))
        off = lambda k: (k.sum() - np.trace(k)) / (m * (m - 1))
        values.append(off(kxx) + off(kyy) - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


# ----------------------------------------------------------------------------- SWD

_PYRAMID_TAPS = np.array([1, 4, 6, 4, 1], np.float64) / 16.0


def _blur(x: np.ndarray) -> np.ndarray:
    """5-tap binomial blur of (N, H, W, C) with reflected borders."""
    for axis in (1, 2):
        pad = [(0, 0)] * 4
        pad[axis] = (2, 2)
        p = np.pad(x, pad, mode="reflect")
        n = x.shape[axis]
        x = sum(t * np.take(p, np.arange(i, i + n), axis=axis) for i, t in enumerate(_PYRAMID_TAPS))
    return x


def laplacian_pyramid(images: np.ndarray, min_size: int = 16) -> list[np.ndarray]:
    """Levels (finest first) of the Laplacian pyramid of (N, H, W, C) float images: each
    level is the image minus the upsampled blurred half-size image; the last is the
    smallest (>= min_size) Gaussian level itself."""
    levels, g = [], np.asarray(images, np.float64)
    while min(g.shape[1:3]) >= 2 * min_size:
        small = _blur(g)[:, ::2, ::2]
        up = np.zeros_like(g)
        up[:, ::2, ::2] = small
        up = _blur(up) * 4.0
        levels.append(g - up)
        g = small
    levels.append(g)
    return levels


def pyramid_descriptors(images: np.ndarray, *, patches_per_image: int = 128, patch: int = 7,
                        min_size: int = 16, seed: int = 0) -> list[np.ndarray]:
    """Per pyramid level, `patches_per_image` random patch x patch descriptors of every image
    (uint8 or [0, 1] float (N, H, W, C)): (N * patches_per_image, patch * patch * C)."""
    x = unit_float(images)
    rng = np.random.default_rng(seed)
    out = []
    for level in laplacian_pyramid(x, min_size):
        n, h, w, c = level.shape
        ys = rng.integers(0, h - patch + 1, (n, patches_per_image))
        xs = rng.integers(0, w - patch + 1, (n, patches_per_image))
        rows = (ys[..., None, None] + np.arange(patch)[:, None])[..., None]          # (n, P, p, 1, 1)
        cols = (xs[..., None, None] + np.arange(patch)[None, :])[..., None]          # (n, P, 1, p, 1)
        idx = np.arange(n)[:, None, None, None, None]
        out.append(level[idx, rows, cols, np.arange(c)].reshape(n * patches_per_image, -1))
    return out


def _normalize(desc: np.ndarray, channels: int, ref: np.ndarray | None = None) -> np.ndarray:
    """Descriptors standardized per channel by the statistics of `ref` (default: their own)."""
    ref = (desc if ref is None else ref).reshape(-1, channels)
    d = desc.reshape(len(desc), -1, channels)
    d = (d - ref.mean(axis=0)) / (ref.std(axis=0) + 1e-8)
    return d.reshape(len(desc), -1)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, *, directions: int = 512, seed: int = 0) -> float:
    """Sliced Wasserstein distance between two equal-sized sets of descriptors (N, D): the
    mean over random unit directions of the mean absolute difference of the sorted
    projections."""
    if a.shape != b.shape:
        raise ValueError(f"SWD compares sets of one shape, got {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((a.shape[1], directions))
    dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
    pa, pb = np.sort(a @ dirs, axis=0), np.sort(b @ dirs, axis=0)
    return float(np.mean(np.abs(pa - pb)))


def swd(real: np.ndarray, fake: np.ndarray, *, patches_per_image: int = 128, seed: int = 0,
        min_size: int = 16, scale_by_real: bool = False) -> dict[str, float]:
    """SWD (ProGAN) between two image sets of one shape (N, H, W, C): per Laplacian level the
    sliced Wasserstein distance of normalized 7x7 patch descriptors, x1e3; "swd" = their
    mean. Descriptors are standardized per set (ProGAN), or with `scale_by_real` both by the
    real set's statistics (so a difference in scale counts). Returns {"swd_<size>": value per
    level, ..., "swd": mean}."""
    real, fake = np.asarray(real), np.asarray(fake)
    if real.shape != fake.shape:
        raise ValueError(f"SWD compares image sets of one shape, got {real.shape} and {fake.shape}")
    c = real.shape[-1]
    levels_a = pyramid_descriptors(real, patches_per_image=patches_per_image, min_size=min_size, seed=seed)
    levels_b = pyramid_descriptors(fake, patches_per_image=patches_per_image, min_size=min_size, seed=seed + 1)
    sizes = [real.shape[1] >> i for i in range(len(levels_a))]
    out = {f"swd_{s}": 1e3 * sliced_wasserstein(_normalize(a, c), _normalize(b, c, a if scale_by_real else None),
                                                 seed=seed)
           for s, a, b in zip(sizes, levels_a, levels_b)}
    out["swd"] = float(np.mean(list(out.values())))
    return out


def motion_swd(real: np.ndarray, fake: np.ndarray, times: np.ndarray | None = None, *,
               gap_edges: tuple[float, ...] = (4.0, 16.0), patches_per_image: int = 128,
               seed: int = 0, min_size: int = 16) -> dict[str, float]:
    """Motion SWD of two clip sets of one shape (N, F, H, W, C), uint8 or [0, 1], made at the
    same frame `times` (N, F): the SWD (`swd`'s "swd") between their frame differences
    x[:, j] - x[:, 0] (j = 1..F-1) mapped to [0, 1], per band of time gaps t[:, j] - t[:, 0]
    (times in increasing order) cut at `gap_edges`, both sets standardized by the real differences' statistics (a still
    video or flicker is far from real motion, not rescaled onto it). A generator whose motion
    ignores the gap fails the short and the long bands alike. Returns {"motion_swd": mean
    over the bands, "motion_swd_<lo>_<hi>": per band}; without `times`, one band of all gaps.
    A band of fewer than 2 differences is left out (none: {})."""
    def diffs(x):
        x = unit_float(x)
        return (x[:, 1:] - x[:, :1] + 1.0) / 2.0                          # (N, F-1, H, W, C)
    a, b = diffs(real), diffs(fake)
    gaps = (np.zeros(a.shape[:2]) if times is None
            else np.asarray(times, np.float64)[:, 1:] - np.asarray(times, np.float64)[:, :1])
    edges = (0.0,) + (tuple(gap_edges) if times is not None else ()) + (np.inf,)
    out = {}
    for lo, hi in zip(edges[:-1], edges[1:]):
        pick = (gaps >= lo) & (gaps < hi)
        if pick.sum() < 2:
            continue
        name = "motion_swd" if times is None else f"motion_swd_{lo:g}_{hi:g}"
        out[name] = swd(a[pick], b[pick], patches_per_image=patches_per_image, seed=seed,
                        min_size=min_size, scale_by_real=True)["swd"]
    if times is not None and out:
        out["motion_swd"] = float(np.mean(list(out.values())))
    return out
