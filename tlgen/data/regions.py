"""Region masks for footage without any: clusters of per-pixel motion and colour statistics.

`motion_regions(frames, estimator)` gives one class-index mask (H, W) per video:
1. optical flow between up to `pairs` consecutive frame pairs spread over the video;
2. per pixel, a robust velocity: the mean flow over the pairs where the pixel moves most
   (top quarter of its flow magnitudes: a textureless patch of sky is still most of the
   time but moves when a cloud passes), median-filtered 5x5; and its mean colour;
3. k-means (k-means++ seeding) of the standardized features, colour weighted by 0.5, into
   `max_regions` clusters;
4. clusters that move alike merge: by increasing speed, a cluster joins an earlier one when
   their velocities differ by less than MERGE x the faster speed or by less than STILL
   pixels per frame (a still cluster never joins a clearly moving one; a still video is one
   region).
Classes are ordered by speed: 0 the stillest ("ground"), then slower to faster.
Measured on the synthetic clouds / water scenes (`bench/region_recovery.py`, settings chosen
on seed 0, reported on seed 1 in `bench/results/region-recovery-cpu.json`).
"""

from __future__ import annotations

import numpy as np

COLOUR_WEIGHT = 0.5
MERGE = 0.6
STILL = 0.05          # pixels per frame: flow-estimation noise, below which velocities are alike


def kmeans(points: np.ndarray, k: int, iterations: int = 50, seed: int = 0
           ) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's algorithm from k-means++ seeding: (centres (k, D), labels (N,)) of points (N, D).
    Fewer distinct points than k repeat centres (their clusters stay empty)."""
    rng = np.random.default_rng(seed)
    points = np.asarray(points, np.float64)
    centres = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        d2 = np.min([np.sum((points - c) ** 2, axis=1) for c in centres], axis=0)
        centres.append(points[rng.choice(len(points), p=d2 / d2.sum())] if d2.sum() > 0 else centres[-1])
    centres = np.stack(centres)
    for _ in range(iterations):
        labels = np.argmin(((points[:, None] - centres[None]) ** 2).sum(-1), axis=1)
        for j in range(k):
            if np.any(labels == j):
                centres[j] = points[labels == j].mean(axis=0)
    labels = np.argmin(((points[:, None] - centres[None]) ** 2).sum(-1), axis=1)
    return centres, labels


def robust_velocity(flows: np.ndarray) -> np.ndarray:
    """(H, W, 2): per pixel, the mean of flows (P, H, W, 2) over the pairs in the top quarter
    of its flow magnitudes, median-filtered 5x5."""
    import cv2
    magnitude = np.linalg.norm(flows, axis=-1)
    top = (magnitude >= np.quantile(magnitude, 0.75, axis=0))[..., None]
    velocity = (flows * top).sum(0) / np.maximum(top.sum(0), 1)
    return np.stack([cv2.medianBlur(np.ascontiguousarray(velocity[..., i], np.float32), 5)
                     for i in range(2)], axis=-1)


def motion_regions(frames: np.ndarray, estimator, max_regions: int = 3, pairs: int = 24) -> np.ndarray:
    """Class-index mask uint8 (H, W) of a uint8 video (N, H, W, 3): see the module docstring.
    `estimator(a, b)` -> flow (H, W, 2) from frame a to b. One frame: all class 0."""
    h, w = frames.shape[1:3]
    if len(frames) < 2:
        return np.zeros((h, w), np.uint8)
    index = np.unique(np.linspace(0, len(frames) - 2, min(pairs, len(frames) - 1)).astype(int))
    velocity = robust_velocity(np.stack([estimator(frames[i], frames[i + 1]) for i in index]))
    colour = np.mean([np.asarray(frames[i], np.float32) / 255.0 for i in index], axis=0)
    features = np.concatenate([velocity.reshape(-1, 2), colour.reshape(-1, 3)], axis=1)
    features = features / (features.std(axis=0) + 1e-6)
    features[:, 2:] *= COLOUR_WEIGHT
    _, labels = kmeans(features, max_regions)
    flat = velocity.reshape(-1, 2)
    present = [j for j in range(max_regions) if np.any(labels == j)]
    mean_v = {j: flat[labels == j].mean(axis=0) for j in present}
    out = np.zeros(h * w, np.uint8)
    kept: list[np.ndarray] = []
    for j in sorted(present, key=lambda j: np.linalg.norm(mean_v[j])):
        v = mean_v[j]
        for c, u in enumerate(kept):
            if np.linalg.norm(v - u) < max(MERGE * max(np.linalg.norm(v), np.linalg.norm(u)), STILL):
                out[labels == j] = c
                break
        else:
            out[labels == j] = len(kept)
            kept.append(v)
    return out.reshape(h, w)
