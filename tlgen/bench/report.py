"""Benchmark records as JSON files and human-readable summaries / markdown rows."""

from __future__ import annotations

import json
import os

from tlgen.errors import UserError
from tlgen.files import write_text


def write_json(record, path: str) -> None:
    """Writes `record` (one dict or a list of them) to `path` atomically."""
    write_text(path, json.dumps(record, indent=1, sort_keys=True, default=str) + "\n")


def read_records(path: str, flag: str = "--out") -> list:
    """The list of records in `path` ([] when it does not exist); UserError for a file that
    holds anything else, which a record must not replace."""
    if not os.path.exists(path):
        return []
    try:
        with open(path) as f:
            records = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        records = e
    if isinstance(records, Exception):
        what = "cannot be read as JSON"
    elif not isinstance(records, list):
        what = f"holds a JSON {type(records).__name__}, not a list of records"
    elif not all(isinstance(r, dict) for r in records):
        what = "holds a list of other things than records"
    else:
        return records
    raise UserError(f"{flag} {path} {what}; give a new file or a list of benchmark records.")


def append_json(record: dict, path: str) -> None:
    """Appends `record` to the list of records in `path` (a new list when there is none)."""
    write_json(read_records(path) + [record], path)


def _fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def summary(record: dict) -> str:
    """A few lines describing one benchmark record."""
    step, peak, env = record["step"], record["peak"], record["environment"]
    sizes = " and ".join(record.get("frame_sizes", []))       # records before 2026-12-07 have none
    lines = [
        f"{record['family']}:{record['variant']} {record['dtype']} batch {record['batch']}"
        f"{sizes and f' of {sizes} frames'} on {env['device_kind']} ({record['data']} data)",
        f"  compile      {record['compile']['lower_s'] + record['compile']['compile_s']:.1f} s",
        f"  step         {step['median_s'] * 1e3:.2f} ms (median of {record['steps']}), "
        f"{step['samples_per_s']:.1f} samples/s, {step['frames_per_s']:.1f} frames/s",
        *([f"  + every {step['regularized']['every']}: the regularized step "
           f"{step['regularized']['median_s'] * 1e3:.2f} ms ({step['regularized']['flops'] / 1e9:.2f} "
           f"GFLOP); mean step {step['mean_s'] * 1e3:.2f} ms"] if step.get("regularized") else []),
        f"  FLOPs/step   {step['flops'] / 1e9:.2f} GFLOP -> {step['flops_per_s'] / 1e9:.1f} GFLOP/s",
        f"  matmul peak  {peak['flops_per_s'] / 1e9:.1f} GFLOP/s ({peak['dtype']}, n={peak['size']})"
        f" -> MFU {record['mfu'] * 100:.1f}%",
        f"  memory peak  {record['memory_peak_bytes'] / 2**30:.2f} GiB ({record['memory_source']})",
    ]
    if record.get("pipeline"):
        p = record["pipeline"]
        lines.append(f"  pipeline     {p['frames_per_s']:.1f} frames/s on {p['cores']} core(s), "
                     f"{p['ratio_to_step']:.2f}x what the step consumes")
    if record.get("inference"):
        lines.append(f"  inference    {record['inference']['frames_per_s']:.1f} frames/s "
                     f"({record['inference']['what']})")
    for row in record.get("layers", [])[:12]:
        flag = "  SLOW" if row["slow"] else ""
        lines.append(f"    {row['layer']:<34} x{row['count']:<3} {tuple(row['input'])} "
                     f"{row['seconds'] * 1e3:8.2f} ms {row['flops_per_s'] / 1e9:9.1f} GFLOP/s "
                     f"{row['peak_fraction'] * 100:5.0f}% of peak{flag}")
    return "\n".join(lines)


def markdown_table(records: list[dict]) -> str:
    """One markdown row per record: step time, MFU, ratio to the PyTorch peer, headroom."""
    head = ("| family:variant | device | dtype | batch | step ms | samples/s | MFU | "
            "tlgen / PyTorch | pipeline headroom | inference frames/s |\n"
            "|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for r in records:
        step, peer = r["step"], r.get("peer") or {}
        pipe, inf = r.get("pipeline") or {}, r.get("inference") or {}
        ratio = (f"{r['ratio']:.2f} "
                 f"({peer['median_s'] * 1e3:.1f} ms)" if peer.get("median_s") else "-")
        rows.append(
            f"| {r['family']}:{r['variant']} | {r['environment']['device_kind']} | {r['dtype']} | "
            f"{r['batch']} | {step['median_s'] * 1e3:.1f} | {step['samples_per_s']:.1f} | "
            f"{r['mfu'] * 100:.1f}% | {ratio} | "
            f"{_fmt(pipe.get('ratio_to_step'), '.2f')}{'x' if pipe else ''} | "
            f"{_fmt(inf.get('frames_per_s'), '.1f')} |")
    return "\n".join([head] + rows)
