"""Frames/s of `tlgen prepare` (with and without --flow) and of each Grain pipeline on this
CPU; writes one record to OUT (its scratch files go to a temporary folder):

  python bench/data_throughput.py bench/results/data-cpu.json
"""
import argparse
import datetime as dt
import os
import platform
import shutil
import tempfile
import time

os.environ["TLGEN_PROGRESS"] = "0"
from tlgen.bench.harness import count_frames  # noqa: E402
from tlgen.bench.report import write_json  # noqa: E402
from tlgen.data import video_io  # noqa: E402
from tlgen.data.pipelines import clip_dataset, pair_dataset, sparse_frames_dataset  # noqa: E402
from tlgen.data.prepare import prepare  # noqa: E402
from tlgen.data.synthetic import make_scene  # noqa: E402


def timed_prepare(sources, out, **kwargs) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    meta = prepare(sources, out, levels=6, **kwargs)
    seconds = time.perf_counter() - start
    return {"frames_per_s": round(meta["num_frames"] / seconds, 1), "seconds": round(seconds, 2)}


def main(out_path: str) -> None:
    res = {}
    scene = make_scene("city", size=128)
    video_io.write_video("city128.mp4", scene.render(scene.capture_times(600, 600.0)), fps=25)
    for name, kw in [("prepare_mp4_600f_128px_levels6", {}),
                     ("prepare_mp4_600f_128px_levels6_flow_dis", {"flow": True}),
                     ("prepare_mp4_600f_128px_levels6_flow_farneback",
                      {"flow": True, "flow_method": "farneback"})]:
        res[name] = timed_prepare(["city128.mp4"], "ds", **kw)
        print(name, res[name])
    res["prepare_synthetic_city_default_64px"] = timed_prepare(["synthetic:city"], "city64")
    bands = [(1200 * 2 ** k, 1200 * 2 ** (k + 1)) for k in range(5)]
    pipes = {
        "pair_dataset_64px_B32_K5_L6": lambda: pair_dataset(
            "city64", "train", gap_bands=bands, target_levels=range(6), batch_size=32, seed=0),
        "pair_dataset_64px_B32_K5_L6_augment": lambda: pair_dataset(
            "city64", "train", gap_bands=bands, target_levels=range(6), batch_size=32, seed=0,
            augment=True),
        "clip_dataset_64px_B8_T16": lambda: clip_dataset("city64", "train", length=16,
                                                         batch_size=8, seed=0),
        "sparse_frames_dataset_64px_B32_F3": lambda: sparse_frames_dataset(
            "city64", "train", num_frames=3, spans=(2, 4, 8, 16, 32), batch_size=32, seed=0),
    }
    for name, make in pipes.items():
        it = iter(make())
        next(it), next(it)
        start, frames, n = time.perf_counter(), 0, 20
        for _ in range(n):
            frames += count_frames(next(it))
        seconds = time.perf_counter() - start
        res[name] = {"batches_per_s": round(n / seconds, 2), "frames_per_s": round(frames / seconds, 1)}
        print(name, res[name])
    write_json({"date": dt.date.today().isoformat(), "machine": "2-core CPU",
                "python": platform.python_version(),
                "what": "tlgen data layer throughput: `prepare` end to end (decode, resize, "
                        "pyramid, flow, ArrayRecord write) in source frames/s; pipelines in "
                        "batches/s and delivered images/s (every uint8 image of a batch: anchors, "
                        "positives, pyramid targets, clip frames), per process, worker_count=0",
                "results": res}, out_path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the record's JSON file")
    out = os.path.abspath(parser.parse_args().out)
    with tempfile.TemporaryDirectory(prefix="tlgen-data-") as scratch:
        os.chdir(scratch)
        main(out)
