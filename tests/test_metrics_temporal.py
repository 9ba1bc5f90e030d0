"""Temporal power spectra of pooled frame statistics (the long-span measure of generated
videos): hand-computed cases."""

import numpy as np
import pytest

from tlgen.metrics import temporal


def test_power_spectrum_finds_a_period_and_keeps_the_variance():
    t = np.arange(4096)
    sine = np.sin(2 * np.pi * t / 64)[:, None]
    freqs, power = temporal.power_spectrum(sine, 512)
    assert freqs[np.argmax(power[:, 0])] == pytest.approx(1 / 64)
    assert power.sum() == pytest.approx(0.5, rel=1e-3)                  # a unit sine's variance
    noise = np.random.default_rng(0).standard_normal((4, 4096, 2))
    freqs, power = temporal.power_spectrum(noise, 256)
    np.testing.assert_allclose(power.sum(axis=0), 1.0, atol=0.03)        # white: variance 1 ...
    assert (power[1:-1].std(axis=0) / power[1:-1].mean(axis=0)).max() < 0.15   # ... spread flat
    shares = temporal.band_shares(freqs, power, (8.0, 32.0))
    np.testing.assert_allclose(shares.sum(axis=0), 1.0)
    np.testing.assert_allclose(shares[:, 0], [0.75, 0.1875, 0.0625], atol=0.02)   # bandwidths / 0.5
    np.testing.assert_allclose(temporal.log_spectral_distance(freqs, 2 * power, power, 4, 128),
                               10 * np.log10(2))
    with pytest.raises(ValueError, match="shorter than a segment"):
        temporal.power_spectrum(noise[:, :100], 256)


def test_power_spectrum_of_series_of_any_lengths_pools_their_segments():
    noise = np.random.default_rng(1).standard_normal((2, 1024, 3))
    np.testing.assert_allclose(temporal.power_spectrum(list(noise), 256)[1],
                               temporal.power_spectrum(noise, 256)[1])
    a, b = noise[0], noise[1][:512]                                      # 7 and 3 segments of 256
    _, pa = temporal.power_spectrum(a, 256)
    _, pb = temporal.power_spectrum(b, 256)
    np.testing.assert_allclose(temporal.power_spectrum([a, b], 256)[1], (7 * pa + 3 * pb) / 10)


def test_frame_statistics_by_hand():
    frames = np.zeros((2, 2, 2, 3), np.uint8)
    frames[0, 0, 0] = [255, 0, 0]                                        # one red pixel of four
    frames[1] = 255
    stats = temporal.frame_statistics(frames)
    np.testing.assert_allclose(stats[0, :4], [0.299 / 4, 0.25, 0, 0])
    assert stats[0, 4] == pytest.approx(np.std([0.299, 0, 0, 0]))
    np.testing.assert_allclose(stats[1], [1, 1, 1, 1, 0], atol=1e-12)
