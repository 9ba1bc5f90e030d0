"""Evaluation reports of any family: eval/report.json, eval/report.md and PNG pictures.

A report is a dict. In report.md, its scalar entries form the summary table, each list of
row dicts becomes a table (titled by `report["titles"][key]` when given; an empty list, a
table with no rows, is left out), `notes` become bullets and the PNG plots the family wrote
are shown.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable

import numpy as np

from tlgen.files import write_atomic, write_text

SKIP = ("titles", "notes", "plots")


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _table(rows: list[dict]) -> list[str]:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    return lines + ["| " + " | ".join(_cell(r.get(k, "")) for k in keys) + " |" for r in rows]


def _is_table(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(r, dict) for r in value)


def markdown(report: dict, plots: list[str]) -> str:
    """The report as markdown (see the module docstring)."""
    titles = report.get("titles", {})
    summary = [{"": key, "value": value} for key, value in report.items()
               if key not in SKIP and not _is_table(value) and not isinstance(value, dict) and value != []]
    md = [f"# Evaluation: {report.get('workdir', '')}", ""]
    md += ["## Summary", ""] + _table(summary) + [""] if summary else []
    for key, value in report.items():
        if key not in SKIP and _is_table(value):
            md += [f"## {titles.get(key, key)}", ""] + _table(value) + [""]
    md += [f"* {note}" for note in report.get("notes", [])]
    md += ([""] if report.get("notes") else []) + [f"![{p}]({p})" for p in plots]
    return "\n".join(md) + "\n"


def write_report(out_dir: str, evaluate: Callable[[str], dict]) -> tuple[dict, list[str]]:
    """Runs `evaluate(plots_dir)` -> report, which writes its PNG plots into a folder of its
    own, and puts report.json, report.md and those plots into `out_dir` together: the previous
    report's plots go, other files stay, and an evaluation that fails or is interrupted leaves
    the previous report whole (an `out_dir` it made is removed again). Returns the report
    and the paths written."""
    made = not os.path.exists(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".report-", dir=out_dir)
    done = False
    try:
        report = evaluate(staging)
        plots = sorted(p for p in os.listdir(staging) if p.endswith(".png"))
        report = {**report, "plots": plots}
        write_text(os.path.join(staging, "report.md"), markdown(report, plots))
        write_text(os.path.join(staging, "report.json"), json.dumps(report, indent=2))
        old = set(_previous_plots(out_dir)) - set(plots)
        for name in plots + ["report.md", "report.json"]:        # the report last: it lists the rest
            os.replace(os.path.join(staging, name), os.path.join(out_dir, name))
        for name in old:
            if os.path.isfile(os.path.join(out_dir, name)):
                os.remove(os.path.join(out_dir, name))
        done = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if made and not done:
            shutil.rmtree(out_dir, ignore_errors=True)
    return report, [os.path.join(out_dir, name) for name in ["report.json", "report.md"] + plots]


def _previous_plots(out_dir: str) -> list[str]:
    try:
        with open(os.path.join(out_dir, "report.json")) as f:
            plots = json.load(f).get("plots", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [p for p in plots if isinstance(p, str) and p.endswith(".png") and os.path.basename(p) == p]


def figure(**kwargs):
    """A matplotlib Figure outside pyplot: the process's backend (a notebook's) is left alone."""
    from matplotlib.figure import Figure
    return Figure(**kwargs)


def write_png(path: str, image: np.ndarray) -> None:
    """Writes a uint8 (H, W, 3) image as PNG to `path` (whatever its name ends in)."""
    from PIL import Image
    Image.fromarray(np.asarray(image, np.uint8)).save(path, format="PNG")


def save_png(path: str, image: np.ndarray) -> None:
    """Writes a uint8 (H, W, 3) image as PNG, atomically."""
    write_atomic(path, lambda tmp: write_png(tmp, image))


def video_strips(videos: list[np.ndarray], max_frames: int = 8) -> np.ndarray:
    """uint8 (rows, frames) grid: each video (T, H, W, 3) a row of up to `max_frames` frames."""
    n = min(max_frames, min(len(v) for v in videos))
    return np.concatenate([np.concatenate(list(v[:n]), axis=1) for v in videos], axis=0)


def contact_sheet(frames: np.ndarray, flows: np.ndarray | None = None, columns: int = 8) -> np.ndarray:
    """uint8 picture: `columns` evenly spaced frames of (T, H, W, 3) in a row; with `flows`
    (T-1, h, w, 2), the flow into each shown frame below it (`flow_to_rgb`, one brightness
    scale for the row, frame 0 black), resized to the frames' size (nearest)."""
    from tlgen.data.flow import flow_to_rgb
    index = np.unique(np.linspace(0, len(frames) - 1, min(columns, len(frames))).round().astype(int))
    rows = [np.concatenate(list(frames[index]), axis=1)]
    if flows is not None and len(flows):
        h, w = frames.shape[1:3]
        pictures = flow_to_rgb(flows, float(np.abs(flows).max()) or None)
        ys = np.arange(h) * pictures.shape[1] // h
        xs = np.arange(w) * pictures.shape[2] // w
        cells = [np.zeros((h, w, 3), np.uint8) if i == 0 else pictures[min(i, len(pictures)) - 1][ys][:, xs]
                 for i in index]
        rows.append(np.concatenate(cells, axis=1))
    return np.concatenate(rows, axis=0)
