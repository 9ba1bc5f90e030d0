"""StyleGAN-V networks and losses: modulated conv, resampling, positional embedding, chunked
generation, R1, augmentation, EMA ramp-up, parameter counts, motion SWD."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tlgen import config as config_lib
from tlgen.families.stylegan_v import inference, training
from tlgen.losses import adversarial
from tlgen.losses.diffaugment import augment_clips
from tlgen.metrics.distribution import motion_swd, swd
from tlgen.models import layers
from tlgen.models import stylegan_v as sv
from tlgen.train import gan


def _count(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_base_parameter_counts_match_the_public_model():
    """The public StyleGAN-V at 256² (configs auto, fmaps 0.5, 2 mapping layers, 1024-frame
    time table): G 32,105,941 and D 25,333,568 parameters, as the public networks count them
    (bench/NOTES.md); StyleGAN2's 8-layer mapping adds six 512x512 layers."""
    def counts(overrides=()):
        gen, disc = training.networks(config_lib.load("configs/stylegan_v_clouds.py:base", overrides))
        codes = jnp.zeros((1, gen.codes_for(0.0), 512))
        g = jax.eval_shape(lambda: gen.init(jax.random.key(0), jnp.zeros((1, 512)), codes, t))
        d = jax.eval_shape(lambda: disc.init(jax.random.key(0), jnp.zeros((1, 3, 256, 256, 3)), t))
        return gen, g, _count(g["params"]), _count(d["params"])
    t = jnp.zeros((1, 3))
    gen, g, g_count, d_count = counts()
    assert (g_count, d_count) == (32_105_941, 25_333_568)
    assert counts(["model.mapping_layers=8"])[2] == g_count + 6 * (512 * 512 + 512)
    frames = jax.eval_shape(lambda p: gen.apply(p, jnp.zeros((2, 512)), jnp.zeros((2, 30, 512)),
                                                jnp.zeros((2, 5))), g)
    assert frames.shape == (2, 5, 256, 256, 3)


def _np_conv(x, w, pad):
    """NumPy correlation of (N, H, W, Cin) with per-sample kernels (N, k, k, Cin, Cout)."""
    k = w.shape[1]
    xp = np.pad(x, ((0, 0), pad, pad, (0, 0)))
    h, wd = xp.shape[1] - k + 1, xp.shape[2] - k + 1
    out = np.zeros((x.shape[0], h, wd, w.shape[-1]))
    for dy in range(k):
        for dx in range(k):
            out += np.einsum("nhwc,nco->nhwo", xp[:, dy:dy + h, dx:dx + wd], w[:, dy, dx])
    return out


def _np_blur(x, pad, gain=1.0):
    f = np.outer(layers.FIR, layers.FIR) * gain
    c = x.shape[-1]
    kernel = np.broadcast_to(np.eye(c)[None, None] * f[..., None, None], (4, 4, c, c))
    return _np_conv(x, np.broadcast_to(kernel, (x.shape[0],) + kernel.shape), pad)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("up", [False, True])
def test_modulated_conv_against_numpy(fused, up):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 5, 3))
    kernel = rng.normal(size=(3, 3, 3, 4))
    styles = rng.normal(size=(2, 3))
    w = kernel[None] * styles[:, None, None, :, None]
    w = w / np.sqrt(np.sum(w ** 2, axis=(1, 2, 3), keepdims=True) + 1e-8)      # demodulated
    if up:   # StyleGAN2: zeros inserted, the whole transposed conv (11 x 11), the gain-4 low-pass
        dilated = np.zeros((2, 9, 9, 3))
        dilated[:, ::2, ::2] = x
        whole = _np_conv(dilated, w, (2, 2))
        assert whole.shape[1:3] == (11, 11)
        want = _np_blur(whole, (1, 1), gain=4.0)
    else:
        want = _np_conv(x, w, (1, 1))
    got = layers.modulated_conv(jnp.asarray(x, jnp.float32), jnp.asarray(kernel, jnp.float32),
                                jnp.asarray(styles, jnp.float32), up=up, fused=fused)
    assert got.shape == want.shape
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)


def test_demodulation_gives_unit_output_std_for_unit_input():
    k1, k2, k3 = jax.random.split(jax.random.key(1), 3)
    x = jax.random.normal(k1, (2, 48, 48, 64))
    kernel = jax.random.normal(k2, (3, 3, 64, 32))
    styles = jax.random.normal(k3, (2, 64)) * 3 + 1       # far from unit scale
    y = layers.modulated_conv(x, kernel, styles)
    inner = np.asarray(y[:, 1:-1, 1:-1])                  # away from the zero padding
    assert abs(inner.std() - 1.0) < 0.03
    raw = layers.modulated_conv(x, kernel, styles, demodulate=False)
    assert float(raw.std()) > 5.0


def test_fir_resampling_and_downsampling_conv_against_numpy():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 6, 6, 2))
    up = np.zeros((1, 12, 12, 2))
    up[:, ::2, ::2] = x
    np.testing.assert_allclose(np.asarray(layers.upsample2_fir(jnp.asarray(x, jnp.float32))),
                               _np_blur(up, (2, 1), gain=4.0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(layers.downsample2(jnp.asarray(x, jnp.float32))),
                               _np_blur(x, (1, 1))[:, ::2, ::2], rtol=1e-5, atol=1e-5)
    conv = layers.EqualizedConv(3, 3, gain=1.0, down=True)
    params = jax.jit(conv.init)(jax.random.key(0), jnp.zeros((1, 6, 6, 2)))
    kernel = np.asarray(params["params"]["kernel"]) / np.sqrt(9 * 2)
    want = _np_conv(_np_blur(x, (2, 2)), kernel[None], (0, 0))[:, ::2, ::2]
    np.testing.assert_allclose(np.asarray(jax.jit(conv.apply)(params, jnp.asarray(x, jnp.float32))), want,
                               rtol=1e-4, atol=1e-5)


TINY = dict(resolution=16, z_dim=16, w_dim=16, channel_base=256, channel_max=32, time_dim=8,
            min_period=4.0, max_period=64.0)


def _np_trajectory(params, codes):
    """The motion conv1d stack in NumPy: anchor codes u (L - 20, C)."""
    x = np.asarray(codes, np.float64)
    for i in range(2):
        w, b = np.asarray(params[f"conv{i}_kernel"]), np.asarray(params[f"conv{i}_bias"])
        k, cin, _ = w.shape
        w = w * 0.01 / np.sqrt(cin * k)
        y = sum(x[j:len(x) - k + 1 + j] @ w[j] for j in range(k)) + b * 0.01
        x = np.where(y > 0, y, 0.2 * y)
    return x


def test_positional_embedding_is_continuous_and_equals_the_anchor_map_at_anchors():
    motion = sv.Motion(z_dim=16, dim=8, min_period=4.0, max_period=64.0)
    codes = jax.random.normal(jax.random.key(3), (1, 40, 16))
    t = jnp.arange(0.0, 48.0, 0.01)[None]
    params = jax.jit(motion.init)(jax.random.key(4), codes, t)["params"]
    apply = jax.jit(motion.apply)
    v = np.asarray(apply({"params": params}, codes, t))[0]
    step = np.abs(np.diff(v, axis=0)).max()
    assert step < 0.05 * np.abs(v).max()                  # no jump anywhere, anchors included
    anchors = jnp.arange(0.0, 48.0, 4.0)[None]
    at = np.asarray(apply({"params": params}, codes, anchors))[0]
    u = _np_trajectory(params, codes[0])[:12]
    np.testing.assert_allclose(at, u @ np.asarray(params["aligners"]["kernel"]) / np.sqrt(16),
                               rtol=1e-4, atol=1e-5)
    before = np.asarray(apply({"params": params}, codes, anchors[:, 1:] - 1e-4))[0]
    np.testing.assert_allclose(before, at[1:], atol=1e-3)   # the left limit


@pytest.fixture(scope="module")
def tiny_trained():
    cfg = config_lib.load("configs/stylegan_v_clouds.py:tiny", [f"model.{k}={v}" for k, v in TINY.items()]
                          + ["model.concat_res=8"])
    gen = sv.generator(cfg.model)
    t = jnp.zeros((1, 3))
    params = jax.jit(gen.init)(jax.random.key(5), jnp.zeros((1, 16)), jnp.zeros((1, gen.codes_for(0.0), 16)), t)
    return types.SimpleNamespace(config=cfg, dtype=jnp.float32, params={"g": params["params"]})


def test_chunk_size_number_of_videos_and_time_scale_change_no_pixel(tiny_trained):
    gen = lambda seed=7, frames=40, num=2, **kw: np.concatenate(
        list(inference.generate(tiny_trained, frames, num=num, seed=seed, **kw)), axis=1)
    whole = gen(chunk=40)
    assert whole.shape == (2, 40, 16, 16, 3)
    for chunk in (1, 3, 7, 16):
        np.testing.assert_array_equal(gen(chunk=chunk), whole)
    np.testing.assert_array_equal(gen(chunk=1, num=1), whole[:1])     # video 0 alone, frame by frame
    assert not np.array_equal(whole[0], whole[1])          # two videos, two contents/motions
    assert not np.array_equal(gen(chunk=4, seed=8), whole)   # another seed, other videos
    # continuous time: at a quarter of the speed, output frame 4i is model frame i
    slow = gen(frames=37, chunk=9, time_scale=0.25)
    np.testing.assert_array_equal(slow[:, ::4], whole[:, :10])


def test_r1_penalty_against_finite_differences():
    disc = sv.Discriminator(resolution=16, channel_base=128, channel_max=8, concat_res=8,
                            max_frames=16, time_embed_dim=4)
    x = jax.random.uniform(jax.random.key(6), (1, 3, 16, 16, 3), minval=-1, maxval=1)
    t = jnp.array([[0.0, 1.0, 3.0]])
    params = jax.jit(disc.init)(jax.random.key(7), x, t)["params"]
    critic = lambda v: disc.apply({"params": params}, v, t)
    r1 = float(jax.jit(lambda v: adversarial.r1_penalty(critic, v))(x))
    grad = np.asarray(jax.jit(jax.grad(lambda v: critic(v)[0]))(x), np.float64).ravel()
    assert r1 > 0 and r1 == pytest.approx(float(np.sum(grad ** 2)), rel=1e-5)
    # the gradient itself against central differences: 64 coordinates and 16 random directions
    rng = np.random.default_rng(0)
    coords = np.eye(x.size, dtype=np.float32)[rng.choice(x.size, 64, replace=False)]
    mixed = rng.normal(size=(16, x.size)).astype(np.float32)
    directions = np.concatenate([coords, mixed / np.linalg.norm(mixed, axis=1, keepdims=True)])
    eps = 1e-2
    f = jax.jit(jax.vmap(lambda d: critic(x + eps * d.reshape(x.shape))[0] - critic(x - eps * d.reshape(x.shape))[0]))
    fd = np.asarray(f(jnp.asarray(directions)), np.float64) / (2 * eps)
    ref = directions @ grad
    assert np.linalg.norm(fd - ref) < 0.05 * np.linalg.norm(ref)          # float32 differences, lrelu kinks


def test_augmentation_is_identical_across_a_clips_frames():
    clips = jax.random.uniform(jax.random.key(8), (4, 3, 16, 16, 3), minval=-1, maxval=1)
    key = jax.random.key(9)
    augment = jax.jit(augment_clips, static_argnames=("p", "ops"))
    out = augment(key, clips)
    moved = augment(key, clips, ops=("translation", "cutout"))
    for f in range(3):      # one frame alone is moved and cut exactly as inside its clip
        np.testing.assert_allclose(np.asarray(augment(key, clips[:, f:f + 1], ops=("translation", "cutout")))[:, 0],
                                   np.asarray(moved[:, f]), rtol=1e-6, atol=1e-6)
    # colour is one affine map per clip: a frame 0.1 brighter stays uniformly brighter, by 0.1
    # times the clip's own contrast factor in [0.5, 1.5] (centring each frame on its own mean
    # would keep it exactly 0.1)
    brighter = jnp.concatenate([clips[:, :1], clips[:, :1] + 0.1], axis=1)
    colour = np.asarray(augment(key, brighter, ops=("color",)), np.float64)
    step = colour[:, 1] - colour[:, 0]
    np.testing.assert_allclose(step, np.broadcast_to(step[:, :1, :1, :1], step.shape), atol=1e-5)
    factor = step[:, 0, 0, 0] / 0.1
    assert np.all((factor >= 0.5 - 1e-4) & (factor <= 1.5 + 1e-4)) and np.ptp(factor) > 0.1
    same = jnp.broadcast_to(clips[:, :1], clips.shape)
    aug_same = np.asarray(augment(key, same))
    np.testing.assert_array_equal(aug_same[:, 1], aug_same[:, 0])
    assert not np.allclose(np.asarray(out), np.asarray(clips))
    np.testing.assert_array_equal(np.asarray(augment(key, clips, p=0.0)), np.asarray(clips))


def test_translation_shift_bounds_each_axis():
    clips = np.zeros((64, 2, 24, 24, 3), np.float32)
    clips[:, :, 12, 12] = 1.0                 # one lit pixel, the same in both frames
    out = np.asarray(augment_clips(jax.random.key(3), jnp.asarray(clips), ops=("translation",), shift=(2, 6)))
    offsets = np.array([np.argwhere(o[0, ..., 0] == 1.0)[0] - 12 for o in out])
    np.testing.assert_array_equal(out[:, 0], out[:, 1])
    assert np.abs(offsets[:, 0]).max() == 2 and np.abs(offsets[:, 1]).max() == 6
    default = np.asarray(augment_clips(jax.random.key(3), jnp.asarray(clips), ops=("translation",)))
    assert max(np.abs(np.argwhere(o[0, ..., 0] == 1.0)[0] - 12).max() for o in default) == 3   # 1/8 of 24


def test_activations_clamp_at_256_in_reduced_precision_only():
    x = jax.random.normal(jax.random.key(4), (1, 4, 4, 8))
    w = jax.random.normal(jax.random.key(5), (1, 16))
    peaks = {}
    for dtype in (jnp.float32, jnp.bfloat16):
        layer = sv.SynthesisLayer(8, dtype=dtype)
        params = jax.jit(layer.init)(jax.random.key(6), x, w)
        params = jax.tree_util.tree_map_with_path(      # a bias of 1000: lrelu gives ~1414
            lambda path, v: v + 1000.0 if path[-1].key == "bias" and v.ndim == 1 and v.shape[0] == 8 else v, params)
        peaks[dtype] = float(jnp.max(jax.jit(layer.apply)(params, x, w)))
    assert peaks[jnp.bfloat16] == 256.0 and peaks[jnp.float32] > 1000.0
    big = jnp.full((1, 8, 8, 4), 1000.0)
    conv = lambda n, k, name, **kw: (lambda v: jnp.mean(v, -1, keepdims=True).repeat(n, -1)[:, ::2, ::2]
                                     if kw.get("down") else jnp.mean(v, -1, keepdims=True).repeat(n, -1))
    out = sv.residual_down_block(conv, big, "b", 4, 4, bound=256.0)   # conv1 at 256, the skip not
    np.testing.assert_allclose(np.asarray(out), (1000.0 + 256.0) * np.sqrt(0.5), rtol=1e-6)


def test_ema_rampup_values():
    beta = lambda step, rampup=0.05: float(gan.ema_beta(step, 8, 2.5, rampup))
    assert beta(0) == 0.0                                      # the first step copies G
    assert beta(10) == pytest.approx(0.5 ** (8 / 4.0))         # min(2500, 10 * 8 * 0.05) = 4 images
    assert beta(10_000) == pytest.approx(0.5 ** (8 / 2500.0))  # ramp-up over: ema_kimg
    assert beta(10, rampup=0.0) == pytest.approx(0.5 ** (8 / 2500.0))


def test_lazy_regularization_rescales_the_optimizer():
    cfg = config_lib.load("configs/stylegan_v_clouds.py:tiny")
    d = gan.lazy_optimizer(cfg.optim.d, 16)
    c = 16 / 17
    assert d.lr == pytest.approx(0.0025 * c) and d.b1 == 0.0 and d.b2 == pytest.approx(0.99 ** c)
    assert training.r1_gamma(cfg) == pytest.approx(0.0002 * 32 ** 2 / 8)


def test_motion_swd_is_the_swd_of_frame_differences_per_gap_band():
    rng = np.random.default_rng(10)
    still = np.repeat(rng.uniform(size=(24, 1, 32, 32, 3)), 3, axis=1)
    moving = np.stack([np.roll(still[:, 0], 3 * j, axis=2) for j in range(3)], axis=1)
    d = lambda x: ((x[:, 1:] - x[:, :1] + 1) / 2).reshape(-1, 32, 32, 3)
    one = motion_swd(moving, still)
    assert set(one) == {"motion_swd"}
    assert one["motion_swd"] == pytest.approx(swd(d(moving), d(still), scale_by_real=True)["swd"])
    assert one["motion_swd"] > motion_swd(moving, np.roll(moving, 5, axis=0))["motion_swd"]
    # the real differences' scale counts: half the motion is further away than the same motion
    half = still + (moving - still) * 0.5
    assert motion_swd(moving, half)["motion_swd"] > 2 * motion_swd(moving, np.roll(moving, 5, axis=0))["motion_swd"]
    # per gap band: frames 1 and 2 of each clip are 1 and 20 frames after frame 0
    times = np.tile([0.0, 1.0, 20.0], (24, 1))
    bands = motion_swd(moving, half, times)
    assert set(bands) == {"motion_swd", "motion_swd_0_4", "motion_swd_16_inf"}
    short = swd(d(moving[:, :2]), d(half[:, :2]), scale_by_real=True)["swd"]
    assert bands["motion_swd_0_4"] == pytest.approx(short)
    assert bands["motion_swd"] == pytest.approx((bands["motion_swd_0_4"] + bands["motion_swd_16_inf"]) / 2)


def test_ada_probability_moves_towards_the_target():
    from tlgen.losses.diffaugment import ada_update
    confident = jnp.array([1.0, 2.0, 3.0, -1.0])          # E[sign] = 0.5 < 0.6: less augmentation
    overfit = jnp.array([1.0, 2.0, 3.0, 4.0])             # 1.0 > 0.6: more
    assert float(ada_update(jnp.float32(0.5), overfit, images=8, speed_kimg=0.08)) == pytest.approx(0.6)
    assert float(ada_update(jnp.float32(0.5), confident, images=8, speed_kimg=0.08)) == pytest.approx(0.4)
    assert float(ada_update(jnp.float32(0.0), confident, images=8, speed_kimg=0.08)) == 0.0   # clipped
    assert float(ada_update(jnp.float32(0.45), overfit, images=8, speed_kimg=0.08, max_p=0.5)) == pytest.approx(0.5)
