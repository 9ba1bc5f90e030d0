"""colab/fgla.ipynb runs top to bottom (shortened training) and makes what it shows."""

import numpy as np

from tests.test_colab import execute


def test_fgla_two_region_references(tmp_path):
    execute("fgla.ipynb", tmp_path, REPO="unused", TRAIN_STEPS=3, FRAMES=6, SCENE_FRAMES=48, WORK="fg")
    work = tmp_path / "fg"
    runs = {name: np.load(work / f"animated_{name}.npz") for name in ("codebook", "two_references", "two_references_slow")}
    assert all(r["frames"].shape == (6, 32, 32, 3) for r in runs.values())
    base, both, slow = runs["codebook"]["latents"], runs["two_references"]["latents"], runs["two_references_slow"]["latents"]
    np.testing.assert_array_equal(both[:, 0], np.broadcast_to(base[0, 0], both[:, 0].shape))  # ground: codebook
    assert np.abs(both[:, 1:] - base[0, 1:]).max() > 0                                        # sky, water: references
    np.testing.assert_allclose(runs["two_references_slow"]["flows"][0], 0.25 * runs["two_references"]["flows"][0],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(slow, both)
