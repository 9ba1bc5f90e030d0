"""Report pieces for evaluating timescale models: band-fidelity tables, latent PCA, plots."""

from __future__ import annotations

import numpy as np

from tlgen.data.dataset import cell_means, frame_median, nearest_medians, period_mean, squared_distances, within_window
from tlgen.metrics.image import psnr
from tlgen.metrics.report import figure


def mean_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Mean PSNR (dB) of two stacks of images in [0, 1]."""
    return float(np.mean(np.asarray(psnr(np.asarray(a, np.float32), np.asarray(b, np.float32)))))


def band_fidelity_rows(cutoffs, truth, candidates: dict) -> list[dict]:
    """One row per cutoff: PSNR of each candidate stack against the ground-truth stack.

    cutoffs: (L,) seconds; truth: L stacks (N, H, W, 3) in [0, 1]; candidates:
    {name: L stacks}.
    """
    return [{"cutoff_s": float(cutoff), **{name: round(mean_psnr(stacks[i], truth[i]), 3)
                                           for name, stacks in candidates.items()}}
            for i, cutoff in enumerate(cutoffs)]


# Blur widths the oracle tries, as fractions of the cutoff; 0 is the raw (nearest) frame.
ORACLE_SIGMAS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5)


def temporal_gaussian(times: np.ndarray, frames: np.ndarray, at: np.ndarray, sigma: float) -> np.ndarray:
    """`frames` (F, H, W, 3) captured at `times` (F,) blurred in time by a Gaussian of std
    `sigma` seconds, at times `at` (N,): weights normalized over the frames actually captured
    (irregular captures and gaps included). sigma 0 is the nearest frame."""
    d = np.asarray(at, np.float64)[:, None] - np.asarray(times, np.float64)[None]
    if sigma <= 0:
        return frames[np.argmin(np.abs(d), axis=1)].astype(np.float32)
    e = (d / sigma) ** 2
    w = np.exp(-0.5 * (e - e.min(axis=1, keepdims=True)))      # the nearest frame has weight 1
    w /= w.sum(axis=1, keepdims=True)
    return np.tensordot(w.astype(np.float32), frames.astype(np.float32), axes=1)


def oracle_gaussian(times, frames, at, truth, cutoff: float) -> tuple[np.ndarray, float]:
    """The temporal Gaussian whose sigma (from ORACLE_SIGMAS x `cutoff`) scores the best PSNR
    against `truth`: a baseline tuned on the answer. Returns (frames, sigma in seconds)."""
    best = (-np.inf, 0.0, None)
    for sigma in (f * cutoff for f in ORACLE_SIGMAS):
        blur = temporal_gaussian(times, frames, at, sigma)
        best = max(best, (mean_psnr(blur, truth), sigma, blur), key=lambda x: x[0])
    return best[2], float(best[1])


def temporal_median(times: np.ndarray, frames: np.ndarray, at: np.ndarray, window: float) -> np.ndarray:
    """Per-pixel median of the frames captured within `window`/2 seconds of each time in `at`."""
    times = np.asarray(times, np.float64)
    return np.stack([frame_median(frames[within_window(times, t, window)]) for t in np.asarray(at, np.float64)])


def appearance_neighbours(frames: np.ndarray, query: np.ndarray, count: int, grid: int = 8) -> np.ndarray:
    """Per-pixel median of the `count` frames (F, H, W, 3) nearest each query image (N, H, W, 3)
    in appearance: their means over a grid x grid of cells (the neighbour rendering without a
    model)."""
    dist = squared_distances(cell_means(query, grid), cell_means(frames, grid))
    return nearest_medians(lambda i: frames[i], dist, count)


def temporal_period_mean(times: np.ndarray, frames: np.ndarray, at: np.ndarray, window: float,
                         period: float) -> np.ndarray:
    """uint8: the `period_mean` (per-phase median, mean over the phases of `period` seconds)
    of the uint8 frames captured within `window`/2 seconds of each time in `at`."""
    times = np.asarray(times, np.float64)
    out = []
    for t in np.asarray(at, np.float64):
        near = within_window(times, t, window)
        out.append(period_mean(lambda rows: frames[near[rows]], times[near], period))
    return np.stack(out)


def pca_2d(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Projects flattened codes (N, ...) onto their two principal components.

    Returns (coords (N, 2), explained variance ratio of the two components).
    """
    x = np.asarray(codes, np.float64).reshape(len(codes), -1)
    x = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    var = s ** 2
    return x @ vt[:2].T, var[:2] / max(var.sum(), 1e-30)


def plot_latent_pca(path: str, coords: dict[str, np.ndarray], times: np.ndarray) -> None:
    """Scatter of each code's 2-D PCA trajectory, coloured by time (hours)."""
    fig = figure(figsize=(4 * len(coords) + 1, 4), layout="constrained")
    axes = fig.subplots(1, len(coords), squeeze=False)
    hours = (np.asarray(times) - times[0]) / 3600.0
    for ax, (name, xy) in zip(axes[0], coords.items()):
        ax.plot(xy[:, 0], xy[:, 1], color="0.8", lw=0.5, zorder=1)
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=hours, s=8, cmap="viridis", zorder=2)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(sc, ax=axes[0].tolist(), label="hours since first frame")
    fig.savefig(path, dpi=110)


def plot_band_fidelity(path: str, rows: list[dict], names: list[str]) -> None:
    """PSNR against the band-limited ground truth per cutoff, one line per method."""
    fig = figure(figsize=(5.5, 3.8))
    ax = fig.subplots()
    cut = [r["cutoff_s"] / 3600.0 for r in rows]
    for name in names:
        ax.plot(cut, [r[name] for r in rows], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("cutoff (hours)")
    ax.set_ylabel("PSNR vs ground truth band (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
