"""Timelapse synthesis: frame counts, source times, clocks and band edits."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from tlgen.models import timescale_ae as ae
from tlgen.synth import timelapse as tl

CFG = ml_collections.ConfigDict(dict(image_size=16, widths=(4, 8), blocks=1, num_bins=4,
                                     bin_channels=2))
PERIODS = [60.0, 120.0, 240.0, 480.0]


def test_nearest_frames_and_output_times():
    ft = np.array([0.0, 10.0, 20.0, 35.0])
    np.testing.assert_array_equal(tl.nearest_frames(ft, [-5, 4, 6, 27, 28, 99]), [0, 0, 1, 2, 3, 3])
    np.testing.assert_allclose(tl.output_times(0, 10, 3), [0, 5, 10])


def test_bin_clocks_speed_up_slow_bins_and_keep_fast_bins_near_real_time():
    clocks = tl.bin_clocks(0.0, 6000.0, 7, PERIODS, 4, source_interval=60.0, segment_frames=7)
    assert clocks.shape == (7, 4)
    slow = np.linspace(0, 6000, 7)
    # output interval 1000 s: bins 0 (>= 480 s) run on the slow clock ...
    np.testing.assert_allclose(clocks[:, 0], slow)
    # ... faster bins step by 1000 * P_b / 480 s (>= 60 s), centred on the middle moment
    steps = np.diff(clocks, axis=0)[0]
    np.testing.assert_allclose(steps, [1000, 1000 * 240 / 480, 1000 * 120 / 480, 1000 * 60 / 480])
    np.testing.assert_allclose(clocks[3], 3000.0)
    # output interval 400 s, segments of 3 frames centred on the slow clock (400, 1600, 2400 s):
    # bin 2 steps by 400 * 120 / 240 = 200 s, bin 3's 100 s is raised to the source's 150 s
    clocks = tl.bin_clocks(0.0, 2400.0, 7, PERIODS, 4, source_interval=150.0, segment_frames=3)
    np.testing.assert_allclose(clocks[:, 0], np.linspace(0, 2400, 7))
    np.testing.assert_allclose(clocks[:, 2], [200, 400, 600, 1400, 1600, 1800, 2400])
    np.testing.assert_allclose(clocks[:, 3], [250, 400, 550, 1450, 1600, 1750, 2400])


def test_band_edits():
    rng = np.random.default_rng(0)
    codes = jnp.asarray(rng.normal(size=(5, 4, 2, 2, 2)), jnp.float32)
    removed = tl.remove_band(codes, 2)
    np.testing.assert_allclose(removed[:, 2], np.broadcast_to(codes[:, 2].mean(0), (5, 2, 2, 2)),
                               rtol=1e-6)
    np.testing.assert_array_equal(removed[:, [0, 1, 3]], codes[:, [0, 1, 3]])
    src = jnp.asarray(rng.normal(size=(4, 2, 2, 2)), jnp.float32)
    inserted = tl.insert_band(codes, 1, src)
    np.testing.assert_array_equal(inserted[:, 1], np.broadcast_to(src[1], (5, 2, 2, 2)))
    np.testing.assert_array_equal(inserted[:, 0], codes[:, 0])


def test_interpolate_codes_hits_keyframes():
    rng = np.random.default_rng(1)
    keys = jnp.asarray(rng.normal(size=(3, 4, 2, 2, 2)), jnp.float32)
    out = tl.interpolate_codes(keys, [0.0, 10.0, 30.0], jnp.array([0.0, 10.0, 20.0, 30.0]), "lerp")
    np.testing.assert_allclose(np.asarray(out)[[0, 1, 3]], keys, atol=1e-6)
    np.testing.assert_allclose(out[2], 0.5 * (keys[1] + keys[2]), atol=1e-6)
    with pytest.raises(ValueError, match="interpolation"):
        tl.interpolate_codes(keys, [0.0, 10.0, 30.0], jnp.zeros(2), "cubic")


@pytest.fixture(scope="module")
def synth():
    params = jax.jit(lambda key: ae.init(key, CFG))(jax.random.key(0))
    frame_times = np.arange(50) * 60.0
    frames = np.random.default_rng(2).integers(0, 256, (50, 16, 16, 3), dtype=np.uint8)
    return tl.Synthesizer(params, CFG, lambda i: frames[i], frame_times, PERIODS, batch_size=4)


@pytest.mark.parametrize("mode", tl.MODES)
def test_timelapse_modes_return_requested_frames_and_source_times(synth, mode, caplog):
    frame_times = synth.frame_times
    out = synth.timelapse(600.0, 2400.0, 7, mode=mode, keyframes=3, remove=3, insert=2,
                          insert_from=60.0)
    # band 3 is faster than the mask keeps (but for multiscale, which keeps every bin): said
    assert ("remove band 3: the mask keeps bins 0..2 and drops it already" in caplog.text) == (mode != "multiscale")
    assert out.frames.shape == (7, 16, 16, 3) and out.frames.dtype == np.uint8
    np.testing.assert_allclose(out.times, np.linspace(600, 2400, 7))
    width = {"subsample": 1, "interpolate": 2, "multiscale": 4}[mode]
    assert out.source_times.shape == (7, width)
    assert np.all(np.isin(out.source_times, frame_times))          # real frames only
    if mode == "subsample":
        np.testing.assert_allclose(out.source_times[:, 0], np.linspace(600, 2400, 7))
        # output interval 300 s: bins faster than 240 s dropped; insert=2 keeps 3 bins
        assert out.keep_bins == 3


@pytest.mark.parametrize("edit", [dict(keep_bins=0), dict(keep_bins=5), dict(remove=4),
                                  dict(insert=-1, insert_from=0.0)])
def test_bins_outside_the_model_are_refused(synth, edit):
    with pytest.raises(ValueError, match="outside"):
        synth.timelapse(0.0, 600.0, 3, **edit)


def test_once_every_frame_is_encoded_encode_frames_reads_those_codes(synth):
    reads = []
    s = tl.Synthesizer(synth.params, CFG, lambda i: reads.append(len(i)) or synth.get_frames(i),
                       synth.frame_times, PERIODS, batch_size=4)
    idx = np.array([7, 3, 3, 49, 0])
    encoded = np.asarray(s.encode_frames(idx))
    every = s.frame_codes
    count = len(reads)
    again = np.asarray(s.encode_frames(idx))
    assert len(reads) == count                           # no frame read (or encoded) again
    np.testing.assert_array_equal(again, every[idx])
    # encoded in batches of other frames: the same codes up to float rounding
    np.testing.assert_allclose(encoded, every[idx], rtol=0, atol=1e-5)


def test_neighbour_rendering_is_the_median_of_the_frames_whose_kept_bins_are_nearest(synth):
    frames = np.random.default_rng(2).integers(0, 256, (50, 16, 16, 3), dtype=np.uint8)
    s = tl.Synthesizer(synth.params, CFG, lambda i: frames[i], synth.frame_times, PERIODS)
    codes = np.random.default_rng(3).normal(size=(50, 4, 8, 8, 2)).astype(np.float32)
    codes[:, 0] = (np.arange(50) % 5)[:, None, None, None]        # bin 0: the frame index mod 5
    s.__dict__["frame_codes"] = codes
    query = codes[[3, 7]].copy()
    query[:, 1:] += 5.0                                            # faster bins: ignored
    out = s.render_neighbours(query, keep_bins=1, count=10)
    np.testing.assert_array_equal(out[0], np.rint(np.median(frames[3::5], axis=0)))
    np.testing.assert_array_equal(out[1], np.rint(np.median(frames[2::5], axis=0)))
    # about three frames per frame interval (60 s) of the cutoff, 8 to 48
    assert [s.neighbour_count(k) for k in (1, 2, 3, 4)] == [24, 12, 8, 8]
    assert s.timelapse(0.0, 2940.0, 3, keep_bins=1, render="neighbours").frames.shape == (3, 16, 16, 3)


def test_neighbour_rendering_beyond_the_period_votes_per_phase_and_averages_the_phases(synth):
    """Period 240 s (the cutoff of one kept bin is 480 s): frames every 60 s fall in 4 phases
    (of the 24) by their index mod 4. With 2 frames per phase, each phase's two frames whose
    bin-0 codes are nearest the query (codes = the frame index, so the nearest in time) vote by
    median (their mean, for two), and the phases' medians are averaged."""
    frames = np.random.default_rng(4).integers(0, 256, (50, 16, 16, 3), dtype=np.uint8)
    s = tl.Synthesizer(synth.params, CFG, lambda i: frames[i], synth.frame_times, PERIODS,
                       period=240.0)
    codes = np.zeros((50, 4, 8, 8, 2), np.float32)
    codes[:, 0] = np.arange(50)[:, None, None, None]
    s.__dict__["frame_codes"] = codes
    out = s.render_neighbours(codes[[20]] - 0.1, keep_bins=1, count=2)     # nearest: 16..23
    f = frames.astype(np.float64)
    phases = [(f[16 + j] + f[20 + j]) / 2 for j in range(4)]
    np.testing.assert_array_equal(out[0], np.rint(np.mean(phases, axis=0)))
    # within the period (two kept bins cut at 240 s) the plain median of the nearest
    within = s.render_neighbours(codes[[20]] - 0.1, keep_bins=2, count=3)
    np.testing.assert_array_equal(within[0], np.rint(np.median(f[19:22], axis=0)))
