"""The baselines `tlgen eval` scores the timescale model against (raw frame, oracle temporal
Gaussian, temporal median, period mean) on hand-computed cases, and the ground truth of
irregular captures."""

import math

import numpy as np
import pytest

from tlgen.data import open_dataset
from tlgen.data.prepare import prepare
from tlgen.data.synthetic import make_scene
from tlgen.metrics import timescale_eval as rep

TIMES = np.array([0.0, 1.0, 3.0])
FRAMES = np.broadcast_to(TIMES[:, None, None, None], (3, 2, 2, 3)).astype(np.float32)  # value = time


def test_temporal_gaussian_weights_the_captured_frames():
    got = rep.temporal_gaussian(TIMES, FRAMES, np.array([1.0]), sigma=1.0)
    w = [math.exp(-0.5), 1.0, math.exp(-2.0)]
    assert got.shape == (1, 2, 2, 3)
    np.testing.assert_allclose(got, (0 * w[0] + 1 * w[1] + 3 * w[2]) / sum(w), rtol=1e-6)
    np.testing.assert_array_equal(rep.temporal_gaussian(TIMES, FRAMES, np.array([2.4, 0.4]), 0.0)[:, 0, 0, 0],
                                  [3.0, 0.0])                   # sigma 0: the nearest frame
    far = rep.temporal_gaussian(TIMES, FRAMES, np.array([1e6]), 1.0)   # no underflow far away
    np.testing.assert_allclose(far, 3.0)


def test_temporal_median_over_the_window():
    at = np.array([1.0, 1.0, 2.0])
    got = [rep.temporal_median(TIMES, FRAMES, at[i:i + 1], w)[0, 0, 0, 0] for i, w in enumerate((4.0, 1.0, 2.0))]
    assert got == [1.0, 1.0, 2.0]       # median(0, 1, 3); just the frame at 1; median(1, 3)


def test_period_mean_over_the_window_votes_per_phase_and_averages_the_phases():
    """Period 4 s, 24 phases: a frame every 2 s alternates between two phases (0 and 12).
    Phase 0's frames read 10, 10, 99 (a passer-by, voted out by the median) and phase 12's
    20, 20: the mean of the phases' medians is 15. A window of 2 s holds only the nearest."""
    times = np.arange(5) * 2.0
    frames = np.array([10, 20, 10, 20, 99], np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    got = rep.temporal_period_mean(times, frames, np.array([4.0, 4.0]), np.inf, 4.0)
    assert got.dtype == np.uint8 and got.shape == (2, 2, 2, 3)
    np.testing.assert_array_equal(got, 15)
    np.testing.assert_array_equal(rep.temporal_period_mean(times, frames, np.array([6.2]), 1.0, 4.0), 20)


def test_nearest_frames_are_the_median_of_the_frames_nearest_in_appearance():
    """Frames of constant value 10 i (i = 0..9), the even ones 100 brighter on their left half.
    A query of 31 is nearest frames 3, 5, 1 (|31 - 10 i| = 1, 19, 21; the bright halves put the
    even ones far): their median is frame 3. With its left half 100 brighter it is nearest the
    even frames 4, 2, 6 (9, 11, 29 on both halves): their median is frame 4."""
    frames = np.broadcast_to((np.arange(10) * 10.0)[:, None, None, None], (10, 8, 8, 3)).copy()
    frames[::2, :, :4] += 100.0
    query = np.full((1, 8, 8, 3), 31.0)
    np.testing.assert_array_equal(rep.appearance_neighbours(frames, query, 3), frames[[3]])
    query[:, :, :4] += 100.0
    np.testing.assert_array_equal(rep.appearance_neighbours(frames, query, 3), frames[[4]])
    assert rep.appearance_neighbours(frames, query, 99).shape == (1, 8, 8, 3)   # count capped


def test_oracle_gaussian_finds_the_blur_of_the_truth_and_never_loses_to_the_raw_frame():
    rng = np.random.default_rng(0)
    times = np.sort(rng.uniform(0, 100, 40))
    frames = rng.random((40, 4, 4, 3)).astype(np.float32)
    at = times[10:30]
    truth = rep.temporal_gaussian(times, frames, at, 0.3 * 20.0)
    blur, sigma = rep.oracle_gaussian(times, frames, at, truth, cutoff=20.0)
    assert sigma == pytest.approx(0.3 * 20.0)
    np.testing.assert_allclose(blur, truth, rtol=1e-6)
    other = frames[10:30] * 0.5 + 0.25
    _, sigma = rep.oracle_gaussian(times, frames, at, frames[10:30], cutoff=20.0)
    assert sigma == 0.0                 # the raw frames are the truth: no blur
    assert rep.mean_psnr(rep.oracle_gaussian(times, frames, at, other, 20.0)[0], other) >= rep.mean_psnr(
        frames[10:30], other)


def test_irregular_capture_starting_before_zero_is_stored_with_its_scene_start(tmp_path):
    """seed 1's first jittered capture is before scene time 0 (this used to crash prepare):
    the stored frames are the scene rendered at start_time + stored times (up to the sensor
    noise, seeded by the time's exact bits, and sharp events at the recomputed times), not
    at the stored times alone."""
    scene = make_scene("city", seed=1, size=16)
    assert scene.capture_times(60, 600, irregular=True)[0] < 0
    out = str(tmp_path / "irregular")
    prepare(["synthetic:city:seed=1,frames=60,interval=600,irregular=1"], out, size=16, levels=1, val_fraction=0)
    ds = open_dataset(out)
    video = ds.metadata["videos"][0]
    block = ds.blocks("train", 0)[0]
    stored = np.stack([ds.frames("train")[block.start + i]["image"] for i in range(block.count)]).astype(np.float32)
    error = lambda times: np.mean(np.abs(stored - scene.render_band(times, 1e-6) * 255.0))
    with_start = error(video["start_time"] + block.times)
    assert with_start < 1.3                      # the sensor noise: E|N(0, 1.5)| = 1.2 levels
    assert error(block.times) > 1.5 * with_start
    assert video["synthetic"] == scene.spec


def test_bin_leakage_is_the_share_of_each_bins_variation_and_ignores_bin_scale():
    """A linear 'encoder' with one bin per colour channel (its mean over the frame): a
    component's share in bin j is var(bin j | the component alone) / var(bin j | every
    component), computed here by hand; scaling a bin's codes changes no share."""
    from tlgen.families.timescale_ae.inference import bin_leakage

    scene = make_scene("city", size=16)
    at = np.linspace(0, 6 * 86400, 40)
    cutoffs = [86400.0, 7200.0, 600.0]
    scale = np.array([1.0, 10.0, 0.1])[:, None, None, None]

    def encode(frames, s=1.0):                                  # (n, 3 bins, 1, 1, 1)
        return np.asarray(frames, np.float64).mean(axis=(1, 2))[:, :, None, None, None] * s

    codes = encode(scene.render(at))
    rows = bin_leakage(encode, scene, at, cutoffs, codes)
    total = codes[:, :, 0, 0, 0].var(axis=0)
    for row in rows:
        alone = encode(np.rint(scene.render_alone(row["component"], at) * 255))[:, :, 0, 0, 0]
        share = alone.var(axis=0) / total
        np.testing.assert_allclose([row[f"bin_{j}"] for j in range(3)], share, atol=1e-4)
        home = 0 if row["timescale_s"] >= 86400 else 1 if row["timescale_s"] >= 7200 else 2
        assert row["bin"] == home and row["share_in_bin"] == pytest.approx(share[home], abs=1e-4)
        assert row["largest_in_slower_bin"] == pytest.approx(max(share[:home], default=0.0), abs=1e-4)
    assert [r["component"] for r in rows] == [n for n, _ in scene.components if n != "sensor_noise"]
    scaled = bin_leakage(lambda f: encode(f, scale), scene, at, cutoffs, codes * scale)
    assert scaled == rows
    day = next(r for r in rows if r["component"] == "day_night")
    assert day["bin_0"] > 0.5           # the day cycle makes most of the frames' colour change
