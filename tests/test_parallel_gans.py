"""The GAN families' training steps (generator, discriminator and R1 updates, the clips'
augmentation) sharded over 8 fake devices (data x fsdp) equal the single-device steps. R1 runs
at every step: each step then holds every update (the steps without R1 hold a subset of its
program, and the trainer's choice between the two is tested in test_engine_trainer)."""

import pytest

from tests.test_long_video_family import TINY as LONG_VIDEO_TINY
from tests.test_parallel_timescale import assert_sharded_matches_single_device
from tests.test_stylegan_v_family import TINY as STYLEGAN_V_TINY
from tlgen import config as config_lib
from tlgen.data.prepare import prepare

CASES = {
    "stylegan_v": ("configs/stylegan_v_clouds.py:tiny", "synthetic:clouds:frames=48", (16, 28), STYLEGAN_V_TINY),
    "long_video": ("configs/long_video_city.py:tiny", "synthetic:city:frames=60", (16, 32), LONG_VIDEO_TINY),
}


@pytest.mark.parametrize("family", list(CASES))
def test_gan_sharded_steps_match_single_device(family, tmp_path):
    config_file, source, size, tiny = CASES[family]
    data = str(tmp_path / "data")
    prepare([source], data, size=size, levels=1, val_fraction=0)
    overrides = [o.removeprefix("--config.") for o in tiny]
    # SGD: Adam's normalization turns the rounding noise of a gradient near zero (which differs
    # between reduction orders) into an update of up to lr, hiding what is compared here
    config = config_lib.load(config_file, overrides + [f"data.dir={data}", "mesh.fsdp_min_bytes=0",
                                                       "optim.g.name=sgd", "optim.d.name=sgd",
                                                       "loss.r1_every=1"])
    assert_sharded_matches_single_device(config, atol=2e-5)
