"""Image and temporal metrics against hand-computed values."""

import numpy as np
import pytest

from tlgen.metrics.image import psnr, ssim
from tlgen.metrics.temporal import e_tmp, sigma_tmp


def test_psnr_of_a_constant_offset():
    a = np.zeros((2, 16, 16, 3), np.float32)
    np.testing.assert_allclose(psnr(a, a + 0.1), 20.0, rtol=1e-5)   # 10 log10(1 / 0.01)
    np.testing.assert_allclose(psnr(a * 0, a + 25.5, max_val=255.0), 20.0, rtol=1e-5)
    np.testing.assert_array_equal(psnr(a, a), [100.0, 100.0])          # identical: capped, not 200


def test_ssim_identical_and_mean_shift():
    rng = np.random.default_rng(0)
    a = rng.random((16, 16, 1)).astype(np.float32)
    np.testing.assert_allclose(ssim(a, a), 1.0, atol=1e-6)
    # a constant shift leaves contrast-structure at 1; luminance term is known in closed
    # form for constant images
    c = np.full((16, 16, 1), 0.2, np.float32)
    d = np.full((16, 16, 1), 0.6, np.float32)
    c1 = 0.01 ** 2
    np.testing.assert_allclose(ssim(c, d), (2 * 0.2 * 0.6 + c1) / (0.04 + 0.36 + c1), rtol=2e-4)


def test_e_tmp_of_a_linear_ramp():
    n, h, w = 5, 4, 6
    frames = np.stack([np.full((h, w, 3), 0.1 * t) for t in range(n)])
    # each step changes every channel by 0.1: per-pixel squared colour distance 3 * 0.01
    np.testing.assert_allclose(e_tmp(frames), 1e3 * np.sqrt(0.03), rtol=1e-9)
    assert e_tmp(np.repeat(frames[:1], 3, axis=0)) == 0.0
    u8 = np.stack([np.zeros((h, w, 3), np.uint8), np.full((h, w, 3), 255, np.uint8)])
    np.testing.assert_allclose(e_tmp(u8), 1e3 * np.sqrt(3.0), rtol=1e-9)


def test_sigma_tmp_hand_computed():
    h, w = 4, 6
    checker = (np.indices((h, w)).sum(0) % 2)[..., None] * np.ones(3)      # half the values 0, half 1
    zero = np.zeros((h, w, 3))
    # reference steps: a checkerboard of +-0.1 around its mean (std 0.1), then nothing;
    # generated steps: nothing, then a checkerboard of amplitude 0.1 (std 0.05)
    reference = np.stack([zero, 0.2 * checker, 0.2 * checker])
    generated = np.stack([zero, zero, 0.1 * checker])
    np.testing.assert_allclose(sigma_tmp(generated, reference), 1e3 * (0.1 + 0.05) / 2, rtol=1e-9)
    # a uniform brightness change has no spread over the pixels; a video matches itself
    ramp = np.stack([np.full((h, w, 3), 0.1 * t) for t in range(3)])
    assert sigma_tmp(ramp, np.repeat(zero[None], 3, axis=0)) < 1e-9
    assert sigma_tmp(reference, reference) == 0.0
    with pytest.raises(ValueError, match="one shape"):
        sigma_tmp(generated[:2], reference)
