"""FGLA, its global-latent "AL" variant and DTVNet, trained on the same data and scored by
`tlgen eval` on held-out renderings, side by side (FGLA's Table 2 metrics that need no
downloaded weights: masked PSNR / SSIM over static pixels, Flow-MSE overall and per region,
E_tmp), with the baselines of a still video (the first frame repeated) and of the
real clip itself. Writes one record to --out.

Training data: the synthetic water (river + clouds: two motions) and clouds (one motion)
scenes, seed 0, with true flow and masks. Evaluation: the same scenes rendered with seed 1
(another layout, never trained on), 9-frame clips 4 frames apart, every model animating the
clip's first frame with the motion of the clip's own true flow. All runs use today's
configs (`configs/fgla_landscape.py:tiny`, `configs/dtvnet_clouds.py:tiny` at the same size
and stride) and the same number of steps, each trained with every seed of --seeds (the summary gives
the mean and standard deviation over seeds).

  python bench/animation_compare.py --out bench/results/animation-compare-cpu.json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from tlgen.bench.harness import environment  # noqa: E402
from tlgen.bench.report import write_json  # noqa: E402
from tlgen.cli.main import main  # noqa: E402
from tlgen.data.prepare import prepare  # noqa: E402
from tlgen.metrics.protocol import CLIP_SEED, FVD_FRAMES  # noqa: E402

SCENES = ("water", "clouds")
METRICS = ("masked_psnr", "masked_ssim", "flow_mse", "flow_mse_region0", "flow_mse_region1",
           "flow_mse_region2", "e_tmp", "e_tmp_real")


def runs(size: int, stride: int, steps: int) -> dict:
    """name -> (config, overrides) of the compared runs."""
    common = [f"data.image_size={size}", f"data.stride={stride}", f"total_steps={steps}",
              f"train.ckpt_every={steps}", f"train.eval_every={steps}", f"train.sample_every={steps}"]
    return {"fgla": ("configs/fgla_landscape.py:tiny", common),
            "al": ("configs/fgla_landscape.py:tiny", common + ["model.per_region=False"]),
            "dtvnet": ("configs/dtvnet_clouds.py:tiny", common)}


def baselines(data: str, clips: int, frames: int, stride: int) -> dict:
    """The metrics of a still video (the first frame repeated) and of the real clip itself
    on the clips `tlgen eval` scores (validation, 16 frames drawn with the protocol's clip
    seed, the first `frames` of each)."""
    from tlgen.data.pipelines import clip_dataset
    from tlgen.metrics.animation import region_flow_mse, static_scores
    from tlgen.metrics.flow import flow_mse, video_flows
    from tlgen.metrics.temporal import e_tmp

    batches = iter(clip_dataset(data, "validation", length=FVD_FRAMES, stride=stride, batch_size=1,
                                seed=CLIP_SEED, with_flow=True, with_masks=True))
    rows = {"still": [], "real": []}
    for _ in range(clips):
        batch = next(batches)
        real, true, classes = batch["frames"][0, :frames], batch["flow"][0, :frames - 1], batch["masks"][0, 0]
        for name, video in (("still", np.repeat(real[:1], frames, axis=0)), ("real", real)):
            flows = video_flows(video)
            rows[name].append({**static_scores(video, real), "flow_mse": flow_mse(flows, true),
                               **region_flow_mse(flows, true, classes), "e_tmp": e_tmp(video),
                               "e_tmp_real": e_tmp(real)})
    return {name: {k: float(np.mean([r[k] for r in rs if k in r])) for k in METRICS if any(k in r for r in rs)}
            for name, rs in rows.items()}


def _quiet(argv) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    if code:
        raise SystemExit(f"tlgen {' '.join(argv)} exited {code}")
    return out.getvalue()


def compare(root: str, size: int, stride: int, steps: int, clips: int, frames: int, seeds) -> dict:
    train_dir = os.path.join(root, "train")
    prepare([f"synthetic:{s}:seed=0" for s in SCENES], train_dir, size=(size, size), flow=True,
            levels=1, val_fraction=0.1)
    held_out = {}
    for scene in SCENES:
        held_out[scene] = os.path.join(root, f"{scene}_seed1")
        prepare([f"synthetic:{scene}:seed=1"], held_out[scene], size=(size, size), flow=True,
                levels=1, val_fraction=0.5)
    results = []
    for scene, data in held_out.items():
        for name, scores in baselines(data, clips, frames, stride).items():
            results.append({"run": name, "scene": scene, **scores})
            print(f"{name:7s} {scene:7s} " + " ".join(f"{k}={v:.4g}" for k, v in scores.items()))
    for name, (config, overrides) in runs(size, stride, steps).items():
        for seed in seeds:
            workdir = os.path.join(root, f"{name}_seed{seed}")
            _quiet(["train", "--config", config, "--workdir", workdir, f"--config.data.dir={train_dir}",
                    f"--config.seed={seed}", *[f"--config.{o}" for o in overrides]])
            with open(os.path.join(workdir, "metrics.jsonl")) as f:
                speed = [json.loads(line) for line in f if '"train"' in line][-1]["steps_per_sec"]
            for scene, data in held_out.items():
                out_dir = os.path.join(workdir, f"eval_{scene}")
                argv = ["eval", "--workdir", workdir, "--data", data, "--out", out_dir, "--num-clips", str(clips)]
                if name != "dtvnet":
                    argv += ["--frames", str(frames)]
                _quiet(argv)
                with open(os.path.join(out_dir, "report.json")) as f:
                    report = json.load(f)
                results.append({"run": name, "seed": seed, "scene": scene, "steps": steps,
                                "train_steps_per_s": speed, **{k: report[k] for k in METRICS if k in report}})
                print(f"{name:7s} seed {seed} {scene:7s} "
                      + " ".join(f"{k}={report[k]:.4g}" for k in METRICS if k in report))
    summary = []
    for name in runs(size, stride, steps):
        for scene in SCENES:
            rows = [r for r in results if r["run"] == name and r["scene"] == scene]
            summary.append({"run": name, "scene": scene, "seeds": len(rows), **{
                k: {"mean": float(np.mean([r[k] for r in rows])), "std": float(np.std([r[k] for r in rows]))}
                for k in METRICS if k in rows[0]}})
    return {"results": results, "summary": summary, "notes": [
        "flow_mse_region<k>: dx^2 + dy^2 in class k of the synthetic masks (0 ground, 1 sky, "
        "2 water), twice the scale of flow_mse",
        "masked PSNR/SSIM: static pixels of the real clip (FGLA eq. 14) against its first frame"]}


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--frames", type=int, default=9, help="FGLA clip length (DTVNet: its num_frames + 1 = 9)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds of every run")
    parser.add_argument("--root", help="working folder (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or tmp
        os.makedirs(root, exist_ok=True)
        record = compare(root, args.size, args.stride, args.steps, args.clips, args.frames, args.seeds)
    record.update(kind="animation_compare", date=datetime.datetime.now().isoformat(timespec="seconds"),
                  size=args.size, stride=args.stride, clips=args.clips, frames=args.frames,
                  seeds=args.seeds, environment=environment())
    write_json([record], args.out)


if __name__ == "__main__":
    main_cli()
