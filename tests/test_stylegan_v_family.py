"""StyleGAN-V through the public commands: train on a prepared dataset (swd and motion SWD
logged by the evaluator), generate videos of any length, bad input as one sentence."""

import json
import os

import numpy as np
import pytest

from tlgen.cli.main import main
from tlgen.data.prepare import prepare
from tlgen.data.video_io import read_video

TINY = ["--config.model.resolution=(16, 28)", "--config.model.z_dim=16", "--config.model.w_dim=16",
        "--config.model.channel_base=256", "--config.model.d_channel_base=256",
        "--config.model.channel_max=32", "--config.model.time_dim=8", "--config.model.concat_res=8",
        "--config.model.max_frames=64", "--config.model.max_period=64", "--config.data.batch_size=8"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 6-step run on 48 frames of the clouds scene at 16x28 (a 4x7 constant input)."""
    tmp = tmp_path_factory.mktemp("sgv")
    data, workdir = str(tmp / "data"), str(tmp / "run")
    prepare(["synthetic:clouds:frames=48"], data, size=(16, 28), levels=1, val_fraction=0.25)
    code = main(["train", "--config", "configs/stylegan_v_clouds.py:tiny", "--workdir", workdir,
                 f"--config.data.dir={data}", "--config.total_steps=6", "--config.train.log_every=3",
                 "--config.train.eval_every=6", "--config.train.eval_batches=2",
                 "--config.train.sample_every=0", "--config.loss.r1_every=4", *TINY])
    assert code == 0
    return tmp, workdir


def test_training_logs_losses_r1_and_swd(run):
    _, workdir = run
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    train = [r for r in rows if r["split"] == "train"]
    last = train[-1]
    assert last["step"] == 6 and last["skipped"] == 0
    for key in ("loss_d", "loss_g", "d_real", "d_fake"):
        assert np.isfinite(last[key]) and last[key] > 0
    assert all(r["r1"] > 0 for r in train)     # lazy R1 ran in each logged window (steps 0 and 4)
    assert last["augment_p"] == 1.0                        # DiffAugment: always on
    evals = [r for r in rows if r["split"] == "eval"]
    assert evals[-1]["step"] == 6 and evals[-1]["swd"] > 0 and evals[-1]["motion_swd"] > 0


def test_generate_writes_any_length_deterministically(run):
    tmp, workdir = run
    out = lambda name: str(tmp / name)
    args = ["generate", "--workdir", workdir, "--frames", "21", "--num", "2", "--seed", "3", "--chunk", "8"]
    assert main(args + ["--out", out("a.mp4"), "--npz", out("a.npz")]) == 0
    assert main(args[:-2] + ["--chunk", "5", "--grid", "--out", out("b.mp4"), "--npz", out("b.npz")]) == 0
    a, b = (np.load(out(n))["frames"] for n in ("a.npz", "b.npz"))
    assert a.shape == (2, 21, 16, 28, 3)
    np.testing.assert_array_equal(a, b)                    # same seed, other chunks: same video
    assert not os.path.exists(out("a.mp4")) and not os.path.exists(out("b_0.mp4"))
    # what the npz holds, up to the codec (16x28 noise-like frames, chroma subsampled): each file
    # is far closer to its own video than to the other one (mean error 10 vs 95 levels)
    error = lambda video, frames: np.abs(video.astype(float) - frames).mean()
    for v in range(2):                                     # one file per video
        video, _ = read_video(out(f"a_{v}.mp4"))
        assert video.shape == (21, 16, 28, 3)
        assert error(video, a[v]) < 20 < error(video, a[1 - v])
    video, _ = read_video(out("b.mp4"))
    assert video.shape == (21, 16, 56, 3)                  # --grid: two videos side by side
    assert error(video, np.concatenate([a[0], a[1]], axis=2)) < 20 < error(video, np.concatenate([a[1], a[0]], axis=2))
    assert main(["generate", "--workdir", workdir, "--seconds", "2", "--fps", "5",
                 "--out", out("c.mp4"), "--npz", out("c.npz"), "--seed", "3"]) == 0
    c = np.load(out("c.npz"))["frames"]
    assert c.shape == (1, 10, 16, 28, 3)
    np.testing.assert_array_equal(c[0], a[0, :10])       # video 0 of seed 3, whatever the length


@pytest.mark.parametrize("extra, message", [
    (["--frames", "0"], "--frames 0 must be at least 1."),
    (["--num", "0"], "--num 0 must be at least 1."),
    (["--time-scale", "0"], "--time-scale 0 must be positive."),
    (["--chunk", "0"], "--chunk 0 must be at least 1."),
    (["--frames", "3", "--time-scale", "1e12"], "--frames 3 at --time-scale 1e+12 reach model time 2e+12, past "
     "the 16777216 frames that float32 times resolve; lower either."),
    (["--out", "{tmp}/nofolder/x.mp4"], "does not exist"),
])
def test_bad_generate_arguments_are_one_sentence(run, capsys, extra, message):
    tmp, workdir = run
    extra = [e.format(tmp=tmp) for e in extra]
    out = [] if "--out" in extra else ["--out", str(tmp / "bad.mp4")]
    assert main(["generate", "--workdir", workdir, *out, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not os.path.exists(tmp / "bad.mp4")


def test_eval_falls_back_to_the_clips_the_split_holds_and_can_skip_the_spectrum(run):
    tmp, workdir = run
    out = str(tmp / "eval")
    assert main(["eval", "--workdir", workdir, "--out", out, "--num-videos", "8", "--spectrum-frames", "0"]) == 0
    report = json.load(open(os.path.join(out, "report.json")))
    assert report["samples"] == {"clips": 5, "frames_per_clip": 8, "frames": 40}  # 12 held-out frames
    assert report["notes"][:3] == [
        "the validation split has no clip of 16 frames: the clips scored, and the distribution metrics, have 8",
        "the validation split holds 5 distinct clips of 8 frames: 5 scored, not 8",
        "temporal spectrum: not computed (--spectrum-frames 0)"]
    assert report["plots"] == ["clips.png"] and report["spectrum"] == [] and report["motion_swd"] > 0


@pytest.mark.parametrize("extra, message", [
    (["--num-videos", "0"], "--num-videos 0 must be at least 1."),
    (["--spectrum-frames", "-1"], "--spectrum-frames -1 must be at least 0."),
    (["--lpips", "{tmp}/lpips.safetensors"], "--lpips compares each generated frame with its real counterpart, "
     "and stylegan_v's videos have none; leave it out"),
    (["--data", "{tmp}/other"], "holds 16x16 frames but the run"),
])
def test_bad_eval_input_is_one_sentence(run, capsys, extra, message):
    tmp, workdir = run
    if "--lpips" in extra and not os.path.exists(tmp / "lpips.safetensors"):
        from tests import random_weights
        from tlgen.models import lpips as lpips_model
        random_weights.write(str(tmp / "lpips.safetensors"), lpips_model.abstract_params("alex"),
                             lpips_model.torch_prefixes("alex"))
    if "--data" in extra and not os.path.exists(tmp / "other"):
        prepare(["synthetic:clouds:frames=8"], str(tmp / "other"), size=16, levels=1)
    out = tmp / "bad-eval"
    assert main(["eval", "--workdir", workdir, "--out", str(out), *[e.format(tmp=tmp) for e in extra]]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not os.path.exists(out)


def test_other_commands_and_single_images_are_refused(run, tmp_path, capsys):
    _, workdir = run
    from PIL import Image

    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "x.png")
    assert main(["animate", "--workdir", workdir, "--image", str(tmp_path / "x.png"),
                 "--out", str(tmp_path / "a.mp4")]) == 2
    assert "the stylegan_v family cannot animate a still image" in capsys.readouterr().err
    data = str(tmp_path / "two")
    prepare(["synthetic:clouds:frames=2"], data, size=(16, 28), levels=1, val_fraction=0.0)
    assert main(["train", "--config", "configs/stylegan_v_clouds.py:tiny", "--workdir",
                 str(tmp_path / "r"), f"--config.data.dir={data}", *TINY]) == 2
    err = capsys.readouterr().err
    assert "has no clip to train StyleGAN-V on" in err and "not single images" in err
    assert not os.path.exists(tmp_path / "r" / "checkpoints")
    assert main(["train", "--config", "configs/stylegan_v_clouds.py:tiny", "--workdir",
                 str(tmp_path / "r"), f"--config.data.dir={data}", *TINY, "--config.loss.augment_ops=bcg"]) == 2
    err = capsys.readouterr().err
    assert "config.loss.augment_ops is 'bcg'; use one of diffaugment, bgc." in err and "Traceback" not in err
    assert not os.path.exists(tmp_path / "r" / "checkpoints")
