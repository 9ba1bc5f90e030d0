"""The low-resolution long-video model: temporal latents (filter bank against NumPy's FFT and
direct convolution), temporal resampling, chunked generation equal to one pass, the
augmentations and the base model's parameter counts."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from tlgen import config as config_lib
from tlgen.families.long_video import training
from tlgen.models import layers
from tlgen.models import long_video as lv

SMALL = dict(size=(8, 16), input_channels=16, temporal_channels=(16, 16, 8), temporal_time_up=(True, True, False),
             temporal_space_up=(False, True, False), spatial_channels=(8,), spatial_space_up=(True,),
             latent_dim=32, filters=4, min_period=4.0, max_period=64.0)


def test_filter_bank_frequency_response_and_fft_filtering():
    count, lo, hi = 8, 8.0, 512.0
    bank = lv.filter_bank(count, lo, hi)
    periods = 2.0 ** np.linspace(np.log2(lo), np.log2(hi), count)
    freqs = np.fft.rfftfreq(1 << 16)
    assert bank.shape == (count, 512)
    assert lv.filter_bank(8, 8.0, 300.0).shape == (8, 300)    # 2 ** log2(300) > 300: clipped
    for f, p in zip(bank, periods):
        n = int(np.ceil(p))      # right-aligned, as the public bank: zeros, then ceil(p) taps
        assert np.all(f[:512 - n] == 0) and f[512 - n] != 0 and f[-1] != 0
        response = np.abs(np.fft.rfft(f, 1 << 16))
        assert np.sum(f ** 2) == pytest.approx(1.0)            # unit variance out of white noise
        assert response[0] == pytest.approx(1 / np.linalg.norm(f[f != 0]) * np.sum(f))
        rel = response / response[0]
        assert 0.6 < rel[np.argmin(np.abs(freqs - 1 / p))] < 0.8    # about -3 dB at its period
        assert rel[freqs < 0.2 / p].min() > 0.97                    # slower change passes
        stop = rel[freqs > 4 / p]
        assert stop.size == 0 or stop.max() < 1e-3               # faster change is stopped
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((2, 300 + bank.shape[1] - 1, 3)).astype(np.float32)
    out = np.asarray(lv.filter_noise(jnp.asarray(noise), bank))
    assert out.shape == (2, 300, 3 * count)
    for c in range(3):
        for i in range(count):
            direct = np.correlate(noise[1, :, c].astype(np.float64), bank[i], mode="valid")
            np.testing.assert_allclose(out[1, :, c * count + i], direct, atol=2e-4)
    assert 0.85 < out[..., ::count].std() < 1.15    # white noise in, unit variance out (fastest filter)
    # filters of different lengths read different stretches of the noise: nearly uncorrelated
    long = rng.standard_normal((1, 20_000 + bank.shape[1] - 1, 1)).astype(np.float32)
    feats = np.asarray(lv.filter_noise(jnp.asarray(long), bank))[0]
    assert abs(np.corrcoef(feats[:, 0], feats[:, count - 1])[0, 1]) < 0.1


def test_temporal_resampling_against_numpy():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 16, 3)).astype(np.float32)
    down = np.asarray(lv.kaiser_downsample2(jnp.asarray(x)))
    taps = scipy.signal.firwin(12, 1.0, width=6.0, fs=8.0)
    ref = np.stack([np.correlate(np.pad(x[0, :, c], (5, 5)), taps, "valid")[::2] for c in range(3)], -1)
    np.testing.assert_allclose(down[0], ref, atol=1e-6)
    assert down.shape == (2, 8, 3) and taps.sum() == pytest.approx(1.0)
    up = np.asarray(layers.upsample2_fir(jnp.asarray(x), axes=(1,)))
    # linear interpolation at half-sample centres: output 2i+1 is 3/4 of x[i] and 1/4 of x[i+1]
    np.testing.assert_allclose(up[:, 1:-1:2], 0.75 * x[:, :-1] + 0.25 * x[:, 1:], atol=1e-6)
    np.testing.assert_allclose(up[:, 2::2], 0.25 * x[:, :-1] + 0.75 * x[:, 1:], atol=1e-6)
    np.testing.assert_allclose(up[:, 0], 0.75 * x[:, 0], atol=1e-6)   # zero beyond the border


def test_chunked_generation_equals_one_pass():
    gen = lv.Generator(**SMALL, padding=3)     # the least the trainer accepts for 3-frame kernels
    key = jax.random.key(1)
    noise = lv.temporal_noise(key, 0, gen.noise_length(8), gen.noise_channels)
    params = jax.jit(gen.init, static_argnums=2)(jax.random.key(0), noise, 8)["params"]

    @functools.partial(jax.jit, static_argnums=1)
    def run(first, n, k):
        noise = lv.temporal_noise(k, gen.first_noise(first), gen.noise_length(n), gen.noise_channels)
        return gen.apply({"params": params}, noise, n)
    frames = lambda first, n, k=key: np.asarray(run(first, n, k))
    one = frames(0, 24)
    chunks = np.concatenate([frames(a, 8) for a in (0, 8, 16)], axis=1)
    assert one.shape == (1, 24, 8, 16, 3) and one.std() > 0.01
    np.testing.assert_allclose(chunks, one, atol=1e-5)            # no seam at 8 or 16
    assert np.abs(frames(4, 8) - one[:, 4:12]).max() < 1e-5      # any start on the time scale
    assert np.abs(frames(0, 8, jax.random.key(2)) - one[:, :8]).mean() > 1e-3   # another noise
    with pytest.raises(ValueError, match="multiple of the time scale 4"):
        gen.apply({"params": params}, lv.temporal_noise(key, 0, gen.noise_length(6), gen.noise_channels), 6)


def test_noise_is_drawn_by_global_frame_index():
    key = jax.random.key(3)
    whole = np.asarray(lv.temporal_noise(key, -300, 900, 2))
    part = np.asarray(lv.temporal_noise(key, 17, 400, 2))
    np.testing.assert_array_equal(part, whole[:, 317:717])


def test_time_rescale_resamples_each_clip_linearly_or_pads_it():
    t = 16
    ramp = jnp.broadcast_to(jnp.arange(1, t + 1, dtype=jnp.float32)[None, :, None, None, None], (64, t, 2, 2, 1))
    out = np.asarray(training.rescale_time(jax.random.key(0), ramp))[:, :, 0, 0, 0]
    slopes = []
    for clip in out:
        live = clip[clip != 0]
        inner = np.diff(live)[1:-1]                        # the clamped ends aside
        if len(inner) > 2:
            assert np.allclose(inner, inner[0], atol=1e-4)   # one speed per clip
            slopes.append(inner[0])
        if len(live) < t:                                  # sped up: one zero-padded run
            assert np.all(np.diff(np.flatnonzero(clip)) == 1)
    slopes = np.array(slopes)
    assert slopes.min() >= 0.5 - 1e-4 and slopes.max() <= 2 + 1e-4
    assert slopes.min() < 0.8 and slopes.max() > 1.3         # both ways over 64 clips


def test_base_parameter_counts_are_the_public_models():
    cfg = config_lib.load("configs/long_video_city.py:base")
    gen, disc = training.networks(cfg)
    frames = training.generated_frames(gen, cfg.data.num_frames)
    assert frames == 160                                    # 128 + one time scale of shift
    count = lambda tree: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))
    noise = jax.ShapeDtypeStruct((1, gen.noise_length(frames), gen.noise_channels), jnp.float32)
    g = jax.eval_shape(lambda n: gen.init(jax.random.key(0), n, frames), noise)["params"]
    d = jax.eval_shape(lambda v: disc.init(jax.random.key(0), v), jax.ShapeDtypeStruct((1, 128, 36, 64, 3), jnp.float32))
    assert count(g) == 83_215_939 and count(d) == 46_424_609
    assert count(g["mapping"]) == 2 * (1024 * 1024 + 1024)
