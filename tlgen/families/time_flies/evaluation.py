"""`tlgen eval` on a Time Flies run: the training scheme on held-out clips, where the truth is
known, beside two baselines that need no training.

Each clip of the split (consecutive frames `data.stride` records apart) is the reference; the
input image is its (video, block)'s mean image flipped horizontally, with the first frame's
labels flipped; the truth is the clip flipped (what the still camera showed at those times,
in the image's layout, which the reference does not share). Scored per method — the model,
the input image unchanged, and classwise colour transfer on pixels (`pixel_transfer`) — the
paper's axes: PSNR to the truth, E_tmp and σ_tmp against the truth (eq. 12, 13; the truth's
own E_tmp beside them), SSIM to the input image and the VGG Gram loss to the reference frames
(Table 1, Fig. 7), the Gram loss with the run's own VGG-19 file. The model's clips also get the
protocol's FID/KID, FVD, LPIPS (frame t against the truth's frame t) and SWD.
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np

from tlgen.errors import UserError
from tlgen.families.time_flies.training import loss_features
from tlgen.metrics.image import psnr, ssim
from tlgen.metrics.temporal import e_tmp, sigma_tmp
from tlgen.trained import Trained


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", default="validation", help="Time Flies: dataset split (default validation)")
    parser.add_argument("--num-clips", type=int, default=16, help="Time Flies: clips to score (default 16)")
    parser.add_argument("--vgg19", metavar="FILE",
                        help="Time Flies: VGG-19 weights (default: the run's config.model.vgg19, the file "
                             "it was trained with)")


def pixel_transfer(image: np.ndarray, labels: np.ndarray, reference: np.ndarray,
                   reference_labels: np.ndarray) -> np.ndarray:
    """The strongest simple baseline: uint8 frames (T, H, W, 3), frame t the image (H, W, 3) u8
    with each class of `labels` (H, W) given the per-channel mean and std of the same class in
    reference frame t (`reference_labels` (T, H, W)): classwise AdaIN on pixels. A class absent
    from a reference frame keeps the image's pixels."""
    x = image.astype(np.float64)
    out = np.empty((len(reference),) + image.shape)
    for t in range(len(out)):
        frame = x.copy()
        for s in np.unique(labels):
            src, dst = x[labels == s], reference[t][reference_labels[t] == s].astype(np.float64)
            if len(dst):
                frame[labels == s] = (src - src.mean(0)) / (src.std(0) + 1e-6) * dst.std(0) + dst.mean(0)
        out[t] = frame
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@jax.jit
def _grams(vgg, frames):
    features = loss_features(vgg, frames.astype(jnp.float32) / 255.0)
    return {k: jnp.einsum("bhwc,bhwd->bcd", f, f) / (f.shape[1] * f.shape[2] * f.shape[3])
            for k, f in features.items()}


def grams(vgg, frames: np.ndarray) -> dict:
    """{tap: (T, C, C)} Gram matrices of VGG-19's relu1_1 ... relu4_1 (`loss_features`, the
    parameters `vgg`) of uint8 frames (T, H, W, 3), each divided by the tap's H * W * C."""
    return jax.device_get(_grams(vgg, jnp.asarray(frames)))


def gram_loss(a: dict, b: dict) -> float:
    """The paper's style axis: the mean over taps of the mean square ‖Gram a_t − Gram b_t‖²
    of two `grams` (one of a single frame stands for every frame)."""
    return float(np.mean([np.mean(np.square(a[k].astype(np.float64) - b[k])) for k in a]))


def clip_scores(frames, image, reference_grams: dict, truth, vgg, frame_grams: dict | None = None) -> dict:
    """The per-clip scores of one method's uint8 frames (T, H, W, 3) (see the module
    docstring); the Gram loss against the reference's `grams`, the frames' own computed here
    unless given."""
    unit = lambda x: np.asarray(x, np.float32) / 255.0     # noqa: E731
    return {"psnr": float(np.mean(psnr(unit(frames), unit(truth)))),
            "e_tmp": e_tmp(frames), "truth_e_tmp": e_tmp(truth), "sigma_tmp": sigma_tmp(frames, truth),
            "ssim_to_input": float(np.mean(ssim(unit(frames), np.broadcast_to(unit(image), frames.shape)))),
            "gram_loss": gram_loss(frame_grams or grams(vgg, frames), reference_grams)}


METHODS = ("the model", "input image, unchanged", "classwise colour transfer on pixels")


def evaluate(trained: Trained, out_dir: str, data_dir: str | None = None, *, split: str = "validation",
             num_clips: int = 16, networks=None) -> dict:
    """The report of a Time Flies run on `num_clips` clips of `split` (see the module docstring)."""
    from tlgen.data.dataset import open_training_data
    from tlgen.families.time_flies.inference import Animator
    from tlgen.metrics.protocol import CLIP_SEED, FVD_FRAMES, Networks, eval_clips, mean_scores, video_metrics
    from tlgen.metrics.report import save_png, video_strips
    from tlgen.models.pixels import frame_shape

    if num_clips < 1:
        raise UserError(f"--num-clips {num_clips} must be at least 1.")
    config = trained.config
    data_dir = trained.data_dir(data_dir)
    meta = open_training_data(data_dir, image_size=frame_shape(config.data.image_size), run=trained.workdir).metadata
    masked = bool(meta.get("has_masks"))
    if masked and int(meta["num_classes"]) > int(config.model.num_classes):
        raise UserError(f"{data_dir} has {meta['num_classes']} mask classes but the run {trained.workdir} "
                        f"knows {config.model.num_classes}; evaluate it on a dataset of its classes.")
    batches, length, notes = eval_clips(data_dir, split, lengths=(FVD_FRAMES, 8, 4, 2),
                                        stride=int(config.data.stride), num_clips=num_clips,
                                        with_masks=masked, with_flow=False, with_mean=True)
    anim, vgg = Animator(trained), trained.frozen["vgg19"]
    rows = {name: [] for name in METHODS}
    made, truths = [], []
    for batch in batches:
        reference = batch["frames"][0]
        labels = batch["masks"][0] if masked else np.zeros(reference.shape[:3], np.uint8)
        image, image_labels = batch["mean"][0, :, ::-1], labels[0, :, ::-1]
        truth = reference[:, :, ::-1]
        methods = {"the model": anim.animate(image, image_labels, reference, labels, seed=CLIP_SEED),
                   "input image, unchanged": np.broadcast_to(image, truth.shape),
                   "classwise colour transfer on pixels": pixel_transfer(image, image_labels, reference, labels)}
        style = grams(vgg, reference)
        own = {"input image, unchanged": grams(vgg, image[None])}        # one frame for all
        for name, frames in methods.items():
            rows[name].append(clip_scores(frames, image, style, truth, vgg, own.get(name)))
        made.append(methods["the model"])
        truths.append(truth)
    os.makedirs(out_dir, exist_ok=True)
    save_png(os.path.join(out_dir, "clips.png"),
             video_strips([v for pair in zip(truths[:4], made[:4]) for v in pair]))
    distribution = video_metrics(np.stack(truths), np.stack(made), networks or Networks(), seed=CLIP_SEED)
    table = [{"method": name, **mean_scores(rs)} for name, rs in rows.items()]
    report = {k: v for k, v in table[0].items() if k != "method"}
    report.update(distribution["scores"])
    report.update(workdir=trained.workdir, step=trained.step, split=split, num_clips=len(batches),
                  data_dir=os.path.abspath(data_dir), classes_from_dataset=masked, methods=table,
                  samples=distribution["samples"], protocol=distribution["protocol"],
                  not_computed=distribution["not_computed"],
                  notes=notes + ([] if masked else [f"{data_dir} has no masks: one class everywhere"])
                  + [f"{name}: not computed ({why})" for name, why in distribution["not_computed"].items()]
                  + distribution["caveats"],
                  titles={"methods": "Mean per clip: the model and two baselines without training "
                                     "(truth: the reference clip flipped)"})
    return report


def eval_command(trained: Trained, args: argparse.Namespace) -> dict:
    """`tlgen eval` on a Time Flies run."""
    if args.vgg19:
        trained.config.model.vgg19 = args.vgg19
    return evaluate(trained, args.out_dir, args.data, split=args.split, num_clips=args.num_clips,
                    networks=args.networks)
