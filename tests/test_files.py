"""Atomic writes: the final name holds the old content or the whole new one, never a part."""

import errno
import os

import pytest

from tlgen.errors import StorageError
from tlgen.files import write_atomic, write_atomic_all, write_text


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "report.json"
    write_text(str(path), "old")
    umask = os.umask(0)
    os.umask(umask)
    assert path.read_text() == "old" and path.stat().st_mode & 0o777 == 0o666 & ~umask

    def broken(tmp):
        assert tmp.endswith(".json") and os.path.dirname(tmp) == str(path.parent)
        with open(tmp, "w") as f:
            f.write("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(str(path), broken)
    assert path.read_text() == "old" and os.listdir(path.parent) == ["report.json"]
    write_text(str(path), "new")
    assert path.read_text() == "new" and os.listdir(path.parent) == ["report.json"]


def test_files_written_together_all_appear_or_none(tmp_path):
    paths = [str(tmp_path / f"v_{i}.mp4") for i in range(3)]
    write_text(paths[1], "old")

    def write(tmps, fail):
        assert [os.path.splitext(t)[1] for t in tmps] == [".mp4"] * 3
        for i, tmp in enumerate(tmps):
            with open(tmp, "w") as f:
                f.write(f"video {i}")
        if fail:
            raise OSError(errno.ENOSPC, "No space left on device", tmps[0])

    with pytest.raises(StorageError, match=f"cannot write {paths[0]}: No space left on device"):
        write_atomic_all(paths, lambda tmps: write(tmps, fail=True))
    assert os.listdir(tmp_path) == ["v_1.mp4"] and open(paths[1]).read() == "old"
    write_atomic_all(paths, lambda tmps: write(tmps, fail=False))
    assert [open(p).read() for p in paths] == ["video 0", "video 1", "video 2"]
    assert sorted(os.listdir(tmp_path)) == ["v_0.mp4", "v_1.mp4", "v_2.mp4"]


def test_an_upper_case_extension_gets_the_whole_file(tmp_path):
    import numpy as np

    path = tmp_path / "FRAMES.NPZ"
    path.write_text("old")
    write_atomic(str(path), lambda tmp: np.savez_compressed(tmp, frames=np.arange(5)))
    np.testing.assert_array_equal(np.load(path)["frames"], np.arange(5))
    assert os.listdir(tmp_path) == ["FRAMES.NPZ"]


def test_a_storage_failure_says_what_to_do_about_that_failure():
    from tlgen.files import storage_sentence

    full = storage_sentence(OSError(errno.ENOSPC, "No space left on device"), "a/b.mp4")
    read_only = storage_sentence(OSError(errno.EROFS, "Read-only file system"), "a/b.mp4")
    assert full.startswith("cannot write a/b.mp4: No space left on device (errno 28); free space")
    assert "writable file system" in read_only and "free space" not in read_only


def test_outputs_on_a_read_only_file_system_are_refused_before_any_work(read_only_disk, tmp_path, capsys):
    from tlgen.cli import main as cli
    from tlgen.errors import UserError
    from tlgen.files import check_output_file, check_output_folder

    with pytest.raises(UserError, match=r"cannot be written \(a read-only file system\); choose another folder"):
        check_output_file(str(read_only_disk / "x.png"), "--sheet")
    with pytest.raises(UserError, match=r"cannot be written \(a read-only file system\)"):
        check_output_folder(str(read_only_disk / "new" / "run"), "--workdir")
    check_output_file(str(tmp_path / "x.png"), "--sheet")          # a writable folder passes,
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tlgen")]   # its probe removed
    # the video would be written first and the npz fail after it: both are checked up front
    argv = ["generate", "--workdir", str(tmp_path / "missing"), "--out", str(tmp_path / "g.mp4"),
            "--npz", str(read_only_disk / "g.npz")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--npz {read_only_disk / 'g.npz'}: its folder" in err
    assert not (tmp_path / "g.mp4").exists()
