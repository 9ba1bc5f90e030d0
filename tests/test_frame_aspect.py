"""Frames of another aspect than square for DTVNet and FGLA, whose own test runs are square
(their metrics are pinned): a 16x24 dataset feeds 16x24 batches, and the training step, traced
on them, keeps its parameters' shapes and returns a scalar loss. The other families' test runs
are of another aspect end to end: the timescale autoencoder's in test_timescale_family, Time
Flies' at 16x24, StyleGAN-V's at 16x28, the long-video stages' at 16x32."""

import jax
import numpy as np
import pytest

from tests.test_dtvnet_family import TINY as DTVNET
from tests.test_fgla_family import TINY as FGLA
from tlgen import config as config_lib
from tlgen import family as family_lib
from tlgen.cli.main import main
from tlgen.data.prepare import prepare

CASES = {"dtvnet": ("dtvnet_clouds.py", "clouds", DTVNET), "fgla": ("fgla_landscape.py", "water", FGLA)}


@pytest.mark.parametrize("family", list(CASES))
def test_a_familys_step_takes_the_datasets_aspect(family, tmp_path, capsys):
    config_file, scene, tiny = CASES[family]
    data = str(tmp_path / "data")
    prepare([f"synthetic:{scene}:frames=32"], data, size=(16, 24), flow=True, levels=1, val_fraction=0.25)
    train = ["train", "--config", f"configs/{config_file}:tiny", "--workdir", str(tmp_path / "run"),
             f"--config.data.dir={data}", *(f"--config.{o}" for o in tiny)]
    assert main(train) == 2                                       # the overrides' size is 16x16
    assert capsys.readouterr().err.strip().endswith(
        'but config.data.image_size is 16x16; prepare it with --size 16 or set '
        '--config.data.image_size="(16, 24)".')
    config = config_lib.load(f"configs/{config_file}:tiny", [*tiny, f"data.dir={data}",
                                                             "data.image_size=(16, 24)"])
    training = family_lib.of(config).training(config)
    batch = next(iter(training.make_pipeline("train", 0, 1)))
    assert batch["frames"].shape[-3:] == (16, 24, 3)
    state = jax.eval_shape(training.init, jax.random.key(0), batch)
    stepped, metrics = jax.eval_shape(training.train_step, state, batch, jax.random.key(1))
    shapes = lambda tree: jax.tree.map(np.shape, tree)
    assert shapes(stepped.params) == shapes(state.params) and metrics["loss"].shape == ()
