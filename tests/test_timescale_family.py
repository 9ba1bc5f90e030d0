"""The timescale_ae family end to end on a small synthetic capture: training lowers the
loss, the trainer writes a checkpoint, and `tlgen timelapse` / `tlgen eval` run from it."""

import json
import os

import jax
import numpy as np
import pytest

from tests.conftest import fill_disk
from tlgen import config as config_lib
from tlgen.cli.main import main
from tlgen.data import open_dataset
from tlgen.data.prepare import prepare
from tlgen.data.synthetic import make_scene
from tlgen.families.timescale_ae import FAMILY, make_levels
from tlgen.train.writers import read_metrics

RECORDED = os.path.join(os.path.dirname(__file__), "data", "recorded_metrics.json")

CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "timescale_ae_synthetic.py")
SMALL = ["model.image_size=32", "model.widths=(8, 8)", "model.bin_channels=2", "model.num_bins=4",
         "loss.gap_bands=((84600.0, 88200.0), (0.0, 0.0), (0.0, 0.0))", "data.batch_size=8",
         "total_steps=2", "train.log_every=1", "train.eval_every=0", "train.sample_every=0",
         "train.ckpt_every=2", "optim.warmup_steps=0"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("tae") / "city")
    prepare(["synthetic:city:frames=160,interval=1200"], out, size=(32, 32), levels=4,
            val_fraction=0.25)
    return out


def _config(data_dir, extra=()):
    return config_lib.load(f"{CONFIG}:tiny", [f"data.dir={data_dir}", *SMALL, *extra])


def test_levels_follow_the_dataset_periods(data_dir):
    lv = make_levels(_config(data_dir), [1200.0, 2400.0, 4800.0, 9600.0])
    assert lv.cutoffs == (9600.0, 4800.0, 2400.0, 1200.0)        # keep k bins <-> level M-k
    assert lv.contrastive_levels == (1, 2, 3)
    assert lv.gap_bands[0] == (84600.0, 88200.0)
    assert all(hi > lo >= 1199 for lo, hi in lv.gap_bands)
    np.testing.assert_allclose(sum(lv.level_weights), 1.0)
    assert lv.level_weights[-1] > lv.level_weights[0]              # more weight on fast cutoffs


def test_training_steps_lower_the_loss(data_dir):
    config = _config(data_dir, ["optim.lr=0.003", "optim.schedule=constant"])
    fam = FAMILY.training(config)
    batch = next(iter(fam.make_pipeline("train", 0, 1)))
    state = fam.init(jax.random.PRNGKey(0), batch)
    step = jax.jit(fam.train_step)
    losses = []
    for i in range(6):
        state, metrics = step(state, batch, jax.random.PRNGKey(i))
        losses.append(float(metrics["loss"]))
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert {"contrastive", "recon", "psnr_k4", "recon_k1"} <= set(metrics)


def test_cli_timelapse_and_eval_from_a_trained_workdir(data_dir, tmp_path, capsys, small_disk):
    from tlgen.train.trainer import train

    workdir = str(tmp_path / "run")
    train(_config(data_dir), workdir)
    with open(RECORDED) as f:     # the moved family computes what it did before the move
        recorded = json.load(f)["timescale_ae"]
    rows = read_metrics(os.path.join(workdir, "metrics.jsonl"))
    assert [r["step"] for r in rows] == [r["step"] for r in recorded]
    for got, want in zip(rows, recorded):
        np.testing.assert_allclose([got[k] for k in want if k != "split"],
                                   [want[k] for k in want if k != "split"], rtol=1e-5, atol=1e-6)
    out = tmp_path / "out"
    base = ["timelapse", "--workdir", workdir, "--frames", "5", "--start", "0", "--end", "100000"]
    runs = {"sub": ["--mode", "subsample", "--npz", str(out / "sub.npz"), "--sheet", str(out / "sub.png")],
            "interp": ["--mode", "interpolate", "--interp", "lerp", "--keyframes", "3", "--keep-bins", "2"],
            "multi": ["--mode", "multiscale", "--min-period", "2400", "--remove-band", "3",
                      "--insert-band", "0", "--from", "50000"]}
    for name, extra in runs.items():
        assert main(base + ["--out", str(out / f"{name}.mp4")] + extra) == 0, name
        assert os.path.getsize(out / f"{name}.mp4") > 0
    npz = np.load(out / "sub.npz")
    assert npz["frames"].shape == (5, 32, 32, 3) and npz["frames"].dtype == np.uint8
    np.testing.assert_allclose(npz["times"], np.linspace(0, 100000, 5))
    assert np.all(np.abs(npz["source_times"][:, 0] - npz["times"]) <= 600.0)   # nearest frames
    # bad input: one sentence, exit 2, nothing written
    assert main(base[:-4] + ["--start", "500", "--end", "100", "--out", str(out / "bad.mp4")]) == 2
    assert "must be after" in capsys.readouterr().err
    assert not (out / "bad.mp4").exists()
    disk = small_disk("64k")                           # a full disk: one sentence, nothing left
    fill_disk(disk)
    assert main(base + ["--out", str(disk / "t.mp4"), "--npz", str(disk / "t.npz")]) == 4
    assert capsys.readouterr().err.startswith(f"tlgen timelapse: error: cannot write {disk}/t.mp4: No space")
    assert sorted(os.listdir(disk)) == ["filler"]

    assert main(["eval", "--workdir", workdir]) == 0
    report = json.loads((tmp_path / "run" / "eval" / "report.json").read_text())
    assert [r["cutoff_s"] for r in report["band_fidelity"]] == [9600.0, 4800.0, 2400.0, 1200.0]
    ds = open_dataset(data_dir)          # the raw row, recomputed from the stored frames
    block = ds.blocks("validation", 0)[0]
    pick = np.unique(np.linspace(0, block.count - 1, min(64, block.count)).astype(int))
    raw = np.stack([ds.frames("validation")[block.start + i]["image"] for i in pick]) / 255.0
    video = ds.metadata["videos"][block.video_id]
    scene = make_scene(**video["synthetic"])
    for row in report["band_fidelity"]:
        truth = scene.render_band(video["start_time"] + block.times[pick], row["cutoff_s"])
        mse = np.mean((raw - truth) ** 2, axis=(1, 2, 3))
        assert row["raw"] == pytest.approx(np.mean(10 * np.log10(1 / mse)), abs=2e-3)
        assert row["oracle blur"] >= row["raw"] - 1e-3 and row["oracle_sigma_s"] >= 0   # sigma 0 = raw
        assert np.isfinite(row["median"])
    assert {r["method"] for r in report["timelapse"]} >= {"raw subsample", "interpolate (masked)"}
    assert (tmp_path / "run" / "eval" / "latent_pca.png").exists()


def test_bench_runs_on_a_bare_checkout_without_a_dataset(tmp_path, capsys):
    """No prepared dataset: the step runs on the family's example batch (nominal capture)."""
    out = str(tmp_path / "bench.json")
    assert main(["bench", "--config", f"{CONFIG}:tiny", "--config.model.image_size=16",
                 "--config.model.widths=(8, 16)", "--config.model.blocks=0", "--config.model.num_bins=3",
                 "--config.loss.gap_bands=()", "--config.data.batch_size=8", "--steps", "1",
                 "--json", out]) == 0
    record = json.loads(open(out).read())
    assert record["data"] == "synthetic" and "pipeline" not in record
    assert record["step"]["frames_per_step"] == 8 * (1 + 2 + 1)     # anchor, 2 positives, 1 target
    assert record["inference"]["what"] == "decoder: codes -> frames" and record["inference"]["frames"] == 8


@pytest.mark.parametrize("name", ["timescale_ae_synthetic", "timescale_ae_video"])
@pytest.mark.parametrize("variant", ["tiny", "base", "large"])
def test_config_variants_lay_out_levels_on_a_six_level_dataset(name, variant):
    path = os.path.join(os.path.dirname(CONFIG), f"{name}.py")
    config = config_lib.load(f"{path}:{variant}")
    lv = make_levels(config, [1200.0 * 2 ** i for i in range(6)])
    assert len(lv.gap_bands) == config.model.num_bins - 1
    assert config.model.image_size % 2 ** (len(config.model.widths) - 1) == 0
