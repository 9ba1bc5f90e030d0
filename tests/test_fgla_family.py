"""FGLA through the generic trainer and the `tlgen animate` / `tlgen eval` commands."""

import json
import os
import shutil

import cv2
import jax
import numpy as np
import pytest

from tlgen import checkpoint
from tlgen import config as config_lib
from tlgen.cli.main import main
from tlgen.data.prepare import prepare
from tlgen.data.synthetic import make_scene
from tlgen.data.video_io import write_video
from tlgen.data.regions import kmeans
from tlgen.errors import UserError
from tlgen.families.fgla.inference import RegionAnimator
from tlgen.train.trainer import train
from tlgen.trained import load

TINY = ["data.image_size=16", "data.batch_size=8", "total_steps=3", "model.encoder_widths=(4, 8)",
        "model.generator_widths=(4, 8)", "train.log_every=1", "train.ckpt_every=1",
        "train.eval_every=3", "train.eval_batches=1", "train.sample_every=3"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("fgla")
    data = str(root / "water")
    prepare(["synthetic:water:frames=64"], data, size=(16, 16), flow=True, levels=1, val_fraction=0.25)
    config = config_lib.load("configs/fgla_landscape.py:tiny", TINY + [f"data.dir={data}"])
    workdir = str(root / "run")
    metrics = train(config, workdir)
    scene = make_scene("water", size=16)
    image, mask = str(root / "still.png"), str(root / "mask.png")
    cv2.imwrite(image, scene.render([0.0])[0][..., ::-1])
    cv2.imwrite(mask, scene.masks([0.0])[0])
    clip = str(root / "clouds.mp4")
    write_video(clip, make_scene("clouds", size=16).render(np.arange(0.0, 40.0, 2.0)), fps=4)
    return root, workdir, metrics, image, mask, clip


def test_training_steps_update_encoder_and_generator(run):
    _, workdir, metrics, *_ = run
    assert metrics["step"] == 3 and metrics["skipped"] == 0
    for key in ("loss", "frame_l1", "flow_l1", "tv", "flow_epe", "eval/flow_epe"):
        assert np.isfinite(metrics[key]), key
    replicate = lambda tree: jax.tree.map(lambda _: jax.sharding.SingleDeviceSharding(jax.devices()[0]), tree)
    first, params = (checkpoint.restore_networks(workdir, ("fgla",), step=s, shardings_for=replicate)[1]["fgla"]
                     for s in (1, 3))
    assert set(params) == {"encoder", "generator"}
    assert "pconv0" in params["encoder"] and "to_flow" in params["generator"]
    for net in ("encoder", "generator"):                   # steps 2 and 3 changed both networks
        change = jax.tree.map(lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max()),
                              params[net], first[net])
        assert max(jax.tree.leaves(change)) > 0, net


def test_a_dataset_with_more_classes_than_regions_is_refused_before_training(run, tmp_path):
    root = run[0]
    config = config_lib.load("configs/fgla_landscape.py:tiny",
                             TINY + [f"data.dir={root / 'water'}", "model.regions=('ground', 'sky')"])
    with pytest.raises(UserError, match=r"has 3 mask classes but config.model.regions names 2"):
        train(config, str(tmp_path / "w"))
    assert not (tmp_path / "w").exists()


def _animate(workdir, image, out, *extra):
    return main(["animate", "--workdir", workdir, "--image", image, "--out", out, *extra])


def test_animate_with_a_region_reference_speed_and_npz(run, capsys):
    root, workdir, _, image, mask, clip = run
    outs = {}
    for name, extra in (("codebook", []), ("water", ["--region-reference", f"water={clip}"]),
                        ("fast", ["--speed", "2"])):
        out, npz, sheet = (str(root / f"{name}.{ext}") for ext in ("mp4", "npz", "png"))
        assert _animate(workdir, image, out, "--mask", mask, "--frames", "5", "--npz", npz, "--sheet", sheet, *extra) == 0
        assert os.path.exists(out)
        outs[name] = np.load(npz)
        picture = cv2.imread(sheet)[..., ::-1]
        assert picture.shape == (32, 5 * 16, 3)        # 5 frames above their flows
        np.testing.assert_array_equal(picture[:16], np.concatenate(list(outs[name]["frames"]), axis=1))
        assert picture[16:, :16].max() == 0 and picture[16:, 16:].max() > 0
    printed = capsys.readouterr().out
    # the clip is of the model's size: no note of fitting it
    assert f"water from {clip}; speed 1" in printed and "speed 2" in printed
    base, water, fast = outs["codebook"], outs["water"], outs["fast"]
    assert base["frames"].shape == (5, 16, 16, 3) and base["flows"].shape == (4, 16, 16, 2)
    # The reference replaces the water latent only; sky and ground keep their codebook latents.
    np.testing.assert_array_equal(water["latents"][:, :2], np.broadcast_to(base["latents"][0, :2], water["latents"][:, :2].shape))
    assert np.abs(water["latents"][:, 2] - base["latents"][0, 2]).max() > 0
    # Speed scales every step's flow: the first step's (same image, same latent) doubles.
    np.testing.assert_allclose(fast["flows"][0], 2 * base["flows"][0], rtol=1e-5, atol=1e-6)
    # A mask at twice the image's size (its aspect) is fitted as the image is: the same video.
    big, npz = str(root / "mask_big.png"), str(root / "big.npz")
    cv2.imwrite(big, np.kron(cv2.imread(mask, cv2.IMREAD_UNCHANGED), np.ones((2, 2), np.uint8)))
    for _ in range(2):          # the second time over the first's outputs
        assert _animate(workdir, image, str(root / "big.mp4"), "--mask", big, "--frames", "5", "--npz", npz) == 0
        np.testing.assert_array_equal(np.load(npz)["frames"], base["frames"])


def test_a_reference_shorter_than_the_stride_keeps_its_speed(run, caplog):
    """The encoder reads flows over `data.stride` (4) frames: a 2- or 3-frame reference's flow
    over the frames it has is scaled to the stride, so a texture moving 0.5 px a frame (at the
    model's 16²) gives the same 2 px as a longer reference, with a warning."""
    _, workdir, *_ = run
    anim = RegionAnimator(load(workdir))
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (64, 128, 3)).astype(np.float32), (0, 0), 3)
    texture = (texture - texture.min()) / (texture.max() - texture.min()) * 255
    frames = np.stack([np.roll(texture, 2 * i, axis=1)[:, :64] for i in range(9)]).astype(np.uint8)
    for count in (2, 3, 5, 9):
        flows = anim.reference_flows(frames[:count])
        assert len(flows) == max(1, (count - 1) // 4)
        np.testing.assert_allclose(flows[..., 0].mean(), -2.0, atol=0.1)    # warping flow: -forward
    assert "has 2 frames, fewer than the 5 that span the run's stride" in caplog.text


def test_animate_bad_input_is_one_sentence_and_writes_nothing(run, capsys):
    root, workdir, _, image, mask, clip = run
    out = str(root / "bad.mp4")
    small = str(root / "small_mask.png")
    cv2.imwrite(small, np.zeros((8, 16), np.uint8))      # another aspect than the image's
    cv2.imwrite(str(root / "class7.png"), np.full((16, 16), 7, np.uint8))
    one = str(root / "one.mp4")
    write_video(one, make_scene("clouds", size=16).render([0.0]), fps=4)
    broken = root / "broken.png"
    broken.write_text("not an image")
    cases = [(["--mask", small], "is 8x16 but --image is 16x16 (HxW); give a mask of that size"),
             (["--region-reference", f"lava={clip}"], "regions: ground, sky, water"),
             (["--reference", one], f"--reference {one} has 1 frame; a reference video needs at least 2."),
             (["--region-reference", f"sky={one}"], f"--region-reference sky={one} has 1 frame"),
             (["--mask", str(root / "none.png")], f"{root / 'none.png'} does not exist"),
             (["--reference", clip, "--reference-mask", small], f"is 8x16 but --reference {clip} is 16x16 (HxW)"),
             (["--reference", clip, "--reference-mask", str(root / "class7.png")],
              "has class 7, but the run knows 3 regions (ground, sky, water)"),
             (["--reference-mask", mask], "labels the --reference video; give that video too"),
             (["--speed", "0"], "--speed 0.0 must be positive"),
             (["--region-reference", f"sky={root / 'none.mp4'}"], f"{root / 'none.mp4'} does not exist"),
             (["--region-reference", f"sky={clip}", "--region-reference", f"sky={clip}"],
              "--region-reference names sky 2 times; give each region one reference video."),
             (["--region-reference", f"water={clip}"], f"--region-reference water={clip}: the image has no "
              "water pixels (without --mask it is all sky), so it would not move")]
    for extra, message in cases:
        assert _animate(workdir, image, out, *extra) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert _animate(workdir, str(broken), out) == 2
    assert "is not a readable image" in capsys.readouterr().err
    # a seed picks codebook motion, which a reference replaces
    assert _animate(workdir, image, out, "--reference", clip, "--seed", "3") == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "tlgen animate: error: argument --seed: not allowed with argument --reference")
    assert not [f for f in os.listdir(root) if f.startswith("bad")]


def test_eval_command_scores_animations_with_the_clips_own_motion(run, capsys):
    _, workdir, *_ = run
    assert main(["eval", "--workdir", workdir, "--num-clips", "2", "--frames", "4"]) == 0
    report_path = capsys.readouterr().out.split()[0]
    with open(report_path) as f:
        report = json.load(f)
    assert report["num_clips"] == 2 and len(report["clips"]) == 2 and report["per_region"] is True
    for key in ("masked_psnr", "masked_ssim", "flow_mse", "e_tmp", "e_tmp_real", "static_share"):
        np.testing.assert_allclose(report[key], np.mean([c[key] for c in report["clips"]]))
    assert 0 < report["static_share"] < 1 and report["flow_mse"] >= 0 and report["masked_ssim"] <= 1
    assert set(report["not_computed"]) >= {"fid", "fvd"}
    for flag, value, message in (("--num-clips", "0", "--num-clips 0 must be at least 1."),
                                 ("--frames", "1", "--frames 1 must be at least 2.")):
        assert main(["eval", "--workdir", workdir, flag, value]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_a_run_saved_with_a_single_number_size_animates_as_before(run, tmp_path):
    """Runs from before sizes took an aspect hold `image_size: 16` in config.json."""
    _, workdir, _, image, *_ = run
    old = str(tmp_path / "old")
    shutil.copytree(workdir, old)
    path = os.path.join(old, "config.json")
    with open(path) as f:
        saved = json.load(f)
    saved["data"]["image_size"] = 16
    with open(path, "w") as f:
        json.dump(saved, f)
    for folder in (workdir, old):
        assert _animate(folder, image, str(tmp_path / "a.mp4"), "--frames", "3", "--npz",
                        str(tmp_path / f"{os.path.basename(folder)}.npz")) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "old.npz")["frames"],
                                  np.load(tmp_path / f"{os.path.basename(workdir)}.npz")["frames"])


def test_kmeans_recovers_separated_clusters():
    rng = np.random.default_rng(0)
    truth = np.array([[0.0, 0.0], [5.0, 5.0], [-5.0, 4.0]])
    points = np.concatenate([c + 0.1 * rng.standard_normal((50, 2)) for c in truth])
    centres, labels = kmeans(points, 3)
    order = [int(np.argmin(np.linalg.norm(centres - c, axis=1))) for c in truth]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(centres[order], truth, atol=0.05)
    np.testing.assert_array_equal(labels, np.repeat(order, 50))


def test_global_latent_variant_animates_from_its_codebook_and_refuses_region_references(run, capsys):
    root, _, _, image, mask, clip = run
    config = config_lib.load("configs/fgla_landscape.py:tiny",
                             TINY + [f"data.dir={root / 'water'}", "model.per_region=False", "total_steps=1",
                                     "train.ckpt_every=1", "train.eval_every=0", "train.sample_every=0"])
    workdir = str(root / "al")
    train(config, workdir)
    out, npz = str(root / "al.mp4"), str(root / "al.npz")
    assert _animate(workdir, image, out, "--mask", mask, "--frames", "3", "--npz", npz) == 0
    assert np.load(npz)["latents"].shape == (1, 1, 2)                 # one global latent
    capsys.readouterr()
    assert _animate(workdir, image, str(root / "al_bad.mp4"), "--region-reference", f"sky={clip}") == 2
    assert "encodes one global latent" in capsys.readouterr().err


def test_a_dataset_without_masks_gives_batches_like_the_example(run, tmp_path, caplog):
    """Footage without masks trains as one region: the pipeline yields no label maps, and
    `example_batch` (what the trainer checks the first batch against) has none either."""
    from tlgen.families.fgla import training as fgla_training
    video = str(tmp_path / "v.mp4")
    write_video(video, make_scene("water", size=16).render(np.arange(12) * 1.0), 10)
    data = str(tmp_path / "plain")
    prepare([video], data, size=(16, 16), flow=True, levels=1)
    shapes = lambda batch: {k: (np.shape(v), np.asarray(v).dtype) for k, v in batch.items()}  # noqa: E731
    for path, masked in ((data, False), (str(run[0] / "water"), True)):
        config = config_lib.load("configs/fgla_landscape.py:tiny", TINY + [f"data.dir={path}"])
        batch = next(iter(fgla_training.training(config).make_pipeline("train", 0, 1)))
        assert ("masks" in batch) == masked
        assert shapes(fgla_training.example_batch(config, 8)) == shapes(batch)
    assert "has no region masks: FGLA trains with one region (ground)" in caplog.text
