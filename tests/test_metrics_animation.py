"""Metrics of animated clips without a pretrained network: hand-computed cases."""

import numpy as np
import pytest

from tlgen.metrics.animation import (masked_psnr, masked_ssim, region_flow_mse, static_mask, static_scores,
                                     still_notes)
from tlgen.metrics.flow import flow_mse


def test_static_mask_follows_the_mean_l1_change_threshold():
    real = np.zeros((3, 2, 2, 3), np.uint8)
    real[1, 0, 0] = (1, 1, 1)             # |change| 3 then 3 over RGB: mean 3 > 2.5, dynamic
    real[2, 0, 1] = (2, 0, 0)             # 0 then 2: mean 1, static
    np.testing.assert_array_equal(static_mask(real), [[False, True], [True, True]])


def test_masked_psnr_counts_only_the_masked_pixels_and_caps_a_perfect_frame():
    reference = np.zeros((2, 2, 3), np.uint8)
    frames = np.zeros((2, 2, 2, 3), np.uint8)
    frames[0, 0, 0] = 255                 # outside the mask
    frames[1, 1, 1] = 15                  # inside: MSE 15^2 / 3 pixels
    mask = np.array([[False, True], [True, True]])
    want = (100.0 + 10 * np.log10(255.0 ** 2 / (225 / 3))) / 2
    assert masked_psnr(frames, reference, mask) == pytest.approx(want)


def test_a_clip_without_still_pixels_has_no_masked_score():
    real = np.zeros((3, 2, 2, 3), np.uint8)
    real[1] = 200                         # every pixel changes
    none = np.zeros((2, 2), bool)
    assert np.isnan(masked_psnr(real, real[0], none)) and np.isnan(masked_ssim(real, real[0], none))
    assert static_scores(real, real) == {"static_share": 0.0}    # not 100 dB, nothing to average
    rows = [{"static_share": 0.0}, {"masked_psnr": 30.0, "masked_ssim": 0.9, "static_share": 0.5}]
    assert still_notes(rows[1:]) == []                              # the report says which clips count
    assert still_notes(rows) == ["masked_psnr, masked_ssim: the mean over the 1 of 2 clips with still pixels"]
    assert still_notes(rows[:1]) == ["masked_psnr, masked_ssim: not computed (no clip has still pixels: "
                                     "static_share 0)"]


def test_region_flow_error_sums_the_components_where_flow_mse_averages_them():
    true = np.zeros((2, 2, 3, 2))
    flows = true.copy()
    flows[..., 0] = 1.0                   # dx wrong by 1 px everywhere, dy right
    flows[:, :, 2] = (3.0, 4.0)           # the last column: end-point error 5 px
    classes = np.array([[0, 0, 1], [0, 0, 1]])
    got = region_flow_mse(flows, true, classes)
    assert got == {"flow_mse_region0": pytest.approx(1.0), "flow_mse_region1": pytest.approx(25.0)}
    uniform = np.ones_like(true)           # wrong alike everywhere: twice the Flow-MSE per region
    assert flow_mse(uniform, true) == pytest.approx(1.0)
    assert list(region_flow_mse(uniform, true, classes).values()) == pytest.approx([2.0, 2.0])
