"""Evaluation reports: written as a set, listing the plots of their own evaluation only."""

import json
import os

import numpy as np
import pytest

from tlgen.metrics.report import markdown, save_png, write_report


def _evaluation(plots, score):
    def evaluate(plots_dir):
        for name in plots:
            save_png(os.path.join(plots_dir, name), np.zeros((2, 2, 3), np.uint8))
        return {"score": score, "notes": ["a note"]}
    return evaluate


def test_a_report_replaces_the_previous_ones_plots_and_keeps_the_users_files(tmp_path):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "holiday.png").write_bytes(b"the user's")
    report, paths = write_report(str(out), _evaluation(["band.png", "pca.png"], 1.0))
    assert report["plots"] == ["band.png", "pca.png"] and report["score"] == 1.0
    assert paths == [str(out / n) for n in ("report.json", "report.md", "band.png", "pca.png")]
    report, _ = write_report(str(out), _evaluation(["clips.png"], 2.0))     # another family's run
    assert json.loads((out / "report.json").read_text())["plots"] == ["clips.png"]
    assert "![clips.png](clips.png)" in (out / "report.md").read_text()
    assert sorted(os.listdir(out)) == ["clips.png", "holiday.png", "report.json", "report.md"]
    assert (out / "holiday.png").read_bytes() == b"the user's"


def test_an_evaluation_that_fails_leaves_the_previous_report_whole(tmp_path):
    out = tmp_path / "eval"
    write_report(str(out), _evaluation(["band.png"], 1.0))
    before = {n: (out / n).read_bytes() for n in os.listdir(out)}

    def interrupted(plots_dir):
        _evaluation(["band.png", "pca.png"], 2.0)(plots_dir)         # plots written, then Ctrl-C
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        write_report(str(out), interrupted)
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before
    # a first evaluation that fails leaves no folder of its own behind
    with pytest.raises(KeyboardInterrupt):
        write_report(str(tmp_path / "new" / "eval"), interrupted)
    assert os.listdir(tmp_path / "new") == []


def test_markdown_has_a_summary_of_scalars_a_table_per_list_of_rows_and_the_notes():
    report = {"workdir": "runs/x", "psnr": 31.23456, "rows": [{"method": "a", "psnr": 1.0}, {"method": "b"}],
              "spectrum": [], "protocol": {"psnr": "mean over frames"}, "notes": ["one", "two"],
              "titles": {"rows": "Per method"}}
    assert markdown(report, ["p.png"]).splitlines() == [
        "# Evaluation: runs/x", "",
        "## Summary", "", "|  | value |", "|---|---|", "| workdir | runs/x |", "| psnr | 31.23 |", "",
        "## Per method", "", "| method | psnr |", "|---|---|", "| a | 1 |", "| b |  |", "",
        "* one", "* two", "", "![p.png](p.png)"]
