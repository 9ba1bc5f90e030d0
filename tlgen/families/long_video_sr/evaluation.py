"""`tlgen eval` on a super-resolution run: held-out clips reduced `model.scale` times (area
averaging, as the run trains) and upscaled again, against the frames they were reduced from.

Each clip of the split (up to 16 frames and `model.context` more on each side, `data.stride`
records apart) is reduced; the run upscales its middle frames from the whole window, as
`tlgen generate --superres` does (z of video 0 of the protocol's seed), beside
three interpolations that need no training: bilinear, bicubic (Keys, a = -0.5) and Lanczos-3
(`jax.image.resize`). Per method: PSNR and SSIM to the true frames, the low-resolution PSNR
(the frames reduced again against the input: how faithful the upscaling is to what it was
given), E_tmp (flicker; the truth's beside it) and the protocol's SWD (and FID/KID, FVD, LPIPS
with the networks' files). An upscaler that draws detail is expected to lose some PSNR to the
interpolations (they draw the mean) and to win on the distribution and perceptual scores.
Writes clips.png: for the first two clips, the true frames above the model's and bicubic's.
"""

from __future__ import annotations

import argparse
import os

import jax
import numpy as np

from tlgen.errors import UserError
from tlgen.families.long_video.inference import not_lowres, upscaler
from tlgen.families.long_video.training import frame_size
from tlgen.metrics.image import psnr, ssim
from tlgen.metrics.temporal import e_tmp
from tlgen.models import long_video_sr as lsr
from tlgen.trained import Trained

INTERPOLATIONS = {"bilinear": "linear", "bicubic": "cubic", "Lanczos-3": "lanczos3"}   # jax.image.resize's


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", default="validation", help="long_video_sr: dataset split (default validation)")
    parser.add_argument("--num-clips", type=int, default=16, help="long_video_sr: clips to score (default 16)")
    parser.add_argument("--superres", help=argparse.SUPPRESS)       # long_video's: this run given in its place


def interpolate(lowres: np.ndarray, size: tuple[int, int], method: str) -> np.ndarray:
    """uint8 frames (T, h, w, 3) resized to `size` (H, W) by `jax.image.resize`'s `method`."""
    out = jax.image.resize(np.asarray(lowres, np.float32), (len(lowres), *size, lowres.shape[-1]), method)
    return np.asarray(np.clip(np.rint(out), 0, 255), np.uint8)


def clip_scores(frames: np.ndarray, truth: np.ndarray, lowres: np.ndarray, scale: int) -> dict:
    """One method's per-clip scores of uint8 frames (T, H, W, 3) against the `truth` and the
    low-resolution frames `lowres` (T, h, w, 3) they were made from."""
    unit = lambda x: np.asarray(x, np.float32) / 255.0     # noqa: E731
    reduced = np.asarray(lsr.downsample_area(frames, scale))
    return {"psnr": float(np.mean(psnr(unit(frames), unit(truth)))),
            "ssim": float(np.mean(ssim(unit(frames), unit(truth)))),
            "lowres_psnr": float(np.mean(psnr(unit(reduced), unit(lowres)))),
            "e_tmp": e_tmp(frames), "truth_e_tmp": e_tmp(truth)}


def evaluate(trained: Trained, out_dir: str, data_dir: str | None = None, *, split: str = "validation",
             num_clips: int = 16, networks=None) -> dict:
    """The report of a super-resolution run on `num_clips` clips of `split` (see the module
    docstring)."""
    from tlgen.data.dataset import open_training_data
    from tlgen.metrics.protocol import (CLIP_SEED, FVD_FRAMES, Networks, eval_clips, mean_scores, real_features,
                                        video_metrics)
    from tlgen.metrics.report import save_png, video_strips

    if num_clips < 1:
        raise UserError(f"--num-clips {num_clips} must be at least 1.")
    config = trained.config
    size, scale = frame_size(config), int(config.model.scale)
    data_dir = trained.data_dir(data_dir)
    open_training_data(data_dir, image_size=size, run=trained.workdir)
    run, k = upscaler(trained, 1, CLIP_SEED)
    batches, length, notes = eval_clips(data_dir, split, lengths=(FVD_FRAMES, 8, 4, 2),
                                        stride=int(config.data.stride), num_clips=num_clips,
                                        with_masks=False, with_flow=False, context=k)
    methods = ("the model",) + tuple(INTERPOLATIONS)
    made = {name: [] for name in methods}
    rows = {name: [] for name in methods}
    truths = []
    for batch in batches:
        window = np.asarray(lsr.downsample_area(batch["frames"], scale))        # (1, n + 2k, h, w, 3)
        truth, lowres = batch["frames"][0, k:k + length], window[0, k:k + length]
        frames = {"the model": np.asarray(run(window))[0],
                  **{name: interpolate(lowres, size, method) for name, method in INTERPOLATIONS.items()}}
        for name, video in frames.items():
            made[name].append(video)
            rows[name].append(clip_scores(video, truth, lowres, scale))
        truths.append(truth)
    os.makedirs(out_dir, exist_ok=True)
    save_png(os.path.join(out_dir, "clips.png"),
             video_strips([v for i in range(min(2, len(truths))) for v in (truths[i], made["the model"][i],
                                                                            made["bicubic"][i])]))
    networks = networks or Networks()
    real = np.stack(truths)
    features = real_features(real, networks)                  # once for the four methods
    distribution = {name: video_metrics(real, np.stack(made[name]), networks, seed=CLIP_SEED, features=features)
                    for name in methods}
    table = [{"method": name, **mean_scores(rows[name]), **distribution[name]["scores"]} for name in methods]
    ours = distribution["the model"]
    report = {key: value for key, value in table[0].items() if key != "method"}
    report.update(workdir=trained.workdir, step=trained.step, split=split, num_clips=len(batches),
                  data_dir=os.path.abspath(data_dir), scale=scale, methods=table, samples=ours["samples"],
                  protocol=ours["protocol"], not_computed=ours["not_computed"],
                  notes=notes + [f"{name}: not computed ({why})" for name, why in ours["not_computed"].items()]
                  + ours["caveats"],
                  titles={"methods": f"Mean per clip: the model and three interpolations, x{scale} from frames "
                                     "reduced by area averaging (truth: the frames before reduction)"})
    return report


def eval_command(trained: Trained, args: argparse.Namespace) -> dict:
    """`tlgen eval` on a super-resolution run."""
    if args.superres:
        raise not_lowres(args.workdir)
    return evaluate(trained, args.out_dir, args.data, split=args.split, num_clips=args.num_clips,
                    networks=args.networks)
