"""The timescale_ae family end to end on a small synthetic capture: training lowers the
loss, the trainer writes a checkpoint, and `tlgen timelapse` / `tlgen eval` run from it."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from tests.conftest import fill_disk
from tlgen import config as config_lib
from tlgen.cli.main import main
from tlgen.data import open_dataset
from tlgen.data.dataset import data_identity
from tlgen.data.prepare import prepare
from tlgen.data.synthetic import make_scene
from tlgen.families.timescale_ae import FAMILY, make_levels
from tlgen.train.writers import read_metrics

RECORDED = os.path.join(os.path.dirname(__file__), "data", "recorded_metrics.json")

CONFIG = os.path.join(os.path.dirname(__file__), "..", "tlgen", "configs", "timescale_ae_synthetic.py")
SMALL = ["model.image_size=32", "model.widths=(8, 8)", "model.bin_channels=2", "model.num_bins=4",
         "model.background=False",
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


def test_bins_spread_over_a_longer_pyramid_with_same_time_of_day_positives_within_the_day():
    config = config_lib.load(f"{CONFIG}:tiny", ["data.dir=", "loss.target=pyramid"])
    lv = make_levels(config, [1200.0 * 2 ** i for i in range(9)])     # 20 min .. 3.6 days
    assert lv.cutoffs == (307200.0, 76800.0, 38400.0, 9600.0, 4800.0, 1200.0)
    assert lv.target_levels == (8, 6, 5, 3, 2, 0)
    day = (86400.0 * 47 / 48, 86400.0 * 49 / 48)
    # slower than a day: gaps of 0.05-0.2 of the cutoff; within a day where those gaps would
    # pass an hour: one day apart; faster: gaps of at least one frame interval
    np.testing.assert_allclose(lv.gap_bands, [(15360.0, 61440.0), day, day, (1200.0, 2400.0),
                                              (1200.0, 2400.0)], atol=0.01)
    assert lv.period_levels == (1,)              # only 3.6 days lies beyond the day
    assert lv.period_bands == (1, 2)             # the bands one day apart
    config.loss.period_target = False
    assert make_levels(config, [1200.0 * 2 ** i for i in range(9)]).period_levels == ()
    config.loss.gap_bands = ((0.0, 0.0), (3600.0, 7200.0), (0.0, 0.0), (0.0, 0.0), (0.0, 0.0))
    assert make_levels(config, [1200.0 * 2 ** i for i in range(9)]).period_bands == (2,)


def test_the_papers_recipe_by_config():
    """PAPER_RECIPE (the config file's overrides) on the paper's six levels: every level
    reconstructs its pyramid level, positives over the fast half of each band, no day."""
    from tlgen.configs.timescale_ae_synthetic import PAPER_RECIPE
    config = config_lib.load(f"{CONFIG}:tiny", ["data.dir=", *PAPER_RECIPE])
    assert not config.model.background and not config.loss.one_level_per_anchor
    lv = make_levels(config, [1200.0 * 2 ** i for i in range(6)])
    assert lv.target_levels == (5, 4, 3, 2, 1, 0)
    cutoffs = np.array(lv.cutoffs[:-1])
    np.testing.assert_allclose(lv.gap_bands, np.stack([0.5 * cutoffs, cutoffs], 1))


@pytest.mark.parametrize("one_level", [True, False])
def test_levels_beyond_the_period_reconstruct_its_mean(data_dir, one_level):
    """With a period of 3000 s the 9600 s and 4800 s cutoffs lie beyond it: their target is the
    batch's period mean; with the anchor itself in its place the loss is the frame target's."""
    from tlgen.families.timescale_ae.levels import make_levels as layout
    from tlgen.families.timescale_ae.training import losses
    extra = ["loss.period=3000.0", f"loss.one_level_per_anchor={one_level}"]
    config, plain = _config(data_dir, extra), _config(data_dir, [*extra, "loss.period_target=False"])
    lv = layout(config, open_dataset(data_dir).level_periods)
    assert lv.period_levels == (1, 2)
    batch = next(iter(FAMILY.training(config).make_pipeline("train", 0, 1)))
    assert batch["period_target"].shape == (8, 2, 32, 32, 3)
    params = jax.jit(FAMILY.training(config).init)(jax.random.PRNGKey(0), batch).params["ae"]
    run = lambda cfg, b: jax.jit(lambda p, b: losses(p, b, config=cfg, lv=layout(cfg, [1200.0, 2400.0, 4800.0, 9600.0]),
                                                     dtype=jax.numpy.float32)[1])(params, b)
    own = run(config, batch)
    as_frame = run(config, {**batch, "period_target": np.repeat(batch["anchor"][:, None], 2, axis=1)})
    frame = run(plain, {k: v for k, v in batch.items() if k != "period_target"})
    for key in ("recon_k1", "recon_k2", "recon_k3", "recon_k4", "contrastive"):
        np.testing.assert_allclose(as_frame[key], frame[key], rtol=1e-5)
    assert own["recon_k1"] != frame["recon_k1"] and own["recon_k2"] != frame["recon_k2"]
    np.testing.assert_allclose(own["recon_k3"], frame["recon_k3"], rtol=1e-5)


def test_a_trained_model_keeps_its_bins_periods_on_another_capture(data_dir, tmp_path):
    from tlgen.families.timescale_ae.levels import nearest_level, trained_levels
    other = [900.0 * 2 ** i for i in range(5)]                      # another camera's pyramid
    config = _config(data_dir)
    assert trained_levels(config, other).level_periods == (1200.0, 2400.0, 4800.0, 9600.0)
    config.data.dir = str(tmp_path / "moved")                      # training data gone: the other's
    assert trained_levels(config, other).level_periods == (900.0, 1800.0, 7200.0, 14400.0)
    assert nearest_level(other, 9600.0) == 3 and nearest_level(other, 100.0) == 0


def test_training_steps_lower_the_loss(data_dir):
    config = _config(data_dir, ["optim.lr=0.003", "optim.schedule=constant", "model.background=True"])
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


def test_look_positives_by_config_and_an_unknown_kind_is_one_sentence(data_dir, tmp_path, capsys):
    config = _config(data_dir, ["loss.gap_bands=()", "loss.period=6000.0", "loss.period_positive=look"])
    batch = next(iter(FAMILY.training(config).make_pipeline("train", 0, 1)))
    lv = make_levels(config, open_dataset(data_dir).level_periods)
    assert lv.period_bands and all(batch["gap"][:, j][batch["pos_valid"][:, j]].min() >= 6000 * 47 / 48
                                   for j in lv.period_bands)
    # at the anchor's phase (within 1/48 of the period), and not always one period away (as
    # "apart" takes them): some nearest look lies several periods off
    bands = list(lv.period_bands)
    gaps = batch["gap"][:, bands][batch["pos_valid"][:, bands]]
    assert np.all(np.abs(np.mod(gaps + 3000, 6000) - 3000) <= 6000 / 48)
    assert gaps.max() > 6000 * 49 / 48
    work = tmp_path / "w"
    assert main(["train", "--config", f"{CONFIG}:tiny", "--workdir", str(work), f"--config.data.dir={data_dir}",
                 *(f"--config.{o}" for o in SMALL), "--config.loss.period_positive=nearest"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("config.loss.period_positive is 'nearest'; use one of apart, look.")
    assert len(err.splitlines()) == 1 and not (work / "checkpoints").exists()


def test_frames_of_another_aspect_train_and_make_timelapses(tmp_path, capsys):
    """A 32x48 dataset trains and makes timelapses of its size (the truth `tlgen eval` scores
    such a dataset against is the crop prepare stored: test_data_synthetic)."""
    from tlgen.data.video_io import read_video

    data, workdir, out = str(tmp_path / "wide"), str(tmp_path / "run"), tmp_path / "out"
    prepare(["synthetic:city:frames=120,interval=1200"], data, size=(32, 48), levels=4,
            val_fraction=0.25)
    train = ["train", "--workdir", workdir, "--config", f"{CONFIG}:tiny", f"--config.data.dir={data}",
             *(f"--config.{o}" for o in SMALL)]
    assert main(train) == 2                                     # SMALL's image_size is 32
    assert capsys.readouterr().err.strip().endswith(
        'but config.model.image_size is 32x32; prepare it with --size 32 or set '
        '--config.model.image_size="(32, 48)".')
    assert main(train + ["--config.model.image_size=(32, 48)"]) == 0
    out.mkdir()
    assert main(["timelapse", "--workdir", workdir, "--out", str(out / "t.mp4"), "--frames", "4",
                 "--npz", str(out / "t.npz")]) == 0
    assert np.load(out / "t.npz")["frames"].shape == (4, 32, 48, 3)
    assert read_video(str(out / "t.mp4"))[0].shape == (4, 32, 48, 3)


def test_cli_timelapse_and_eval_from_a_trained_workdir(data_dir, tmp_path, capsys, caplog, small_disk):
    from tlgen.families.timescale_ae.levels import trained_levels
    from tlgen.train.trainer import train

    workdir, data_copy = str(tmp_path / "run"), str(tmp_path / "city")
    shutil.copytree(data_dir, data_copy)                      # its own dataset: prepared again below
    train(_config(data_copy), workdir)
    with open(os.path.join(workdir, "data.json")) as f:
        assert json.load(f) == data_identity(data_copy)
    other = str(tmp_path / "city16")
    prepare(["synthetic:city:frames=40,interval=1200"], other, size=16, levels=4, val_fraction=0.25)
    with open(RECORDED) as f:     # the moved family computes what it did before the move
        recorded = json.load(f)["timescale_ae"]
    rows = read_metrics(os.path.join(workdir, "metrics.jsonl"))
    assert [r["step"] for r in rows] == [r["step"] for r in recorded]
    for got, want in zip(rows, recorded):
        np.testing.assert_allclose([got[k] for k in want if k != "split"],
                                   [want[k] for k in want if k != "split"], rtol=1e-5, atol=1e-6)
    out = tmp_path / "out"
    base = ["timelapse", "--workdir", workdir, "--frames", "5", "--start", "0", "--end", "100000"]
    assert main(base + ["--out", str(out / "sub.mp4")]) == 2            # no such folder yet
    assert capsys.readouterr().err.strip().endswith(f"--out {out / 'sub.mp4'}: its folder {out} does not exist; create it first.")
    out.mkdir()
    runs = {"sub": ["--mode", "subsample", "--npz", str(out / "sub.npz"), "--sheet", str(out / "sub.png")],
            "interp": ["--mode", "interpolate", "--interp", "lerp", "--keyframes", "3", "--keep-bins", "2"],
            "multi": ["--mode", "multiscale", "--min-period", "2400", "--remove-band", "3",
                      "--insert-band", "0", "--from", "50000"],
            "nb": ["--render", "neighbours", "--keep-bins", "1", "--npz", str(out / "nb.npz")],
            "first": ["--step", "2"]}
    for name, extra in [*runs.items(), ("sub", runs["sub"])]:       # sub again, over its outputs
        assert main(base + ["--out", str(out / f"{name}.mp4")] + extra) == 0, name
        assert os.path.getsize(out / f"{name}.mp4") > 0
    npz = np.load(out / "sub.npz")
    assert npz["frames"].shape == (5, 32, 32, 3) and npz["frames"].dtype == np.uint8
    assert "reaches past" not in caplog.text
    assert main(base[:-2] + ["--end", "1e9", "--out", str(out / "past.mp4")]) == 0
    assert "span 0-1e+09 s reaches past the video's" in caplog.text
    np.testing.assert_allclose(npz["times"], np.linspace(0, 100000, 5))
    assert np.all(np.abs(npz["source_times"][:, 0] - npz["times"]) <= 600.0)   # nearest frames
    # --render neighbours --keep-bins 1: the neighbour rendering of the subsampled frames' slowest bin
    from tlgen.families.timescale_ae.inference import open_synthesizer
    from tlgen.trained import load
    synth, _ = open_synthesizer(load(workdir))
    nb = np.load(out / "nb.npz")
    codes = synth.encode_frames(np.searchsorted(synth.frame_times, nb["source_times"][:, 0]))
    np.testing.assert_array_equal(nb["frames"], synth.render_neighbours(codes, 1))
    # bad input: one sentence, exit 2, nothing written
    assert main(base[:-4] + ["--start", "500", "--end", "100", "--out", str(out / "bad.mp4")]) == 2
    assert "must be after" in capsys.readouterr().err
    assert main(base[:-4] + ["--start", "1e9", "--end", "2e9", "--out", str(out / "bad.mp4")]) == 2
    assert "span 1e+09-2e+09 s lies outside the video's 0-" in capsys.readouterr().err
    assert main(base[:-4] + ["--keep-bins", "5", "--out", str(out / "bad.mp4")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("error: --keep-bins 5 is outside 1..4 (the model has 4 bins).") and len(err.splitlines()) == 1
    band = ["--out", str(out / "bad.mp4"), "--from", "50000", "--insert-band"]
    for extra, says in [(["--out", str(out / "bad.gif")], f"--out {out / 'bad.gif'} must end in .mp4."),
                        (band + ["3", "--keep-bins", "2"],                # a mask given is not widened
                         "--insert-band 3 is not among the bins kept (0..1); keep at least 4."),
                        (band + ["1", "--remove-band", "1"],
                         "--remove-band 1 is also the insert band; edit two different bins."),
                        (["--out", str(out / "bad.mp4"), "--mode", "interpolate", "--keyframes", "1"],
                         "--keyframes 1: interpolation needs from 2 keyframes up to --frames (5)."),
                        (["--out", str(out / "bad.mp4"), "--insert-band", "0", "--from", "1e9"],
                         "--from 1e+09 s lies outside the video's 0-"),
                        (["--out", str(out / "bad.mp4"), "--step", "1"], f"{workdir} has no checkpoint 1; it has 2."),
                        (["--out", str(out / "bad.mp4"), "--frames", "10000000000"],
                         "--frames 10000000000 would hold about 1.84e+05 GB of 32x32 frames in memory"),
                        (["--out", str(out / "bad.mp4"), "--data", other],
                         f"{other} holds 16x16 frames but the run {workdir} takes 32x32; prepare it with --size 32.")]:
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"tlgen timelapse: error: {says}") and len(err.splitlines()) == 1
    assert main(["eval", "--workdir", workdir, "--data", other]) == 2
    assert capsys.readouterr().err.strip().endswith("prepare it with --size 32.")
    one = str(tmp_path / "one")                        # a capture of a single frame
    prepare(["synthetic:city:frames=1"], one, size=32, levels=1, val_fraction=0)
    for argv, says in [(base[:-4] + ["--data", one, "--out", str(out / "bad.mp4")],
                        "the video has one frame (0 s); a timelapse spans time"),
                       (["eval", "--workdir", workdir, "--data", one],
                        f"the train split of {one} begins with a block of one frame"),
                       (base[:-4] + ["--start", "1e9", "--out", str(out / "bad.mp4")],   # no --end given
                        "--start/--end span 1e+09-"),
                       (base + ["--data", data_copy, "--npz", os.path.join(data_copy, "x.npz"), "--out",
                                str(out / "bad.mp4")], "lies in the folder --data reads")]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert says in err and len(err.splitlines()) == 1, err
    assert not os.path.exists(out / "bad.mp4") and not os.path.exists(os.path.join(data_copy, "x.npz"))
    assert main(base + ["--render", "paint", "--out", str(out / "bad.mp4")]) == 2   # argparse's usage
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        "argument --render: invalid choice: 'paint' (choose from 'decoder', 'neighbours')")
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
        assert np.isfinite(row["median"]) and np.isfinite(row["neighbours"])
        best = max(row[b] for b in ("raw", "oracle blur", "median", "period mean", "nearest frames"))
        assert row["neighbours - best baseline"] == pytest.approx(row["neighbours"] - best, abs=2e-3)
    assert report["plots"] == ["band_fidelity.png", "latent_pca.png"]
    span = block.times[-1] - block.times[0]           # a block shorter than a cutoff is said so
    longer = [f"{c:g}s" for c in (9600.0, 4800.0, 2400.0, 1200.0) if c > span]
    assert [n for n in report["notes"] if " lasts " in n] == ([
        f"the evaluated block (validation, video 0) lasts {span:g} s, less than the cutoffs "
        f"{', '.join(longer)}: within it those bins hardly change, so their rows say little; evaluate "
        "on a longer capture (--data, or prepare with a larger --val-fraction)."] if longer else [])
    assert report["samples"]["frames"] == len(pick)
    # leakage: cutoffs 9600 .. 1200 s; the day cycle belongs in bin 0, vans (1 h) in bin 2,
    # passers-by faster than the frame interval in the fastest bin
    leak = {r["component"]: r for r in report["leakage"]}
    assert [leak[c]["bin"] for c in ("season", "day_night", "stalls", "vans", "vehicles")] == [0, 0, 0, 2, 3]
    for r in leak.values():
        shares = [r[f"bin_{j}"] for j in range(4)]
        assert min(shares) >= 0 and r["share_in_bin"] == shares[r["bin"]]
        assert r["largest_in_slower_bin"] == max(shares[:r["bin"]], default=0.0)
    timelapse = {r["method"]: r for r in report["timelapse"]}
    assert set(timelapse) >= {"raw subsample", "interpolate (masked)", "subsample (neighbours)"}
    # flicker per cutoff; the default mask's row is the timelapse's
    flicker = {r["keep_bins"]: r for r in report["flicker"]}
    assert [r["cutoff_s"] for r in report["flicker"]] == [9600.0, 4800.0, 2400.0, 1200.0]
    assert {r["raw subsample"] for r in flicker.values()} == {timelapse["raw subsample"]["e_tmp"]}
    default = timelapse["subsample (masked)"]["keep_bins"]
    assert flicker[default]["decoder"] == timelapse["subsample (masked)"]["e_tmp"]
    assert flicker[default]["neighbours"] == timelapse["subsample (neighbours)"]["e_tmp"]
    assert (tmp_path / "run" / "eval" / "latent_pca.png").exists()

    # the run's dataset prepared again with other levels: resuming is refused, nothing changed;
    # the bins keep the periods they trained with
    prepare(["synthetic:city:frames=160,interval=1200"], data_copy, size=(32, 32), levels=5,
            val_fraction=0.25, overwrite=True)
    kept = sorted(os.listdir(workdir))
    assert main(["train", "--workdir", workdir, "--config.total_steps=3"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"tlgen train: error: {data_copy} is not the dataset the run in {workdir} started on: its "
        "level_periods, levels, num_pyramid_frames, splits changed since; prepare it as it was, or "
        "train in a new --workdir.")
    assert sorted(os.listdir(workdir)) == kept
    config = config_lib.read(os.path.join(workdir, "config.json"))
    now = open_dataset(data_copy).level_periods
    assert trained_levels(config, now).level_periods == (1200.0, 2400.0, 9600.0, 19200.0)
    assert trained_levels(config, now, workdir).level_periods == (1200.0, 2400.0, 4800.0, 9600.0)
    # the same data in another folder (a dataset moved): the run resumes on it
    assert main(["train", "--workdir", workdir, "--config.total_steps=3", f"--config.data.dir={data_dir}"]) == 0
    assert config_lib.read(os.path.join(workdir, "config.json")).data.dir == data_dir


def test_bench_runs_on_a_bare_checkout_without_a_dataset(tmp_path, capsys):
    """No prepared dataset: the step runs on the family's example batch (nominal capture)."""
    out = str(tmp_path / "bench.json")
    assert main(["bench", "--config", f"{CONFIG}:tiny", "--config.model.image_size=16",
                 "--config.model.widths=(8, 16)", "--config.model.blocks=0", "--config.model.num_bins=3",
                 "--config.loss.gap_bands=()", "--config.data.batch_size=8", "--steps", "1",
                 "--json", out]) == 0
    [record] = json.loads(open(out).read())   # a list of records
    assert record["data"] == "synthetic" and "pipeline" not in record
    assert record["step"]["frames_per_step"] == 8 * (1 + 2 + 1 + 1)  # anchor, 2 positives, target, background
    assert record["inference"]["what"] == "decoder: codes -> frames" and record["inference"]["frames"] == 8


@pytest.mark.parametrize("name", ["timescale_ae_synthetic", "timescale_ae_video"])
@pytest.mark.parametrize("variant", ["tiny", "base", "large"])
def test_config_variants_lay_out_levels_on_a_six_level_dataset(name, variant):
    path = os.path.join(os.path.dirname(CONFIG), f"{name}.py")
    config = config_lib.load(f"{path}:{variant}")
    lv = make_levels(config, [1200.0 * 2 ** i for i in range(6)])
    assert len(lv.gap_bands) == config.model.num_bins - 1
    assert all(side % 2 ** (len(config.model.widths) - 1) == 0 for side in config.model.image_size)


def test_times_are_seconds_or_date_times_and_never_infinite():
    from tlgen.errors import UserError
    from tlgen.families.timescale_ae.inference import parse_time

    assert parse_time("90", 0.0, 5.0, "--start") == 90.0
    assert parse_time(None, 0.0, 5.0, "--start") == 5.0
    assert parse_time("1970-01-01T00:02:00", 60.0, 0.0, "--end") == 60.0
    for text in ("inf", "-inf", "nan"):
        with pytest.raises(UserError, match=f"--from '{text}' is not a finite number of seconds"):
            parse_time(text, 0.0, 0.0, "--from")


def test_a_dataset_without_a_validation_split_says_how_to_train_on_it(tmp_path, capsys):
    data, work = str(tmp_path / "all-train"), tmp_path / "w"
    prepare(["synthetic:city:frames=160,interval=1200"], data, size=(32, 32), levels=4, val_fraction=0)
    assert main(["train", "--config", f"{CONFIG}:tiny", "--workdir", str(work), f"--config.data.dir={data}",
                 *(f"--config.{o}" for o in SMALL), "--config.train.eval_every=1"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"tlgen train: error: {data} cannot feed evaluation ({data} has no split 'validation'; it has "
        "train); prepare it with a larger --val-fraction, or set --config.train.eval_every=0 and "
        "--config.train.sample_every=0.")
    assert not work.exists()
