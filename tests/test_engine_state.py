"""Train state helpers: optimizers, schedules, gradient accumulation, EMA, step helpers."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from tlgen.errors import UserError
from tlgen.config import compute_dtype
from tlgen.train.state import (TrainState, all_finite, critic_steps, ema_update,
                               make_optimizer, make_schedule)


def optim(**kw):
    base = dict(name="adam", lr=0.1, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0,
                schedule="constant", warmup_steps=0, grad_clip=0.0)
    return ml_collections.ConfigDict(dict(base, **kw))


def test_schedules_by_hand():
    lr = make_schedule(optim(schedule="cosine", warmup_steps=10), total_steps=110)
    assert float(lr(0)) == 0.0
    assert float(lr(5)) == pytest.approx(0.05)
    assert float(lr(10)) == pytest.approx(0.1)
    assert float(lr(60)) == pytest.approx(0.05, abs=1e-6)   # half way down the cosine
    assert float(lr(110)) == pytest.approx(0.0, abs=1e-7)
    linear = make_schedule(optim(schedule="linear"), total_steps=100)
    assert float(linear(25)) == pytest.approx(0.075)
    assert float(make_schedule(optim())(1000)) == pytest.approx(0.1)
    held = make_schedule(optim(schedule="linear", hold=0.5, warmup_steps=20), total_steps=220)
    assert [float(held(s)) for s in (10, 60, 120)] == pytest.approx([0.05, 0.1, 0.1])   # warm-up, then 100 at 0.1
    assert float(held(170)) == pytest.approx(0.05) and float(held(220)) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(UserError, match="schedule"):
        make_schedule(optim(schedule="step"))
    with pytest.raises(UserError, match="total_steps"):
        make_schedule(optim(schedule="cosine"))
    with pytest.raises(UserError, match=r"hold is 1.0; use a fraction in \[0, 1\)"):
        make_schedule(optim(schedule="linear", hold=1.0), total_steps=100)


def test_adam_matches_optax_and_bad_names_are_user_errors():
    params = {"w": jnp.array([1.0, -2.0])}
    grads = {"w": jnp.array([0.5, 0.25])}
    tx = make_optimizer(optim(b2=0.99))
    ref = optax.adam(0.1, b1=0.9, b2=0.99)
    upd, _ = tx.update(grads, tx.init(params), params)
    ref_upd, _ = ref.update(grads, ref.init(params), params)
    np.testing.assert_allclose(upd["w"], ref_upd["w"], rtol=1e-6)
    decayed = make_optimizer(optim(name="adamw", weight_decay=0.5, b2=0.99))
    upd_w, _ = decayed.update(grads, decayed.init(params), params)
    np.testing.assert_allclose(upd_w["w"], ref_upd["w"] - 0.1 * 0.5 * params["w"], atol=1e-6)
    for bad in (optim(name="lamb"), optim(weight_decay=0.1)):
        with pytest.raises(UserError):
            make_optimizer(bad)


def test_grad_clip_limits_global_norm():
    # eps = 1 makes Adam's first update -lr·g/(|g| + 1): it depends on the gradient's scale.
    params, g = {"w": jnp.zeros(2)}, {"w": jnp.array([3.0, 4.0])}   # global norm 5
    tx = make_optimizer(optim(grad_clip=1.0, eps=1.0))
    upd, _ = tx.update(g, tx.init(params), params)
    np.testing.assert_allclose(upd["w"], [-0.1 * 0.6 / 1.6, -0.1 * 0.8 / 1.8], rtol=1e-5)


def test_grad_accum_averages_micro_batches():
    params = {"w": jnp.array([1.0, 2.0])}
    g1, g2 = {"w": jnp.array([1.0, 0.0])}, {"w": jnp.array([0.0, 3.0])}
    tx = make_optimizer(optim(), grad_accum=2)
    state = tx.init(params)
    upd1, state = tx.update(g1, state, params)
    np.testing.assert_array_equal(upd1["w"], [0.0, 0.0])          # accumulating only
    upd2, state = tx.update(g2, state, params)
    ref = optax.adam(0.1)
    ref_upd, _ = ref.update({"w": jnp.array([0.5, 1.5])}, ref.init(params), params)
    np.testing.assert_allclose(upd2["w"], ref_upd["w"], rtol=1e-6)
    with pytest.raises(UserError, match="grad_accum"):
        make_optimizer(optim(), grad_accum=0)
    with pytest.raises(UserError, match=r"^config.total_steps 1 with config.train.grad_accum 3 makes no "
                                        r"optimizer update; train at least grad_accum steps\.$"):
        make_optimizer(optim(schedule="linear"), total_steps=1, grad_accum=3)


def test_the_gan_families_refuse_gradient_accumulation():
    from tlgen import config as config_lib
    from tlgen import family as family_lib
    for name in ("stylegan_v", "time_flies"):
        config = config_lib.load(f"configs/{name}_{'clouds' if name == 'stylegan_v' else 'city'}.py:tiny",
                                 ["train.grad_accum=2"])
        with pytest.raises(UserError, match=rf"^config.train.grad_accum is 2, but {name} alternates "):
            family_lib.of(config).training(config)


def test_train_state_two_networks_and_ema():
    params = {"g": {"w": jnp.ones(3)}, "d": {"w": jnp.zeros(2)}}
    sgd = optax.sgd(0.5)
    state = TrainState.create(params, {"g": sgd, "d": sgd}, ema=("g",))
    assert int(state.step) == 0 and set(state.opt_state) == {"g", "d"} and set(state.ema) == {"g"}
    state = state.apply_gradients("d", {"w": jnp.array([2.0, -2.0])}, sgd)
    np.testing.assert_allclose(state.params["d"]["w"], [-1.0, 1.0])
    np.testing.assert_allclose(state.params["g"]["w"], 1.0)           # untouched
    state = state.apply_gradients("g", {"w": jnp.full(3, 2.0)}, sgd).update_ema(0.9)
    np.testing.assert_allclose(state.ema["g"]["w"], 0.9 * 1.0 + 0.1 * 0.0)
    np.testing.assert_allclose(ema_update({"a": jnp.array(4.0)}, {"a": jnp.array(2.0)}, 0.75)["a"], 3.5)
    with pytest.raises(ValueError, match="unknown networks"):
        TrainState.create(params, {"x": sgd})


def test_critic_steps_under_jit():
    def body(carry, i, key):
        count, draws = carry
        return count + 1, draws.at[i].set(jax.random.uniform(key))
    count, draws = jax.jit(lambda r: critic_steps(3, body, (0, jnp.zeros(3)), r))(jax.random.PRNGKey(0))
    assert int(count) == 3
    assert len(set(np.asarray(draws).tolist())) == 3                  # a new key per critic step
    assert float(draws[1]) == float(jax.random.uniform(jax.random.fold_in(jax.random.PRNGKey(0), 1)))


def test_compute_dtype_and_all_finite():
    cfg = ml_collections.ConfigDict({"dtype": "bfloat16"})
    assert compute_dtype(cfg) == jnp.bfloat16
    cfg.dtype = "float16"
    with pytest.raises(UserError, match="dtype"):
        compute_dtype(cfg)
    assert bool(all_finite({"a": jnp.ones(2), "n": jnp.array(3)}))
    assert not bool(all_finite({"a": jnp.array([1.0, jnp.inf]), "n": jnp.array(3)}))
    assert bool(all_finite({"n": jnp.array(3)}))


def test_sizes_no_network_can_have_are_one_sentence(tmp_path):
    from tlgen import config as config_lib
    from tlgen import family as family_lib
    from tlgen.data.pipelines import sparse_frames_dataset
    for name, override, says in (
            ("dtvnet_clouds", "model.motion_dim=0", "config.model.motion_dim is 0; use 1 or more."),
            ("dtvnet_clouds", "data.num_frames=0", "config.data.num_frames is 0; use 2 or more."),
            ("stylegan_v_clouds", "model.z_dim=0", "config.model.z_dim is 0; use 1 or more."),
            ("stylegan_v_clouds", "model.max_period=4", "config.model.max_period 4 must be at least "
             "config.model.min_period 8 (both positive, in frames)."),
            ("stylegan_v_clouds", "model.resolution=48", "config.model.resolution is 48; its height must be a "
             "power of two from 16 and its width a multiple of a quarter of the height (the nearest such size "
             "is 64)."),
            ("stylegan_v_clouds", "model.resolution=(32, 36)", "config.model.resolution is 32x36; its height must "
             "be a power of two from 16 and its width a multiple of a quarter of the height (the nearest such "
             "size is 32x40)."),
            ("stylegan_v_clouds", "model.resolution=(16, 30)", "config.model.resolution is 16x30; it must be a "
             "multiple of 4: the discriminator halves the frames to a map 4 high (the nearest such size is "
             "16x32)."),
            ("stylegan_v_clouds", "model.resolution=(144, 256)", "config.model.resolution is 144x256; its height "
             "must be a power of two from 16 and its width a multiple of a quarter of the height (the nearest "
             "such size is 128x256)."),
            ("stylegan_v_clouds", "model.concat_res=4", "config.model.concat_res 4 must be a power of two from "
             "8 to 16 (half the height of config.model.resolution), where D joins the frames."),
            ("long_video_city", "data.stride=0", "config.data.stride is 0; use 1 or more."),
            ("long_video_city", "model.d_channels=(32, 0, 64, 128)",
             "config.model.d_channels is (32, 0, 64, 128); use 1 or more in each entry."),
            ("long_video_city", "model.min_period=0", "config.model.min_period is 0.0; use 1 or more."),
            ("long_video_city", "model.padding=2", "config.model.padding 2 is below 3, the frames a side that a "
             "temporal block's two 3-frame convolutions and its upsampling corrupt: chunked generation would "
             "differ from one pass; raise it."),
            ("stylegan_v_clouds", "model.max_frames=16", "config.data.spans reach 32 frames, but D embeds time "
             "differences below config.model.max_frames 16; raise it or shorten the spans."),
            ("long_video_sr_city", "model.channel_max=0", "config.model.channel_max is 0; use 1 or more."),
            ("time_flies_city", "model.num_classes=0", "config.model.num_classes is 0; use 1 or more."),
            ("time_flies_city", "data.image_size=0", "config.data.image_size is 0; use 8 or more pixels a side."),
            ("time_flies_city", "data.image_size=(64, 36)", "config.data.image_size is 64x36; it must be a "
             "multiple of 8: Time Flies' encoder halves it in three Haar poolings (the nearest such size is "
             "64x32)."),
            ("dtvnet_clouds", "data.image_size=(16, 16, 3)", "config.data.image_size is (16, 16, 3): a frame size "
             "is N (square) or (height, width)."),
            ("fgla_landscape", "model.flow_divisor=0", "config.model.flow_divisor is 0.0; use a positive number."),
            ("fgla_landscape", "model.encoder_widths=()", "config.model.encoder_widths is empty; give at least one entry."),
            ("timescale_ae_synthetic", "loss.temperature=0", "config.loss.temperature is 0.0; use a positive number."),
            ("timescale_ae_synthetic", "model.image_size=60", "config.model.image_size is 60; it must be a multiple "
             "of 8: the encoder halves it once per entry of config.model.widths after the first (the nearest "
             "such size is 64)."),
            ("timescale_ae_synthetic", "model.image_size=(30, 50)", "config.model.image_size is 30x50; it must be a "
             "multiple of 8: the encoder halves it once per entry of config.model.widths after the first (the "
             "nearest such size is 32x48)."),
            ("dtvnet_clouds", "data.image_size=33", "config.data.image_size is 33; it must be a multiple of 2: "
             "DTVNet's encoder halves it (the nearest such size is 32)."),
            ("dtvnet_clouds", "data.image_size=(8, 16)", "config.data.image_size is 8x16; use 10 or more pixels "
             "a side."),
            ("fgla_landscape", "data.image_size=45", "config.data.image_size is 45; it must be a multiple of 4: "
             "the generator halves it once per entry of config.model.generator_widths after the first (the "
             "nearest such size is 44)."),
            ("stylegan_v_clouds", "train.ema_decay=0.99", "config.train.ema_decay is 0.99, but stylegan_v keeps "
             "its generator's EMA by config.ema.kimg and config.ema.rampup; keep 0."),
            ("time_flies_city", "train.ema_decay=0.5", "config.train.ema_decay is 0.5, but time_flies keeps no "
             "moving average of its networks; keep 0."),
            ("time_flies_city", "data.image_size=44", "config.data.image_size is 44; it must be a multiple of 8: "
             "Time Flies' encoder halves it in three Haar poolings (the nearest such size is 48).")):
        config = config_lib.load(f"configs/{name}.py:tiny", [override])
        with pytest.raises(UserError) as error:
            family_lib.of(config).training(config)
        assert str(error.value) == says
    with pytest.raises(UserError, match=r"sparse clips need num_frames >= 2 and every span >= num_frames - 1, "
                                        r"got 3 and \(1, 4\)"):
        sparse_frames_dataset("unused", "train", num_frames=3, spans=(1, 4), batch_size=1, seed=0)
    config = config_lib.load("configs/stylegan_v_clouds.py:tiny", ["data.batch_size=0"])
    from tlgen.train.trainer import train
    with pytest.raises(UserError, match=r"^config.data.batch_size 0 must be a positive number of samples\."):
        train(config, str(tmp_path / "w"))                    # refused before the family divides by it
    assert not (tmp_path / "w").exists()
    from tlgen.data.dataset import open_training_data
    with pytest.raises(UserError, match=r"^config.model.resolution is 0x0; give the frames' size in pixels\.$"):
        open_training_data("unused", image_size=(0, 0), size_key="config.model.resolution")
