"""Metrics of animated clips that need no pretrained network (FGLA's Table 2, static part).

The static-pixel mask of a real clip follows FGLA eq. 14: a pixel is dynamic when its mean
over consecutive frames of |I_t+1 - I_t|_1 (summed over RGB, 0-255 scale) exceeds
`threshold` (2.5 in the paper); masked PSNR / SSIM compare generated frames with the first
frame on the static pixels only (perfect by not animating at all — read them with FVD/E_tmp).
"""

from __future__ import annotations

import numpy as np

from tlgen.metrics.image import ssim


def static_mask(real: np.ndarray, threshold: float = 2.5) -> np.ndarray:
    """(H, W) bool of the pixels a real uint8 clip (T, H, W, 3) keeps still."""
    x = np.asarray(real, np.float64)
    change = np.mean(np.sum(np.abs(np.diff(x, axis=0)), axis=-1), axis=0)
    return change <= threshold


def masked_psnr(frames: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
    """Mean over frames (T, H, W, 3) of the PSNR (dB, 0-255) against `reference` (H, W, 3) on
    the pixels of `mask` (H, W); inf-free (a perfect frame scores 100 dB); NaN for an empty mask."""
    if not mask.any():
        return float("nan")
    diff = (np.asarray(frames, np.float64) - np.asarray(reference, np.float64)[None]) ** 2
    mse = diff[:, mask].mean(axis=(1, 2))
    return float(np.mean(np.where(mse > 0, 10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-20)), 100.0)))


def masked_ssim(frames: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
    """Mean SSIM of frames against `reference`, with the non-static pixels of both set to the
    reference's (so only static pixels can differ); NaN for an empty mask."""
    if not mask.any():
        return float("nan")
    f = np.asarray(frames, np.float32) / 255.0
    r = np.asarray(reference, np.float32) / 255.0
    f = np.where(mask[None, ..., None], f, r[None])
    return float(np.mean(np.asarray(ssim(f, np.broadcast_to(r, f.shape)))))


def static_scores(fake: np.ndarray, real: np.ndarray) -> dict:
    """Masked PSNR / SSIM of generated frames 1.. of `fake` (T, H, W, 3) against the first real
    frame over the pixels the real clip `real` keeps still, and the share of those pixels;
    without a still pixel only the share (0), so that means over clips skip the clip."""
    still = static_mask(real)
    if not still.any():
        return {"static_share": 0.0}
    return {"masked_psnr": masked_psnr(fake[1:], real[0], still),
            "masked_ssim": masked_ssim(fake[1:], real[0], still), "static_share": float(still.mean())}


def still_notes(rows: list[dict]) -> list[str]:
    """The report's sentence on clips without still pixels (rows of `static_scores`), if any."""
    have = sum("masked_psnr" in r for r in rows)
    if have == len(rows):
        return []
    if not have:
        return ["masked_psnr, masked_ssim: not computed (no clip has still pixels: static_share 0)"]
    return [f"masked_psnr, masked_ssim: the mean over the {have} of {len(rows)} clips with still pixels"]


def region_flow_mse(flows: np.ndarray, true: np.ndarray, classes: np.ndarray) -> dict:
    """The squared end-point error (dx^2 + dy^2, pixels^2) of flows (T, H, W, 2) against `true`,
    averaged within each region of the class-index mask `classes` (H, W):
    {"flow_mse_region<k>": ...} for the classes present. It sums the two components where
    `tlgen.metrics.flow.flow_mse` averages them: a flow wrong alike everywhere scores twice its
    Flow-MSE in every region."""
    error = np.sum((np.asarray(flows, np.float64) - np.asarray(true, np.float64)) ** 2, axis=-1)
    return {f"flow_mse_region{k}": float(error[:, classes == k].mean()) for k in np.unique(classes)}
