"""Time Flies through the public commands: train on the synthetic city's clips with its region
masks and a user-supplied VGG-19 file (random weights, through the real loader), animate an
image by a reference video, bad input as one sentence."""

import json
import os
import shutil

import cv2
import numpy as np
import pytest

from tests import random_weights
from tlgen.cli.main import main
from tlgen.data.prepare import prepare
from tlgen.data.synthetic import make_scene
from tlgen.data.video_io import read_video, write_video
from tlgen.families.time_flies import inference
from tlgen.families.time_flies.inference import Animator
from tlgen.models import vgg19
from tlgen.trained import load

CONFIG = "configs/time_flies_city.py:tiny"
SMALL = ["--config.data.image_size=(16, 24)", "--config.data.batch_size=8", "--config.model.d_width=8",
         "--config.model.d_max_width=16"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 2-step run on 24 frames of the city at 16x24, and a reference video with its labels."""
    tmp = tmp_path_factory.mktemp("tf")
    data, workdir = str(tmp / "data"), str(tmp / "run")
    vgg = random_weights.write(str(tmp / "vgg19.safetensors"), vgg19.abstract_params(), vgg19.torch_prefixes())
    prepare(["synthetic:city:frames=24"], data, size=(16, 24), levels=1, val_fraction=0.25)
    code = main(["train", "--config", CONFIG, "--workdir", workdir, f"--config.data.dir={data}",
                 f"--config.model.vgg19={vgg}", "--config.total_steps=2", "--config.train.log_every=1",
                 "--config.train.eval_every=0", "--config.train.sample_every=0", *SMALL])
    assert code == 0
    scene = make_scene(name="city", seed=5, size=24)
    frames = scene.render(np.arange(14) * 1200.0)
    write_video(str(tmp / "ref.mp4"), frames, 10)
    cv2.imwrite(str(tmp / "image.png"), frames[3][..., ::-1])
    cv2.imwrite(str(tmp / "labels.png"), scene.masks([0])[0])
    return tmp, workdir, vgg, data


def test_training_logs_every_loss_term(run):
    _, workdir, _, _ = run
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    train = [r for r in rows if r["split"] == "train"]
    assert [r["step"] for r in train] == [1, 2] and train[-1]["skipped"] == 0
    for key in ("adv", "perceptual", "content", "style", "flow", "cycle", "loss_d", "psnr"):
        assert np.isfinite(train[-1][key]) and train[-1][key] >= 0, key
    assert [r["alpha"] for r in train] == [1.0, pytest.approx(0.999)]   # alpha_decay ** steps done


def test_animate_by_a_reference_is_deterministic_and_chunk_free(run, capsys):
    tmp, workdir, _, _ = run
    path = lambda name: str(tmp / name)
    args = ["animate", "--workdir", workdir, "--image", path("image.png"), "--reference", path("ref.mp4"),
            "--image-mask", path("labels.png"), "--reference-masks", path("labels.png")]
    assert main(args + ["--out", path("a.mp4"), "--npz", path("a.npz"), "--seed", "4"]) == 0
    # a frame per reference frame, the square 24x24 image and reference fitted to 16x24
    assert (f"14 frames 16x24 (HxW) at 12 fps (input 24x24 resized and center-cropped to 16x24; changes "
            f"from {path('ref.mp4')} (24x24 resized and center-cropped to 16x24), a window of 3 frames per "
            f"frame" in capsys.readouterr().out)
    assert main(args + ["--out", path("b.mp4"), "--npz", path("b.npz"), "--seed", "4", "--frames", "9"]) == 0
    assert main(args + ["--out", path("c.mp4"), "--npz", path("c.npz"), "--seed", "5", "--frames", "9"]) == 0
    a, b, c = (np.load(path(f"{n}.npz"))["frames"] for n in "abc")
    assert a.shape == (14, 16, 24, 3)
    np.testing.assert_array_equal(a[:9], b)       # the first 9 of 14 frames: a 9-frame animation
    assert np.any(b != c)                         # another noise seed, another video
    folder = tmp / "masks"                        # a folder of one mask per frame: 9 for 9 frames
    os.makedirs(folder, exist_ok=True)
    for name in [f"m{i}.png" for i in range(1, 10)] + [".hidden.png"]:
        shutil.copy(path("labels.png"), folder / name)
    assert main(args[:-1] + [str(folder), "--out", path("d.mp4"), "--npz", path("d.npz"), "--seed", "4",
                             "--frames", "9"]) == 0
    np.testing.assert_array_equal(np.load(path("d.npz"))["frames"], b)
    video, _ = read_video(path("a.mp4"))
    assert video.shape == (14, 16, 24, 3)


def test_last_frames_repeat_the_reference_end_whatever_the_chunks(run, monkeypatch):
    """Frame t comes from (F_t, F_t+1, F_t+2), the last frame repeated past the end: the last
    two frames equal those of a reference that really repeats its last frame. In chunks of 4
    frames instead of 8, the same frames up to float rounding (the noise volume is one over
    the whole video)."""
    tmp, workdir, _, _ = run
    anim = Animator(load(workdir))
    scene = make_scene(name="city", seed=5, size=24, crop=(16, 24))
    reference, labels = scene.render(np.arange(6) * 1200.0), np.repeat(scene.masks([0]), 8, axis=0)
    image = reference[0]
    short = anim.animate(image, labels[0], reference, labels[:6], seed=1)
    longer = anim.animate(image, labels[0], np.concatenate([reference, reference[-1:].repeat(2, 0)]),
                          labels, seed=1)
    assert short.shape == (6, 16, 24, 3)
    np.testing.assert_array_equal(short, longer[:6])
    monkeypatch.setattr(inference, "CHUNK", 4)
    # Chunks of 4 are another XLA program than chunks of 8: equal up to float rounding, so a
    # uint8 value may round the other way, rarely (a wrong noise offset would change them all).
    off = np.abs(anim.animate(image, labels[0], reference, labels[:6], seed=1).astype(int) - short)
    assert off.max() <= 1 and np.mean(off > 0) < 1e-3, (off.max(), np.mean(off > 0))
    # a run trained in bfloat16 animates in bfloat16, as it trained: close, not the same
    trained = load(workdir)
    with trained.config.unlocked():
        trained.config.dtype = "bfloat16"
    off = np.abs(Animator(trained).animate(image, labels[0], reference, labels[:6], seed=1).astype(int) - short)
    assert 0 < off.mean() < 4, off.mean()


def test_animate_takes_other_vgg19_weights(run, tmp_path, capsys):
    tmp, workdir, vgg, _ = run
    args = ["animate", "--workdir", workdir, "--image", str(tmp / "image.png"), "--reference",
            str(tmp / "ref.mp4"), "--frames", "2"]
    copy = str(tmp_path / "copy.safetensors")
    shutil.copy(vgg, copy)
    assert main(args + ["--out", str(tmp_path / "a.mp4"), "--npz", str(tmp_path / "a.npz")]) == 0
    assert main(args + ["--out", str(tmp_path / "b.mp4"), "--npz", str(tmp_path / "b.npz"), "--vgg19", copy]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "a.npz")["frames"], np.load(tmp_path / "b.npz")["frames"])
    capsys.readouterr()
    out = str(tmp_path / "c.mp4")
    assert main(args + ["--out", out, "--vgg19", str(tmp_path / "moved.safetensors")]) == 2
    err = capsys.readouterr().err
    assert ("config.model.vgg19 (`tlgen animate`: --vgg19), VGG-19's ImageNet weights" in err
            and f"the weights file {tmp_path}/moved.safetensors does not exist" in err
            and "Traceback" not in err and not os.path.exists(out))
    other = random_weights.write(str(tmp_path / "other.safetensors"), vgg19.abstract_params(),
                                 vgg19.torch_prefixes(), seed=1)
    assert main(args + ["--out", out, "--vgg19", other]) == 2      # not the weights it was trained with
    assert (f"{other} (model.vgg19) is not the weights file the run in {workdir} started with: its "
            "contents differ; give the file it was trained with" in capsys.readouterr().err
            and not os.path.exists(out))
    _, _, _, data = run                           # an output into the run's dataset is refused
    assert main(args + ["--out", os.path.join(data, "x.mp4")]) == 2
    assert "lies in the folder config.data.dir of the run reads" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(data, "x.mp4"))


def test_a_run_resumes_with_its_weights_moved_but_not_with_other_weights(run, tmp_path, capsys):
    tmp, workdir, vgg, _ = run
    copy = str(tmp_path / "run")
    shutil.copytree(workdir, copy)
    moved = str(tmp_path / "moved.safetensors")
    shutil.copy(vgg, moved)
    other = random_weights.write(str(tmp_path / "other.safetensors"), vgg19.abstract_params(),
                                 vgg19.torch_prefixes(), seed=1)
    older = str(tmp_path / "older")                  # a run from before weights.json: as before,
    shutil.copytree(workdir, older)                   # the file stays where the config names it
    os.remove(os.path.join(older, "weights.json"))
    assert main(["train", "--workdir", older, f"--config.model.vgg19={moved}"]) == 2
    assert "the config differs from" in capsys.readouterr().err
    resume = ["train", "--workdir", copy]            # its 2 steps done: checked, restored, no step
    assert main(resume + [f"--config.model.vgg19={other}"]) == 2
    assert (f"{other} (model.vgg19) is not the weights file the run in {copy} started with: its "
            "contents differ; give --config.model.vgg19 that file" in capsys.readouterr().err)
    assert main(resume + [f"--config.model.vgg19={moved}"]) == 0
    assert "step=2" in capsys.readouterr().out
    assert json.load(open(os.path.join(copy, "config.json")))["model"]["vgg19"] == moved


@pytest.mark.parametrize("extra, message", [
    ([], "give --reference VIDEO"),
    (["--reference", "{tmp}/ref.mp4", "--frames", "20"], "has 14 frames; --frames 20 needs as many"),
    (["--reference", "{tmp}/ref.mp4", "--image-mask", "{tmp}/small.png", "--reference-masks", "{tmp}/labels.png"],
     "is 8x16 but --image is 24x24 (HxW); give a mask of that size (or of its aspect)."),
    (["--reference", "{tmp}/ref.mp4", "--image-mask", "{tmp}/labels.png", "--reference-masks", "{tmp}/class9.png"],
     "has class 9, but the run knows 5"),
    (["--reference", "{tmp}/ref.mp4", "--image-mask", "{tmp}/labels.png", "--reference-masks", "{tmp}/small.png"],
     "is 8x16 but the reference video is 24x24 (HxW)"),
    (["--reference", "{tmp}/ref.mp4", "--image-mask", "{tmp}/none.png", "--reference-masks", "{tmp}/labels.png"],
     "none.png does not exist"),
    (["--reference", "{tmp}/ref.mp4", "--reference-masks", "{tmp}/labels.png"],
     "--reference-masks goes with --image-mask: classes are matched between the image and the reference"),
    (["--reference", "{tmp}/ref.mp4", "--image-mask", "{tmp}/labels.png", "--reference-masks", "{tmp}/few"],
     "--reference-masks {tmp}/few has 2 PNGs but the 14 reference frames animated need one each."),
    (["--reference", "{tmp}/one.mp4"], "one.mp4 has 1 frame; a reference video needs at least 2."),
])
def test_bad_animate_input_is_one_sentence(run, capsys, extra, message):
    tmp, workdir, _, _ = run
    cv2.imwrite(str(tmp / "small.png"), np.zeros((8, 16), np.uint8))     # another aspect
    cv2.imwrite(str(tmp / "class9.png"), np.full((24, 24), 9, np.uint8))
    os.makedirs(tmp / "few", exist_ok=True)
    for name in ("m1.png", "m2.png", ".m0.png"):           # a hidden file is not a mask
        shutil.copy(tmp / "labels.png", tmp / "few" / name)
    write_video(str(tmp / "one.mp4"), read_video(str(tmp / "ref.mp4"))[0][:1], fps=4)
    out = str(tmp / "bad.mp4")
    argv = ["animate", "--workdir", workdir, "--image", str(tmp / "image.png"), "--out", out]
    assert main(argv + [e.format(tmp=tmp) for e in extra]) == 2
    err = capsys.readouterr().err
    assert message.format(tmp=tmp) in err and "Traceback" not in err and not os.path.exists(out)


def test_missing_weights_or_masks_are_one_sentence(run, tmp_path, capsys):
    _, _, vgg, data = run
    base = ["train", "--config", CONFIG, "--workdir", str(tmp_path / "w"), f"--config.data.dir={data}", *SMALL]
    assert main(base + [f"--config.model.vgg19={tmp_path}/none.safetensors"]) == 2
    assert (f"VGG-19's ImageNet weights as torchvision names them (`tlgen convert-weights --kind vgg19` "
            f"converts torchvision's .pth): the weights file {tmp_path}/none.safetensors does not exist"
            in capsys.readouterr().err)
    video = str(tmp_path / "v.mp4")
    write_video(video, make_scene(name="city", size=16).render(np.arange(12) * 1200.0), 10)
    plain = str(tmp_path / "plain")
    prepare([video], plain, size=(16, 24), levels=1)
    argv = base[:-len(SMALL)] + SMALL
    argv[argv.index(f"--config.data.dir={data}")] = f"--config.data.dir={plain}"
    assert main(argv + [f"--config.model.vgg19={vgg}"]) == 2
    err = capsys.readouterr().err
    assert f"{plain} has no region masks" in err and "--masks DIR" in err
    assert not os.path.exists(tmp_path / "w")
    # one class (plain AdaIN) needs no masks: the batches come without, every label 0
    from tlgen import config as config_lib
    from tlgen.families.time_flies import training as tf_training
    config = config_lib.load(CONFIG, [o[len("--config."):] for o in SMALL] + [
        f"data.dir={plain}", f"model.vgg19={vgg}", "model.classwise=False"])
    batch = next(iter(tf_training.training(config).make_pipeline("train", 0, 1)))
    assert "masks" not in batch
    frames, masks, _, image_masks = tf_training.split_batch(batch, classwise=False)
    assert masks.shape == frames.shape[:4] and not np.any(masks) and not np.any(image_masks)


def test_eval_scores_the_model_and_two_baselines_against_the_flipped_clip(run, capsys):
    """`tlgen eval`: each held-out clip is the reference, its block's mean image flipped the
    input, the clip flipped the truth; the rows are checked against PSNRs computed here."""
    from tlgen.metrics.protocol import CLIP_SEED, eval_clips
    tmp, workdir, _, data = run
    out = str(tmp / "eval")
    assert main(["eval", "--workdir", workdir, "--out", out, "--num-clips", "2"]) == 0
    report = json.load(open(os.path.join(out, "report.json")))
    assert report["samples"] == {"clips": 2, "frames_per_clip": 4, "frames": 8}     # 6 held-out frames
    methods = {row["method"]: row for row in report["methods"]}
    assert list(methods) == ["the model", "input image, unchanged", "classwise colour transfer on pixels"]
    batches, _, _ = eval_clips(data, "validation", lengths=(16, 8, 4, 2), stride=1, num_clips=2,
                               with_masks=True, with_flow=False, with_mean=True)
    anim = Animator(load(workdir))

    def psnr(frames, truth):             # mean over frames of 10 log10(1 / MSE), [0, 1] scale
        mse = ((frames.astype(np.float64) - truth) / 255.0) ** 2
        return np.mean(10 * np.log10(1.0 / mse.mean(axis=(1, 2, 3))))
    model, unchanged = [], []
    for batch in batches:
        reference, labels = batch["frames"][0], batch["masks"][0]
        image, truth = batch["mean"][0, :, ::-1], reference[:, :, ::-1]
        made = anim.animate(image, labels[0, :, ::-1], reference, labels, seed=CLIP_SEED)
        model.append(psnr(made, truth))
        unchanged.append(psnr(np.broadcast_to(image, truth.shape), truth))
    assert report["psnr"] == methods["the model"]["psnr"] == pytest.approx(np.mean(model), rel=1e-3)
    assert methods["input image, unchanged"]["psnr"] == pytest.approx(np.mean(unchanged), rel=1e-3)
    assert methods["input image, unchanged"]["e_tmp"] == 0
    assert methods["input image, unchanged"]["ssim_to_input"] == pytest.approx(1.0, abs=1e-4)
    assert len({row["truth_e_tmp"] for row in methods.values()}) == 1 and report["truth_e_tmp"] > 0
    assert set(report["not_computed"]) == {"fid", "kid", "fvd", "lpips"} and report["swd"] > 0
    assert report["plots"] == ["clips.png"]
    assert main(["eval", "--workdir", workdir, "--out", str(tmp / "bad-eval"), "--num-clips", "0"]) == 2
    err = capsys.readouterr().err
    assert "--num-clips 0 must be at least 1." in err and "Traceback" not in err
    assert not os.path.exists(tmp / "bad-eval")


def test_eval_refuses_a_dataset_of_more_classes_than_the_run_knows(run, tmp_path):
    from tlgen.errors import UserError
    from tlgen.families.time_flies.evaluation import evaluate
    _, workdir, _, data = run
    trained = load(workdir)
    trained.config.model.num_classes = 3                        # the city's label maps hold 5
    with pytest.raises(UserError, match=rf"^{data} has 5 mask classes but the run {workdir} knows 3; evaluate it "
                                        "on a dataset of its classes.$"):
        evaluate(trained, str(tmp_path / "eval"))
    assert not os.listdir(tmp_path)


def test_colour_transfer_gives_each_class_the_reference_class_statistics():
    from tlgen.families.time_flies.evaluation import pixel_transfer
    rng = np.random.default_rng(0)
    image = rng.integers(40, 200, (6, 8, 3)).astype(np.uint8)
    labels = np.zeros((6, 8), np.uint8)
    labels[:, 4:] = 1
    labels[0, 0] = 2                                   # a class the reference does not have
    reference = rng.integers(80, 170, (2, 6, 8, 3)).astype(np.uint8)   # no clipping at 0 or 255
    ref_labels = np.zeros((2, 6, 8), np.uint8)
    ref_labels[:, 3:] = 1
    out = pixel_transfer(image, labels, reference, ref_labels)
    assert out.shape == (2, 6, 8, 3) and out[1, 0, 0].tolist() == image[0, 0].tolist()
    for t in range(2):
        for s in (0, 1):
            got, want = out[t][labels == s].astype(float), reference[t][ref_labels[t] == s].astype(float)
            np.testing.assert_allclose(got.mean(0), want.mean(0), atol=0.5)      # up to rounding to uint8
            np.testing.assert_allclose(got.std(0), want.std(0), atol=0.5)


def test_the_example_batch_is_shaped_like_the_pipelines_with_and_without_classes(run):
    """`example_batch` (what `tlgen bench` times, checked by the trainer against the first
    batch) holds label maps exactly when the pipeline does: a model of one class reads none."""
    from tlgen import config as config_lib
    from tlgen.families.time_flies import training as tf_training
    _, _, vgg, data = run
    shapes = lambda batch: {k: (np.shape(v), np.asarray(v).dtype) for k, v in batch.items()}  # noqa: E731
    for classwise in (True, False):
        config = config_lib.load(CONFIG, [o[len("--config."):] for o in SMALL] + [
            f"data.dir={data}", f"model.vgg19={vgg}", f"model.classwise={classwise}"])
        batch = next(iter(tf_training.training(config).make_pipeline("train", 0, 1)))
        assert shapes(tf_training.example_batch(config, 8)) == shapes(batch)
        assert ("masks" in batch) == classwise
