"""Both long-video stages through the public commands: train each on a prepared city (the
super-resolution stage on its own, larger frames), resume exactly, generate videos of any
length chunk by chunk and upscale them streamed, bad input as one sentence."""

import json
import logging
import os
import shutil

import jax
import numpy as np
import pytest

from tlgen import config as config_lib
from tlgen.cli.main import main
from tlgen.data.prepare import prepare
from tlgen.errors import UserError
from tlgen.families.long_video.inference import generate, superres_run, upscale, upscale_benchmark
from tlgen.trained import load

TINY = ["--config.model.size=(16, 32)", "--config.model.input_channels=16",
        "--config.model.temporal_channels=(16, 16)", "--config.model.temporal_time_up=(1, 0)",
        "--config.model.temporal_space_up=(0, 1)", "--config.model.spatial_channels=(8,)",
        "--config.model.spatial_space_up=(1,)", "--config.model.latent_dim=16",
        "--config.model.filters=4", "--config.model.min_period=4.0", "--config.model.max_period=64.0",
        "--config.model.d_input_channels=8", "--config.model.d_channels=(8, 16)",
        "--config.model.d_head_channels=16", "--config.data.num_frames=8", "--config.data.batch_size=8",
        "--config.train.eval_batches=1", "--config.train.sample_every=0", "--config.loss.r1_every=1"]


# The super-resolution stage for those frames: 16x32 -> 32x64 (x2), +-2 context frames.
TINY_SR = ["--config.model.size=(32, 64)", "--config.model.scale=2", "--config.model.context=1",
           "--config.model.z_dim=16", "--config.model.w_dim=16", "--config.model.channel_base=512",
           "--config.model.channel_max=16", "--config.model.num_layers=4", "--config.model.margin=2",
           "--config.model.d_channel_base=256", "--config.data.batch_size=8", "--config.data.num_frames=2",
           "--config.train.eval_batches=1", "--config.train.sample_every=0", "--config.loss.r1_every=1"]


def train(data, workdir, steps, *extra, config="configs/long_video_city.py:tiny", tiny=TINY):
    return main(["train", "--config", config, "--workdir", workdir,
                 f"--config.data.dir={data}", f"--config.total_steps={steps}", "--config.train.log_every=1",
                 "--config.train.ckpt_every=2", *tiny, *extra])


def train_sr(data, workdir, steps, *extra):
    return train(data, workdir, steps, *extra, config="configs/long_video_sr_city.py:tiny", tiny=TINY_SR)


def train_and_resume(train_fn, data, workdir, resumed):
    """Trains 3 steps, then the same run resumed from its step-2 checkpoint in a copy of its
    work directory; checks that the trainer said it resumed."""
    assert train_fn(data, workdir, 3, "--config.train.eval_every=3") == 0
    shutil.copytree(workdir, resumed)
    shutil.rmtree(os.path.join(resumed, "checkpoints", "3"))
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("tlgen.train.trainer")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        assert train_fn(data, resumed, 3, "--config.train.eval_every=0") == 0
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert any(m.startswith("resumed from") and m.endswith("/2") for m in messages), messages


def assert_same_params(a_dir, b_dir):
    a, b = load(a_dir), load(b_dir)
    assert a.step == b.step == 3
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))        # stopped at 2: same run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 3-step run on 120 frames of the city at 16x32, and the same run resumed."""
    tmp = tmp_path_factory.mktemp("lv")
    data, workdir = str(tmp / "data"), str(tmp / "run")
    prepare(["synthetic:city:frames=120"], data, size=(16, 32), levels=1, val_fraction=0.25)
    train_and_resume(train, data, workdir, str(tmp / "resumed"))
    return tmp, data, workdir


@pytest.fixture(scope="module")
def sr_run(tmp_path_factory):
    """A 3-step super-resolution run on another city (different videos) at 32x64, and the
    same run resumed."""
    tmp = tmp_path_factory.mktemp("lv_sr")
    data, workdir = str(tmp / "data"), str(tmp / "run")
    prepare(["synthetic:city:seed=1,frames=60"], data, size=(32, 64), levels=1, val_fraction=0.25)
    train_and_resume(train_sr, data, workdir, str(tmp / "resumed"))
    return tmp, data, workdir


def test_training_logs_losses_r1_and_swd_and_resumes_exactly(run):
    tmp, _, workdir = run
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    train_rows = [r for r in rows if r["split"] == "train"]
    assert [r["step"] for r in train_rows] == [1, 2, 3] and train_rows[-1]["skipped"] == 0
    for key in ("loss_d", "loss_g", "d_real", "d_fake"):
        assert all(np.isfinite(r[key]) and r[key] > 0 for r in train_rows)
    assert all(r["r1"] > 0 for r in train_rows)                            # R1 every step here
    evals = [r for r in rows if r["split"] == "eval"]
    assert evals[-1]["step"] == 3 and evals[-1]["swd"] > 0 and evals[-1]["motion_swd"] > 0
    assert_same_params(workdir, str(tmp / "resumed"))


def test_superres_training_logs_losses_and_metrics_and_resumes_exactly(sr_run):
    tmp, _, workdir = sr_run
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    train_rows = [r for r in rows if r["split"] == "train"]
    assert [r["step"] for r in train_rows] == [1, 2, 3] and train_rows[-1]["skipped"] == 0
    assert all(r["r1"] > 0 and np.isfinite(r["loss_g"]) and 0 <= r["augment_p"] <= 1 for r in train_rows)
    (ev,) = [r for r in rows if r["split"] == "eval"]
    assert ev["swd"] > 0 and ev["motion_swd"] > 0 and 0 < ev["psnr"] < ev["lowres_psnr"] < 60
    assert_same_params(workdir, str(tmp / "resumed"))


def test_superres_streams_without_seams_and_through_generate(run, sr_run):
    tmp, _, lowres_dir = run
    _, _, sr_dir = sr_run
    lowres, sr = load(lowres_dir), load(sr_dir)
    video = np.concatenate(list(generate(lowres, 23, num=2, seed=3, chunk=8)), axis=1)   # 21 + 2 x 1
    whole = np.concatenate(list(upscale(sr, iter([video]), num=2, seed=3, frames=21)), axis=1)
    assert whole.shape == (2, 21, 32, 64, 3) and whole.std() > 0
    pieces = np.array_split(video, [3, 4, 11, 17], axis=1)         # uneven low-res chunks
    streamed = list(upscale(sr, iter(pieces), num=2, seed=3, frames=4))
    assert [c.shape[1] for c in streamed] == [4] * 5 + [1]
    streamed = np.concatenate(streamed, axis=1)
    at_once = np.concatenate(list(upscale(sr, iter([video]), num=2, seed=3, frames=4)), axis=1)
    np.testing.assert_array_equal(streamed, at_once)          # how the low-res video arrives: no trace
    # Passes of 4 frames against one of 21: the same frames up to float rounding (each pass
    # shape is its own XLA program), so a uint8 value may round the other way, rarely.
    off = np.abs(streamed.astype(int) - whole)
    assert off.max() <= 1 and np.mean(off > 0) < 1e-3, (off.max(), np.mean(off > 0))
    out = str(tmp / "up.npz")
    assert main(["generate", "--workdir", lowres_dir, "--superres", sr_dir, "--frames", "21", "--num", "2",
                 "--seed", "3", "--chunk", "8", "--out", str(tmp / "up.mp4"), "--npz", out]) == 0
    default_passes = np.concatenate(list(upscale(sr, iter([video]), num=2, seed=3)), axis=1)
    np.testing.assert_array_equal(np.load(out)["frames"], default_passes)
    assert np.abs(whole[0].astype(int) - whole[1]).mean() > 1       # each video its own z and frames
    # `tlgen bench` times one pass over each high-resolution clip brought down to low resolution,
    # and counts the frames it upscales (not the context frames)
    k = int(sr.config.model.context)
    call, frames, what = upscale_benchmark(sr, {"frames": whole[:, :9]})
    assert frames == 2 * (9 - 2 * k) and what == f"{9 - 2 * k} upscaled frames per clip"
    assert call().shape == (2, 9 - 2 * k, 32, 64, 3)


def test_superres_run_must_match_the_lowres_frames(run, sr_run, tmp_path):
    _, _, lowres_dir = run
    _, _, sr_dir = sr_run
    lowres = load(lowres_dir)
    lowres.config.model.size = (16, 16)
    with pytest.raises(UserError, match=r"upscales 16x32 frames \(x2\), but .* makes 16x16 frames"):
        superres_run(sr_dir, lowres)
    early = tmp_path / "sgv"        # a run of another family stopped before its first checkpoint
    early.mkdir()
    config_lib.save(config_lib.load("configs/stylegan_v_clouds.py:tiny"), str(early / "config.json"))
    with pytest.raises(UserError, match=r"--superres .*sgv is a stylegan_v run; give a super-resolution"):
        superres_run(str(early), lowres)


@pytest.mark.parametrize("places, extra, message", [
    (("sr", "lowres"), [], "is a super-resolution run (long_video_sr); give it as --superres"),
    (("lowres", "lowres"), [], "is a long_video run; give a super-resolution (long_video_sr) run"),
    (("lowres", "sr"), ["--chunk", "0"], "--chunk 0 must be at least 1"),
])
def test_bad_generate_input_is_one_sentence(run, sr_run, tmp_path, capsys, places, extra, message):
    dirs = {"lowres": run[2], "sr": sr_run[2]}
    assert main(["generate", "--workdir", dirs[places[0]], "--superres", dirs[places[1]], "--frames", "5",
                 "--out", str(tmp_path / "x.mp4"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not os.listdir(tmp_path)


def test_generate_any_length_in_chunks_deterministically(run):
    tmp, _, workdir = run
    out = lambda name: str(tmp / name)
    args = ["generate", "--workdir", workdir, "--frames", "21", "--num", "2", "--seed", "3"]
    assert main(args + ["--chunk", "8", "--out", out("a.mp4"), "--npz", out("a.npz")]) == 0
    assert main(args + ["--chunk", "64", "--out", out("b.mp4"), "--npz", out("b.npz")]) == 0
    assert main(args + ["--chunk", "8", "--out", out("c.mp4"), "--npz", out("c.npz")]) == 0
    a, b, c = (np.load(out(n))["frames"] for n in ("a.npz", "b.npz", "c.npz"))
    assert a.shape == (2, 21, 16, 32, 3) and os.path.getsize(out("a_1.mp4")) > 0
    np.testing.assert_array_equal(a, c)                            # same seed: same videos
    assert np.abs(a.astype(int) - b).max() <= 1                    # chunks of 8 = one pass (rounding)
    assert np.abs(a[0].astype(int) - a[1]).mean() > 1              # two videos, not one twice


def test_eval_scores_generated_videos_against_the_capture(run):
    """`tlgen eval`: 16-frame clips of the validation block against as many generated videos,
    and the temporal spectrum of two generated videos (seed 1) against the whole capture's,
    equal to one computed here from `tlgen generate`'s frames and the dataset's."""
    from tlgen.data import open_dataset
    from tlgen.metrics import temporal
    tmp, data, workdir = run
    out = str(tmp / "eval")
    assert main(["eval", "--workdir", workdir, "--out", out, "--num-videos", "3", "--spectrum-frames", "96"]) == 0
    report = json.load(open(os.path.join(out, "report.json")))
    assert report["samples"] == {"clips": 3, "frames_per_clip": 16, "frames": 48}   # 30 held-out frames
    assert report["swd"] > 0 and report["motion_swd_4_16"] > 0 and report["motion_swd"] > 0
    assert set(report["not_computed"]) == {"fid", "kid", "fvd", "lpips"}
    assert sorted(report["plots"]) == ["clips.png", "spectrum.png"]
    assert report["spectrum_segment"] == 48 and report["spectrum_real_videos"] == 1      # min(1024, 96 / 2)
    assert main(["generate", "--workdir", workdir, "--frames", "96", "--num", "2", "--seed", "1",
                 "--out", str(tmp / "s.mp4"), "--npz", str(tmp / "s.npz")]) == 0
    videos = np.load(tmp / "s.npz")["frames"]
    times, frames = open_dataset(data).video_frames(0)
    assert len(times) == 120                                                     # both splits
    freqs, real = temporal.power_spectrum(temporal.frame_statistics(frames(np.arange(120))), 48)
    _, fake = temporal.power_spectrum(np.stack([temporal.frame_statistics(v) for v in videos]), 48)
    np.testing.assert_allclose([r["log_spectral_distance_db"] for r in report["spectrum"]],
                               temporal.log_spectral_distance(freqs, fake, real, 4, 48), atol=1e-3)
    slow = temporal.band_shares(freqs, real, (6.0,))[-1]                         # periods beyond 48 / 8
    np.testing.assert_allclose([r["slow_share_real"] for r in report["spectrum"]], slow, atol=1e-4)


def test_eval_scores_upscaled_videos_against_the_superres_capture(run, sr_run):
    """`tlgen eval --superres`: the upscaled videos against the super-resolution run's dataset
    (another city, 32x64); its spectrum equals one computed here from `tlgen generate
    --superres`'s frames and that dataset's."""
    from tlgen.data import open_dataset
    from tlgen.metrics import temporal
    tmp, _, lowres_dir = run
    _, sr_data, sr_dir = sr_run
    out = str(tmp / "eval_sr")
    assert main(["eval", "--workdir", lowres_dir, "--superres", sr_dir, "--out", out, "--num-videos", "2",
                 "--spectrum-frames", "64"]) == 0
    report = json.load(open(os.path.join(out, "report.json")))
    assert report["superres"] == sr_dir and report["superres_step"] == 3 and report["workdir"] == lowres_dir
    assert report["data_dir"] == os.path.abspath(sr_data)
    assert report["samples"] == {"clips": 2, "frames_per_clip": 8, "frames": 16}    # 15 held-out frames
    assert report["swd"] > 0 and report["spectrum_segment"] == 32                   # min(1024, 64 / 2)
    assert main(["generate", "--workdir", lowres_dir, "--superres", sr_dir, "--frames", "64", "--num", "2",
                 "--seed", "1", "--out", str(tmp / "u.mp4"), "--npz", str(tmp / "u.npz")]) == 0
    videos = np.load(tmp / "u.npz")["frames"]
    assert videos.shape == (2, 64, 32, 64, 3)
    times, frames = open_dataset(sr_data).video_frames(0)
    freqs, real = temporal.power_spectrum(temporal.frame_statistics(frames(np.arange(len(times)))), 32)
    _, fake = temporal.power_spectrum(np.stack([temporal.frame_statistics(v) for v in videos]), 32)
    np.testing.assert_allclose([r["log_spectral_distance_db"] for r in report["spectrum"]],
                               temporal.log_spectral_distance(freqs, fake, real, 4, 32), atol=1e-3)


def test_eval_of_a_superres_run_upscales_reduced_real_clips_beside_three_interpolations(sr_run):
    """`tlgen eval --workdir SR`: held-out clips reduced by area averaging and upscaled again;
    the model's and bilinear's PSNR against ones computed here (NumPy reduction, `upscale`,
    OpenCV's bilinear resize)."""
    import cv2
    from tlgen.metrics.protocol import eval_clips
    tmp, data, workdir = sr_run
    out = str(tmp / "eval")
    assert main(["eval", "--workdir", workdir, "--out", out, "--num-clips", "2"]) == 0
    report = json.load(open(os.path.join(out, "report.json")))
    assert report["samples"] == {"clips": 2, "frames_per_clip": 8, "frames": 16}   # 15 held-out: 8 + 2 x 1
    methods = {row["method"]: row for row in report["methods"]}
    assert list(methods) == ["the model", "bilinear", "bicubic", "Lanczos-3"]
    assert report["psnr"] == methods["the model"]["psnr"] and report["scale"] == 2
    batches, length, notes = eval_clips(data, "validation", lengths=(16, 8, 4, 2), stride=1, num_clips=2,
                                        with_masks=False, with_flow=False, context=1)
    assert length == 8 and report["notes"][0] == notes[0] == (
        "the validation split has no clip of 16 frames and 1 more on each side: the clips scored, and the "
        "distribution metrics, have 8")
    sr = load(workdir)

    def psnr(frames, truth):             # mean over frames of 10 log10(1 / MSE), [0, 1] scale
        mse = ((frames.astype(np.float64) - truth) / 255.0) ** 2
        return np.mean(10 * np.log10(1.0 / mse.mean(axis=(1, 2, 3))))
    model, bilinear, flicker = [], [], []
    for batch in batches:
        clip = batch["frames"][0].astype(np.float64)                           # (10, 32, 64, 3)
        window = np.rint(clip.reshape(10, 16, 2, 32, 2, 3).mean(axis=(2, 4))).astype(np.uint8)
        truth = batch["frames"][0, 1:9]
        made = np.concatenate(list(upscale(sr, iter([window[None]]), num=1, seed=1)), axis=1)[0]
        model.append(psnr(made, truth))
        bilinear.append(psnr(np.stack([cv2.resize(f, (64, 32), interpolation=cv2.INTER_LINEAR)
                                       for f in window[1:9]]), truth))
        flicker.append(1e3 * np.sqrt(np.sum(np.diff(truth / 255.0, axis=0) ** 2) / (7 * 32 * 64)))
    assert methods["the model"]["psnr"] == pytest.approx(np.mean(model), rel=1e-3)
    assert methods["bilinear"]["psnr"] == pytest.approx(np.mean(bilinear), abs=0.05)     # uint8 rounding
    assert report["truth_e_tmp"] == pytest.approx(np.mean(flicker), rel=1e-3)
    assert all(row["lowres_psnr"] > row["psnr"] for row in methods.values())  # each keeps the coarse frame
    assert report["swd"] > 0 and set(report["not_computed"]) == {"fid", "kid", "fvd", "lpips"}
    assert report["plots"] == ["clips.png"]


def test_eval_of_a_superres_run_takes_at_least_one_clip(sr_run, tmp_path, capsys):
    out = str(tmp_path / "eval")
    assert main(["eval", "--workdir", sr_run[2], "--out", out, "--num-clips", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("--num-clips 0 must be at least 1.") and len(err.splitlines()) == 1
    assert not os.path.exists(out)


def test_eval_of_a_superres_run_needs_clips_with_their_context(sr_run, tmp_path):
    from tlgen.families.long_video_sr.evaluation import evaluate
    _, data, workdir = sr_run
    sr = load(workdir)
    sr.config.model.context = 7                                  # 2 + 2 x 7 frames: the split holds 15
    with pytest.raises(UserError, match=rf"^the validation split of {data} has no clip of 2 frames 1 apart and 7 "
                                        r"more on each side; prepare it with a larger --val-fraction"):
        evaluate(sr, str(tmp_path / "eval"))
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("places, message", [
    (("sr", "lowres"), "is a super-resolution run (long_video_sr); give it as --superres"),
    (("lowres", "lowres"), "is a long_video run; give a super-resolution (long_video_sr) run"),
])
def test_bad_eval_superres_input_is_one_sentence(run, sr_run, tmp_path, capsys, places, message):
    dirs = {"lowres": run[2], "sr": sr_run[2]}
    out = str(tmp_path / "eval")
    assert main(["eval", "--workdir", dirs[places[0]], "--superres", dirs[places[1]], "--out", out]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not os.path.exists(out)


@pytest.mark.parametrize("extra, message", [
    (["--config.data.num_frames=200"], "no train video of {data} is 200 frames long"),
    (["--config.model.size=(32, 16)"], "holds 16x32 frames but config.model.size is 32x16; prepare it with "
                                        "--size 32x16"),
    (["--config.model.latent_dim=18"], "config.model.latent_dim 18 is not a positive multiple of "
                                       "config.model.filters 4"),
    (["--config.model.d_channels=(8, 8, 8, 16)", "--config.data.num_frames=4"],
     "config.data.num_frames 4 is too short: the discriminator halves time once per config.model.d_channels "
     "entry after the first, so a clip needs at least 8 frames"),
    (["--config.model.temporal_time_up=(1,)"], "config.model.temporal_time_up (1,) is of length 1 but "
                                               "config.model.temporal_channels of length 2"),
])
def test_bad_training_input_is_one_sentence(run, tmp_path, capsys, extra, message):
    _, data, _ = run
    assert train(data, str(tmp_path / "w"), 2, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert message.format(data=data) in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_another_familys_size_on_these_frames_says_which_to_set(run, tmp_path, capsys):
    _, data, _ = run
    assert train(data, str(tmp_path / "w"), 2, config="configs/stylegan_v_clouds.py:tiny", tiny=[]) == 2
    assert (f"{data} holds 16x32 frames but config.model.resolution is 32x32; prepare it with --size 32 "
            'or set --config.model.resolution="(16, 32)".') in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("extra, message", [
    (["--config.data.num_frames=100"], "no train video of {data} is 102 frames long"),
    (["--config.model.scale=3"], "config.model.size 32x64 is not a whole multiple of config.model.scale 3"),
    (["--config.model.num_layers=2"], "config.model.num_layers 2 is too few"),
    (["--config.data.num_frames=0"], "config.data.num_frames 0 must be at least 1"),
])
def test_bad_superres_training_input_is_one_sentence(sr_run, tmp_path, capsys, extra, message):
    _, data, _ = sr_run
    assert train_sr(data, str(tmp_path / "w"), 2, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert message.format(data=data) in err and "Traceback" not in err and len(err.splitlines()) == 1
