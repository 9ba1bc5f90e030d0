"""The family interface: a family that lives only in tests/ (tests/toy_family) trains,
evaluates, generates and benchmarks through the public CLI; frozen networks, evaluators,
sharding rules and the generic loader work for it as for the built-in families."""

import dataclasses
import json
import os
import subprocess
import sys

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P
from safetensors.numpy import save_file

from tests import toy_family
from tests.conftest import fill_disk
from tlgen import family as family_lib
from tlgen.cli.main import main
from tlgen.data.video_io import read_video
from tlgen.errors import UserError
from tlgen.parallel import make_mesh, param_shardings
from tlgen.trained import load
from tlgen.train.writers import read_metrics

CONFIG = "tests/toy_family/config.py:tiny"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    weights = str(root / "features.safetensors")
    rng = np.random.default_rng(0)
    save_file({"projection": rng.normal(size=(192, 16)).astype(np.float32), "unused": np.zeros(3)}, weights)
    workdir = str(root / "run")
    # keep_best by the largest feature distance, the first eval's (it falls): so the best
    # checkpoint is not also the newest one
    assert main(["train", "--config", CONFIG, "--workdir", workdir, f"--config.model.features={weights}",
                 "--config.train.keep_best=max:feature_distance"]) == 0
    return root, workdir, weights


def test_trains_with_an_evaluator_on_a_frozen_network_that_drives_keep_best(run):
    _, workdir, _ = run
    rows = read_metrics(os.path.join(workdir, "metrics.jsonl"))
    train = [r["loss"] for r in rows if r["split"] == "train"]
    evals = {r["step"]: r for r in rows if r["split"] == "eval"}
    assert len(train) == 6 and train[-1] < train[0]
    assert sorted(evals) == [3, 6] and all({"mse", "feature_distance"} <= set(r) for r in evals.values())
    best = max(evals, key=lambda s: evals[s]["feature_distance"])
    kept = sorted(int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit())
    assert best != 6 and kept == sorted({6, best})            # keep_checkpoints=1 + the best by the evaluator
    with open(os.path.join(workdir, "checkpoints", "6", "shapes", "metadata")) as f:
        saved = json.load(f)
    assert not any("projection" in k or "features" in k for k in saved)   # never checkpointed
    assert any(k.startswith(".opt_state['net']") for k in saved)
    assert not any(k.startswith(".opt_state['features']") for k in saved)  # never optimized


def test_missing_weights_are_one_sentence_naming_the_config_key(tmp_path, capsys):
    argv = ["train", "--config", CONFIG, "--workdir", str(tmp_path / "w"),
            f"--config.model.features={tmp_path}/none.safetensors"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"tlgen train: error: config.model.features: the weights file {tmp_path}/none."
                   "safetensors does not exist; give the path of a .safetensors or .npz file.")
    assert main(argv[:-1] + [f"--config.model.features={tmp_path}"]) == 2
    assert (f"config.model.features: the weights file {tmp_path} is a folder; give the path of"
            in capsys.readouterr().err)
    bad = str(tmp_path / "bad.safetensors")
    save_file({"projection": np.zeros((10, 16), np.float32)}, bad)
    assert main(argv[:-1] + [f"--config.model.features={bad}"]) == 2
    assert "'projection' has shape (10, 16), expected (192, 16)" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "w")         # bad input leaves no workdir behind


def test_eval_command_writes_the_family_report(run, capsys):
    _, workdir, _ = run
    assert main(["eval", "--workdir", workdir]) == 0
    printed = capsys.readouterr().out.split()
    assert [os.path.basename(p) for p in printed] == ["report.json", "report.md", "videos.png"]
    report = json.loads(open(printed[0]).read())
    assert report["step"] == 6 and len(report["videos"]) == 4 and report["feature_distance"] >= 0
    assert cv2.imread(printed[2]).shape == (8 * 8, 8 * 8, 3)


def test_a_saved_runs_commands_import_its_family_from_any_folder(run, tmp_path):
    """`tlgen eval --workdir W` of a family outside tlgen, from another folder and without
    PYTHONPATH: the family is imported from where its config file was (config.family_path)."""
    _, workdir, _ = run
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assert json.loads(open(os.path.join(workdir, "config.json")).read())["family_path"] == root
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    plain = subprocess.run([sys.executable, "-c", "import tests.toy_family"], cwd=tmp_path, env=env,
                           capture_output=True, text=True)
    assert plain.returncode == 1 and "No module named 'tests" in plain.stderr
    done = subprocess.run([sys.executable, "-m", "tlgen", "eval", "--workdir", workdir], cwd=tmp_path,
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == os.path.join(workdir, "eval", "report.json")


def test_generate_streams_chunks_equal_to_one_shot_rendering(run, tmp_path, capsys):
    _, workdir, _ = run
    out, npz = str(tmp_path / "g.mp4"), str(tmp_path / "g.npz")
    assert main(["generate", "--workdir", workdir, "--out", out, "--frames", "40", "--num", "3", "--grid",
                 "--seed", "5", "--npz", npz, "--fps", "10"]) == 0
    assert "3 video(s) of 40 frames" in capsys.readouterr().out
    frames = np.load(npz)["frames"]
    assert frames.shape == (3, 40, 8, 8, 3)          # three chunks of at most 16 frames
    trained = load(workdir)
    phases = np.random.default_rng(5).uniform(0, 8, 3).astype(np.float32)
    np.testing.assert_array_equal(frames, toy_family.render(trained, phases, np.arange(40, dtype=np.float32)))
    video, fps = read_video(out)
    assert video.shape == (40, 16, 16, 3) and fps == 10  # 3 videos tiled 2 x 2


def test_generate_publishes_its_videos_and_npz_together_or_neither(run, tmp_path, monkeypatch, capsys):
    _, workdir, _ = run
    out, npz = tmp_path / "g.mp4", tmp_path / "g.npz"
    out.write_text("old video")
    npz.write_text("old frames")

    def interrupted(*args, **kwargs):        # Ctrl-C while the npz is written, after the video
        raise KeyboardInterrupt
    monkeypatch.setattr(np, "savez_compressed", interrupted)
    assert main(["generate", "--workdir", workdir, "--out", str(out), "--frames", "20", "--npz", str(npz)]) == 130
    assert out.read_text() == "old video" and npz.read_text() == "old frames"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.mp4", "g.npz"]
    monkeypatch.undo()
    # frames that --npz would hold past this machine's memory are refused at the first chunk
    assert main(["generate", "--workdir", workdir, "--out", str(out), "--frames", str(2 ** 40),
                 "--npz", str(npz)]) == 2
    err = capsys.readouterr().err
    assert f"--frames {2 ** 40} would hold about" in err and "or leave out --npz" in err
    assert out.read_text() == "old video" and npz.read_text() == "old frames"


def test_generate_onto_a_full_disk_is_one_sentence_and_leaves_nothing(run, small_disk, capsys):
    _, workdir, _ = run
    disk = small_disk("64k")
    fill_disk(disk)
    out = str(disk / "g.mp4")
    assert main(["generate", "--workdir", workdir, "--out", out, "--frames", "64", "--num", "4"]) == 4
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tlgen generate: error: cannot write {disk}/g_")   # g_0.mp4 ... g_3.mp4
    assert "No space left on device" in err
    assert sorted(os.listdir(disk)) == ["filler"]


def test_bench_runs_from_the_example_batch(run, tmp_path, capsys):
    _, _, weights = run
    out = str(tmp_path / "bench.json")
    assert main(["bench", "--config", CONFIG, f"--config.model.features={weights}", "--steps", "2",
                 "--json", out]) == 0
    [record] = json.loads(open(out).read())   # a list of records
    assert record["data"] == "synthetic" and record["family"] == "tests.toy_family"
    assert record["step"]["flops"] > 0 and 0 < record["mfu"] and record["parameters"] == {"net": (4 * 32 + 32) + (32 * 192 + 192)}
    assert record["inference"]["what"] == "sample" and record["inference"]["frames"] == 8 * 8


def test_loader_places_parameters_by_the_family_sharding_rules(run):
    _, workdir, _ = run
    import ml_collections
    mesh = make_mesh(ml_collections.ConfigDict(dict(data=4, fsdp=2, model=1)))
    trained = load(workdir, mesh=mesh)
    assert trained.params["net"]["Dense_0"]["kernel"].sharding.spec == P("fsdp", None)
    assert trained.params["net"]["Dense_1"]["kernel"].sharding.spec == P(None, "fsdp")  # size rule
    assert set(trained.frozen) == {"features"} and trained.frozen["features"]["projection"].shape == (192, 16)


def test_commands_a_family_lacks_are_one_sentence(run, tmp_path, capsys):
    root, workdir, _ = run
    image = str(root / "still.png")
    cv2.imwrite(image, np.zeros((8, 8, 3), np.uint8))
    assert main(["animate", "--workdir", workdir, "--image", image, "--out", str(tmp_path / "a.mp4")]) == 2
    assert capsys.readouterr().err.strip() == (
        "tlgen animate: error: the toy family cannot animate a still image; `tlgen animate` works "
        "with runs of the dtvnet, fgla or time_flies families.")
    assert not os.listdir(tmp_path)


def test_sharding_rules_first_match_and_bad_rules():
    import ml_collections
    mesh = make_mesh(ml_collections.ConfigDict(dict(data=2, fsdp=4, model=1)))
    tree = {"params": {"a": {"kernel": jax.ShapeDtypeStruct((8, 6), np.float32)},
                       "b": {"kernel": jax.ShapeDtypeStruct((8, 6), np.float32)}}}
    rules = [(r"a/kernel$", ("fsdp", None)), (r"kernel$", (None, None))]
    specs = param_shardings(tree, mesh, min_bytes=0, rules=rules)
    assert specs["params"]["a"]["kernel"].spec == P("fsdp", None)
    assert specs["params"]["b"]["kernel"].spec == P(None, None)     # the second rule, not the size rule
    for bad, match in (([(r"kernel$", (None, "fsdp"))], "do not divide 6"),
                       ([(r"kernel$", ("pipe", None))], "are not mesh axes"),
                       ([(r"kernel$", (None, None, None))], "gives 3 dimensions")):
        with pytest.raises(UserError, match=match):
            param_shardings(tree, mesh, rules=bad)


def test_registry_lists_the_builtin_families_and_their_commands():
    specs = family_lib.builtin()
    assert sorted(specs) == ["dtvnet", "fgla", "long_video", "long_video_sr", "stylegan_v", "time_flies", "timescale_ae"]
    for name in ("dtvnet", "fgla"):
        assert set(specs[name].commands) == {"eval", "animate"}, name
    for name in ("long_video", "stylegan_v"):
        assert set(specs[name].commands) == {"eval", "generate"}, name
    sr = specs["long_video_sr"].commands
    assert set(sr) == {"eval", "generate"} and not sr["generate"].listed     # it says: give it as --superres
    assert set(specs["time_flies"].commands) == {"animate", "eval"}
    assert set(specs["timescale_ae"].commands) == {"eval", "timelapse"}
    assert family_lib.get("tests.toy_family") is toy_family.FAMILY


def test_a_run_whose_dataset_moved_asks_for_data(tmp_path):
    import ml_collections

    from tlgen.trained import Trained
    data = tmp_path / "city"
    data.mkdir()
    config = ml_collections.ConfigDict({"data": {"dir": str(data)}})
    trained = Trained(config, None, 0, {}, {}, None, workdir=str(tmp_path / "run"))
    assert trained.data_dir() == str(data) and trained.data_dir("elsewhere") == "elsewhere"
    data.rmdir()                                   # moved away after training
    with pytest.raises(UserError) as error:
        trained.data_dir()
    assert str(error.value) == (f"{data}, the dataset {tmp_path / 'run'} was trained on (its "
                                "config.data.dir), is not there any more; pass --data DIR with where it "
                                "is now, or another prepared dataset.")
    assert trained.data_dir(str(tmp_path)) == str(tmp_path)


def _broken(step=None, networks=("net",)):
    """The toy family with another train_step (wrapping the toy's) or other networks."""
    def training(config):
        fam = toy_family.training(config)
        if step is None:
            return fam
        return dataclasses.replace(fam, train_step=lambda *a, **k: step(*fam.train_step(*a, **k)))
    return dataclasses.replace(toy_family.FAMILY, training=training, networks=networks)


def _other_example(config, n, example=toy_family.FAMILY.example_batch):
    return {**example(config, n), "time": np.zeros((n, 3), np.float32)}


@pytest.mark.parametrize("family, says", [
    (_broken(lambda state, metrics: state), "the family toy's train_step returned TrainState; return "
                                            "(state, {metric name: scalar})."),
    (_broken(lambda state, metrics: (state, {"mse": metrics["loss"]})),
     "the family toy's train_step returned the metrics mse; return scalars, 'loss' among them."),
    (_broken(lambda state, metrics: (state, {**metrics, "per": jnp.arange(3.0)})),
     "the family toy's train_step returned the metrics loss, per (per not scalar); return scalars, "
     "'loss' among them."),
    (_broken(networks=("net", "nett")), "the family toy names nett among the networks inference loads, "
                                        "but it is not in its init's state.params."),
    (dataclasses.replace(toy_family.FAMILY, example_batch=_other_example),
     "the family toy's example_batch differs from its pipeline's batches in ['time']: ((8, 3), 'float32') "
     "against ((8, 8), 'float32'); make them alike (tlgen bench times the example)."),
])
def test_a_familys_mistakes_against_the_interface_are_one_sentence(run, tmp_path, monkeypatch, capsys,
                                                                   family, says):
    _, _, weights = run
    monkeypatch.setattr(toy_family, "FAMILY", family)
    assert main(["train", "--config", CONFIG, "--workdir", str(tmp_path / "w"), "--config.mesh.fsdp=1",
                 f"--config.model.features={weights}"]) == 2
    assert capsys.readouterr().err.strip() == f"tlgen train: error: {says}"


def test_generate_refuses_frames_other_than_uint8(run, tmp_path, monkeypatch, capsys):
    _, workdir, _ = run
    floats = lambda trained, args: (chunk / 255.0 for chunk in toy_family.generate(trained, args))
    monkeypatch.setattr(toy_family, "FAMILY", dataclasses.replace(
        toy_family.FAMILY, commands={"generate": family_lib.Command(floats)}))
    assert main(["generate", "--workdir", workdir, "--frames", "4", "--out", str(tmp_path / "g.mp4")]) == 2
    assert capsys.readouterr().err.strip() == (
        "tlgen generate: error: the toy family's generate made frames of float64 (1, 4, 8, 8, 3); it "
        "must make uint8 (videos, frames, H, W, 3).")
    assert not os.listdir(tmp_path)


def test_a_family_imports_from_above_its_config_and_a_missing_one_names_where_it_looked(tmp_path, monkeypatch):
    """A project folder with its config beside its package (no configs/ folder): the run's
    family_path is the project; a family gone from there, or one whose own import fails, say so."""
    from tlgen import config as config_lib
    monkeypatch.setattr(sys, "path", list(sys.path))
    project = tmp_path / "proj"
    (project / "mylab" / "nextframe").mkdir(parents=True)
    (project / "exps" / "mylab").mkdir(parents=True)     # a folder of that name is not the package
    (project / "mylab" / "nextframe" / "__init__.py").write_text("")
    (project / "mylab" / "broken.py").write_text("import mylab_missing_dependency\n")
    (project / "exps" / "exp.py").write_text(
        "from tlgen.configs import common\n\n"
        "def get_config(arg='tiny'):\n    return common.base('mylab.nextframe', arg)\n")
    config = config_lib.load(f"{project}/exps/exp.py")
    assert config.family_path == str(project)
    moved = tmp_path / "moved"
    project.rename(moved)                                # the project moved: the run's path is stale
    with pytest.raises(UserError, match=rf"^config.family 'mylab.nextframe' is found neither in {project} nor "
                                        r"on the Python path; give --config.family_path=FOLDER, the folder "
                                        r"that holds its top package 'mylab'"):
        family_lib.of(config)
    with pytest.raises(ModuleNotFoundError, match="mylab_missing_dependency"):   # its own bug, as it is
        family_lib.get("mylab.broken", str(moved))
