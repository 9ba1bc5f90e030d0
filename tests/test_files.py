"""Atomic writes: the final name holds the old content or the whole new one, never a part."""

import os

import pytest

from tlgen.files import write_atomic, write_text


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
