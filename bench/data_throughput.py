"""Frames/s of tlgen prepare (with/without --flow) and of each pipeline, on this CPU."""
import json, os, shutil, time, platform, datetime as dt
os.environ["TLGEN_PROGRESS"] = "0"
from tlgen.data.prepare import prepare
from tlgen.data import video_io
from tlgen.data.synthetic import make_scene
from tlgen.data.pipelines import pair_dataset, clip_dataset, sparse_frames_dataset

def timed(fn):
    t = time.perf_counter(); fn(); return time.perf_counter() - t

res = {}
scene = make_scene("city", size=128)
t = scene.capture_times(600, 600.0)
frames = scene.render(t)
video_io.write_video("city128.mp4", frames, fps=25)
for name, kw in [("prepare_mp4_600f_128px_levels6", {}), ("prepare_mp4_600f_128px_levels6_flow_dis", {"flow": True}),
                 ("prepare_mp4_600f_128px_levels6_flow_farneback", {"flow": True, "flow_method": "farneback"})]:
    shutil.rmtree("ds", ignore_errors=True)
    s = timed(lambda: prepare(["city128.mp4"], "ds", levels=6, **kw))
    res[name] = {"frames_per_s": round(600 / s, 1), "seconds": round(s, 2)}
    print(name, res[name])
shutil.rmtree("ds", ignore_errors=True)
s = timed(lambda: prepare(["synthetic:city"], "city64", levels=6, overwrite=True))
res["prepare_synthetic_city_default_3024f_64px"] = {"frames_per_s": round(3024 / s, 1), "seconds": round(s, 2)}
print(res)
bands = [(1200 * 2 ** k, 1200 * 2 ** (k + 1)) for k in range(5)]
pipes = {
  "pair_dataset_64px_B32_K5_L6": (lambda: pair_dataset("city64", "train", gap_bands=bands, target_levels=range(6), batch_size=32, seed=0), 32),
  "pair_dataset_64px_B32_K5_L6_augment": (lambda: pair_dataset("city64", "train", gap_bands=bands, target_levels=range(6), batch_size=32, seed=0, augment=True), 32),
  "clip_dataset_64px_B8_T16": (lambda: clip_dataset("city64", "train", length=16, batch_size=8, seed=0), 8 * 16),
  "sparse_frames_dataset_64px_B32_F3": (lambda: sparse_frames_dataset("city64", "train", num_frames=3, max_span=32, batch_size=32, seed=0), 32 * 3),
}
for name, (make, per_batch) in pipes.items():
    it = iter(make()); next(it); next(it)
    n = 20
    s = timed(lambda: [next(it) for _ in range(n)])
    res[name] = {"batches_per_s": round(n / s, 2), "frames_per_s": round(n * per_batch / s, 1)}
    print(name, res[name])
out = {"date": dt.date.today().isoformat(), "machine": "2-core CPU", "python": platform.python_version(),
       "what": "tlgen data layer throughput: `prepare` end to end (decode, resize, pyramid, flow, ArrayRecord write) in source frames/s; pipelines in batches/s and images/s (per process, worker_count=0, 4 reader threads) on the default synthetic:city 64px dataset; machine shared with other jobs, single run each",
       "results": res}
json.dump(out, open("data-cpu.json", "w"), indent=1)
