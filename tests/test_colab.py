"""The Colab notebooks run top to bottom (shortened training) and produce what they show."""

import json
import math
import os

import nbformat
import numpy as np
from nbclient import NotebookClient

COLAB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "colab")


def execute(name: str, workdir, **params) -> None:
    """Runs colab/<name> in `workdir` with the parameters cell replaced by `params`."""
    book = nbformat.read(os.path.join(COLAB, name), as_version=4)
    cells = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "a notebook has exactly one cell tagged 'parameters'"
    cells[0].source = "\n".join(f"{k} = {v!r}" for k, v in params.items())
    NotebookClient(book, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(workdir)}}).execute()
    for cell in book.cells:   # a failing cell raises above; none may print a traceback either
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error"


def test_notebooks_are_stripped_and_open_with_a_badge():
    for name in ("quickstart.ipynb", "animate.ipynb"):
        book = nbformat.read(os.path.join(COLAB, name), as_version=4)
        assert "colab-badge.svg" in book.cells[0].source
        for cell in book.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None


def test_quickstart(tmp_path):
    execute("quickstart.ipynb", tmp_path, REPO="unused", TRAIN_STEPS=20, WORK="qs")
    work = tmp_path / "qs"
    for mode in ("subsample", "interpolate", "multiscale", "no_fast_band"):
        assert np.load(work / "timelapses" / f"{mode}.npz")["frames"].shape[0] == 48
        assert (work / "timelapses" / f"{mode}.mp4").stat().st_size > 0
    report = json.loads((work / "run" / "eval" / "report.json").read_text())
    numbers = [v for v in _leaves(report) if isinstance(v, float)]
    assert numbers and all(math.isfinite(v) for v in numbers)
    assert list((work / "run" / "eval").glob("*.png"))


def test_animate(tmp_path):
    execute("animate.ipynb", tmp_path, REPO="unused", TRAIN_STEPS=4, FRAMES=8, WORK="an")
    work = tmp_path / "an"
    seed0 = np.load(work / "animated_seed0.npz")["frames"]
    seed1 = np.load(work / "animated_seed1.npz")["frames"]
    reference = np.load(work / "animated_reference.npz")["frames"]
    assert seed0.shape[0] == seed1.shape[0] == reference.shape[0] == 8
    assert not np.array_equal(seed0, seed1)


def _leaves(tree):
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _leaves(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from _leaves(v)
    else:
        yield tree
