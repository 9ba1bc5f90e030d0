"""The generic trainer on the engine test families: outputs, resume, bad checkpoints,
config mismatches, non-finite steps, best-checkpoint keeping, two-optimizer GANs."""

import glob
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from tests import engine_config
from tests.conftest import fill_disk
from tlgen import checkpoint
from tlgen import config as config_lib
from tlgen.cli.main import main
from tlgen.errors import UserError
from tlgen import family as family_lib
from tlgen.train.trainer import NonFiniteError, train
from tlgen.train.writers import read_metrics


def make_config(arg="regression", **overrides):
    config = engine_config.get_config(arg)
    for key, value in overrides.items():
        node = config
        *parents, leaf = key.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    config.lock()
    return config


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train_rows(workdir, split="train"):
    path = os.path.join(workdir, "metrics.jsonl")
    rows = read_metrics(path) if os.path.exists(path) else []
    return [r for r in rows if r["split"] == split]


def ckpt_steps(workdir):
    """Committed checkpoints (Orbax renames a step's tmp directory when it is complete)."""
    path = os.path.join(workdir, "checkpoints")
    return sorted(int(d) for d in os.listdir(path) if d.isdigit()) if os.path.isdir(path) else []


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 12-step run: log every step, eval at 6 and 12, checkpoints at 4, 8, 12."""
    workdir = str(tmp_path_factory.mktemp("reference"))
    final = train(make_config(), workdir)
    return workdir, final


def tensorboard_scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value)]} read back from the TFRecord event files in `folder`, as TensorBoard
    shows them: a session restarted at step s (a START session log) drops the steps >= s before it."""
    import struct

    from tensorboardX.proto import event_pb2
    scalars: dict = {}
    for name in sorted(os.listdir(folder)):
        data = open(os.path.join(folder, name), "rb").read()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4                       # length, its crc, record, its crc
            if event.session_log.status == event_pb2.SessionLog.START:
                scalars = {tag: [(s, v) for s, v in points if s < event.step] for tag, points in scalars.items()}
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def test_the_tensorboard_writer_does_not_import_torch(tmp_path):
    """PyTorch (installed here) is not imported by a run's writer: it cost 3.5 s per start."""
    code = ("import sys; from tlgen.train.writers import MetricWriter; "
            f"MetricWriter({str(tmp_path)!r}).write(1, 'train', {{'loss': 0.5}}); "
            "assert 'torch' not in sys.modules and 'tensorboardX' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    assert tensorboard_scalars(str(tmp_path / "tb")) == {"train/loss": [(1, 0.5)]}


def test_run_writes_metrics_checkpoints_and_config(reference):
    workdir, final = reference
    rows = train_rows(workdir)
    assert [r["step"] for r in rows] == list(range(1, 13))
    assert all(r["skipped"] == 0 and math.isfinite(r["loss"]) for r in rows)
    assert [r["step"] for r in train_rows(workdir, "eval")] == [6, 12]
    assert final["step"] == 12 and not final["preempted"]
    assert final["loss"] == rows[-1]["loss"]
    assert final["eval/loss"] == train_rows(workdir, "eval")[-1]["loss"]
    assert ckpt_steps(workdir) == [8, 12]                              # keep_checkpoints=2
    scalars = tensorboard_scalars(os.path.join(workdir, "tb"))         # TensorBoard holds the same
    assert [(s, v) for s, v in scalars["train/loss"]] == [(r["step"], pytest.approx(r["loss"])) for r in rows]
    assert [s for s, _ in scalars["eval/loss"]] == [6, 12]
    with open(os.path.join(workdir, "config.json")) as f:
        assert json.load(f)["family"] == "tests.engine_family"


def test_resume_extends_and_rejects_a_different_model(reference, tmp_path, caplog):
    workdir = str(tmp_path / "w")
    shutil.copytree(reference[0], workdir)
    final = train(make_config(total_steps=14), workdir)             # total_steps may change
    assert final["step"] == 14
    assert [r["step"] for r in train_rows(workdir)] == list(range(1, 15))
    assert "nothing to train" not in caplog.text
    assert train(make_config(total_steps=10), workdir)["step"] == 14     # said, nothing undone
    assert "the run is at step 14, past total_steps 10: nothing to train" in caplog.text
    assert train(make_config(total_steps=14), workdir)["step"] == 14
    assert "the run has done its total_steps 14: nothing to train" in caplog.text
    assert [r["step"] for r in train_rows(workdir)] == list(range(1, 15))
    with pytest.raises(UserError, match="model.width"):
        train(make_config(model__width=8), workdir)
    os.remove(os.path.join(workdir, "config.json"))                  # only the checkpoint knows now
    with pytest.raises(UserError, match=r"checkpoints/14 does not fit .*\.params\['net'\]\['Dense_0'\]\['bias'\]: checkpoint \(16,\)"):
        train(make_config(model__width=8), workdir)


def test_a_run_that_stopped_before_its_first_checkpoint_starts_again_with_the_new_config(reference, tmp_path):
    workdir = tmp_path / "w"
    workdir.mkdir()                                   # a first attempt wrote its config, then failed
    shutil.copy(os.path.join(reference[0], "config.json"), workdir / "config.json")
    (workdir / "checkpoints" / "4.orbax-checkpoint-tmp-1").mkdir(parents=True)   # an unfinished save
    assert train(make_config(model__width=8, total_steps=2), str(workdir))["step"] == 2
    assert json.loads((workdir / "config.json").read_text())["model"]["width"] == 8
    with pytest.raises(UserError, match="model.width"):               # from now on it is a run
        train(make_config(total_steps=4), str(workdir))


def test_resuming_names_another_familys_run_and_a_stretched_schedule(reference, tmp_path, caplog):
    workdir = tmp_path / "w"
    shutil.copytree(reference[0], workdir)
    saved = json.loads((workdir / "config.json").read_text())
    (workdir / "config.json").write_text(json.dumps({**saved, "family": "dtvnet"}))
    with pytest.raises(UserError, match=rf"^{workdir} holds a dtvnet run, not tests.engine_family; give "
                                        "this run a --workdir of its own.$"):
        train(make_config(), str(workdir))
    saved["optim"]["schedule"] = "linear"            # as if it had trained with a linear decay
    (workdir / "config.json").write_text(json.dumps(saved))
    assert train(make_config(total_steps=13, optim__schedule="linear"), str(workdir))["step"] == 13
    assert ("total_steps 12 -> 13: the linear learning-rate schedule now spans the new total, so the "
            "rate jumps where the run resumes") in caplog.text


def test_corrupt_newest_checkpoint_falls_back_to_previous(reference, tmp_path, caplog):
    workdir = str(tmp_path / "w")
    shutil.copytree(reference[0], workdir)
    for root, _, files in os.walk(os.path.join(workdir, "checkpoints", "12", "state")):
        for name in files:
            open(os.path.join(root, name), "w").close()            # truncate every file
    with caplog.at_level(logging.WARNING, logger="tlgen.checkpoint"):
        final = train(make_config(), workdir)
    assert "checkpoints/12 is corrupt (unreadable metadata" in caplog.text
    assert os.path.isdir(os.path.join(workdir, "checkpoints_bad", "12"))
    assert final["step"] == 12
    redo = {r["step"]: r["loss"] for r in train_rows(workdir)}
    ref = {r["step"]: r["loss"] for r in train_rows(reference[0])}
    assert redo == ref                                                 # steps 9..12 recomputed bitwise


def _array_files(step_dir):
    """The state's array data files (where Orbax keeps them varies between saves)."""
    return glob.glob(os.path.join(step_dir, "state", "**", "d", "*"), recursive=True)


def _truncate_array_files(step_dir):
    for path in _array_files(step_dir):
        with open(path, "r+b") as f:
            f.truncate(10)


def _garble_metadata(step_dir):
    with open(os.path.join(step_dir, "state", "_METADATA"), "w") as f:
        f.write("{not json")


def _remove_the_state_metadata(step_dir):
    os.remove(os.path.join(step_dir, "state", "_METADATA"))


def _change_a_value_silently(step_dir):
    """Rewrites the state with one parameter changed (bit rot the storage did not notice):
    it reads back fine, to other values than were saved."""
    import orbax.checkpoint as ocp
    path = os.path.join(step_dir, "state")
    checkpointer = ocp.StandardCheckpointer()
    state = checkpointer.restore(path)
    state["params"]["net"]["Dense_0"]["bias"] = np.asarray(state["params"]["net"]["Dense_0"]["bias"]) + 1e-3
    shutil.rmtree(path)
    checkpointer.save(path, state)
    checkpointer.wait_until_finished()


def _remove_the_data_position(step_dir):
    for path in glob.glob(os.path.join(step_dir, "data", "process_*.json")):
        os.remove(path)


def _remove_the_state(step_dir):
    shutil.rmtree(os.path.join(step_dir, "state"))


@pytest.mark.parametrize("corrupt,reason", [(_truncate_array_files, "unreadable array data"),
                                            (_garble_metadata, "unreadable metadata"),
                                            (_remove_the_state_metadata, "unreadable metadata (the state's tree"),
                                            (_remove_the_data_position, "a missing file (File "),
                                            (_remove_the_state, "a missing file ("),
                                            (_change_a_value_silently, "a checksum mismatch in .params['net']['Dense_0']['bias']")])
def test_corrupt_checkpoints_are_quarantined_and_the_previous_one_used(reference, tmp_path, caplog,
                                                                      corrupt, reason):
    workdir = str(tmp_path / "w")
    shutil.copytree(reference[0], workdir)
    corrupt(os.path.join(workdir, "checkpoints", "12"))
    with caplog.at_level(logging.WARNING, logger="tlgen.checkpoint"):
        final = train(make_config(), workdir)
    assert f"checkpoints/12 is corrupt ({reason}" in caplog.text
    assert os.path.isdir(os.path.join(workdir, "checkpoints_bad", "12")) and final["step"] == 12
    assert {r["step"]: r["loss"] for r in train_rows(workdir)} == \
        {r["step"]: r["loss"] for r in train_rows(reference[0])}    # steps 9..12 redone bitwise


@pytest.mark.parametrize("corrupt,reason", [(_change_a_value_silently, "a checksum mismatch in params/net/Dense_0/bias"),
                                            (_truncate_array_files, "unreadable array data"),
                                            (_remove_the_state, "a missing file")])
def test_the_inference_loader_names_a_corrupt_checkpoint_and_the_step_before(reference, tmp_path, corrupt, reason):
    from tlgen.errors import StorageError
    from tlgen.trained import load
    workdir = str(tmp_path / "w")
    shutil.copytree(reference[0], workdir)
    corrupt(os.path.join(workdir, "checkpoints", "12"))
    with pytest.raises(StorageError) as error:
        load(workdir)
    assert str(error.value).startswith(f"checkpoint {workdir}/checkpoints/12 is corrupt ({reason}")
    assert str(error.value).endswith(f"pass --step 8 for the one before it, or run `tlgen train "
                                     f"--workdir {workdir}` to set it aside and train on.")
    assert load(workdir, step=8).step == 8
    corrupt(os.path.join(workdir, "checkpoints", "8"))
    with pytest.raises(StorageError, match=r"checkpoints/8 is corrupt .*; pass --step 12 for another "
                                           r"checkpoint of the run\.$"):
        load(workdir, step=8)


def test_storage_errors_are_retried_then_stop_without_losing_anything(reference, tmp_path, monkeypatch,
                                                                     capsys):
    import errno

    import orbax.checkpoint as ocp
    workdir = str(tmp_path / "w")
    shutil.copytree(reference[0], workdir)
    monkeypatch.setattr(checkpoint, "RETRY_DELAYS_S", (0.01, 0.01))
    restore = ocp.CheckpointManager.restore
    failures = []

    def flaky(self, *args, **kwargs):        # the storage layer times out `left` more times
        if failures and failures[0] > 0:
            failures[0] -= 1
            raise OSError(errno.ETIMEDOUT, "Connection timed out")
        return restore(self, *args, **kwargs)
    monkeypatch.setattr(ocp.CheckpointManager, "restore", flaky)

    failures[:] = [10 ** 6]                   # storage down: stop, touch nothing
    metrics = open(os.path.join(workdir, "metrics.jsonl")).read()
    assert main(["train", "--workdir", workdir, "--config.total_steps=40"]) == 4
    err = capsys.readouterr().err.strip()
    assert err == (f"tlgen train: error: checkpoint {workdir}/checkpoints/12 could not be read "
                   "(TimeoutError: [Errno 110] Connection timed out); it is kept. Fix the storage "
                   "and run the same command again.")
    assert ckpt_steps(workdir) == [8, 12] and not os.path.exists(os.path.join(workdir, "checkpoints_bad"))
    assert open(os.path.join(workdir, "metrics.jsonl")).read() == metrics

    # a checkpoint of another number of processes that cannot be read: the count comes first
    data = os.path.join(workdir, "checkpoints", "12", "data")
    os.rename(os.path.join(data, "process_0-of-1.json"), os.path.join(data, "process_0-of-2.json"))
    assert main(["train", "--workdir", workdir, "--config.total_steps=40"]) == 2
    assert "checkpoints/12 was written by 2 processes, this run has 1" in capsys.readouterr().err
    os.rename(os.path.join(data, "process_0-of-2.json"), os.path.join(data, "process_0-of-1.json"))

    failures[:] = [2]                         # a blip: retried, then the run resumes at 12
    assert main(["train", "--workdir", workdir, "--config.total_steps=13"]) == 0
    assert [r["step"] for r in train_rows(workdir)] == list(range(1, 14))


def test_no_readable_checkpoint_stops_instead_of_starting_over(reference, tmp_path, capsys):
    """The measured failure: every checkpoint unreadable must not mean step 0 and an empty
    metrics.jsonl."""
    workdir = str(tmp_path / "w")
    shutil.copytree(reference[0], workdir)
    for step in ckpt_steps(workdir):
        _garble_metadata(os.path.join(workdir, "checkpoints", str(step)))
    metrics = open(os.path.join(workdir, "metrics.jsonl")).read()
    for _ in range(2):                        # the second run finds them in checkpoints_bad/
        assert main(["train", "--workdir", workdir, "--config.total_steps=40"]) == 4
        err = capsys.readouterr().err.strip()
        assert "can be restored" in err and "stopping instead of training from step 0" in err
        assert open(os.path.join(workdir, "metrics.jsonl")).read() == metrics
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints_bad"))) == ["12", "8"]


def test_a_disk_full_during_a_save_keeps_the_previous_checkpoint(reference, small_disk):
    """A real full disk (tmpfs) while checkpoint 8 or 12 is written: exit 4 with one sentence;
    once space is freed the same command resumes and repeats the uninterrupted run."""
    disk = small_disk("1m")
    workdir = str(disk / "w")
    run = start_cli_run(workdir)
    wait_for_step(run, workdir, 4, checkpoint=True)
    fill_disk(disk, leave_kib=16)                   # room for metrics lines, not a checkpoint
    output = run.communicate(timeout=120)[0]
    assert run.returncode == 4, output
    assert "tlgen train: error: saving a checkpoint in " in output and "free space" in output
    assert ckpt_steps(workdir)[-1] < 12
    os.remove(disk / "filler")
    rerun = start_cli_run(workdir, saved_config=True)
    output = rerun.communicate(timeout=120)[0]
    assert rerun.returncode == 0, output
    got = [(r["step"], r["loss"]) for r in train_rows(workdir)]
    assert got == [(r["step"], r["loss"]) for r in train_rows(reference[0])]


def test_divergence_has_its_own_exit_code(tmp_path, capsys):
    argv = ["train", "--config", "tests/engine_config.py:regression", "--workdir", str(tmp_path / "w"),
            "--config.model.nan_step=2", "--config.train.nonfinite=stop", "--config.train.eval_every=0"]
    assert main(argv) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("tlgen train: error: training stopped at step 3: the loss or gradients "
                          "are not finite") and len(err.splitlines()) == 1


def test_nonfinite_skip_counts_and_keep_best(tmp_path):
    workdir = str(tmp_path / "w")
    # keep_best by the highest eval loss: the first eval's (the loss falls), so the best
    # checkpoint is not also the newest one and the policy has something to keep
    config = make_config(total_steps=8, model__nan_step=2, train__eval_every=2, train__ckpt_every=2,
                         train__keep_checkpoints=1, train__keep_best="max:loss", train__sample_every=4)
    final = train(config, workdir)
    rows = train_rows(workdir)
    assert [r["skipped"] for r in rows] == [0, 0, 1, 0, 0, 0, 0, 0]   # state.step 2 = step 3
    assert math.isnan(rows[2]["loss"]) and all(math.isfinite(r["loss"]) for r in rows[3:])   # no finite step
    assert math.isfinite(final["loss"])
    evals = {r["step"]: r["loss"] for r in train_rows(workdir, "eval")}
    best = max(evals, key=evals.get)
    assert best != 8 and ckpt_steps(workdir) == sorted({8, best})
    assert sorted(os.listdir(os.path.join(workdir, "samples"))) == [
        "error_0000004.png", "error_0000008.png"]
    # Every kept checkpoint restores to a finite state.
    one_device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    for step in ckpt_steps(workdir):
        got, nets, _ = checkpoint.restore_networks(
            workdir, ("net",), step=step, shardings_for=lambda t: jax.tree.map(lambda _: one_device, t))
        assert got == step and all(np.isfinite(x).all() for x in jax.tree.leaves(nets))


def test_a_logged_mean_leaves_out_skipped_steps(tmp_path):
    every_step = str(tmp_path / "every")
    train(make_config(total_steps=4, model__nan_step=2, train__eval_every=0), every_step)
    by_two = str(tmp_path / "by_two")
    train(make_config(total_steps=4, model__nan_step=2, train__eval_every=0, train__log_every=2), by_two)
    rows = {r["step"]: r for r in train_rows(every_step)}
    assert [(r["step"], r["skipped"]) for r in train_rows(by_two)] == [(2, 0), (4, 1)]
    assert train_rows(by_two)[1]["loss"] == np.float32(rows[4]["loss"])     # step 3 left out


def test_keep_best_ranks_every_evaluation_not_only_the_checkpointed_ones(tmp_path):
    workdir = str(tmp_path / "w")
    # checkpoints every 5 steps, evals every 2: the highest eval loss (the loss falls) is step 2's
    train(make_config(total_steps=7, train__eval_every=2, train__ckpt_every=5, train__keep_checkpoints=1,
                      train__keep_best="max:eval/loss"), workdir)      # "eval/" as the metric is logged
    evals = {r["step"]: r["loss"] for r in train_rows(workdir, "eval")}
    assert max(evals, key=evals.get) == 2 and ckpt_steps(workdir) == [2, 7]


def test_a_resume_between_log_rows_logs_what_the_uninterrupted_run_logs(tmp_path):
    """Checkpoints every 3 steps, rows every 4: a run that dies after step 9 resumes from
    checkpoint 6 with steps 5 and 6 still to be logged; its rows (and TensorBoard's) equal
    those of a run never interrupted."""
    settings = dict(train__log_every=4, train__ckpt_every=3, train__eval_every=0, train__keep_checkpoints=4)
    whole, resumed = str(tmp_path / "whole"), str(tmp_path / "resumed")
    train(make_config(**settings), whole)
    train(make_config(**settings, total_steps=9), resumed)
    shutil.rmtree(os.path.join(resumed, "checkpoints", "9"))           # died before it was complete
    train(make_config(**settings), resumed)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "steps_per_sec"} for r in rows]
    assert strip(train_rows(resumed)) == strip(train_rows(whole))
    assert [s for s, _ in tensorboard_scalars(os.path.join(resumed, "tb"))["train/loss"]] == [4, 8, 12]
    # a checkpoint written before they were kept resumes too, its first row over fewer steps
    older = str(tmp_path / "older")
    train(make_config(**settings, total_steps=9), older)
    shutil.rmtree(os.path.join(older, "checkpoints", "9"))
    shutil.rmtree(os.path.join(older, "checkpoints", "6", "pending"))
    train(make_config(**settings), older)
    rows, whole_rows = strip(train_rows(older)), strip(train_rows(whole))
    assert [r["step"] for r in rows] == [4, 8, 12] and rows[0] == whole_rows[0] and rows[2] == whole_rows[2]
    assert rows[1]["loss"] != whole_rows[1]["loss"]                   # the mean of steps 7 and 8


def test_keep_best_of_an_unknown_metric_keeps_the_steps_trained(tmp_path):
    workdir = str(tmp_path / "w")
    config = make_config(total_steps=6, train__eval_every=2, train__ckpt_every=4,
                         train__keep_best="max:psnr")
    with pytest.raises(UserError, match=r"keep_best names 'psnr', but the eval metrics are .*loss.*"
                                        r"step 2 is saved"):
        train(config, workdir)
    assert ckpt_steps(workdir) == [2]
    final = train(make_config(total_steps=6, train__eval_every=2, train__ckpt_every=4,
                              train__keep_best="loss"), workdir)
    assert final["step"] == 6 and ckpt_steps(workdir) == [4, 6]
    # a bare name keeps the lowest: refused, before any work, for a metric where higher is better
    with pytest.raises(UserError, match=r"^config.train.keep_best is 'eval/psnr', which keeps the lowest "
                                        r"psnr, the worst; write 'max:psnr' \(or 'min:psnr'"):
        train(make_config(train__keep_best="eval/psnr"), str(tmp_path / "psnr"))
    with pytest.raises(UserError, match=r"^config.train.keep_best ranks by fid, which tests.engine_family does "
                                        r"not compute while training; rank by another metric\.$"):
        train(make_config(train__keep_best="fid"), str(tmp_path / "psnr"))
    with pytest.raises(UserError, match=r"^config.train.keep_best ranks by fid, which needs the inception "
                                        r"network in config.eval.inception \(README: Evaluation protocol\)"):
        train(config_lib.load("configs/dtvnet_clouds.py:tiny", ["train.keep_best=fid"]), str(tmp_path / "psnr"))
    assert not (tmp_path / "psnr").exists()


def test_nonfinite_stop_saves_nothing_after_it(tmp_path):
    workdir = str(tmp_path / "w")
    with pytest.raises(NonFiniteError, match="step 6"):
        # log_every=5: the non-finite step 6 is still unread when checkpoint 8 is due, so the
        # save itself must check it (at log_every=1 the log would stop the run first)
        train(make_config(model__nan_step=5, train__nonfinite="stop", train__eval_every=0,
                          train__log_every=5), workdir)
    assert ckpt_steps(workdir) == [4]


def test_gan_family_two_optimizers_ema_and_samples(tmp_path):
    workdir = str(tmp_path / "w")
    final = train(make_config("gan", total_steps=4, train__sample_every=2, train__eval_every=0), workdir)
    assert final["step"] == 4 and {"loss_d", "loss_g"} <= set(final)
    assert all(math.isfinite(final[k]) for k in ("loss", "loss_d", "loss_g"))
    with open(os.path.join(workdir, "checkpoints", "4", "shapes", "metadata")) as f:
        shapes = json.load(f)
    assert any(k.startswith(".opt_state['g']") for k in shapes)
    assert any(k.startswith(".opt_state['d']") for k in shapes)
    assert any(k.startswith(".ema['g']") for k in shapes)
    assert sorted(os.listdir(os.path.join(workdir, "samples"))) == ["fake_0000002.png", "fake_0000004.png"]
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    # lazy R1 every 2 steps: the trainer ran the regularizing program at steps 0 and 2 (logged as 1, 3)
    assert [r["regularized"] for r in rows if r["split"] == "train"] == [1.0, 0.0, 1.0, 0.0]


def test_unknown_family_is_a_user_error():
    with pytest.raises(UserError, match="built-in families: dtvnet, fgla, long_video, long_video_sr, stylegan_v, time_flies, timescale_ae"):
        family_lib.of(make_config(family="no_such_family"))
    with pytest.raises(UserError, match="no_such.module"):
        family_lib.of(make_config(family="no_such.module"))
    with pytest.raises(UserError, match="defines no FAMILY"):
        family_lib.of(make_config(family="tests.engine_config"))


def start_cli_run(workdir, *, saved_config=False):
    """`tlgen train` in a fresh process (slowed by 0.1 s of data loading per step); with
    `saved_config`, resumed from the workdir's config.json alone."""
    env = dict(os.environ, TLGEN_PROGRESS="0")
    config = [] if saved_config else ["--config", "tests/engine_config.py:regression",
                                      "--config.data.delay=0.1"]
    command = [sys.executable, "-m", "tlgen", "train", "--workdir", workdir, *config]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_for_step(proc, workdir, step, *, checkpoint=False, timeout=120):
    """Waits until `workdir` logged `step` (and, with `checkpoint`, has a committed checkpoint)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = train_rows(workdir)
        if rows and rows[-1]["step"] >= step and (not checkpoint or ckpt_steps(workdir)):
            return rows[-1]["step"]
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.05)
    raise AssertionError(f"no step {step} within {timeout} s")


def test_sigterm_then_sigkill_then_resume_repeats_the_uninterrupted_run(reference, tmp_path,
                                                                       capsys):
    """Preempted (SIGTERM) at step ≥ 3, killed (SIGKILL) at step ≥ 9 (meanwhile a second
    writer is refused), then run to the end: every per-step loss equals the uninterrupted
    run's, bit for bit."""
    workdir = str(tmp_path / "w")
    first = start_cli_run(workdir)
    wait_for_step(first, workdir, 3)
    first.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    assert first.wait(timeout=60) == 75, first.communicate()[0]       # saved and stopped
    assert time.monotonic() - stopped_at < 20                          # prompt
    saved = ckpt_steps(workdir)[-1]
    assert saved >= 3 and train_rows(workdir)[-1]["step"] == saved

    second = start_cli_run(workdir)
    wait_for_step(second, workdir, 9)
    rows_before = train_rows(workdir)
    assert main(["train", "--workdir", workdir]) == 2               # a second writer: refused
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tlgen train: error: {workdir} is in use by another `tlgen train` (host ")
    assert f"pid {second.pid}," in err and len(err.splitlines()) == 1
    assert train_rows(workdir)[:len(rows_before)] == rows_before    # it wrote nothing
    second.kill()                                                   # its lock dies with it
    second.wait()

    third = start_cli_run(workdir, saved_config=True)
    output = third.communicate(timeout=180)[0]
    assert third.returncode == 0, output
    assert "resumed from" in output and "step=12" in output
    for split in ("train", "eval"):
        got = [(r["step"], r["loss"]) for r in train_rows(workdir, split)]
        assert got == [(r["step"], r["loss"]) for r in train_rows(reference[0], split)]


def test_a_batch_that_does_not_split_over_the_processes_says_what_to_change(monkeypatch):
    from tlgen.parallel import make_mesh
    from tlgen.train.trainer import check_batch

    config = make_config()
    mesh = make_mesh(config.mesh)
    monkeypatch.setattr(jax, "process_count", lambda: 3)
    with pytest.raises(UserError, match=r"^config.data.batch_size 16 does not split over the 3 processes; run on "
                                        r"a number of processes that divides it"):
        check_batch(config, mesh)


def test_a_corrupt_newest_checkpoint_then_one_of_another_process_count(reference, tmp_path, caplog):
    """Checkpoint 12 corrupt, 8 written (as its data files say) by 2 processes: without
    train.reshard_data the run stops at 8 with one sentence; with it, 8 is restored and the data
    start afresh (also after the iterator read a batch for 12's failed attempt)."""
    workdir = str(tmp_path / "w")
    shutil.copytree(reference[0], workdir)
    _truncate_array_files(os.path.join(workdir, "checkpoints", "12"))
    data = os.path.join(workdir, "checkpoints", "8", "data")
    os.rename(os.path.join(data, "process_0-of-1.json"), os.path.join(data, "process_0-of-2.json"))
    shutil.copy(os.path.join(data, "process_0-of-2.json"), os.path.join(data, "process_1-of-2.json"))
    saved = lambda: json.load(open(os.path.join(workdir, "config.json")))
    with pytest.raises(UserError, match=r"checkpoints/8 was written by 2 processes, this run has 1; resume "
                                        r"with 2 processes, or add --config.train.reshard_data=true"):
        train(make_config(total_steps=16), workdir)
    assert os.path.isdir(os.path.join(workdir, "checkpoints_bad", "12")) and ckpt_steps(workdir) == [8]
    assert saved()["total_steps"] == 12                  # a refused resume leaves the run's config
    with caplog.at_level(logging.WARNING, logger="tlgen.checkpoint"):
        final = train(make_config(train__reshard_data=True), workdir)
    assert "checkpoints/8 was written by 2 processes, this run has 1: the state is restored" in caplog.text
    assert final["step"] == 12 and ckpt_steps(workdir) == [8, 12]
    assert saved()["train"]["reshard_data"] is False     # for that resume, not every later one
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints", "12", "data"))) == [
        "commit_success.txt", "process_0-of-1.json"]
    rows = train_rows(workdir)
    assert [r["step"] for r in rows] == list(range(1, 13))
    # steps 9.. read the data from the start (the first batches of step 1..), not from 8's position
    assert rows[8]["loss"] != {r["step"]: r["loss"] for r in train_rows(reference[0])}[9]


def test_a_corrupt_newest_checkpoint_of_another_process_count_is_set_aside_first(reference, tmp_path):
    """Checkpoint 12 corrupt and labelled as 2 processes', 8 this run's: 12 is quarantined,
    not named as another count, and the run resumes from 8 exactly, with no flag."""
    workdir = str(tmp_path / "w")
    shutil.copytree(reference[0], workdir)
    _truncate_array_files(os.path.join(workdir, "checkpoints", "12"))
    data = os.path.join(workdir, "checkpoints", "12", "data")
    os.rename(os.path.join(data, "process_0-of-1.json"), os.path.join(data, "process_0-of-2.json"))
    assert train(make_config(), workdir)["step"] == 12
    assert os.path.isdir(os.path.join(workdir, "checkpoints_bad", "12"))
    assert {r["step"]: r["loss"] for r in train_rows(workdir)} == \
        {r["step"]: r["loss"] for r in train_rows(reference[0])}    # steps 9..12 redone bitwise
