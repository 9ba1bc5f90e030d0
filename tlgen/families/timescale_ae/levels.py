"""How the timescale autoencoder's bins, pyramid levels and gap bands line up.

With M bins and a dataset of L >= M pyramid levels, the bins take M of them, spread evenly
over the levels from the frames (level 0) to the slowest (all of them when L = M); P are
their periods (P[0] = frame interval). Keeping k bins (k = 1..M) keeps the changes slower
than the cutoff C_k = P[M-k]. Reconstruction level k targets that pyramid level
(`loss.target = "pyramid"`) or the frame itself ("frame"); the contrastive level k = 1..M-1
takes positives a gap in [gap_band[0] * C_k, gap_band[1] * C_k) from the anchor (widened to
hold at least one frame interval), or, with a `loss.period` (a day), one period apart
(+-1/48 of it: the same time of day) at the levels where the derived gaps would reach
past 1/24 of the period while the cutoff stays within it: there the periodic change belongs
in the kept bins but varies within the gap (`loss.period_positive = "look"`: instead the
frame of that phase, a period or more away, nearest in look; `pair_dataset`'s `look_bands`).
`loss.gap_bands` sets bands in seconds instead.
With `loss.period_target` the levels whose cutoff lies beyond the period reconstruct the
period's mean (`tlgen.data.dataset.period_mean` over a window of the cutoff) instead of the
frame: their truth holds the cycle at its mean, where L1 towards the frame aims at a median.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tlgen.errors import UserError

# A benchmark or shape inference without a dataset assumes this capture: one frame every
# 20 minutes (the synthetic city's), pyramid periods doubling from there.
NOMINAL_INTERVAL = 1200.0


@dataclasses.dataclass(frozen=True)
class Levels:
    """How bins, pyramid levels and gap bands line up for one dataset."""
    num_bins: int
    level_periods: tuple[float, ...]               # P: the M periods the bins split at
    gap_bands: tuple[tuple[float, float], ...]     # seconds, one per contrastive level
    contrastive_levels: tuple[int, ...]            # bins kept for each gap band
    target_levels: tuple[int, ...]                 # pyramid level per reconstruction level
    level_weights: tuple[float, ...]               # lambda_k for k = 1..M
    period_levels: tuple[int, ...] = ()            # k whose target is the period's mean
    period_bands: tuple[int, ...] = ()             # gap bands one period apart (indices)

    @property
    def cutoffs(self) -> tuple[float, ...]:
        """C_k for k = 1..M (seconds): the slowest bins kept by mask(w, k)."""
        m = self.num_bins
        return tuple(self.level_periods[m - k] for k in range(1, m + 1))


def make_levels(config, level_periods) -> Levels:
    """The bin/level/band layout of `config` on a dataset with `level_periods`."""
    m = int(config.model.num_bins)
    if m < 2:
        raise UserError(f"config.model.num_bins is {m}; a timescale code needs at least 2 bins.")
    if len(level_periods) < m:
        raise UserError(f"config.model.num_bins is {m} but the dataset has {len(level_periods)} "
                        f"pyramid levels; prepare it with `--levels {m}` or more, or set "
                        f"--config.model.num_bins={len(level_periods)}.")
    # L >= M: the rounded positions are distinct (steps of at least one level)
    chosen = tuple(int(i) for i in np.round(np.linspace(0, len(level_periods) - 1, m)))
    periods = tuple(float(level_periods[i]) for i in chosen)
    lo, hi = (float(x) for x in config.loss.gap_band)
    if not 0 <= lo < hi:
        raise UserError(f"config.loss.gap_band {tuple(config.loss.gap_band)} must be (lo, hi) "
                        "with 0 <= lo < hi (fractions of each level's cutoff).")
    cutoffs = [periods[m - k] for k in range(1, m + 1)]
    levels = tuple(range(1, m))
    # Gaps shorter than the frame interval do not exist: every band keeps at least one step.
    step = periods[0]
    bands = tuple((max(lo * cutoffs[k - 1], step * (1 - 1e-6)),
                   max(hi * cutoffs[k - 1], max(lo * cutoffs[k - 1], step) + step))
                  for k in levels)
    period = float(config.loss.get("period", 0.0))
    period_bands = tuple(j for j, (k, band) in enumerate(zip(levels, bands))
                         if period and cutoffs[k - 1] <= period and band[1] > period / 24)
    bands = tuple((period * 47 / 48, period * 49 / 48) if j in period_bands else band
                  for j, band in enumerate(bands))
    explicit = tuple(tuple(float(x) for x in band) for band in config.loss.gap_bands)
    if explicit:
        if len(explicit) != len(levels) or any(
                len(b) != 2 or (b != (0.0, 0.0) and not 0 <= b[0] < b[1]) for b in explicit):
            raise UserError(f"config.loss.gap_bands needs {len(levels)} (lo, hi) pairs in seconds "
                            f"with 0 <= lo < hi (or (0, 0): derived from gap_band), one per level "
                            f"k = 1..{m - 1}; got {explicit}.")
        bands = tuple(b if b[1] > 0 else a for a, b in zip(bands, explicit))
        period_bands = tuple(j for j in period_bands if explicit[j][1] == 0)
    targets = tuple(chosen[m - k] for k in range(1, m + 1)) if config.loss.target == "pyramid" else (0,)
    if config.loss.target not in ("pyramid", "frame"):
        raise UserError(f"config.loss.target is {config.loss.target!r}; use pyramid or frame.")
    weights = tuple(float(x) for x in config.loss.level_weights) or tuple(
        float(k) for k in range(1, m + 1))
    if len(weights) != m:
        raise UserError(f"config.loss.level_weights has {len(weights)} entries; give one per "
                        f"bin count k = 1..{m} (or none for the default).")
    total = sum(weights)
    beyond = (tuple(k for k in range(1, m + 1) if cutoffs[k - 1] > period)
              if period and config.loss.get("period_target", False) else ())
    return Levels(m, periods, bands, levels, targets, tuple(w / total for w in weights), beyond,
                  period_bands)


def levels_for(config) -> Levels:
    """The layout on `config.data.dir`'s pyramid, or on the nominal capture when the config
    names no dataset (benchmarks, shape inference)."""
    from tlgen.data.dataset import open_training_data
    from tlgen.models.pixels import frame_shape

    if not config.data.dir:
        m = int(config.model.num_bins)
        return make_levels(config, [NOMINAL_INTERVAL * 2 ** level for level in range(m)])
    ds = open_training_data(config.data.dir, image_size=frame_shape(config.model.image_size),
                            size_key="config.model.image_size")
    return make_levels(config, ds.level_periods)


def trained_levels(config, data_periods, workdir: str | None = None) -> Levels:
    """The layout a trained model's bins learned: on the dataset its run started on (as
    `tlgen train` recorded it in `workdir`), else on its training dataset
    (`config.data.dir`) when that is still there, else on the dataset it is used on
    (`data_periods`). A model used on another capture keeps its bins' periods; the other
    dataset's pyramid only supplies the nearest levels to compare with."""
    from tlgen.checkpoint import DATA_RECORD, read_record
    from tlgen.data.dataset import open_dataset

    recorded = read_record(workdir, DATA_RECORD) if workdir else None
    if recorded:
        return make_levels(config, recorded["level_periods"])
    try:
        periods = open_dataset(config.data.dir).level_periods
    except UserError:                       # moved, deleted, or never named
        periods = data_periods
    return make_levels(config, periods)


def nearest_level(level_periods, period: float) -> int:
    """The pyramid level whose period is nearest `period` on a log scale."""
    return int(np.argmin(np.abs(np.log(np.asarray(level_periods, np.float64) / period))))
