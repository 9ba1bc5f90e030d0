"""`tlgen prepare` from the command line: success, bad input, atomic output."""

import json
import os
import signal
import stat
import subprocess
import sys

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from tlgen.cli.main import main
from tlgen.data import open_dataset, video_io
from tlgen.data.synthetic import make_scene


def _prepare(capsys, *argv):
    code = main(["prepare", *map(str, argv)])
    return code, capsys.readouterr().err.strip()


def _mp4(path, n=10, size=(16, 16)):
    rng = np.random.default_rng(0)
    video_io.write_video(str(path), rng.integers(0, 256, (n, *size, 3), dtype=np.uint8), fps=10)
    return path


def _pngs(folder, names, size=(8, 8)):
    folder.mkdir()
    for i, name in enumerate(names):
        Image.fromarray(np.full(size, i * 10, np.uint8)).save(folder / name)
    return folder


def _bad_inputs(tmp):
    (tmp / "empty.mp4").write_bytes(b"")
    (tmp / "notes.mov").write_text("not a video at all")
    full = _mp4(tmp / "full.mp4", n=30).read_bytes()
    (tmp / "cut.mp4").write_bytes(full[: len(full) // 2])
    ffmpeg = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i"]
    subprocess.run([*ffmpeg, "testsrc=s=32x24:r=10:d=6", "-f", "lavfi", "-i", "sine=d=6", "-c:a", "aac",
                    "-movflags", "+faststart", tmp / "sound.mp4"], check=True)
    sound = (tmp / "sound.mp4").read_bytes()     # with sound lasting longer than the frames decoded
    (tmp / "cut_sound.mp4").write_bytes(sound[: len(sound) // 2])
    subprocess.run([*ffmpeg, "sine=d=2", "-c:a", "aac", tmp / "song.m4a.mp4"], check=True)
    (tmp / "nothing").mkdir()
    (tmp / "nothing" / "readme.txt").write_text("x")
    (tmp / "clips").mkdir()
    (tmp / "clips" / "a.MOV").write_bytes(full)
    mixed = _pngs(tmp / "mixed", ["2021-06-01T12-00-00.png", "2021-06-01T12-01-00.png"])
    Image.fromarray(np.zeros((9, 8), np.uint8)).save(mixed / "2021-06-01T12-02-00.png")
    _pngs(tmp / "dups", ["20210601_120000.png", "2021-06-01T12-00-00.png", "20210601_120100.png"])
    _pngs(tmp / "noisy", ["20210601_120000.png", "holiday.png", "20210601_120200.png"])
    broken = _pngs(tmp / "broken", ["20210601_120000.png", "20210601_120200.png"])
    (broken / "thumb.png").write_text("not an image")
    _pngs(tmp / "unnamed", ["a.png", "b.png"])
    _pngs(tmp / "short", [f"20210601_1200{i:02d}.png" for i in range(5)])
    _pngs(tmp / "cam", [f"20210601_12{i:02d}00.png" for i in range(8)])
    (tmp / "blank_masks").mkdir()
    for name in os.listdir(tmp / "cam"):
        (tmp / "blank_masks" / name).write_bytes(b"")
    return [
        (["missing.mp4"], "missing.mp4 does not exist"),
        (["empty.mp4"], "empty.mp4 is empty"),
        (["notes.mov"], "notes.mov is not a readable video"),
        (["cut.mp4"], "cut.mp4 is truncated or corrupt: decoded"),
        (["cut_sound.mp4"], "cut_sound.mp4 is truncated or corrupt: decoded"),
        (["song.m4a.mp4"], "song.m4a.mp4 has no video stream (audio only); give a video file."),
        (["nothing"], "nothing contains no images"),
        (["clips"], "clips holds videos, not frames; give the videos as sources (e.g. clips/*.MOV)."),
        (["mixed"], "2021-06-01T12-02-00.png is 9x8 but 2021-06-01T12-00-00.png in the same "
                    "folder is 8x8 (HxW)"),
        (["dups"], "duplicate timestamps: 2021-06-01T12-00-00.png, 20210601_120000.png"),
        (["noisy"], "unparseable timestamps in holiday.png"),
        (["broken"], "broken: thumb.png cannot be read as an image; re-export it as PNG or JPEG or remove it."),
        (["unnamed"], "cannot tell when the images were taken"),
        (["short", "--levels", "4"], "short has 5 frames: its training block (what --val-fraction 0.1 "
                                     "leaves) holds --levels 3 at most, not 4;"),
        (["short", "--levels", "99"], "holds --levels 3 at most, not 99;"),
        (["synthetic:clouds:frames=1", "--size", "8"], "has 1 frame, of which --val-fraction 0.1 leaves none "
                                                       "for training; use --val-fraction 0 or a longer capture."),
        (["cam", "--levels", "banana"], "--levels 'banana' is neither a number nor auto."),
        (["cam", "--levels", "0"], "--levels 0 must be at least 1"),
        (["full.mp4", "--size", "banana"], "--size 'banana'"),
        (["synthetic:moon"], "unknown synthetic scene 'moon'"),
        (["cam", "--levels", "2", "--masks", "blank_masks"], "is not a readable mask image"),
        (["full.mp4", "--flow", "--flow-method", "raft"], "--flow-method 'raft': choose dis or farneback"),
        (["full.mp4", "--flow-method", "lk"], "--flow-method 'lk': choose dis or farneback"),
    ]


def test_bad_inputs_exit_2_with_one_line_and_no_output(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for argv, message in _bad_inputs(tmp_path):
        code, err = _prepare(capsys, *argv, "--out", "out")
        assert code == 2, (argv, err)
        assert err.startswith("tlgen prepare: error: ") and message in err, (argv, err)
        assert "\n" not in err and "Traceback" not in err
        assert not any(n == "out" or n.startswith(".out") for n in os.listdir(tmp_path)), argv


def test_truncated_video_with_index_at_the_end_is_reported(tmp_path, capsys):
    import imageio_ffmpeg
    writer = imageio_ffmpeg.write_frames(str(tmp_path / "full.mp4"), (16, 16), fps=10,
                                         macro_block_size=1, ffmpeg_log_level="error")
    writer.send(None)
    for i in range(20):
        writer.send(np.full((16, 16, 3), i * 10, np.uint8))
    writer.close()
    full = (tmp_path / "full.mp4").read_bytes()   # moov atom last: a cut file has none
    (tmp_path / "cut.mp4").write_bytes(full[: len(full) // 2])
    code, err = _prepare(capsys, tmp_path / "cut.mp4", "--levels", "1", "--out", tmp_path / "o")
    assert code == 2 and "cut.mp4 is not a readable video (ffmpeg: " in err
    assert not (tmp_path / "o").exists()


def test_existing_output_needs_overwrite_and_survives_failure(tmp_path, capsys):
    out = tmp_path / "ds"
    src = "synthetic:clouds:frames=8"
    assert _prepare(capsys, src, "--size", "8", "--levels", "2", "--out", out)[0] == 0
    before = json.loads((out / "tlgen.json").read_text())
    code, err = _prepare(capsys, src, "--out", out)
    assert code == 2 and "already exists; pass --overwrite" in err
    code, _ = _prepare(capsys, tmp_path / "missing", "--overwrite", "--out", out)   # refused at once
    assert code == 2 and json.loads((out / "tlgen.json").read_text()) == before
    code, err = _prepare(capsys, "synthetic:clouds:frames=1", "--size", "8", "--overwrite", "--out", out)
    assert code == 2 and "leaves none for training" in err                          # fails in the build
    assert json.loads((out / "tlgen.json").read_text()) == before
    code, _ = _prepare(capsys, src, "--size", "12", "--levels", "1", "--overwrite", "--out", out)
    assert code == 0
    assert json.loads((out / "tlgen.json").read_text())["image_size"] == [12, 12]
    assert sorted(os.listdir(tmp_path)) == ["ds"]
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o777 & ~_umask()     # not mkdtemp's 0o700


def test_ctrl_c_while_a_dataset_is_replaced_waits_for_the_swap(tmp_path, capsys, monkeypatch):
    out = tmp_path / "ds"
    assert _prepare(capsys, "synthetic:clouds:frames=8", "--size", "8", "--levels", "1", "--out", out)[0] == 0
    rename = os.rename

    def interrupted(a, b):                  # Ctrl-C right after the old dataset is moved aside
        rename(a, b)
        if str(a) == str(out):
            signal.raise_signal(signal.SIGINT)      # delivered to this thread, before the next rename
    monkeypatch.setattr(os, "rename", interrupted)
    code, err = _prepare(capsys, "synthetic:clouds:frames=8", "--size", "12", "--levels", "1",
                         "--overwrite", "--out", out)
    assert code == 130 and "interrupted" in err
    assert json.loads((out / "tlgen.json").read_text())["image_size"] == [12, 12]     # the new one
    assert sorted(os.listdir(tmp_path)) == ["ds"]                                     # and only it


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_overwrite_replaces_only_a_dataset_and_never_the_footage(tmp_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(8):
        cv2.imwrite(str(frames / f"2021-06-01T12-{i:02d}-00.png"), np.full((8, 8, 3), i * 20, np.uint8))
    mine = tmp_path / "mine"                       # a folder of the user's, not a dataset
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    for source, out, says in [(frames, mine, f"--out {mine} holds other files, not a tlgen dataset (no "
                                               "tlgen.json), and prepare replaces only a dataset; "
                                               "choose another --out."),
                              (frames, frames, f"--out {frames} holds the input {frames}; choose an "
                                               "--out outside the footage."),
                              (frames, tmp_path, f"--out {tmp_path} holds the input {frames}")]:
        code, err = _prepare(capsys, source, "--levels", "1", "--overwrite", "--out", out)
        assert code == 2 and says in err, err
    assert (mine / "notes.txt").read_text() == "keep" and len(os.listdir(frames)) == 8
    code, _ = _prepare(capsys, source, "--levels", "1", "--out", mine)               # without --overwrite
    assert code == 2 and (mine / "notes.txt").read_text() == "keep"
    empty = tmp_path / "empty"                     # made beforehand, as many users do
    empty.mkdir()
    assert _prepare(capsys, frames, "--levels", "1", "--out", empty)[0] == 0
    assert json.loads((empty / "tlgen.json").read_text())["num_frames"] == 8


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_prepared_flow_matches_the_true_motion(tmp_path, capsys, method):
    """Clouds drifting 2.6 px per frame over a still landscape, through an mp4: the stored
    flow is within a fraction of a pixel of the scene's true flow, and ~0 on the ground."""
    scene = make_scene("clouds", size=64)
    times = np.arange(8) * 2.0
    video = str(tmp_path / "clouds.mp4")
    video_io.write_video(video, scene.render(times), fps=10)
    code, _ = _prepare(capsys, video, "--flow", "--flow-method", method, "--levels", "1",
                       "--val-fraction", "0", "--out", tmp_path / "ds")
    assert code == 0
    ds = open_dataset(str(tmp_path / "ds"))
    assert ds.metadata["has_flow"] and ds.metadata["flow_source"] == method
    frames = ds.frames("train")
    stored = np.stack([frames[i]["flow"].astype(np.float32) for i in range(len(times) - 1)])
    true = scene.flow(times[:-1], times[1:])
    inner = np.zeros((64, 64), bool)
    inner[4:-4, 4:-4] = True                                  # borders have no reference
    sky = (scene.masks([0.0])[0] == 1) & inner
    error = np.linalg.norm(stored - true, axis=-1)[:, sky].mean()
    assert error < 0.25 * np.linalg.norm(true, axis=-1)[:, sky].mean()   # 0.43 / 0.50 vs 2.61 px
    assert np.linalg.norm(stored, axis=-1)[:, ~sky & inner].mean() < 0.3   # the ground stays


@pytest.mark.parametrize("size, source", [("1m", "synthetic:city:frames=400"),   # staging fills it
                                          ("300k", "video")])                        # the records do
def test_prepare_onto_a_full_disk_is_one_sentence_and_leaves_nothing(small_disk, capsys, tmp_path,
                                                                      size, source):
    if source == "video":
        source = tmp_path / "clip.mp4"
        video_io.write_video(str(source), np.random.default_rng(0).integers(0, 256, (40, 48, 64, 3),
                                                                             dtype=np.uint8), fps=10)
    disk = small_disk(size)
    code, err = _prepare(capsys, source, "--size", "32", "--out", disk / "city")
    assert code == 4 and len(err.splitlines()) == 1
    assert err.startswith(f"tlgen prepare: error: cannot write {disk}/city: No space left on device")
    assert os.listdir(disk) == []                    # no partial dataset, no temporary folder


def test_subprocess_smoke(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    ok = subprocess.run([sys.executable, "-m", "tlgen.cli.main", "prepare",
                         "synthetic:city:frames=40", "--size", "8", "--levels", "3",
                         "--out", str(tmp_path / "ds")], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "ds" / "tlgen.json").read_text())["num_frames"] == 40
    bad = subprocess.run([sys.executable, "-m", "tlgen.cli.main", "prepare", "nope.mkv",
                          "--out", str(tmp_path / "x")], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
    assert "nope.mkv does not exist" in bad.stderr


def test_a_folder_left_by_an_interrupted_prepare_is_named_and_kept(tmp_path, caplog):
    from tlgen.data.prepare import prepare

    left = tmp_path / ".ds.tmp-k1ll3d"                 # what a SIGKILLed prepare leaves
    left.mkdir()
    prepare(["synthetic:clouds:frames=8"], str(tmp_path / "ds"), size=8, levels=1)
    assert (f"{tmp_path} holds .ds.tmp-k1ll3d, left by an interrupted prepare of {tmp_path / 'ds'}; "
            "delete it to free the space") in caplog.text
    assert left.is_dir() and sorted(os.listdir(tmp_path)) == [".ds.tmp-k1ll3d", "ds"]


def test_sigterm_removes_what_prepare_was_writing_and_keeps_the_old_dataset(tmp_path, capsys):
    """`timeout`, `docker stop` and schedulers send SIGTERM: it unwinds as Ctrl-C does."""
    import signal
    import time
    out = tmp_path / "ds"
    assert _prepare(capsys, "synthetic:clouds:frames=8", "--size", "8", "--levels", "1", "--out", out)[0] == 0
    before = (out / "tlgen.json").read_text()
    job = subprocess.Popen([sys.executable, "-m", "tlgen", "prepare", "synthetic:city:frames=4000",
                            "--size", "64", "--flow", "--overwrite", "--out", str(out)],
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(n.startswith(".ds.tmp-") for n in os.listdir(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)                                  # in the middle of writing frames
    job.send_signal(signal.SIGTERM)
    err = job.communicate(timeout=60)[1]
    assert job.returncode == 143 and err.strip().endswith("tlgen prepare: terminated"), err
    assert sorted(os.listdir(tmp_path)) == ["ds"] and (out / "tlgen.json").read_text() == before
