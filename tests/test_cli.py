"""The `tlgen` command line: help, exit codes, user errors."""

import os
import shutil
import subprocess
import sys
import time
import zipfile

import pytest

from tlgen.cli import main as cli


def test_every_subcommand_has_help_with_examples(capsys):
    for name in cli.COMMANDS:
        assert cli.main([name, "--help"]) == 0
        out = capsys.readouterr().out
        assert f"usage: tlgen {name}" in out and "Examples:" in out
        assert f"\n  tlgen {name} " in out.split("Examples:")[1], name      # an example of the command


def test_config_overrides_rejected_where_not_accepted(capsys):
    assert cli.main(["eval", "--workdir", "w", "--config.seed=1"]) == 2
    assert "takes no --config" in capsys.readouterr().err


def test_help_documents_every_exit_code(capsys):
    from tlgen.errors import EXIT_CODES
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for code in EXIT_CODES:
        assert f"\n  {code} " in out, code


def test_console_script_runs_as_module():
    done = subprocess.run([sys.executable, "-m", "tlgen", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for name in cli.COMMANDS:
        assert name in done.stdout
    done = subprocess.run([sys.executable, "-m", "tlgen", "nosuch"], capture_output=True, text=True)
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_an_interrupted_program_ends_at_once_though_a_librarys_thread_still_runs():
    """After Ctrl-C (130) or SIGTERM (143) the program does not wait for threads a library left
    running (Orbax's restore, ...): Python's shutdown under them can crash (exit 139)."""
    script = ("import threading, time; from tlgen.cli import main as cli; cli.main = lambda: {code}; "
              "threading.Thread(target=time.sleep, args=(60,)).start(); cli.entry()")
    for code in (130, 143):
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-c", script.format(code=code)], timeout=120)
        assert done.returncode == code and time.monotonic() - start < 30   # not after the 60 s


@pytest.mark.parametrize("argv, expected", [
    (["train", "--config", "configs/timescale_ae_synthetic.py:tiny", "--workdir", "{tmp}/w",
      "--config.loss.temprature=0.2"], "loss.temperature"),
    (["train", "--config", "configs/nosuch.py:tiny", "--workdir", "{tmp}/w"],
     "config file configs/nosuch.py does not exist"),
    (["timelapse", "--workdir", "{tmp}/missing", "--out", "{tmp}/t.mp4"], "--workdir {tmp}/missing does not exist"),
    (["timelapse", "--workdir", "{tmp}/f", "--out", "{tmp}/t.mp4"], "--workdir {tmp}/f is a file"),
    (["timelapse", "--workdir", "{tmp}/partial", "--out", "{tmp}/t.mp4"],
     "{tmp}/partial/config.json has no variant, seed, total_steps, dtype, train, mesh, data, model: "
     "it is not a whole `tlgen train` config"),
    (["train", "--workdir", "{tmp}/partial"], "{tmp}/partial/config.json has no variant"),
    (["timelapse", "--workdir", "{tmp}/missing", "--out", "{tmp}/t.mp4", "--interp", "lerp"],
     "--interp goes with --mode interpolate; this timelapse is --mode subsample."),
    (["timelapse", "--workdir", "{tmp}/missing", "--out", "{tmp}/t.mp4", "--mode", "interpolate",
      "--segment", "4"], "--segment goes with --mode multiscale; this timelapse is --mode interpolate."),
    (["timelapse", "--workdir", "{tmp}/missing", "--out", "{tmp}/t.mp4", "--min-period", "0"],
     "--min-period 0 must be a positive number of seconds."),
    (["timelapse", "--workdir", "{tmp}/missing", "--out", "{tmp}/t.mp4", "--mode", "multiscale",
      "--segment", "0"], "--segment 0 must be at least 1 frame."),
    (["timelapse", "--workdir", "{tmp}/missing", "--out", "{tmp}/t.mp4", "--mode", "interpolate",
      "--frames", "8", "--keyframes", "9"], "--keyframes 9: interpolation needs from 2 keyframes up to --frames (8)."),
    (["animate", "--workdir", "{tmp}/missing", "--image", "{tmp}/x.png", "--out", "{tmp}/a.mp4"],
     "--image {tmp}/x.png does not exist."),
    (["eval", "--workdir", "{tmp}/missing"], "--workdir {tmp}/missing does not exist"),
    (["eval", "--workdir", "{tmp}/m_1.mp4"], "{tmp}/m_1.mp4 has no config.json"),
    (["generate", "--workdir", "{tmp}/missing", "--out", "{tmp}/t.mp4"], "--workdir {tmp}/missing does not exist"),
    (["generate", "--workdir", "{tmp}/missing", "--out", "{tmp}/nofolder/g.mp4"],
     "--out {tmp}/nofolder/g.mp4: its folder {tmp}/nofolder does not exist; create it first."),
    (["bench", "--config", "configs/timescale_ae_synthetic.py:huge"],
     "config file configs/timescale_ae_synthetic.py: unknown variant 'huge'; choose from tiny, base, large."),
    (["prepare", "{tmp}/dataset", "--out", "{tmp}/d"], "{tmp}/dataset is a prepared tlgen dataset, not footage"),
    (["bench", "--config", "configs/timescale_ae_synthetic.py:tiny", "--config.data.dir=", "--json", "{tmp}"],
     "--json {tmp} is a folder; give a file name."),
    (["bench", "--config", "configs/timescale_ae_synthetic.py:tiny", "--config.data.dir=", "--json", "{tmp}/b.txt"],
     "--json {tmp}/b.txt must end in .json."),
    (["bench", "--config", "configs/timescale_ae_synthetic.py:tiny", "--config.data.dir=", "--json",
      "{tmp}/dataset/tlgen.json"], "--json {tmp}/dataset/tlgen.json holds a JSON dict, not a list of "
     "records; give a new file or a list of benchmark records."),
    (["bench", "--config", "configs/timescale_ae_synthetic.py:tiny", "--config.data.dir=", "--json", ""],
     "--json needs a file name."),
    (["bench", "--config", "configs/timescale_ae_synthetic.py:tiny", "--config.data.dir=", "--json",
      "{tmp}/list.json"], "--json {tmp}/list.json holds a list of other things than records"),
    (["bench", "--config", "configs/timescale_ae_synthetic.py:tiny", "--config.data.dir=", "--json",
      "/proc/b.json"], "--json /proc/b.json: its folder /proc cannot be written (it takes no new files"),
    (["bench", "--config", "configs/timescale_ae_synthetic.py:tiny", "--config.data.dir={tmp}/nosuch"],
     "--config.data.dir {tmp}/nosuch is not a folder; give a prepared dataset"),
    (["bench", "--config", "configs/timescale_ae_synthetic.py:tiny", "--config.data.dir=", "--layers", "-2"],
     "--layers must be a number of layers (0 or more), got -2."),
    (["bench", "--config", "configs/timescale_ae_synthetic.py:tiny", "--config.data.dir=",
      "--config.data.batch_size=0"], "config.data.batch_size 0 must be a positive number of samples."),
    (["train", "--config", "configs/timescale_ae_synthetic.py:tiny", "--workdir", "{tmp}/w",
      "--config.data.batch_size=0"], "config.data.batch_size 0 must be a positive number of samples."),
    (["train", "--config", "configs/timescale_ae_synthetic.py:tiny", "--workdir", "{tmp}/w"],
     "config.data.dir is empty"),
    (["train", "--config", "configs/stylegan_v_clouds.py:tiny", "--workdir", "{tmp}/w",
      "--config.model.concat_res=32"], "config.model.concat_res 32 must be a power of two from 8 to 16"),
    (["train", "--config", "configs/stylegan_v_clouds.py:tiny", "--workdir", "{tmp}/w",
      "--config.mesh.axis_types=explicit"], "config.mesh.axis_types is 'explicit', which the stylegan_v "
     "family does not support (the timescale_ae family does); use 'auto'."),
    (["train", "--config", "configs/timescale_ae_synthetic.py:tiny", "--workdir", "{tmp}/w",
      "--config.total_steps=-5"], "config.total_steps is -5; train for 1 step or more."),
    (["train", "--config", "configs/timescale_ae_synthetic.py:tiny", "--workdir", "{tmp}/w",
      "--config.seed=-1"], "config.seed is -1; use a seed from 0 to 4294967295."),
    (["train", "--config", "configs/timescale_ae_synthetic.py:tiny", "--workdir", "{tmp}/w",
      "--config.train.log_every=-1"], "config.train.log_every is -1; use 0 (never) or a positive"),
    (["train", "--config", "configs/timescale_ae_synthetic.py:tiny", "--workdir", "{tmp}/dataset"],
     "--workdir {tmp}/dataset is a prepared dataset; give the run a folder of its own."),
    (["train", "--config", "configs/timescale_ae_synthetic.py:tiny", "--workdir", "{tmp}/f/w"],
     "--workdir {tmp}/f/w lies inside {tmp}/f, a file"),
    (["prepare", "synthetic:city:frames=-5", "--out", "{tmp}/d"], "frames=-5 must be at least 1"),
    (["prepare", "synthetic:city:interval=nan", "--out", "{tmp}/d"], "must be a positive number"),
    (["prepare", "synthetic:city", "--size", "100000", "--out", "{tmp}/d"], "larger than 8192"),
    (["prepare", "synthetic:city", "--size", "2", "--out", "{tmp}/d"], "--size '2' is smaller than 8 pixels a side"),
    (["prepare", "synthetic:city", "--out", "{tmp}/f/d"], "--out {tmp}/f/d lies inside {tmp}/f, a file"),
    (["generate", "--workdir", "{tmp}/missing", "--out", "{tmp}/m.mp4", "--num", "2"],
     "--out {tmp}/m_1.mp4 is a folder"),
    (["generate", "--workdir", "{tmp}/missing", "--out", "{tmp}/t.mp4", "--fps", "1e-10"],
     "--fps 1e-10 must be between 0.001 and 1000 frames/s."),
    (["eval", "--workdir", "{tmp}/missing", "--out", "{tmp}/f"], "--out {tmp}/f is a file"),
    (["animate", "--workdir", "{tmp}/missing", "--image", "{tmp}", "--out", "{tmp}/a.mp4"],
     "--image {tmp} is a folder; give an image file."),
])
def test_bad_input_is_one_sentence_and_exit_2(argv, expected, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    (tmp_path / "f").write_text("a file")
    (tmp_path / "m_1.mp4").mkdir()
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "config.json").write_text('{"family": "timescale_ae"}')
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "tlgen.json").write_text("{}")
    (tmp_path / "list.json").write_text('[1, "x"]')
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tlgen {argv[0]}: error:") and len(err.splitlines()) == 1
    assert expected.replace("{tmp}", str(tmp_path)) in err
    assert not (tmp_path / "t.mp4").exists() and not (tmp_path / "a.mp4").exists()
    assert not (tmp_path / "d").exists() and not (tmp_path / "w").exists()
    assert not (tmp_path / "m_0.mp4").exists()
    assert [p.name for p in (tmp_path / "dataset").iterdir()] == ["tlgen.json"]
    assert (tmp_path / "dataset" / "tlgen.json").read_text() == "{}"
    assert [p.name for p in (tmp_path / "partial").iterdir()] == ["config.json"]


def test_an_option_of_another_familys_command_names_the_families_that_take_it(tmp_path, capsys):
    import json

    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "config.json").write_text(json.dumps({"family": "timescale_ae"}))
    for argv, says in [(["eval", "--workdir", str(workdir), "--num-clips", "4"],
                        "--num-clips is an option of `tlgen eval` on dtvnet, fgla, long_video_sr and time_flies runs; "
                        "this run is timescale_ae's (see `tlgen eval --workdir ... --help`)"),
                       (["eval", "--workdir", str(workdir), "--superres", "sr"],       # hidden in long_video_sr's
                        "--superres is an option of `tlgen eval` on long_video runs; this run is timescale_ae's "
                        "(see `tlgen eval --workdir ... --help`)"),
                       (["eval", "--workdir", str(workdir), "--bogus", "4"],
                        "unrecognized arguments: --bogus 4")]:
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[0].startswith("usage: tlgen eval") and err[-1] == f"tlgen eval: error: {says}"


@pytest.mark.parametrize("argv, says", [
    (["generate", "--workdir", "w", "--out", "g.mp4", "--seconds", "inf"], "argument --seconds: 'inf' is not a finite number"),
    (["generate", "--workdir", "w", "--out", "g.mp4", "--fps", "nan"], "argument --fps: 'nan' is not a finite number"),
    (["timelapse", "--workdir", "w", "--out", "t.mp4", "--min-period", "inf"],
     "argument --min-period: 'inf' is not a finite number"),
    (["animate", "--workdir", "w", "--image", "i.png", "--out", "a.mp4", "--fps", "fast"],
     "argument --fps: invalid number value: 'fast'"),
    (["generate", "--workdir", "w", "--out", "g.mp4", "--seed", "-1"],
     "argument --seed: -1 is not a seed from 0 to 4294967295"),       # JAX keys hold 32 bits:
    (["generate", "--workdir", "w", "--out", "g.mp4", "--seed", str(2 ** 32)],   # 2**32 would be seed 0
     f"argument --seed: {2 ** 32} is not a seed from 0 to 4294967295"),
    # a family's option with a --workdir that is no run: the workdir is what is wrong
    (["animate", "--workdir", "nowhere", "--image", "i.png", "--out", "a.mp4", "--reference", "r.mp4"],
     "--workdir nowhere does not exist; pass the work directory of a `tlgen train` run"),
])
def test_argument_errors_are_the_parsers_last_line(argv, says, capsys):
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"tlgen {argv[0]}: error: {says}"


def test_logging_is_tlgens_even_when_an_import_configured_it_first(monkeypatch):
    import argparse
    import logging

    monkeypatch.setattr(logging.root, "handlers", [])
    monkeypatch.setattr(logging.root, "level", logging.root.level)
    logging.basicConfig()                          # what absl's vlog does on a family's import
    cli._setup_logging(argparse.Namespace(verbose=False, quiet=False), before=[])
    (handler,) = logging.root.handlers
    assert logging.root.level == logging.INFO and "%(asctime)s" in handler.formatter._fmt


def test_commands_run_from_python_return_their_code_and_leave_logging_as_it_was(monkeypatch, capsys):
    """main() as a notebook calls it: argparse's errors, --help and --version are returned, not
    raised; the caller's handler and levels stay, and -q holds for its own command only."""
    import logging

    mine = logging.StreamHandler()
    monkeypatch.setattr(logging.root, "handlers", [mine])
    monkeypatch.setattr(logging.root, "level", logging.ERROR)
    absl = logging.getLogger("absl")
    monkeypatch.setattr(absl, "level", logging.DEBUG)
    seen = []
    monkeypatch.setattr(cli, "_drop_closed_event_loop_reports", lambda drop: seen.append(logging.root.level))
    assert cli.main(["train", "--workdir", "w", "--bogus"]) == 2
    assert cli.main(["--version"]) == 0 and cli.main(["demo", "--help"]) == 0
    assert cli.main(["-q", "demo", "--steps", "0"]) == 2 and cli.main(["demo", "--steps", "0"]) == 2
    assert seen == [logging.WARNING, logging.INFO]         # each command at its own level
    assert logging.root.handlers == [mine] and logging.root.level == logging.ERROR
    assert absl.level == logging.DEBUG
    assert "--steps 0 must be at least 1" in capsys.readouterr().err


def test_a_command_the_runs_family_lacks_is_named_before_its_checkpoint_is_looked_for(tmp_path, capsys):
    import cv2
    import numpy as np

    from tlgen import config as config_lib

    workdir = tmp_path / "run"                     # trained config, no checkpoint yet
    workdir.mkdir()
    config_lib.save(config_lib.load("configs/timescale_ae_synthetic.py:tiny"), str(workdir / "config.json"))
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((8, 8, 3), np.uint8))
    assert cli.main(["animate", "--workdir", str(workdir), "--image", str(tmp_path / "x.png"),
                     "--out", str(tmp_path / "a.mp4")]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "the timescale_ae family cannot animate a still image; `tlgen animate` works with runs of "
        "the dtvnet, fgla or time_flies families.")


def test_closed_event_loop_reports_are_dropped_and_other_unraisable_errors_kept(capsys, monkeypatch):
    import gc

    monkeypatch.setattr(sys, "unraisablehook", sys.__unraisablehook__)
    monkeypatch.setattr(cli, "_UNRAISABLE", {"drop": False})

    class RaisesWhenCollected:
        def __init__(self, error):
            self.error = error

        def __del__(self):
            raise self.error

    for verbose in (False, True):       # a command with -v after one without shows them again
        cli._drop_closed_event_loop_reports(not verbose)
        RaisesWhenCollected(RuntimeError("Event loop is closed"))
        RaisesWhenCollected(ValueError("kept"))
        gc.collect()
        err = capsys.readouterr().err
        assert ("Event loop is closed" in err) == verbose and "ValueError: kept" in err
    hook = sys.unraisablehook
    cli._drop_closed_event_loop_reports(True)
    assert sys.unraisablehook is hook                      # installed once, not once per command


def test_the_commands_keep_compiled_programs_in_a_cache_folder(tmp_path, monkeypatch):
    for name in ("JAX_COMPILATION_CACHE_DIR", "TLGEN_XLA_CACHE"):
        monkeypatch.setenv(name, "")                      # restored after the test
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert cli._cache_folder() == str(tmp_path / "cache" / "tlgen" / "xla")
    assert os.path.isdir(tmp_path / "cache" / "tlgen" / "xla")
    (tmp_path / "file").write_text("")
    for setting in ("off", str(tmp_path / "file" / "xla")):   # off, or a folder that cannot be made
        monkeypatch.setenv("TLGEN_XLA_CACHE", setting)
        assert cli._cache_folder() is None
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "theirs"))   # set: it wins
    monkeypatch.setenv("TLGEN_XLA_CACHE", "")
    assert cli._cache_folder() is None
    # Before JAX is imported (the program) and after (a notebook that compiled something first):
    # either way the programs compiled next land in the folder, in its limits.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "TLGEN_XLA"))}
    for first in ("", "import jax; jax.jit(lambda x: x - 1)(1.0); "):
        folder = tmp_path / f"cache{len(first)}"
        code = (f"{first}from tlgen.cli import main as m; m._compilation_cache(); import jax; "
                "jax.jit(lambda x: x * 3 + 1)(jax.numpy.ones(9)).block_until_ready(); "
                "print(int(jax.config.jax_compilation_cache_max_size), "
                "float(jax.config.jax_persistent_cache_min_compile_time_secs))")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                              env=dict(env, TLGEN_XLA_CACHE=str(folder)))
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == [str(2 << 30), "0.0"]
        assert any(files for _, _, files in os.walk(folder)), first


def test_help_examples_continued_with_a_backslash_keep_their_line_breaks():
    import importlib
    import inspect
    for name in cli.COMMANDS:
        module = importlib.import_module(f"tlgen.cli.{name.replace('-', '_')}")
        source = inspect.getsource(module)
        written = source[:source.index('"""', source.index('"""') + 3)]      # the docstring as typed
        assert module.__doc__.count("\\\n") == written.count("\\\n"), name


def test_an_installed_wheel_runs_tlgens_configs_from_any_folder(tmp_path):
    """`pip install` of the wheel (not editable): `--config configs/<file>.py` finds the
    configs installed as tlgen.configs from another folder, a config copied elsewhere imports
    tlgen.configs.common, and a missing config names tlgen's own."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    source = tmp_path / "source"
    shutil.copytree(os.path.join(root, "tlgen"), source / "tlgen", ignore=shutil.ignore_patterns("__pycache__"))
    for file in ("setup.py", "README.md"):
        shutil.copy(os.path.join(root, file), source / file)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", str(source), "-w",
                    str(tmp_path / "wheel")], check=True, capture_output=True)
    wheel, = (tmp_path / "wheel").iterdir()
    assert "tlgen/configs/common.py" in zipfile.ZipFile(wheel).namelist()
    venv = tmp_path / "venv"        # the dependencies come from this Python's packages
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                   check=True)
    subprocess.run([*pip, "--python", str(venv / "bin" / "python"), "install", "--no-deps", str(wheel)],
                   check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(os.path.join(root, "tlgen", "configs", "timescale_ae_synthetic.py"), elsewhere / "mine.py")

    def tlgen(config):
        return subprocess.run([str(venv / "bin" / "tlgen"), "train", "--config", config, "--workdir", "w"],
                              cwd=elsewhere, capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, TLGEN_XLA_CACHE="off"))

    installed = subprocess.run([str(venv / "bin" / "python"), "-c", "import tlgen.configs as c; print(c.__file__)"],
                               capture_output=True, text=True, cwd=elsewhere).stdout
    assert installed.startswith(str(venv)), installed      # not this checkout's
    for config in ("configs/timescale_ae_synthetic.py:tiny", "mine.py:tiny"):
        done = tlgen(config)        # loaded: what stops it is the dataset the command lacks
        assert done.returncode == 2 and "config.data.dir is empty" in done.stderr, done.stderr
    done = tlgen("configs/nothing.py:tiny")
    assert done.returncode == 2
    assert ("config file configs/nothing.py does not exist; pass --config configs/<file>.py:<variant> "
            "(tlgen's own: dtvnet_clouds, fgla_landscape,") in done.stderr
