"""Dense optical flow between frames (OpenCV DIS or Farneback) and flow utilities.

Flow convention everywhere in tlgen: `flow[y, x] = (dx, dy)` in pixels, forward from frame a
to frame b: the content at (x, y) in a is at (x + dx, y + dy) in b.
"""

from __future__ import annotations

import cv2
import numpy as np

from tlgen.errors import UserError

METHODS = ("dis", "farneback")


class FlowEstimator:
    """Forward flow between consecutive uint8 RGB frames with an OpenCV method."""

    def __init__(self, method: str = "dis"):
        if method not in METHODS:
            raise ValueError(f"unknown flow method {method!r}; choose from {METHODS}")
        self.method = method
        self._dis = None

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """float32 (H, W, 2) flow from frame `a` to frame `b`."""
        ga = cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2GRAY)
        gb = cv2.cvtColor(np.ascontiguousarray(b), cv2.COLOR_RGB2GRAY)
        if self.method == "farneback":
            return cv2.calcOpticalFlowFarneback(ga, gb, None, pyr_scale=0.5, levels=3,
                                                winsize=15, iterations=3, poly_n=5,
                                                poly_sigma=1.2, flags=0)
        if self._dis is None:
            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        try:
            return self._dis.calc(ga, gb, None)
        except cv2.error:
            h, w = ga.shape
            raise UserError(f"DIS optical flow cannot take frames of {h}x{w} (HxW; it needs about "
                            "12 pixels a side); use larger frames (--size) or --flow-method "
                            "farneback.") from None


def warp_backward(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Samples `image` at (x + dx, y + dy) (bilinear, edge clamped): image[x + flow(x)]."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(np.ascontiguousarray(image, dtype=np.float32),
                     gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def compose(flow_ab: np.ndarray, flow_bc: np.ndarray) -> np.ndarray:
    """Flow a->c from a->b and b->c: f_ac(x) = f_ab(x) + f_bc(x + f_ab(x))."""
    return (flow_ab + warp_backward(flow_bc, flow_ab)).astype(np.float32)


def flow_to_rgb(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """uint8 (..., H, W, 3) colour picture of flow (..., H, W, 2): hue = direction,
    brightness = magnitude relative to `max_magnitude` (default: the largest present)."""
    flow = np.asarray(flow, np.float32)
    dx, dy = flow[..., 0], flow[..., 1]
    magnitude = np.hypot(dx, dy)
    scale = max_magnitude if max_magnitude else max(float(magnitude.max()), 1e-6)
    hue = (np.arctan2(-dy, -dx) / np.pi + 1.0) * 90.0          # OpenCV hue is 0..180
    hsv = np.stack([hue, np.full_like(hue, 255.0), np.clip(magnitude / scale, 0, 1) * 255.0], -1)
    flat = hsv.reshape(-1, hsv.shape[-2], 3).astype(np.uint8)
    return cv2.cvtColor(flat, cv2.COLOR_HSV2RGB).reshape(hsv.shape)
