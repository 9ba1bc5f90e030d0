"""`tlgen demo` end to end at 2 training steps on a shorter synthetic city (the demo uses a
dataset already in its folder), run as a user runs it (its own process, one CPU device):
trained, timelapses in every mode written, and the printed band-fidelity table is the
report's."""

import json
import os
import re
import subprocess
import sys

from tests.test_colab import one_device_env
from tlgen.data.prepare import prepare


def best_baseline(row):
    return max(row[name] for name in ("raw", "oracle blur", "median", "period mean", "nearest frames"))


def test_demo_writes_its_files_and_prints_the_reports_table(tmp_path):
    out = tmp_path / "demo"
    prepare(["synthetic:city:frames=504"], str(out / "data"))          # 7 days, not 42
    done = subprocess.run([sys.executable, "-m", "tlgen", "demo", "--out", str(out), "--steps", "2"],
                          capture_output=True, text=True, env=one_device_env())
    assert done.returncode == 0, done.stderr
    printed = done.stdout
    report = json.loads((out / "run" / "eval" / "report.json").read_text())
    rows = report["band_fidelity"]
    lines = [line for line in printed.splitlines() if line.startswith("cutoff")]
    assert len(lines) == len(rows) == 6
    for line, row in zip(lines, rows):
        numbers = dict(re.findall(r"(masked reconstruction|neighbour rendering|raw frame|oracle blur|"
                                  r"median|period mean|nearest frames|temporal pyramid) (-?[\d.]+) dB", line))
        assert float(numbers["neighbour rendering"]) == round(row["neighbours"], 2)
        assert float(numbers["raw frame"]) == round(row["raw"], 2)
        assert float(numbers["median"]) == round(row["median"], 2)
        assert float(numbers["period mean"]) == round(row["period mean"], 2)
        assert float(numbers["nearest frames"]) == round(row["nearest frames"], 2)
        margin = float(re.search(r"minus the best baseline ([-+][\d.]+) dB", line).group(1))
        assert margin == round(row["neighbours"] - best_baseline(row), 2)
    wins = [r for r in rows if r["neighbours"] - best_baseline(r) >= 1.0]
    assert f"by 1 dB or more at {len(wins)} of 6 cutoffs" in printed
    flicker = [line for line in printed.splitlines() if line.startswith("E_tmp at cutoff")]
    assert len(flicker) == len(report["flicker"]) == 6
    for line, row in zip(flicker, report["flicker"]):
        assert (f"masked decode {row['decoder']:.1f}, neighbour rendering {row['neighbours']:.1f}, "
                f"raw frames {row['raw subsample']:.1f}") in line
    for name in ("subsample", "neighbours", "interpolate", "multiscale", "remove_band", "insert_band"):
        assert str(out / f"timelapse_{name}.mp4") in printed and (out / f"timelapse_{name}.mp4").stat().st_size > 0
    assert (out / "contact_sheet.png").exists() and (out / "run" / "eval" / "band_fidelity.png").exists()
    assert "bin leakage" in printed and os.path.isdir(out / "data")


def test_an_out_that_is_a_file_or_holds_another_data_folder_is_refused_and_kept(tmp_path, capsys):
    from tlgen.cli.main import main

    file = tmp_path / "webcam.mp4"
    file.write_bytes(b"the user's video")
    assert main(["demo", "--out", str(file), "--steps", "1"]) == 2
    assert capsys.readouterr().err.strip() == f"tlgen demo: error: --out {file} is a file; choose a folder."
    assert main(["demo", "--out", str(file / "sub"), "--steps", "1"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"tlgen demo: error: --out {file / 'sub'} lies inside {file}, a file; choose a folder.")
    assert file.read_bytes() == b"the user's video"
    assert main(["demo", "--out", "/proc/tlgen-demo", "--steps", "1"]) == 2    # cannot be made
    assert capsys.readouterr().err.strip().startswith(
        "tlgen demo: error: --out /proc/tlgen-demo: /proc cannot be written (")
    own = tmp_path / "project" / "data"          # a folder of the user's, not a dataset
    own.mkdir(parents=True)
    (own / "notes.txt").write_text("mine")
    assert main(["demo", "--out", str(tmp_path / "project"), "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tlgen demo: error: {own} is not the demo's dataset (") and len(err.splitlines()) == 1
    assert file.read_bytes() == b"the user's video" and (own / "notes.txt").read_text() == "mine"
    assert sorted(os.listdir(tmp_path / "project")) == ["data"]
