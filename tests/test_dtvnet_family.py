"""DTVNet through the generic trainer, `evaluate` and the `tlgen animate` command."""

import os

import cv2
import jax
import numpy as np
import pytest

from tlgen import config as config_lib
from tlgen.cli.main import main
from tlgen.data.prepare import prepare
from tlgen.data.synthetic import make_scene
from tlgen.data.video_io import read_video, write_video
from tlgen.train import dtvnet as family
from tlgen.train.trainer import train

TINY = ["data.image_size=16", "data.num_frames=4", "data.batch_size=8", "total_steps=3",
        "model.base_width=4", "model.decoder_width=6", "model.motion_dim=8", "model.content_blocks=1",
        "model.motion_blocks=1", "model.mapping_layers=1", "model.style_layers=1",
        "model.encoder_width=4", "model.encoder_max_width=8", "model.disc_width=4",
        "model.disc_max_width=8", "train.log_every=1", "train.ckpt_every=1", "train.keep_checkpoints=3",
        "train.eval_every=3", "train.eval_batches=1", "train.sample_every=3"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("dtvnet")
    data = str(root / "clouds")
    prepare(["synthetic:clouds:frames=48"], data, size=(16, 16), flow=True, levels=2, val_fraction=0.25)
    config = config_lib.load("configs/dtvnet_clouds.py:tiny", TINY + [f"data.dir={data}"])
    workdir = str(root / "run")
    metrics = train(config, workdir)
    return root, workdir, metrics


def test_gan_steps_through_the_trainer_update_both_networks(run):
    _, workdir, metrics = run
    assert metrics["step"] == 3 and metrics["skipped"] == 0
    for key in ("loss", "loss_g", "loss_d", "frame_l1", "flow_l1", "gradient_penalty", "eval/psnr", "eval/ssim"):
        assert np.isfinite(metrics[key]), key
    first, last = family.load_trained(workdir, 1), family.load_trained(workdir, 3)
    for name in ("g", "d"):
        change = max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in
                     zip(jax.tree.leaves(first.state.params[name]), jax.tree.leaves(last.state.params[name])))
        assert change > 0, name
    stats = [np.asarray(x) for x in jax.tree.leaves(first.state.extra)], jax.tree.leaves(last.state.extra)
    assert any(not np.allclose(a, b) for a, b in zip(*stats))   # BatchNorm statistics move
    assert sorted(os.listdir(os.path.join(workdir, "samples")))   # sample videos were written


def test_evaluate_reports_reconstruction_and_motion_metrics(run):
    _, workdir, _ = run
    config = config_lib.read(os.path.join(workdir, "config.json"))
    report = family.make_family(config).evaluate(workdir, num_clips=2)
    assert report["step"] == 3 and report["num_clips"] == 2
    for key in ("psnr", "ssim", "flow_mse", "e_tmp", "e_tmp_real"):
        assert np.isfinite(report[key]), key
    assert -1 <= report["ssim"] <= 1 and report["flow_mse"] >= 0 and report["e_tmp_real"] > 0


def test_animate_command_on_a_png(run, capsys):
    root, workdir, _ = run
    image = str(root / "still.png")
    cv2.imwrite(image, np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8))
    outs = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        out, npz = str(root / f"{name}.mp4"), str(root / f"{name}.npz")
        assert main(["animate", "--workdir", workdir, "--image", image, "--out", out,
                     "--seed", str(seed), "--frames", "6", "--fps", "8", "--npz", npz]) == 0
        outs.append(np.load(npz))
    assert "input 30x20 resized and center-cropped to 16x16" in capsys.readouterr().out
    frames, fps = read_video(str(root / "a.mp4"))
    assert frames.shape == (6, 16, 16, 3) and fps == 8
    assert outs[0]["frames"].shape == (6, 16, 16, 3) and outs[0]["motion"].shape == (8,)
    np.testing.assert_array_equal(outs[0]["frames"], outs[1]["frames"])
    assert not np.array_equal(outs[0]["frames"], outs[2]["frames"])


def test_animate_command_with_a_reference_video_and_bad_input(run, capsys):
    root, workdir, _ = run
    image, out = str(root / "ref_still.png"), str(root / "ref.mp4")
    scene = make_scene("clouds", size=24)
    cv2.imwrite(image, scene.render([0.0])[0])
    reference, short = str(root / "reference.mp4"), str(root / "short.mp4")
    write_video(reference, scene.render(np.arange(6.0)), fps=4)
    write_video(short, scene.render(np.arange(3.0)), fps=4)
    assert main(["animate", "--workdir", workdir, "--image", image, "--out", out, "--reference", reference]) == 0
    assert "motion from reference" in capsys.readouterr().out and os.path.exists(out)

    bad_out = str(root / "bad.mp4")
    assert main(["animate", "--workdir", workdir, "--image", image, "--out", bad_out, "--reference", short]) == 2
    assert "has 3 frames; the model needs at least 4" in capsys.readouterr().err
    broken = root / "broken.png"
    broken.write_text("not an image")
    assert main(["animate", "--workdir", workdir, "--image", str(broken), "--out", bad_out]) == 2
    assert "is not a readable image" in capsys.readouterr().err
    assert not os.path.exists(bad_out) and not os.path.exists(str(root / "bad.partial.mp4"))


def test_zero_gradient_penalty_weight_drops_the_penalty_from_the_step():
    """gp_weight=0 trains without WGAN-GP: no second-order pass through the critic at all."""
    from tlgen.bench.flops import count_flops
    steps = {}
    for weight in (10.0, 0.0):
        config = config_lib.load("configs/dtvnet_clouds.py:tiny",
                                 TINY + ["data.dir=", f"loss.gp_weight={weight}"])
        fam = family.make_family(config)
        batch = family.example_batch(config, 2)
        state = jax.eval_shape(fam.init, jax.random.PRNGKey(0), batch)
        steps[weight] = count_flops(fam.train_step, state, batch, jax.random.PRNGKey(1))
        _, metrics = jax.eval_shape(fam.train_step, state, batch, jax.random.PRNGKey(1))
        assert "gradient_penalty" in metrics
    # the penalty adds a critic forward, a backward to the input and the backward of that
    assert steps[0.0] < steps[10.0]


def test_eval_and_samples_use_the_ema_generator():
    config = config_lib.load("configs/dtvnet_clouds.py:tiny", TINY + ["data.dir=", "train.ema_decay=0.5"])
    fam = family.make_family(config)
    batch = family.example_batch(config, 2)
    batch["frames"] = np.random.default_rng(0).integers(0, 256, batch["frames"].shape, dtype=np.uint8)
    state = fam.init(jax.random.PRNGKey(0), batch)
    other = jax.tree.map(lambda x: x * 0.5, state.params["g"])
    with_ema = state.replace(ema={"g": other})
    as_params = state.replace(params={**state.params, "g": other}, ema=None)
    for fn in (fam.eval_step, lambda s, b: fam.sample(s, b, jax.random.PRNGKey(2))):
        got, want = jax.jit(fn)(with_ema, batch), jax.jit(fn)(as_params, batch)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
    assert not np.allclose(jax.jit(fam.eval_step)(state, batch)["frame_l1"],
                           jax.jit(fam.eval_step)(with_ema, batch)["frame_l1"])
