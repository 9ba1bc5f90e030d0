"""colab/animate.ipynb runs top to bottom (shortened training) and makes what it shows."""

import numpy as np

from tests.test_colab import execute


def test_animate(tmp_path):
    execute("animate.ipynb", tmp_path, REPO="unused", TRAIN_STEPS=4, FRAMES=8, WORK="an")
    work = tmp_path / "an"
    seed0 = np.load(work / "animated_seed0.npz")["frames"]
    seed1 = np.load(work / "animated_seed1.npz")["frames"]
    reference = np.load(work / "animated_reference.npz")["frames"]
    assert seed0.shape[0] == seed1.shape[0] == reference.shape[0] == 8
    assert not np.array_equal(seed0, seed1)
