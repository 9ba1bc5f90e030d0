"""The low-resolution long-video stage through the public commands: train on a prepared
city, resume exactly, generate videos of any length chunk by chunk, bad input as one sentence."""

import json
import logging
import os
import shutil

import jax
import numpy as np
import pytest

from tlgen.cli.main import main
from tlgen.data.prepare import prepare
from tlgen.trained import load

TINY = ["--config.model.size=(16, 32)", "--config.model.input_channels=16",
        "--config.model.temporal_channels=(16, 16)", "--config.model.temporal_time_up=(1, 0)",
        "--config.model.temporal_space_up=(0, 1)", "--config.model.spatial_channels=(8,)",
        "--config.model.spatial_space_up=(1,)", "--config.model.latent_dim=16",
        "--config.model.filters=4", "--config.model.min_period=4.0", "--config.model.max_period=64.0",
        "--config.model.d_input_channels=8", "--config.model.d_channels=(8, 16)",
        "--config.model.d_head_channels=16", "--config.data.num_frames=8", "--config.data.batch_size=8",
        "--config.train.eval_batches=1", "--config.train.sample_every=0", "--config.loss.r1_every=1"]


def train(data, workdir, steps, *extra):
    return main(["train", "--config", "configs/long_video_city.py:tiny", "--workdir", workdir,
                 f"--config.data.dir={data}", f"--config.total_steps={steps}", "--config.train.log_every=1",
                 "--config.train.ckpt_every=2", *TINY, *extra])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 4-step run on 120 frames of the city at 16x32, and the same run resumed from its
    step-2 checkpoint in a copy of its work directory."""
    tmp = tmp_path_factory.mktemp("lv")
    data, workdir, resumed = str(tmp / "data"), str(tmp / "run"), str(tmp / "resumed")
    prepare(["synthetic:city:frames=120"], data, size=(16, 32), levels=1, val_fraction=0.25)
    assert train(data, workdir, 4, "--config.train.eval_every=4") == 0
    shutil.copytree(workdir, resumed)
    shutil.rmtree(os.path.join(resumed, "checkpoints", "4"))
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("tlgen.train.trainer")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        assert train(data, resumed, 4, "--config.train.eval_every=0") == 0
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert any(m.startswith("resumed from") and m.endswith("/2") for m in messages), messages
    return tmp, data, workdir


def test_training_logs_losses_r1_and_swd_and_resumes_exactly(run):
    tmp, _, workdir = run
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    train_rows = [r for r in rows if r["split"] == "train"]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4] and train_rows[-1]["skipped"] == 0
    for key in ("loss_d", "loss_g", "d_real", "d_fake"):
        assert all(np.isfinite(r[key]) and r[key] > 0 for r in train_rows)
    assert all(r["r1"] > 0 for r in train_rows)                            # R1 every step here
    evals = [r for r in rows if r["split"] == "eval"]
    assert evals[-1]["step"] == 4 and evals[-1]["swd"] > 0 and evals[-1]["motion_swd"] > 0
    a, b = load(workdir), load(str(tmp / "resumed"))
    assert a.step == b.step == 4
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))        # stopped at 2: same run


def test_generate_any_length_in_chunks_deterministically(run):
    tmp, _, workdir = run
    out = lambda name: str(tmp / name)
    args = ["generate", "--workdir", workdir, "--frames", "21", "--num", "2", "--seed", "3"]
    assert main(args + ["--chunk", "8", "--out", out("a.mp4"), "--npz", out("a.npz")]) == 0
    assert main(args + ["--chunk", "64", "--out", out("b.mp4"), "--npz", out("b.npz")]) == 0
    assert main(args + ["--chunk", "8", "--out", out("c.mp4"), "--npz", out("c.npz")]) == 0
    a, b, c = (np.load(out(n))["frames"] for n in ("a.npz", "b.npz", "c.npz"))
    assert a.shape == (2, 21, 16, 32, 3) and os.path.getsize(out("a_1.mp4")) > 0
    np.testing.assert_array_equal(a, c)                            # same seed: same videos
    assert np.abs(a.astype(int) - b).max() <= 1                    # chunks of 8 = one pass (rounding)
    assert np.abs(a[0].astype(int) - a[1]).mean() > 1              # two videos, not one twice


@pytest.mark.parametrize("extra, message", [
    (["--config.data.num_frames=200"], "no train video of {data} is 200 frames long"),
    (["--config.model.size=(16, 16)"], "holds 32x16 frames but config.model.size is 16x16"),
])
def test_bad_training_input_is_one_sentence(run, tmp_path, capsys, extra, message):
    _, data, _ = run
    assert train(data, str(tmp_path / "w"), 2, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert message.format(data=data) in err and "Traceback" not in err and len(err.splitlines()) == 1
