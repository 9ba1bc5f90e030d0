"""DTVNet through the generic trainer, the generic loader and the `tlgen eval` / `animate`
commands."""

import json
import os
import re

import cv2
import jax
import numpy as np
import pytest

from tests import random_weights
from tests.conftest import fill_disk
from tlgen import checkpoint
from tlgen import config as config_lib
from tlgen.cli.main import main
from tlgen.data.prepare import prepare
from tlgen.data.synthetic import make_scene
from tlgen.data.video_io import read_video, write_video
from tlgen.families.dtvnet import FAMILY
from tlgen.models import inception as inception_model
from tlgen.models import lpips as lpips_model
from tlgen.trained import load
from tlgen.train.trainer import train
from tlgen.train.writers import read_metrics

RECORDED = os.path.join(os.path.dirname(__file__), "data", "recorded_metrics.json")

TINY = ["data.image_size=16", "data.num_frames=4", "data.batch_size=8", "total_steps=3",
        "model.base_width=4", "model.decoder_width=6", "model.motion_dim=8", "model.content_blocks=1",
        "model.motion_blocks=1", "model.mapping_layers=1", "model.style_layers=1",
        "model.encoder_width=4", "model.encoder_max_width=8", "model.disc_width=4",
        "model.disc_max_width=8", "train.log_every=1", "train.ckpt_every=1", "train.keep_checkpoints=3",
        "train.eval_every=3", "train.eval_batches=1", "train.sample_every=3"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """3 steps with LPIPS (random VGG-16 weights) as an evaluator beside the eval step."""
    root = tmp_path_factory.mktemp("dtvnet")
    data = str(root / "clouds")
    prepare(["synthetic:clouds:frames=48"], data, size=(16, 16), flow=True, levels=2, val_fraction=0.25)
    lpips = random_weights.write(str(root / "lpips_vgg.safetensors"), lpips_model.abstract_params("vgg"),
                                 lpips_model.torch_prefixes("vgg"))
    config = config_lib.load("configs/dtvnet_clouds.py:tiny", TINY + [f"data.dir={data}", f"eval.lpips={lpips}"])
    workdir = str(root / "run")
    metrics = train(config, workdir)
    return root, workdir, metrics


def test_same_metrics_as_recorded_before_the_family_interface(run):
    """The moved family computes what it did: every logged metric of the 3 steps and the eval."""
    _, workdir, _ = run
    with open(RECORDED) as f:
        recorded = json.load(f)["dtvnet"]
    rows = [{k: v for k, v in r.items() if k != "steps_per_sec"}
            for r in read_metrics(os.path.join(workdir, "metrics.jsonl"))]
    assert [(r["step"], r["split"]) for r in rows] == [(r["step"], r["split"]) for r in recorded]
    for got, want in zip(rows, recorded):
        assert set(got) - set(want) == ({"lpips"} if got["split"] == "eval" else set())
        keys = [k for k in want if k != "split"]
        np.testing.assert_allclose([got[k] for k in keys], [want[k] for k in keys], rtol=1e-5, atol=1e-6)


def _full(workdir, step):
    """Both networks and the BatchNorm statistics of checkpoint `step`."""
    replicate = lambda tree: jax.tree.map(lambda _: jax.sharding.SingleDeviceSharding(jax.devices()[0]), tree)
    return checkpoint.restore_networks(workdir, ("g", "d"), step=step, shardings_for=replicate)


def test_gan_steps_through_the_trainer_update_both_networks(run):
    _, workdir, metrics = run
    assert metrics["step"] == 3 and metrics["skipped"] == 0
    for key in ("loss", "loss_g", "loss_d", "frame_l1", "flow_l1", "gradient_penalty", "eval/psnr", "eval/ssim"):
        assert np.isfinite(metrics[key]), key
    (_, first, first_extra), (_, last, last_extra) = _full(workdir, 1), _full(workdir, 3)
    for name in ("g", "d"):
        change = max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in
                     zip(jax.tree.leaves(first[name]), jax.tree.leaves(last[name])))
        assert change > 0, name
    assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(first_extra), jax.tree.leaves(last_extra)))
    assert sorted(os.listdir(os.path.join(workdir, "samples")))   # sample videos were written


def test_loader_reads_only_the_generator_for_inference(run):
    _, workdir, _ = run
    trained = load(workdir)
    assert trained.step == 3 and trained.family is FAMILY and set(trained.params) == {"g"}
    assert set(trained.params["g"]) == {"generator", "flow_encoder"}
    assert set(trained.extra) == {"batch_stats"} and "frozen" not in vars(trained)   # not read
    assert set(trained.frozen) == {"lpips"}                       # until asked for
    _, full, _ = _full(workdir, 3)
    for a, b in zip(jax.tree.leaves(trained.params["g"]), jax.tree.leaves(full["g"])):
        np.testing.assert_array_equal(a, b)          # no EMA in this run: the trained copy


def test_the_lpips_evaluator_runs_beside_the_eval_step_and_is_never_checkpointed(run):
    _, workdir, metrics = run
    assert 0 <= metrics["eval/lpips"] < 10
    with open(os.path.join(workdir, "checkpoints", "3", "shapes", "metadata")) as f:
        assert not any("lpips" in k or "conv12" in k for k in json.load(f))


def test_eval_command_writes_the_report_and_its_plot(run, capsys):
    root, workdir, _ = run
    inception = random_weights.write(str(root / "inception.safetensors"), inception_model.abstract_params())
    assert main(["eval", "--workdir", workdir, "--num-clips", "2", "--inception", inception,
                 "--lpips", str(root / "lpips_vgg.safetensors")]) == 0
    printed = capsys.readouterr().out.split()
    eval_dir = os.path.join(workdir, "eval")
    assert printed == [os.path.join(eval_dir, f) for f in ("report.json", "report.md", "clips.png")]
    with open(printed[0]) as f:
        report = json.load(f)
    assert report["step"] == 3 and report["num_clips"] == 2 and len(report["clips"]) == 2
    for key in ("psnr", "ssim", "flow_mse", "e_tmp", "e_tmp_real"):
        assert np.isfinite(report[key]), key
        np.testing.assert_allclose(report[key], np.mean([c[key] for c in report["clips"]]))
    assert -1 <= report["ssim"] <= 1 and report["flow_mse"] >= 0 and report["e_tmp_real"] > 0
    assert "| psnr |" in open(printed[1]).read()
    for key in ("fid", "kid", "lpips", "swd"):                     # 2 clips of 5 frames
        assert np.isfinite(report[key]) and report[key] >= 0 or key == "kid", key
    assert report["samples"] == {"clips": 2, "frames_per_clip": 5, "frames": 10}
    assert report["not_computed"] == {"fvd": "give --i3d FILE; `tlgen convert-weights` makes one"}
    assert set(report["protocol"]) == {"fid", "kid", "lpips", "swd", "seed"}
    assert "the validation split has no clip of 16 frames" in report["notes"][0]
    picture = cv2.imread(printed[2])
    assert picture.shape == (2 * 2 * 16, 4 * 16, 3)  # (real, generated) x 2 clips, 4 frames each


def test_help_with_a_workdir_lists_the_family_options(run, capsys):
    _, workdir, _ = run
    assert main(["animate", "--workdir", workdir, "--help"]) == 0
    out = capsys.readouterr().out
    assert "options of this run's family" in out and "--reference VIDEO" in out and "--seed" in out
    assert main(["animate", "--help"]) == 0             # no workdir: the common options only
    assert "options of this run's family" not in capsys.readouterr().out


def test_commands_the_family_lacks_name_the_families_that_have_them(run, tmp_path, capsys):
    _, workdir, _ = run
    assert main(["timelapse", "--workdir", workdir, "--out", str(tmp_path / "t.mp4")]) == 2
    assert capsys.readouterr().err.strip() == (
        "tlgen timelapse: error: the dtvnet family cannot render timelapses; `tlgen timelapse` "
        "works with runs of the timescale_ae family.")
    assert main(["generate", "--workdir", workdir, "--out", str(tmp_path / "g.mp4")]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "the dtvnet family cannot generate videos; `tlgen generate` works with runs of the "
        "long_video or stylegan_v families.")       # not long_video_sr: it upscales (--superres)
    assert not os.listdir(tmp_path)


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
    assert "input 20x30 resized and center-cropped to 16x16" in capsys.readouterr().out
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
    assert (f"motion from reference {reference} (24x24 resized and center-cropped to 16x16)"
            in capsys.readouterr().out and os.path.exists(out))

    bad_out = str(root / "bad.mp4")
    assert main(["animate", "--workdir", workdir, "--image", image, "--out", bad_out, "--reference", short]) == 2
    assert f"error: --reference {short} has 3 frames; the model needs at least 4" in capsys.readouterr().err
    for extra, flag, used, reads in ((["--out", reference, "--reference", reference], "--out", reference, "--reference"),
                                     (["--out", bad_out, "--sheet", image], "--sheet", image, "--image")):
        before = open(used, "rb").read()                          # an output that is an input: refused
        assert main(["animate", "--workdir", workdir, "--image", image, *extra]) == 2
        assert capsys.readouterr().err.strip() == (f"tlgen animate: error: {flag} {used} is the file "
                                                   f"{reads} reads; write the output to another file.")
        assert open(used, "rb").read() == before
    assert main(["animate", "--workdir", workdir, "--image", image, "--out", bad_out, "--frames", "1000000000"]) == 2
    assert re.search(r"error: --frames 1000000000 would hold about [\d.e+]+ GB of 16x16 frames in memory until "
                     r"they are written, more than this machine's [\d.e+]+ GB; ask for fewer frames\.$",
                     capsys.readouterr().err.strip())
    missing = str(root / "none.mp4")
    assert main(["animate", "--workdir", workdir, "--image", image, "--out", bad_out, "--reference", missing]) == 2
    assert capsys.readouterr().err.strip() == (f"tlgen animate: error: {missing} does not exist; give the "
                                               "path of a video file.")
    broken = root / "broken.png"
    broken.write_text("not an image")
    assert main(["animate", "--workdir", workdir, "--image", str(broken), "--out", bad_out]) == 2
    assert "is not a readable image" in capsys.readouterr().err
    assert not os.path.exists(bad_out) and not os.path.exists(str(root / "bad.partial.mp4"))


def test_animate_onto_a_full_disk_is_one_sentence_and_leaves_nothing(run, small_disk, capsys):
    root, workdir, _ = run
    image = str(root / "still_full.png")
    cv2.imwrite(image, np.full((16, 16, 3), 128, np.uint8))
    disk = small_disk("64k")
    fill_disk(disk)
    out = str(disk / "a.mp4")
    assert main(["animate", "--workdir", workdir, "--image", image, "--out", out, "--frames", "40"]) == 4
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tlgen animate: error: cannot write {out}: No space left on device")
    assert len(err.splitlines()) == 1 and sorted(os.listdir(disk)) == ["filler"]


def test_zero_gradient_penalty_weight_drops_the_penalty_from_the_step():
    """gp_weight=0 trains without WGAN-GP: no second-order pass through the critic at all."""
    from tlgen.bench.flops import count_flops
    steps = {}
    for weight in (10.0, 0.0):
        config = config_lib.load("configs/dtvnet_clouds.py:tiny",
                                 TINY + ["data.dir=", f"loss.gp_weight={weight}"])
        fam = FAMILY.training(config)
        batch = FAMILY.example_batch(config, 2)
        state = jax.eval_shape(fam.init, jax.random.PRNGKey(0), batch)
        steps[weight] = count_flops(fam.train_step, state, batch, jax.random.PRNGKey(1))
        _, metrics = jax.eval_shape(fam.train_step, state, batch, jax.random.PRNGKey(1))
        assert "gradient_penalty" in metrics
    # the penalty adds a critic forward, a backward to the input and the backward of that
    assert steps[0.0] < steps[10.0]


def test_eval_and_samples_use_the_ema_generator():
    config = config_lib.load("configs/dtvnet_clouds.py:tiny", TINY + ["data.dir=", "train.ema_decay=0.5"])
    fam = FAMILY.training(config)
    batch = FAMILY.example_batch(config, 2)
    batch["frames"] = np.random.default_rng(0).integers(0, 256, batch["frames"].shape, dtype=np.uint8)
    state = jax.jit(fam.init)(jax.random.PRNGKey(0), batch)
    other = jax.jit(lambda p: jax.tree.map(lambda x: x * 0.5, p))(state.params["g"])
    # One state structure (one compile per function): with an EMA copy the trained
    # parameters make no difference, the EMA copy does.
    with_ema = state.replace(ema={"g": other})
    other_params = with_ema.replace(params={**state.params, "g": other})
    for fn in (jax.jit(fam.eval_step), jax.jit(lambda s, b: fam.sample(s, b, jax.random.PRNGKey(2)))):
        got, want = fn(with_ema, batch), fn(other_params, batch)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
    eval_step = jax.jit(fam.eval_step)
    assert not np.allclose(eval_step(state.replace(ema={"g": state.params["g"]}), batch)["frame_l1"],
                           eval_step(with_ema, batch)["frame_l1"])


def test_a_validation_split_too_short_for_a_clip_is_refused_before_the_workdir_is_written(tmp_path, capsys):
    data = str(tmp_path / "short")
    prepare(["synthetic:clouds:frames=24"], data, size=(16, 16), flow=True, levels=1, val_fraction=0.1)
    work = tmp_path / "w"
    argv = ["train", "--config", "configs/dtvnet_clouds.py:tiny", "--workdir", str(work),
            f"--config.data.dir={data}", *(f"--config.{o}" for o in TINY)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tlgen train: error: {data} cannot feed evaluation (no validation block of "
                          f"{data} holds a clip of 5 frames") and len(err.splitlines()) == 1
    assert err.endswith("prepare it with a larger --val-fraction, or set --config.train.eval_every=0 "
                        "and --config.train.sample_every=0.")
    assert not work.exists()
    # as the sentence says: without eval and samples the run trains
    assert main(argv + ["--config.train.eval_every=0", "--config.train.sample_every=0",
                        "--config.total_steps=1"]) == 0
    assert load(str(work)).step == 1


def test_a_train_split_too_short_for_a_clip_is_one_sentence(tmp_path, capsys):
    data = str(tmp_path / "shorter")
    prepare(["synthetic:clouds:frames=4"], data, size=(16, 16), flow=True, levels=1, val_fraction=0.0)
    work = tmp_path / "w"
    assert main(["train", "--config", "configs/dtvnet_clouds.py:tiny", "--workdir", str(work),
                 f"--config.data.dir={data}", *(f"--config.{o}" for o in TINY)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"tlgen train: error: {data} cannot feed training (no train block of {data} holds a "
                   "clip of 5 frames with stride 1 (the longest has 4)); prepare it from longer "
                   "footage, or shorten the config's clips.")
    assert not work.exists()


def test_eval_scores_each_clip_once_however_many_are_asked_for(run, capsys):
    from tlgen.data.pipelines import clip_count
    from tlgen.metrics.protocol import eval_clips
    root, workdir, _ = run
    data = str(root / "clouds")
    available = clip_count(data, "validation", 5)
    assert 1 < available < 50
    batches, length, notes = eval_clips(data, "validation", lengths=(16, 5), stride=1, num_clips=50,
                                        with_masks=False)
    firsts = {batch["frames"][0].tobytes() for batch in batches}
    assert length == 5 and len(batches) == len(firsts) == available
    assert notes[1] == (f"the validation split holds {available} distinct clips of 5 frames: "
                        f"{available} scored, not 50")
    assert main(["eval", "--workdir", workdir, "--flow-method", "raft"]) == 2    # before any work
    assert "argument --flow-method: invalid choice: 'raft'" in capsys.readouterr().err
