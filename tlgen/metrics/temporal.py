"""Temporal consistency of videos."""

from __future__ import annotations

import numpy as np

from tlgen.models.pixels import unit_float


def e_tmp(frames: np.ndarray, beta: float = 1e3) -> float:
    """Flicker measure E_tmp (Time Flies, eq. 12): beta * sqrt(sum_t ||F_t - F_t+1||^2
    / ((N-1) * D)), D = pixels per frame, colour differences summed over channels.

    frames: (N, H, W, C), uint8 (scaled to [0, 1]) or float in [0, 1]; N >= 2.
    """
    f = unit_float(frames)
    if f.ndim != 4 or f.shape[0] < 2:
        raise ValueError(f"E_tmp needs frames (N>=2, H, W, C), got shape {f.shape}")
    n, h, w, _ = f.shape
    sq = np.sum((f[1:] - f[:-1]) ** 2)
    return float(beta * np.sqrt(sq / ((n - 1) * h * w)))


def sigma_tmp(frames: np.ndarray, reference: np.ndarray, beta: float = 1e3) -> float:
    """Time Flies' sigma_tmp (eq. 13): beta / (N-1) * sum_t |std(F_t+1 - F_t) - std(G_t+1 - G_t)|,
    the mismatch between how much the reference F and the generated video G change from frame
    to frame, std over every pixel and channel of a difference. Both (N, H, W, C), uint8 or
    float in [0, 1], the same shape; N >= 2."""
    f, g = unit_float(reference), unit_float(frames)
    if f.shape != g.shape or f.ndim != 4 or f.shape[0] < 2:
        raise ValueError(f"sigma_tmp needs two videos of one shape (N>=2, H, W, C), got {g.shape} and {f.shape}")
    spread = lambda v: np.std(v[1:] - v[:-1], axis=(1, 2, 3))
    return float(beta * np.mean(np.abs(spread(f) - spread(g))))


STATISTICS = ("brightness", "red", "green", "blue", "contrast")


def frame_statistics(frames: np.ndarray) -> np.ndarray:
    """Pooled colour statistics of each frame, (N, 5) in [0, 1]: mean luma (Rec. 601), mean R,
    G, B, and the luma's standard deviation over the frame (contrast). frames (N, H, W, 3),
    uint8 or float in [0, 1]."""
    f = unit_float(frames)
    luma = f @ np.array([0.299, 0.587, 0.114])
    rgb = f.mean(axis=(1, 2))
    return np.column_stack([luma.mean(axis=(1, 2)), rgb, luma.std(axis=(1, 2))])


def power_spectrum(series, segment: int) -> tuple[np.ndarray, np.ndarray]:
    """Welch's power spectrum of time series: (V, N, S) (V videos, N frames, S statistics), (N,
    S), or a list of (N_i, S) of any lengths from `segment`: half-overlapping Hann-windowed
    segments of `segment` frames, each minus its mean, |FFT|^2 averaged over the segments of
    every series, scaled so that the power sums to the series' variance within a segment
    (Parseval). Returns (frequencies in cycles per frame (F,), power (F, S))."""
    if not isinstance(series, (list, tuple)):
        series = np.asarray(series, np.float64)
        series = list(series[None] if series.ndim == 2 else series)
    window = np.hanning(segment)
    parts = []
    for x in series:
        x = np.asarray(x, np.float64)
        if len(x) < segment:
            raise ValueError(f"series of {len(x)} frames are shorter than a segment of {segment}")
        parts += [x[s:s + segment] for s in range(0, len(x) - segment + 1, segment // 2)]
    parts = np.stack(parts)                                                # (K, L, S)
    parts = (parts - parts.mean(axis=1, keepdims=True)) * window[:, None]
    power = np.abs(np.fft.rfft(parts, axis=1)) ** 2
    power[:, 1:(segment + 1) // 2] *= 2                                    # one-sided
    power = power.mean(axis=0) / (segment * np.sum(window ** 2))
    return np.fft.rfftfreq(segment), power


def band_shares(freqs: np.ndarray, power: np.ndarray, periods: tuple[float, ...]) -> np.ndarray:
    """The share of each statistic's power (F, S) in the bands of periods (frames) cut at
    `periods` (ascending): (len(periods) + 1, S), fastest band first, columns summing to 1.
    The zero frequency is left out."""
    f, p = freqs[1:], power[1:]
    cuts = [np.inf] + [1.0 / float(q) for q in periods] + [0.0]
    shares = np.stack([p[(f > lo) & (f <= hi)].sum(axis=0) for hi, lo in zip(cuts[:-1], cuts[1:])])
    return shares / np.maximum(p.sum(axis=0), 1e-30)


def log_spectral_distance(freqs: np.ndarray, a: np.ndarray, b: np.ndarray, min_period: float,
                          max_period: float) -> np.ndarray:
    """RMS over the frequencies with periods in [min_period, max_period] of 10 log10(a / b), per
    statistic (dB): 0 for the same spectrum; +3 dB everywhere gives 3."""
    pick = (freqs >= 1.0 / max_period) & (freqs <= 1.0 / min_period)
    ratio = 10 * np.log10(np.maximum(a[pick], 1e-30) / np.maximum(b[pick], 1e-30))
    return np.sqrt(np.mean(ratio ** 2, axis=0))
