"""Motion metrics: Flow-MSE between the optical flow of two videos."""

from __future__ import annotations

import numpy as np

from tlgen.data.flow import FlowEstimator


def video_flows(frames: np.ndarray, method: str = "dis") -> np.ndarray:
    """Forward flows (N-1, H, W, 2) in pixels between consecutive uint8 frames (N, H, W, 3),
    with the estimator `tlgen prepare --flow` uses."""
    estimator = FlowEstimator(method)
    return np.stack([estimator(a, b) for a, b in zip(frames[:-1], frames[1:])]).astype(np.float32)


def flow_mse(pred: np.ndarray, true: np.ndarray) -> float:
    """Flow-MSE: mean over pixels and both components of (pred - true)^2 (pixels^2)."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    if pred.shape != true.shape or pred.shape[-1] != 2:
        raise ValueError(f"flow_mse needs two flows (..., H, W, 2) of one shape, got {pred.shape} and {true.shape}")
    return float(np.mean(np.square(pred - true)))
