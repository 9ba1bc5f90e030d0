"""colab/quickstart.ipynb runs top to bottom (shortened training) and makes what it shows."""

import json
import math

import numpy as np

from tests.test_colab import execute


def test_quickstart(tmp_path):
    execute("quickstart.ipynb", tmp_path, REPO="unused", TRAIN_STEPS=2, WORK="qs",
            SCENE="synthetic:city:frames=504")  # 7 days, as the demo test
    work = tmp_path / "qs"
    for mode in ("subsample", "interpolate", "multiscale", "no_fast_band"):
        assert np.load(work / "timelapses" / f"{mode}.npz")["frames"].shape[0] == 48
        assert (work / "timelapses" / f"{mode}.mp4").stat().st_size > 0
    report = json.loads((work / "run" / "eval" / "report.json").read_text())
    numbers = [v for v in _leaves(report) if isinstance(v, float)]
    assert numbers and all(math.isfinite(v) for v in numbers)
    assert list((work / "run" / "eval").glob("*.png"))


def _leaves(tree):
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _leaves(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from _leaves(v)
    else:
        yield tree
