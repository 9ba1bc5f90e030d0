"""DTVNet's inference side: animating still images and evaluating a trained run.

`animator(trained)` wraps the trained generator and flow encoder in a
`tlgen.synth.animate.Animator`; `animate_command` is `tlgen animate`, `evaluate` is
`tlgen eval`.
"""

from __future__ import annotations

import argparse
import os

import jax
import numpy as np

from tlgen.errors import UserError
from tlgen.family import Animation, seed
from tlgen.families.dtvnet.training import G, reconstruct, scores, variables
from tlgen.families.dtvnet.training import networks as networks_of
from tlgen.metrics.flow import flow_mse, video_flows
from tlgen.metrics.protocol import Networks
from tlgen.metrics.temporal import e_tmp
from tlgen.models import dtvnet
from tlgen.models.pixels import frame_shape
from tlgen.synth.animate import Animator, fit_image, reference_frames
from tlgen.trained import Trained


def animator(trained: Trained) -> Animator:
    """The trained generator and flow encoder, animating images of the model's size."""
    generator, flow_encoder = variables(trained.params[G], trained.extra)
    return Animator(generator, flow_encoder, frame_shape(trained.config.data.image_size),
                    dtype=trained.dtype)


def add_animate_arguments(parser: argparse.ArgumentParser) -> None:
    motion = parser.add_mutually_exclusive_group()
    motion.add_argument("--reference", metavar="VIDEO",
                        help="DTVNet: take the motion from this video's optical flow")
    motion.add_argument("--seed", type=seed, default=0,
                        help="DTVNet: seed of the random motion vector (default 0)")


def animate_command(trained: Trained, args: argparse.Namespace) -> Animation:
    """`tlgen animate` on a DTVNet run: motion from --seed or from --reference's flow."""
    anim = animator(trained)
    size = anim.image_size
    image, note = fit_image(args.image_array, size)
    if args.reference:
        # Only the first T + 1 frames are read, decoded at the model's size by ffmpeg.
        reference, ref_note = reference_frames(args.reference, size, anim.frames_per_pass + 1)
        motion = anim.motion_from_reference(list(reference), f"--reference {args.reference}")
        source = f"reference {args.reference}{ref_note}"
    else:
        motion, source = anim.motion_from_seed(args.seed), f"seed {args.seed}"
    frames, flows = anim.animate(image, motion, args.frames)
    return Animation(frames, {"frames": frames, "motion": np.asarray(motion[0]), "flows": flows},
                     f"{note}; motion from {source}")


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", default="validation", help="DTVNet: dataset split (default validation)")
    parser.add_argument("--num-clips", type=int, default=16, help="DTVNet: clips to score (default 16)")
    parser.add_argument("--flow-method", default="dis", choices=("dis", "farneback"),
                        help="DTVNet: flow estimator for Flow-MSE (default dis)")


def evaluate(trained: Trained, out_dir: str, data_dir: str | None = None, *,
             split: str = "validation", num_clips: int = 16, flow_method: str = "dis",
             networks: Networks | None = None) -> dict:
    """Metrics of `num_clips` clips of `split`, each animated from its first frame with its
    own encoded motion: reconstruction PSNR / SSIM (frames 1..T-1, [0, 1] scale), masked PSNR /
    SSIM over the clip's static pixels (`tlgen.metrics.animation`), Flow-MSE (flows estimated
    on the generated vs. the clip's stored flows, pixels^2; per mask class too when the
    dataset has masks), E_tmp of the
    generated and the real clips (x1000 scale); then, on 16-frame clips (the motion chained
    over passes) against the real 16 frames, the distribution and perceptual metrics of
    `tlgen.metrics.protocol` (SWD always; FID/KID, FVD, LPIPS with their networks). Writes
    clips.png (real above generated)."""
    from tlgen.data.dataset import open_training_data
    from tlgen.metrics.animation import region_flow_mse, static_scores, still_notes
    from tlgen.metrics.protocol import FVD_FRAMES, eval_clips, video_metrics
    from tlgen.metrics.report import save_png, video_strips

    if num_clips < 1:
        raise UserError(f"--num-clips {num_clips} must be at least 1.")
    config = trained.config
    data_dir = trained.data_dir(data_dir)
    masked = bool(open_training_data(data_dir, image_size=frame_shape(config.data.image_size),
                                     flow=True, run=trained.workdir).metadata.get("has_masks"))
    t = int(config.data.num_frames)
    gen, enc, _ = networks_of(config, trained.dtype)
    # FVD's clip length, else the model's own (the distribution metrics then use it)
    batches, length, notes = eval_clips(data_dir, split, lengths=(max(t + 1, FVD_FRAMES), t + 1),
                                        stride=int(config.data.stride), num_clips=num_clips,
                                        with_masks=masked)
    anim = animator(trained)

    @jax.jit
    def run(params, extra, batch):
        video, _, real, _ = reconstruct(gen, enc, params, extra, batch)
        return dtvnet.to_uint8(video[0]), scores(video, real)

    rows, real_clips, fake_clips = [], [], []
    for i, batch in enumerate(batches):
        own = {"frames": batch["frames"][:, :t + 1], "flow": batch["flow"][:, :t]}
        frames, clip = jax.device_get(run(trained.params[G], trained.extra, own))
        fake_flows = video_flows(frames, flow_method)
        rows.append({"clip": i, **{k: float(v) for k, v in clip.items()},
                     **static_scores(frames, own["frames"][0, :t]),
                     "flow_mse": flow_mse(fake_flows, own["flow"][0, :t - 1]),
                     **(region_flow_mse(fake_flows, own["flow"][0, :t - 1], batch["masks"][0, 0]) if masked else {}),
                     "e_tmp": e_tmp(frames), "e_tmp_real": e_tmp(own["frames"][0, :t])})
        motion = anim.motion_from_flows(own["flow"])
        fake_clips.append(anim.animate(batch["frames"][0, 0], motion, length)[0])
        real_clips.append(batch["frames"][0])
    os.makedirs(out_dir, exist_ok=True)
    save_png(os.path.join(out_dir, "clips.png"), video_strips(
        [v[:t] for pair in zip(real_clips[:4], fake_clips[:4]) for v in pair]))
    distribution = video_metrics(np.stack(real_clips), np.stack(fake_clips), networks or Networks(),
                                 seed=int(config.seed))
    keys = sorted({key for r in rows for key in r} - {"clip"})
    report = {key: float(np.mean([r[key] for r in rows if key in r])) for key in keys}
    report.update(distribution["scores"])
    report.update(workdir=trained.workdir, step=trained.step, split=split, num_clips=len(rows),
                  data_dir=os.path.abspath(data_dir), flow_method=flow_method, clips=rows,
                  samples=distribution["samples"], protocol=distribution["protocol"],
                  not_computed=distribution["not_computed"],
                  notes=notes + still_notes(rows) + [f"{name}: not computed ({why})" for name, why in
                                                     distribution["not_computed"].items()]
                  + distribution["caveats"],
                  titles={"clips": "Per clip (encoded motion; PSNR/SSIM on frames 1..T-1)"})
    return report


def eval_command(trained: Trained, args: argparse.Namespace) -> dict:
    """`tlgen eval` on a DTVNet run."""
    return evaluate(trained, args.out_dir, args.data, split=args.split, num_clips=args.num_clips,
                    flow_method=args.flow_method, networks=args.networks)


def generator_benchmark(trained: Trained, batch: dict):
    """`tlgen bench`'s inference figure: the generator animating the batch's first frames
    with sampled motion, T frames per image. Returns (call, frames per call, what)."""
    generator, _ = variables(trained.params[G], trained.extra)
    image = dtvnet.to_model_range(batch["frames"][:, 0])
    motion = dtvnet.sample_motion(jax.random.PRNGKey(0), image.shape[0],
                                  int(trained.config.model.motion_dim))
    dtype = trained.dtype
    generate = jax.jit(lambda v, i, m: dtvnet.generate(v, i, m, dtype)[0])
    frames = image.shape[0] * int(trained.config.data.num_frames)
    return (lambda: generate(generator, image, motion)), frames, \
        "generator: image + sampled motion -> T frames"
