"""Frames of another aspect than square: DTVNet and FGLA train on a 16x24 dataset and animate
a square photo into 16x24 videos (the other families' runs are of another aspect in their own
tests: the timescale autoencoder's in test_timescale_family, Time Flies' at 16x24, StyleGAN-V's
at 16x28, the long-video stages' at 16x32)."""

import cv2
import numpy as np
import pytest

from tests.test_dtvnet_family import TINY as DTVNET
from tests.test_fgla_family import TINY as FGLA
from tlgen.cli.main import main
from tlgen.data.prepare import prepare
from tlgen.data.synthetic import make_scene
from tlgen.data.video_io import read_video

CASES = {   # family: (config, scene, its tiny overrides, the outputs in the npz and their sizes)
    "dtvnet": ("dtvnet_clouds.py", "clouds", [f"--config.{o}" for o in DTVNET],
               {"frames": (16, 24, 3), "flows": (8, 12, 2)}),
    "fgla": ("fgla_landscape.py", "water", [f"--config.{o}" for o in FGLA],
             {"frames": (16, 24, 3), "flows": (16, 24, 2)}),
}


@pytest.mark.parametrize("family", list(CASES))
def test_a_family_trains_and_animates_at_the_datasets_aspect(family, tmp_path, capsys):
    config, scene, overrides, outputs = CASES[family]
    data, workdir = str(tmp_path / "data"), str(tmp_path / "run")
    prepare([f"synthetic:{scene}:frames=32"], data, size=(16, 24), flow=True, levels=1,
            val_fraction=0.25)
    photo = make_scene(scene, seed=2, size=40).render([0.0])[0]          # square: fitted
    cv2.imwrite(str(tmp_path / "photo.png"), photo[..., ::-1])
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
                 "--out", str(out / "a.mp4"), "--npz", str(out / "a.npz")]) == 0
    assert "5 frames 16x24 (HxW) at 12 fps (input 40x40 resized and center-cropped to 16x24" in capsys.readouterr().out
    npz = np.load(out / "a.npz")
    for name, shape in outputs.items():
        assert npz[name].shape[1:] == shape, name
    assert read_video(str(out / "a.mp4"))[0].shape == (5, 16, 24, 3)
