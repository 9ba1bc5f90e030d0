"""Temporal pyramid against a dense NumPy reference, and as stored by prepare."""

import numpy as np
import pytest

from tlgen.data import open_dataset, pyramid
from tlgen.data.prepare import prepare


def _reference_level(times, values, period, origin):
    """Dense formula of the module docstring, grid point by grid point."""
    out_t, out_v = [], []
    k = 0
    while origin + 2 * period * k <= times[-1] + 1e-9:
        tau = origin + 2 * period * k
        w = np.exp(-0.5 * ((times - tau) / period) ** 2) * (np.abs(times - tau) <= 3 * period)
        if w.sum() >= 0.5:
            out_t.append(tau)
            out_v.append(np.rint((w[:, None] * values.reshape(len(times), -1)).sum(0) / w.sum()))
        k += 1
    return np.array(out_t), np.array(out_v).reshape((-1,) + values.shape[1:])


def test_regular_level_is_blur_and_subsample():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 256, (21, 2, 3, 3)).astype(np.uint8)
    times = 10.0 * np.arange(21)
    (t, v), = list(pyramid.next_level(times, values, 10.0, 0.0))
    np.testing.assert_array_equal(t, 20.0 * np.arange(11))
    # interior: 7-tap sampled Gaussian (sigma = 1 sample) then every second sample
    taps = np.exp(-0.5 * np.arange(-3, 4) ** 2)
    taps /= taps.sum()
    x = values.reshape(21, -1).astype(np.float64)
    blurred = np.stack([taps @ x[i - 3:i + 4] for i in range(3, 18)])
    np.testing.assert_array_equal(v.reshape(11, -1)[2:9], np.rint(blurred[1::2]))


def test_irregular_level_matches_reference_and_keeps_gaps():
    rng = np.random.default_rng(1)
    times = np.sort(np.concatenate([rng.uniform(0, 300, 40), rng.uniform(700, 1000, 40)]))
    values = rng.integers(0, 256, (80, 4, 4, 3)).astype(np.uint8)
    chunks = list(pyramid.next_level(times, values, 15.0, float(times[0])))
    t = np.concatenate([c[0] for c in chunks])
    v = np.concatenate([c[1] for c in chunks])
    rt, rv = _reference_level(times, values, 15.0, float(times[0]))
    np.testing.assert_allclose(t, rt)
    assert np.abs(v.astype(int) - rv).max() <= 1       # float32 vs float64 rounding
    assert not ((t > 330) & (t < 670)).any()            # the capture gap stays a gap


def test_bracket_interpolates_and_stops_at_gaps():
    times = np.array([0.0, 10.0, 20.0, 60.0])
    assert pyramid.bracket(times, 10.0, 12.5) == (1, 2, 0.25)
    assert pyramid.bracket(times, 10.0, -5.0) == (0, 0, 0.0)
    assert pyramid.bracket(times, 10.0, 99.0) == (3, 3, 0.0)
    assert pyramid.bracket(times, 10.0, 30.0) == (2, 2, 0.0)   # gap 20..60: nearest
    assert pyramid.bracket(times, 10.0, 50.0) == (3, 3, 0.0)


def test_stored_pyramid_is_per_block(tmp_path):
    out = str(tmp_path / "ds")
    meta = prepare(["synthetic:city:frames=80,interval=900,irregular=1"], out, size=8, levels=3,
                   val_fraction=0.25)
    ds = open_dataset(out)
    assert meta["level_periods"] == pytest.approx([ds.level_periods[0] * 2 ** l for l in range(3)])
    for split in ("train", "validation"):
        src = ds.frames(split)
        times = ds.index(split)["time"]
        frames = np.stack([src[i]["image"] for i in range(len(src))])
        expected = pyramid.build_pyramid(times, frames, ds.level_periods[0], 3)
        for level in (1, 2):
            lv = ds.pyramid_level(split, level)
            got = np.stack([lv[i]["image"] for i in range(len(lv))])
            np.testing.assert_array_equal(ds.index(split, level)["time"], expected[level][0])
            np.testing.assert_array_equal(got, expected[level][1])
    # validation levels start inside the validation block: nothing from training leaks in
    assert ds.index("validation", 2)["time"][0] == ds.index("validation")["time"][0]
    assert meta["num_pyramid_frames"] < meta["num_frames"]


def test_automatic_levels_reach_two_days_or_what_the_shortest_training_block_holds():
    # a webcam every 20 minutes for 42 days, 10 % validation: 1200 s x 2**8 = 3.6 days is the
    # first period past two days, and the 2722-frame training block holds 2**8 frames
    assert pyramid.auto_levels(1200.0, [3024], 0.1) == 9
    assert pyramid.level_periods(1200.0, 8)[-1] < pyramid.SLOWEST_PERIOD <= pyramid.level_periods(1200.0, 9)[-1]
    # every 2 minutes for two weeks: 2 min x 2**11 = 2.8 days; the 1008 validation frames
    # (1.4 days) hold that level's one sample, and the block is not grown for it
    assert pyramid.auto_levels(120.0, [10080], 0.1) == 12
    assert pyramid.split_sizes(10080, 0.1, 12) == (9072, 1008)
    # 10 minutes at 30 fps: the 16200 training frames hold 2**13 (4.6 minutes), not two days
    assert pyramid.auto_levels(1 / 30, [18000], 0.1) == 14
    assert pyramid.auto_levels(1200.0, [3024, 200], 0.1) == 8      # the shortest video: 180 frames
    assert pyramid.auto_levels(600.0, [60], 0.0) == 6              # no validation: 60 >= 2**5
    assert pyramid.auto_levels(1200.0, [3], 0.1) == 2              # one validation frame, two training
    assert pyramid.split_sizes(3, 0.1, 3) is None
    assert pyramid.describe_periods([30.0, 1200.0, 5400.0, 172800.0]) == "30 s, 20 min, 1.5 h, 2 d"


def test_prepare_chooses_the_levels_from_the_capture(tmp_path):
    meta = prepare(["synthetic:city:frames=160,interval=1200"], str(tmp_path / "ds"), size=8,
                   val_fraction=0.25)
    # 120 training frames hold 2**6: seven levels, 20 minutes to 21.3 hours; the 40
    # validation frames (13 hours) hold one sample of the slowest
    assert meta["levels"] == 7
    assert meta["level_periods"] == pytest.approx([1200.0 * 2 ** level for level in range(7)])
    assert meta["splits"]["validation"]["num_frames"] == 40
    ds = open_dataset(str(tmp_path / "ds"))
    assert [len(ds.index("validation", level)["time"]) for level in range(7)] == [40, 20, 10, 5, 3, 2, 1]
