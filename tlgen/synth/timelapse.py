"""Timelapse synthesis with a timescale autoencoder (paper section 3).

Modes, each producing `n` output frames spanning source times [t0, t1]:

* subsample: the source frames nearest to n uniform times, encoded, masked to the
  bins slower than a minimum period (default: the output frame interval), decoded.
* interpolate: keyframes encoded and masked, each bin interpolated (slerp or lerp)
  between neighbouring keyframes at every output time, decoded.
* multiscale (motion normalization): every bin runs on its own clock
  (`bin_clocks`). Slow bins are sped up to span [t0, t1]; each bin faster than the
  output interval d advances by a step in proportion to its band's period (d * P_b / P_c,
  P_c the slowest such band's period; at least the source frame interval), in segments
  centred on the slow clock, so fast motion plays sped up by d / P_c (1 to 4 times real
  speed where the bands are 2 to 4 times apart), not by the timelapse's factor. Every
  bin's code comes from the real frame nearest its clock.

Edits on any code sequence: `remove_band` (replace a bin by its time average) and
`insert_band` (a bin taken from one other frame).

Rendering (`render`): "decoder" decodes the masked codes; "neighbours" renders them from
the video's own frames: the per-pixel median of the frames whose codes, masked alike, are
nearest (about three per frame interval of the cutoff, 8 to 48), so frames that share the
kept slow state from anywhere in the video (the same time of day on another day) vote,
and what is faster than the cutoff (passers-by, noise) is voted out; sharp, but only
states the video has. Beyond the model's period (its `loss.period`, a day) the vote is the
period's: in each phase of the period the nearest frames of that phase, and the mean of
the phases' medians (`tlgen.data.dataset.period_mean`), which holds the day at its mean as
the truth beyond a day does.

Frames come from a caller-supplied `get_frames(indices) -> uint8 (N, H, W, 3)`, so
this module does no file I/O.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tlgen.data.dataset import (BACKGROUND_FRAMES, PHASE_FRAMES, frame_median, nearest_medians,
                                period_mean, period_phase, squared_distances, summary_image)
from tlgen.models import timescale_ae as ae
from tlgen.models.pixels import to_uint8

MODES = ("subsample", "interpolate", "multiscale")
RENDERS = ("decoder", "neighbours")
# The neighbour rendering's median takes this many frames per frame interval of the cutoff,
# within this range (chosen on one synthetic city rendering, bench/timescale_baselines.py).
NEIGHBOURS_PER_INTERVAL = 3.0
NEIGHBOURS_RANGE = (8, 48)


@dataclasses.dataclass(frozen=True)
class Timelapse:
    """A synthesized timelapse.

    frames: uint8 (n, H, W, 3).
    times: float64 (n,) nominal source time of each output frame (seconds).
    source_times: float64 (n, S): the source frame times each output frame was made
      from (subsample S=1; interpolate S=2, the bracketing keyframes; multiscale
      S=M, one per bin).
    keep_bins: bins kept by the mask.
    raw: uint8 (n, H, W, 3): the source frame nearest each output time (raw subsampling).
    """
    frames: np.ndarray
    times: np.ndarray
    source_times: np.ndarray
    keep_bins: int
    raw: np.ndarray

    def contact_sheet(self, columns: int = 8) -> np.ndarray:
        """uint8 image: up to `columns` evenly spaced raw frames above the generated ones."""
        n = len(self.frames)
        pick = np.unique(np.linspace(0, n - 1, min(columns, n)).astype(int))
        rows = [np.concatenate(list(x[pick]), axis=1) for x in (self.raw, self.frames)]
        return np.concatenate(rows, axis=0)


def output_times(t0: float, t1: float, n: int) -> np.ndarray:
    """n uniform times from t0 to t1 inclusive."""
    if n < 1:
        raise ValueError(f"need at least one output frame, got {n}")
    return np.linspace(t0, t1, n) if n > 1 else np.asarray([0.5 * (t0 + t1)])


def nearest_frames(frame_times: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the source frame nearest each time (frame_times sorted ascending)."""
    frame_times = np.asarray(frame_times, np.float64)
    times = np.asarray(times, np.float64)
    right = np.clip(np.searchsorted(frame_times, times), 1, len(frame_times) - 1)
    left = right - 1
    closer_left = np.abs(times - frame_times[left]) <= np.abs(frame_times[right] - times)
    return np.where(closer_left, left, right) if len(frame_times) > 1 else np.zeros_like(
        times, np.int64)


def bin_lower_periods(level_periods: Sequence[float], num_bins: int) -> np.ndarray:
    """Shortest period of each bin's band: bin b owns [level_periods[M-1-b], ...)."""
    periods = np.asarray(level_periods, np.float64)
    if len(periods) < num_bins:
        raise ValueError(f"{num_bins} bins need {num_bins} pyramid levels, got {len(periods)}")
    return periods[num_bins - 1 - np.arange(num_bins)]


def bin_clocks(t0: float, t1: float, n: int, level_periods: Sequence[float], num_bins: int,
               source_interval: float, segment_frames: int = 16) -> np.ndarray:
    """Per-bin source times (n, M) for multiscale synthesis.

    The output interval d = (t1 - t0) / (n - 1) is the step of every bin whose band
    lies above d. A faster bin b steps by d * P_b / P_c (P_b its band's shortest
    period, P_c that of the slowest bin faster than d), never below the source
    interval: each bin changes by a similar fraction of its own timescale per output
    frame. Fast clocks run in segments of `segment_frames` frames centred on the slow
    clock's time at the segment's middle.
    """
    slow = output_times(t0, t1, n)
    d = (t1 - t0) / max(n - 1, 1)
    lower = bin_lower_periods(level_periods, num_bins)
    fast = lower < d
    ref = lower[fast].max() if fast.any() else d
    steps = np.where(fast, np.maximum(d * lower / ref, source_interval), d)
    seg = max(1, min(int(segment_frames), n))
    i = np.arange(n)
    start = (i // seg) * seg
    length = np.minimum(seg, n - start)
    centre_idx = start + (length - 1) / 2.0
    centre_time = t0 + centre_idx * d if n > 1 else slow
    fast_times = centre_time[:, None] + (i - centre_idx)[:, None] * steps[None, :]
    return np.where(fast[None, :], fast_times, slow[:, None])


@jax.jit
def mix_bins(codes: jax.Array, index: jax.Array) -> jax.Array:
    """codes (F, M, h, w, c), index (n, M) int -> (n, M, h, w, c): bin b of output i
    taken from codes[index[i, b], b]."""
    bins = jnp.arange(codes.shape[1])[None, :]
    return codes[index, bins]


def interpolate_codes(key_codes: jax.Array, key_times: jax.Array, times: jax.Array,
                      method: str = "slerp") -> jax.Array:
    """Codes at `times` (n,) interpolated per bin between keyframes (N >= 2, M, h, w, c)
    at sorted `key_times` (N,); times outside the keys are clamped."""
    if key_codes.shape[0] < 2:
        raise ValueError("interpolation needs at least two keyframes")
    if method not in ("slerp", "lerp"):
        raise ValueError(f"unknown interpolation {method!r}: use 'slerp' or 'lerp'")
    return _interpolate(key_codes, jnp.asarray(key_times, jnp.float32),
                        jnp.asarray(times, jnp.float32), method)


@functools.partial(jax.jit, static_argnames="method")
def _interpolate(key_codes, key_times, times, method):
    right = jnp.clip(jnp.searchsorted(key_times, times, side="right"), 1, key_codes.shape[0] - 1)
    left = right - 1
    span = jnp.maximum(key_times[right] - key_times[left], 1e-12)
    t = jnp.clip((times - key_times[left]) / span, 0.0, 1.0)
    fn = ae.slerp if method == "slerp" else ae.lerp
    return fn(key_codes[left], key_codes[right], t[:, None])


def remove_band(codes: jax.Array, band: int) -> jax.Array:
    """Replaces bin `band` of a code sequence (n, M, h, w, c) by its time average."""
    mean = jnp.mean(codes[:, band], axis=0, keepdims=True)
    return codes.at[:, band].set(jnp.broadcast_to(mean, codes[:, band].shape))


def insert_band(codes: jax.Array, band: int, source: jax.Array) -> jax.Array:
    """Sets bin `band` of every code in (n, M, h, w, c) to that of `source` (M, h, w, c)."""
    return codes.at[:, band].set(jnp.broadcast_to(source[band], codes[:, band].shape))


@dataclasses.dataclass
class Synthesizer:
    """Encodes/decodes in batches with one trained model.

    params, cfg: model parameters and model config (see tlgen.models.timescale_ae).
    get_frames: indices -> uint8 frames (N, H, W, 3) of one video.
    frame_times: (F,) sorted times (seconds) of that video's frames.
    level_periods: the dataset's pyramid level periods (seconds).
    background: the video's background image (H, W, 3) uint8 for a model with
      `cfg.background`; default: the median of BACKGROUND_FRAMES frames spread over the video.
    period: the model's `loss.period` (seconds; 0: none): the neighbour rendering of masks
      that cut beyond it votes per phase of it.
    """
    params: Any
    cfg: Any
    get_frames: Callable[[np.ndarray], np.ndarray]
    frame_times: np.ndarray
    level_periods: Sequence[float]
    dtype: Any = jnp.float32
    batch_size: int = 32
    background: np.ndarray | None = None
    period: float = 0.0

    def __post_init__(self):
        model = ae.model_from_config(self.cfg, self.dtype)
        self.frame_times = np.asarray(self.frame_times, np.float64)
        if not model.background:
            self.background = None
        elif self.background is None:
            self.background = summary_image(self.get_frames, len(self.frame_times), frame_median,
                                            BACKGROUND_FRAMES)
        self._encode = functools.partial(_apply, model, ae.TimescaleAE.encode)
        self._decode = lambda params, codes: _apply(model, ae.TimescaleAE.decode, params, codes,
                                                    self.background)

    @property
    def num_bins(self) -> int:
        return int(self.cfg.num_bins)

    def _batched(self, fn, x) -> jax.Array:
        """fn(params, batch) over `x` in fixed-size batches (one compiled shape)."""
        size = self.batch_size
        return jnp.concatenate([fn(self.params, _pad(x[s:s + size], size))[: len(x[s:s + size])]
                                for s in range(0, len(x), size)], axis=0)

    def encode(self, frames) -> jax.Array:
        """Codes (N, M, h, w, c) of uint8 frames (N, H, W, 3)."""
        return self._batched(self._encode, frames)

    def decode(self, codes) -> jax.Array:
        """float32 frames in [-1, 1] (n, H, W, 3) of codes (n, M, h, w, c)."""
        return self._batched(self._decode, codes)

    def encode_frames(self, indices: np.ndarray) -> jax.Array:
        """Codes (N, M, h, w, c) of the source frames at `indices` (each encoded once; read
        from `frame_codes` once that has been computed)."""
        indices = np.asarray(indices)
        if "frame_codes" in self.__dict__:                  # the cached_property's value
            return jnp.asarray(self.frame_codes[indices.reshape(-1)])
        uniq, inverse = np.unique(indices, return_inverse=True)
        # Frames are read one batch at a time (the padded last batch also reads frame 0).
        codes = self._batched(lambda params, batch: self._encode(params, self.get_frames(batch)),
                              uniq)
        return codes[inverse.reshape(-1)]

    def decode_codes(self, codes: jax.Array) -> np.ndarray:
        """uint8 frames (n, H, W, 3) of codes (n, M, h, w, c)."""
        return np.asarray(to_uint8(self.decode(codes)))

    @property
    def interval(self) -> float:
        """The median frame interval (seconds)."""
        return float(np.median(np.diff(self.frame_times))) if len(self.frame_times) > 1 else 1.0

    @functools.cached_property
    def frame_codes(self) -> np.ndarray:
        """Codes (F, M, h, w, c) of every frame of the video (computed once)."""
        return np.asarray(self.encode_frames(np.arange(len(self.frame_times))))

    def cutoff(self, keep_bins: int) -> float:
        """Seconds: keeping `keep_bins` bins keeps the changes slower than this."""
        return float(self.level_periods[self.num_bins - int(keep_bins)])

    def neighbour_count(self, keep_bins: int) -> int:
        """Frames the neighbour rendering takes the median of when keeping `keep_bins` bins
        (within the period; beyond it, PHASE_FRAMES per phase)."""
        return int(np.clip(round(NEIGHBOURS_PER_INTERVAL * self.cutoff(keep_bins) / self.interval),
                           *NEIGHBOURS_RANGE))

    def render_neighbours(self, codes, keep_bins: int, count: int | None = None) -> np.ndarray:
        """uint8 frames (n, H, W, 3) of `codes` (n, M, h, w, c) kept to bins 0..keep_bins-1,
        rendered from the video's frames whose codes, masked alike, are nearest: the per-pixel
        median of the `count` nearest (default `neighbour_count`), or, when the mask cuts
        beyond `period`, the `period_mean` of the `count` nearest (at most and by default
        PHASE_FRAMES) in each phase of the period."""
        dist = squared_distances(np.asarray(codes)[:, :keep_bins].reshape(len(codes), -1),
                                 self.frame_codes[:, :keep_bins].reshape(len(self.frame_times), -1))
        if self.period and self.cutoff(keep_bins) > self.period:
            phase = period_phase(self.frame_times, self.period)
            groups = [np.flatnonzero(phase == j) for j in np.unique(phase)]
            per = min(count or PHASE_FRAMES, PHASE_FRAMES)
            picks = [np.sort(np.concatenate([g[np.argsort(d[g], kind="stable")[:per]] for g in groups]))
                     for d in dist]
            return np.stack([period_mean(lambda rows, i=i: self.get_frames(i[rows]),
                                         self.frame_times[i], self.period) for i in picks])
        medians = nearest_medians(self.get_frames, dist, count or self.neighbour_count(keep_bins))
        return np.rint(medians).astype(np.uint8)

    def keep_for_period(self, min_period: float) -> int:
        return int(ae.bins_for_period(min_period, self.level_periods, self.num_bins))

    def timelapse(self, t0: float, t1: float, n: int, *, mode: str = "subsample",
                  keep_bins: int | None = None, min_period: float | None = None,
                  interp: str = "slerp", keyframes: int = 8, segment_frames: int = 16,
                  remove: int | None = None, insert: int | None = None,
                  insert_from: float | None = None, render: str = "decoder") -> Timelapse:
        """Synthesizes n frames over [t0, t1] (see module docstring for the modes).

        keep_bins / min_period choose the mask (default: drop changes faster than
        the output frame interval; multiscale keeps all bins). `remove` replaces
        that bin by its time average; `insert` takes that bin from the frame
        nearest `insert_from` (a default mask then keeps at least bins 0..insert; a given
        `keep_bins` must).
        """
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        if render not in RENDERS:
            raise ValueError(f"unknown render {render!r}: use one of {', '.join(RENDERS)}")
        times = output_times(t0, t1, n)
        m = self.num_bins
        given_keep = keep_bins is not None
        if keep_bins is None:
            if min_period is None:
                min_period = (t1 - t0) / max(n - 1, 1) if mode != "multiscale" else 0.0
            keep_bins = self.keep_for_period(min_period)
        elif not 1 <= keep_bins <= m:
            raise ValueError(f"keep bins {keep_bins} is outside 1..{m} (the model has {m} bins)")
        for name, band in (("remove", remove), ("insert", insert)):
            if band is not None and not 0 <= band < m:
                raise ValueError(f"{name} band {band} is outside 0..{m - 1}")
        if insert is not None and insert == remove:
            raise ValueError(f"remove band {remove} is also the insert band; edit two different bins")
        if insert is not None and insert >= keep_bins:
            if given_keep:
                raise ValueError(f"insert band {insert} is not among the bins kept (0..{keep_bins - 1}); "
                                 f"keep at least {insert + 1}")
            keep_bins = insert + 1
        if mode == "subsample":
            idx = nearest_frames(self.frame_times, times)
            codes = self.encode_frames(idx)
            source = self.frame_times[idx][:, None]
        elif mode == "interpolate":
            key_t = output_times(t0, t1, max(2, min(keyframes, n)))
            key_idx = nearest_frames(self.frame_times, key_t)
            key_t = self.frame_times[key_idx]
            codes = interpolate_codes(self.encode_frames(key_idx), key_t, times, interp)
            pos = np.clip(np.searchsorted(key_t, times, side="right"), 1, len(key_t) - 1)
            source = np.stack([key_t[pos - 1], key_t[pos]], axis=1)
        else:
            clocks = bin_clocks(t0, t1, n, self.level_periods, m, self.interval, segment_frames)
            idx = nearest_frames(self.frame_times, clocks.reshape(-1)).reshape(clocks.shape)
            uniq, inverse = np.unique(idx, return_inverse=True)
            codes = mix_bins(self.encode_frames(uniq), jnp.asarray(inverse.reshape(idx.shape)))
            source = self.frame_times[idx]
        if remove is not None:
            if remove >= keep_bins:
                logging.getLogger(__name__).warning(
                    "remove band %d: the mask keeps bins 0..%d and drops it already, so the "
                    "timelapse is the same without it; keep more bins to see it removed",
                    remove, keep_bins - 1)
            codes = remove_band(codes, remove)
        if insert is not None:
            ref = insert_from if insert_from is not None else t0
            src = self.encode_frames(nearest_frames(self.frame_times, np.asarray([ref])))[0]
            codes = insert_band(codes, insert, src)
        frames = (self.decode_codes(ae.mask(codes, keep_bins)) if render == "decoder"
                  else self.render_neighbours(codes, keep_bins))
        raw = self.get_frames(nearest_frames(self.frame_times, times))
        return Timelapse(frames=frames, times=times, source_times=np.asarray(source, np.float64),
                         keep_bins=keep_bins, raw=raw)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _apply(model, method, params, *args):
    """model.method under jit, compiled once per (model, method, shapes) for all callers."""
    return model.apply({"params": params}, *args, method=method)


def _pad(x, size: int):
    """Pads the leading axis to `size` (one compiled shape per batch size)."""
    n = x.shape[0]
    if n == size:
        return x
    pad = [(0, size - n)] + [(0, 0)] * (x.ndim - 1)
    return np.pad(x, pad) if isinstance(x, np.ndarray) else jnp.pad(x, pad)
