"""`tlgen prepare --masks auto`: regions of like motion for footage without masks."""

import numpy as np
import pytest

from tlgen.data.flow import FlowEstimator
from tlgen.data.pipelines import clip_dataset
from tlgen.data.prepare import prepare
from tlgen.data.regions import motion_regions
from tlgen.data.synthetic import make_scene
from tlgen.errors import UserError


def test_prepare_auto_masks_recover_the_water_scenes_three_motions(tmp_path):
    """Held-out rendering (seed 1): ground, sky and river found, in the scene's own order."""
    out = str(tmp_path / "water")
    meta = prepare(["synthetic:water:seed=1,frames=64"], out, size=(32, 32), flow=True, levels=1,
                   val_fraction=0.0, masks=["auto"])
    assert meta["has_masks"] and meta["num_classes"] == 3
    batch = next(iter(clip_dataset(out, "train", length=2, batch_size=2, seed=0, with_masks=True)))
    found, true = batch["masks"][0, 0], make_scene("water", seed=1, size=32).masks([0.0])[0]
    for k in range(3):
        iou = ((found == k) & (true == k)).sum() / ((found == k) | (true == k)).sum()
        assert iou > 0.9, (k, iou)
    np.testing.assert_array_equal(batch["masks"][0, 0], batch["masks"][1, 1])   # one mask per video


def test_a_still_video_is_one_region_and_a_single_frame_too():
    still = np.repeat(make_scene("clouds", size=32).render([0.0]), 6, axis=0)
    assert np.all(motion_regions(still, FlowEstimator("dis")) == 0)
    assert np.all(motion_regions(still[:1], FlowEstimator("dis")) == 0)


def test_mask_folders_must_match_the_sources(tmp_path):
    with pytest.raises(UserError, match="one --masks auto for all"):
        prepare(["synthetic:clouds", "synthetic:water"], str(tmp_path / "x"), masks=["auto", "auto", "auto"])
