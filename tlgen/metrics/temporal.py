"""Temporal consistency of videos."""

from __future__ import annotations

import numpy as np


def e_tmp(frames: np.ndarray, beta: float = 1e3) -> float:
    """Flicker measure E_tmp (Time Flies, eq. 12): beta * sqrt(sum_t ||F_t - F_t+1||^2
    / ((N-1) * D)), D = pixels per frame, colour differences summed over channels.

    frames: (N, H, W, C), uint8 (scaled to [0, 1]) or float in [0, 1]; N >= 2.
    """
    f = np.asarray(frames)
    f = f.astype(np.float64) / 255.0 if f.dtype == np.uint8 else f.astype(np.float64)
    if f.ndim != 4 or f.shape[0] < 2:
        raise ValueError(f"E_tmp needs frames (N>=2, H, W, C), got shape {f.shape}")
    n, h, w, _ = f.shape
    sq = np.sum((f[1:] - f[:-1]) ** 2)
    return float(beta * np.sqrt(sq / ((n - 1) * h * w)))
