"""What the model functions say about inputs they cannot take: a readable sentence at the call,
not an XLA shape error deep in the network, NaN frames, or uint8 values run through a network
that takes floats in [-1, 1]."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tlgen import config as config_lib
from tlgen.models import fgla, long_video_sr, stylegan_v, timescale_ae
from tlgen.models.pixels import check_pixels


def test_check_pixels_names_the_layout_the_shape_and_the_conversion():
    check_pixels(jnp.zeros((2, 3, 8, 8, 3)), "clip", "(B, 3, H, W, 3)")
    with pytest.raises(ValueError, match=r"^clip must be \(B, 3, H, W, 3\); got shape \(2, 2, 8, 8, 3\)\.$"):
        check_pixels(jnp.zeros((2, 2, 8, 8, 3)), "clip", "(B, 3, H, W, 3)")
    with pytest.raises(ValueError, match=r"got shape \(8, 8, 3\)"):
        check_pixels(jnp.zeros((8, 8, 3)), "image", "(B, H, W, 3)")
    with pytest.raises(TypeError, match=r"^image holds uint8; give floats in \[-1, 1\] "
                                        r"\(tlgen.models.pixels.to_model_range converts uint8\)\.$"):
        check_pixels(jnp.zeros((1, 8, 8, 3), jnp.uint8), "image", "(B, H, W, 3)")
    with pytest.raises(TypeError, match=r"give floats in \[0, 1\] \(divide uint8 by 255\)"):
        check_pixels(jnp.zeros((1, 3, 8, 8, 3), jnp.uint8), "clip", "(B, 3, H, W, 3)", scale="[0, 1]")
    with pytest.raises(TypeError, match=r"^flow holds int32; give floats in pixels \(cast to float32\)\.$"):
        check_pixels(jnp.zeros((1, 8, 8, 2), jnp.int32), "flow", "(B, H, W, 2)", scale="pixels")


def test_stylegan_v_refuses_times_its_motion_codes_do_not_cover_outside_jit():
    motion = stylegan_v.Motion(z_dim=4, dim=4, kernel=3, min_period=8.0, max_period=64.0)
    key = jax.random.key(0)
    codes = stylegan_v.motion_codes(key, 0, 8, 4)[None]          # 8 codes: anchors 0..3
    params = motion.init(key, codes, jnp.array([[0.0, 23.5]]))["params"]  # anchors 0..3: fine
    for t in ([[0.0, 24.0]], [[-1.0]]):                          # anchors 3..4, -1..0
        with pytest.raises(ValueError, match=r"need the motion codes of anchors .*pass `codes_for\(t_max\)`"):
            motion.apply({"params": params}, codes, jnp.array(t))
    jitted = jax.jit(lambda c, t: motion.apply({"params": params}, c, t))
    out = jitted(codes, jnp.array([[-1.0, 0.0, 23.5, 24.0]]))     # under jit: NaN where not covered
    assert [bool(jnp.all(jnp.isnan(v))) for v in out[0]] == [True, False, False, True]
    assert bool(jnp.all(jnp.isfinite(out[0, 1:3])))
    cfg = config_lib.load("configs/stylegan_v_clouds.py:tiny").model
    z, t = jnp.zeros((1, cfg.z_dim)), jnp.array([0.0, 1.0])
    with pytest.raises(ValueError, match=r"t must be \(B, F\) frame times and codes \(B, L, z_dim\); got \(2,\)"):
        jax.eval_shape(lambda: stylegan_v.generator(cfg).init(key, z, jnp.zeros((1, 30, cfg.z_dim)), t))
    frames = jnp.zeros((1, 3, *cfg.resolution, 3), jnp.uint8)
    with pytest.raises(TypeError, match="frames holds uint8"):
        jax.eval_shape(lambda: stylegan_v.discriminator(cfg, num_frames=3).init(key, frames, jnp.zeros((1, 3))))


def test_the_super_resolution_generator_needs_its_context_and_fgla_its_masks_and_sizes():
    cfg = config_lib.load("configs/long_video_sr_city.py:tiny").model
    g = long_video_sr.generator(cfg)
    h, w = cfg.size[0] // cfg.scale, cfg.size[1] // cfg.scale
    short = jnp.zeros((1, 2 * g.context, h, w, 3))
    with pytest.raises(ValueError, match=f"lowres has {2 * g.context} frames; .* at least {2 * g.context + 1}"):
        jax.eval_shape(lambda x: g.init(jax.random.key(0), x, jnp.zeros((1, cfg.z_dim))), short)
    encoder = fgla.MotionEncoder(widths=(8, 16))
    flow = jnp.zeros((2, 16, 16, 2))
    with pytest.raises(ValueError, match=r"masks must be \(B, R, H, W\) for flow \(2, 16, 16, 2\); got shape \(2, 16, 16\)"):
        jax.eval_shape(lambda: encoder.init(jax.random.key(0), flow, jnp.zeros((2, 16, 16))))
    generator = fgla.MotionGenerator(widths=(8, 16, 32))
    with pytest.raises(ValueError, match=r"multiples of 4 .* got \(18, 18\)"):
        jax.eval_shape(lambda: generator.init(jax.random.key(0), jnp.zeros((1, 18, 18, 3)), jnp.zeros((1, 18, 18, 2))))


def test_timescale_encode_names_the_frames_layout():
    cfg = config_lib.load("configs/timescale_ae_synthetic.py:tiny").model
    params = jax.eval_shape(lambda: timescale_ae.init(jax.random.key(0), cfg))
    for shape in ((1, 2, 64, 64, 3), (1, 32, 32, 3), (1, 64, 32, 3)):
        with pytest.raises(ValueError, match=r"frames must be \(B, 64, 64, 3\) \(image_size 64x64\); got shape "
                                             + re.escape(str(shape))):
            jax.eval_shape(lambda p: timescale_ae.encode(p, jnp.zeros(shape), cfg=cfg), params)
    w = jax.eval_shape(lambda p: timescale_ae.encode(p, jnp.zeros((2, 64, 64, 3)), cfg=cfg), params)
    for shape in ((2,) + w.shape[2:], w.shape[:1] + (w.shape[1] - 1,) + w.shape[2:],
                  w.shape[:2] + (w.shape[2] // 2, w.shape[3] // 2) + w.shape[4:]):
        with pytest.raises(ValueError, match=r"w must be \(B, .*as encode makes it; got shape"):
            jax.eval_shape(lambda p: timescale_ae.decode(p, jnp.zeros(shape), cfg=cfg), params)
    with pytest.raises(TypeError, match="w holds uint8"):
        jax.eval_shape(lambda p: timescale_ae.decode(p, jnp.zeros(w.shape, jnp.uint8), cfg=cfg), params)


def test_ssim_and_lpips_refuse_what_they_cannot_measure():
    from tlgen.metrics.image import ssim
    from tlgen.models.lpips import LPIPS
    with pytest.raises(ValueError, match="smaller than the 11-px SSIM window"):
        ssim(jnp.zeros((1, 8, 8, 3)), jnp.zeros((1, 8, 8, 3)))
    with pytest.raises(ValueError, match=r"SSIM compares images of one shape"):
        ssim(jnp.zeros((2, 16, 16, 3)), jnp.zeros((1, 16, 16, 3)))
    x = jnp.zeros((1, 16, 16, 3))
    with pytest.raises(ValueError, match="16x16 px leave LPIPS-alex's deepest features empty"):
        jax.eval_shape(lambda: LPIPS("alex").init(jax.random.key(0), x, x))
    assert np.isfinite(float(ssim(jnp.ones((1, 16, 16, 3)), jnp.ones((1, 16, 16, 3)))[0]))


def test_the_pretrained_networks_refuse_uint8_and_sizes_they_cannot_pool():
    from tlgen.models import i3d, inception, lpips, vgg19
    key = jax.random.key(0)
    u8 = jnp.zeros((1, 16, 16, 3), jnp.uint8)
    for module, args, message in [
            (vgg19.VGG19(), (u8,), r"images holds uint8; give floats in \[0, 1\] \(divide uint8 by 255\)"),
            (inception.FIDInception(75), (u8,), "images holds uint8"),
            (lpips.LPIPS("alex"), (jnp.zeros((1, 64, 64, 3)), jnp.zeros((1, 64, 64, 3), jnp.uint8)), "b holds uint8"),
            (i3d.I3D(), (jnp.zeros((1, 8, 16, 16, 3), jnp.uint8),), r"clips holds uint8; give floats in \[-1, 1\]")]:
        with pytest.raises(TypeError, match=message):
            jax.eval_shape(lambda: module.init(key, *args))
    with pytest.raises(ValueError, match=r"images of 20x16 px: Haar pooling up to relu4_1 halves them 3 times, "
                                         r"so H and W must be multiples of 8\."):
        jax.eval_shape(lambda: vgg19.VGG19(pool="haar").init(key, jnp.zeros((1, 20, 16, 3))))
    shallow = vgg19.VGG19(pool="haar", last="relu2_1")            # one pooling: even sizes suffice
    assert jax.eval_shape(lambda: shallow.init(key, jnp.zeros((1, 10, 6, 3))))


def test_the_discriminators_name_the_clips_they_take():
    from tlgen.models import long_video
    from tlgen.models.layers import minibatch_stddev
    key = jax.random.key(0)
    cfg = config_lib.load("configs/stylegan_v_clouds.py:tiny").model
    r = cfg.resolution[0]                                          # (32, 32)
    d = stylegan_v.discriminator(cfg, num_frames=3)
    for shape in ((1, 3, 2 * r, 2 * r, 3), (1, 2, r, r, 3)):
        with pytest.raises(ValueError, match=rf"^frames must be \(B, 3, {r}, {r}, 3\); got shape "):
            jax.eval_shape(lambda: d.init(key, jnp.zeros(shape), jnp.zeros(shape[:2])))
    cfg.resolution = (16, 28)
    wide = stylegan_v.discriminator(cfg, num_frames=3)                # transposed frames: refused
    with pytest.raises(ValueError, match=r"^frames must be \(B, 3, 16, 28, 3\); got shape \(1, 3, 28, 16, 3\)"):
        jax.eval_shape(lambda: wide.init(key, jnp.zeros((1, 3, 28, 16, 3)), jnp.zeros((1, 3))))
    small = long_video.Discriminator(frames=4, max_edge=16, channels=(8,), head_channels=8, head_convs=1)
    with pytest.raises(ValueError, match=r"frames of 16x32 px: the discriminator takes up to 16 px a side"):
        jax.eval_shape(lambda: small.init(key, jnp.zeros((1, 4, 16, 32, 3))))
    with pytest.raises(ValueError, match="a batch of 6 does not split into groups of 4"):
        minibatch_stddev(jnp.zeros((6, 4, 4, 8)), 4)
    np.testing.assert_allclose(minibatch_stddev(jnp.zeros((3, 4, 4, 8)), 4)[..., -1], np.sqrt(1e-8), rtol=1e-5)
