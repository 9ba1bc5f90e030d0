"""Frames of another aspect than square: the animation families train on a 16x24 dataset and
animate a square photo into 16x24 videos, StyleGAN-V trains, evaluates and generates at 16x28
(the timescale autoencoder's run is in test_timescale_family, the long-video stages' in
test_long_video_family)."""

import cv2
import numpy as np
import pytest

from tests import random_weights
from tests.test_dtvnet_family import TINY as DTVNET
from tests.test_fgla_family import TINY as FGLA
from tests.test_stylegan_v_family import TINY as STYLEGAN_V
from tests.test_time_flies_family import SMALL as TIME_FLIES
from tlgen.cli.main import main
from tlgen.data.prepare import prepare
from tlgen.data.synthetic import make_scene
from tlgen.data.video_io import read_video, write_video
from tlgen.models import vgg19
from tlgen.train.writers import read_metrics

CASES = {   # family: (config, scene, its tiny overrides, the outputs in the npz and their sizes)
    "dtvnet": ("dtvnet_clouds.py", "clouds", [f"--config.{o}" for o in DTVNET],
               {"frames": (16, 24, 3), "flows": (8, 12, 2)}),
    "fgla": ("fgla_landscape.py", "water", [f"--config.{o}" for o in FGLA],
             {"frames": (16, 24, 3), "flows": (16, 24, 2)}),
    "time_flies": ("time_flies_city.py", "city", TIME_FLIES, {"frames": (16, 24, 3)}),
}


@pytest.mark.parametrize("family", list(CASES))
def test_a_family_trains_and_animates_at_the_datasets_aspect(family, tmp_path, capsys):
    config, scene, overrides, outputs = CASES[family]
    data, workdir = str(tmp_path / "data"), str(tmp_path / "run")
    prepare([f"synthetic:{scene}:frames=32"], data, size=(16, 24), flow=family != "time_flies",
            levels=1, val_fraction=0.25)
    photo = make_scene(scene, seed=2, size=40).render([0.0])[0]          # square: fitted
    cv2.imwrite(str(tmp_path / "photo.png"), photo[..., ::-1])
    extra = []
    if family == "time_flies":
        vgg = random_weights.write(str(tmp_path / "vgg19.safetensors"), vgg19.abstract_params(),
                                   vgg19.torch_prefixes())
        write_video(str(tmp_path / "ref.mp4"), make_scene(scene, seed=3, size=40).render(
            np.arange(6) * 1200.0), 10)
        extra = ["--reference", str(tmp_path / "ref.mp4")]
        overrides = overrides + [f"--config.model.vgg19={vgg}"]
    train = ["train", "--config", f"configs/{config}:tiny", "--workdir", workdir,
             f"--config.data.dir={data}", *overrides, "--config.total_steps=2",
             "--config.train.eval_every=0", "--config.train.sample_every=0"]
    assert main(train) == 2                                       # the overrides' size is 16x16
    assert capsys.readouterr().err.strip().endswith(
        'but config.data.image_size is 16x16; prepare it with --size 16 or set '
        '--config.data.image_size="(16, 24)".')
    assert main(train + ["--config.data.image_size=(16, 24)"]) == 0
    out = tmp_path / "out"
    out.mkdir()
    assert main(["animate", "--workdir", workdir, "--image", str(tmp_path / "photo.png"), "--frames", "5",
                 "--out", str(out / "a.mp4"), "--npz", str(out / "a.npz"), *extra]) == 0
    assert "5 frames 16x24 (HxW) at 12 fps (input 40x40 resized and center-cropped to 16x24" in capsys.readouterr().out
    npz = np.load(out / "a.npz")
    for name, shape in outputs.items():
        assert npz[name].shape[1:] == shape, name
    assert read_video(str(out / "a.mp4"))[0].shape == (5, 16, 24, 3)


def test_stylegan_v_trains_evaluates_and_generates_frames_of_another_aspect(tmp_path):
    data, workdir = str(tmp_path / "data"), str(tmp_path / "run")
    prepare(["synthetic:clouds:frames=48"], data, size=(16, 28), levels=1, val_fraction=0.25)
    assert main(["train", "--config", "configs/stylegan_v_clouds.py:tiny", "--workdir", workdir,
                 f"--config.data.dir={data}", *STYLEGAN_V, "--config.model.resolution=(16, 28)",
                 "--config.total_steps=2", "--config.train.eval_every=2", "--config.train.eval_batches=1",
                 "--config.train.sample_every=0"]) == 0
    evaluated = [r for r in read_metrics(f"{workdir}/metrics.jsonl") if r["split"] == "eval"][-1]
    assert evaluated["swd"] > 0 and evaluated["motion_swd"] > 0              # the evaluators ran
    out = str(tmp_path / "g.mp4")
    assert main(["generate", "--workdir", workdir, "--out", out, "--frames", "5"]) == 0
    assert read_video(out)[0].shape == (5, 16, 28, 3)
