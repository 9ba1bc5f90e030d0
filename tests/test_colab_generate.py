"""colab/generate.ipynb runs top to bottom (shortened training) and makes what it shows."""

import json

import numpy as np

from tests.test_colab import execute


def test_generate_long_and_slow_motion(tmp_path):
    execute("generate.ipynb", tmp_path, REPO="unused", TRAIN_STEPS=1, FRAMES=40, SCENE_FRAMES=48, WORK="gen")
    work = tmp_path / "gen"
    normal, slow = (np.load(work / f"{n}.npz")["frames"][0] for n in ("normal", "slow"))
    assert normal.shape == slow.shape == (40, 32, 32, 3)
    np.testing.assert_array_equal(slow[::4], normal[:10])      # 4x slow motion of the same video
    assert not np.array_equal(normal[0], normal[-1])            # the video moves
    report = json.loads((work / "run" / "eval" / "report.json").read_text())     # section 5: tlgen eval
    assert report["swd"] > 0 and report["samples"]["clips"] >= 2 and "clips.png" in report["plots"]
