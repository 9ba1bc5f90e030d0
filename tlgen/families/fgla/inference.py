"""FGLA's inference side: animating a photo region by region, and evaluating a run.

Motion for each region comes from (first that applies):
* `--region-reference NAME=VIDEO`: that video's motion (encoded over its whole frame) drives
  region NAME — a different reference per region (the paper's fine-grained control);
* `--reference VIDEO`: every region takes the motion the video has inside that region
  (its masks: `--reference-mask`, else the input image's own);
* otherwise a latent of that region's codebook: k-means centres of the latents of the
  run's training pairs (as Animating Landscape samples motion), chosen by `--seed`.
Reference motion changes step by step (one latent per pair of reference frames
`data.stride` apart, cycled); `--speed` scales every step's flow. The input image's regions
come from `--mask` (class indices), else the whole image is `model.unmasked_region`.
Every frame is the input warped once by the accumulated flow (no blur over time).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import logging
import os

import jax
import jax.numpy as jnp
import numpy as np

from tlgen.data.regions import kmeans
from tlgen.errors import UserError
from tlgen.family import Animation, number, seed
from tlgen.families.fgla.training import NET, networks, region_masks
from tlgen.metrics.flow import video_flows
from tlgen.models import fgla
from tlgen.models.pixels import frame_shape, to_model_range, to_uint8
from tlgen.synth.animate import fit_image, reference_frames
from tlgen.trained import Trained

log = logging.getLogger(__name__)
CODEBOOK_SIZE = 8


@functools.partial(jax.jit, static_argnames="encoder")
def _encode(params, flows, masks, *, encoder):
    return encoder.apply({"params": params["encoder"]}, flows, masks)


@functools.partial(jax.jit, static_argnames="generator")
def _animate(params, image, masks, latents, speed, *, generator):
    step = lambda frame, z: generator.apply({"params": params["generator"]}, frame,
                                            fgla.latent_map(z[None], masks))
    return fgla.animate_flows(image, step, latents, speed)


class RegionAnimator:
    """A trained FGLA model animating images of its size (one compile per network and shape,
    shared by every animator of the process)."""

    def __init__(self, trained: Trained):
        config = trained.config
        self.params = trained.params[NET]
        self.regions = tuple(config.model.regions)
        self.size = frame_shape(config.data.image_size)
        self.stride = int(config.data.stride)
        self.per_region = bool(config.model.per_region)
        self.trained = trained
        self.encoder, self.generator = networks(config, trained.dtype)

    def masks(self, mask: np.ndarray | None) -> np.ndarray:
        """Class-index mask (H, W) of the model's size (None: the unmasked region everywhere)
        -> one 0/1 mask per region (R, H, W)."""
        if mask is None:
            name = self.trained.config.model.get("unmasked_region", self.regions[-1])
            mask = np.full(self.size, self.regions.index(name), np.uint8)
        return np.asarray(region_masks(jnp.asarray(mask)[None], len(self.regions))[0])

    def encode(self, flows: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Latents (N, R, D) of warping flows (N, H, W, 2) within region masks (N, R, H, W)."""
        return np.asarray(_encode(self.params, jnp.asarray(flows, jnp.float32),
                                  jnp.asarray(masks, jnp.float32), encoder=self.encoder))

    def reference_flows(self, frames: np.ndarray, source: str = "a reference video") -> np.ndarray:
        """Warping flows (P, H, W, 2) of a reference clip (fitted to the model's size), one per
        pair of frames `stride` apart, as the encoder was trained on. A clip of stride frames
        or fewer has no such pair: its flow over the frames it has is scaled up to the stride
        (its motion taken as steady), with a warning."""
        if len(frames) < 2:
            raise UserError(f"{source} has {len(frames)} frame; a reference video needs at least 2.")
        fitted = np.stack([fit_image(f, self.size)[0] for f in frames])
        step = min(self.stride, len(fitted) - 1)
        flows = np.stack([-video_flows(fitted[i:i + step + 1:step])[0]
                          for i in range(0, len(fitted) - step, step)])
        if step < self.stride:
            log.warning("%s has %d frames, fewer than the %d that span the run's stride: its motion "
                        "over %d frame(s) is scaled by %g", source, len(frames), self.stride + 1,
                        step, self.stride / step)
            flows = flows * (self.stride / step)
        return flows

    def reference_latents(self, frames: np.ndarray, masks: np.ndarray | None,
                          source: str = "a reference video") -> np.ndarray:
        """Per-step latents (P, R, D) of a reference clip (`reference_flows`); `masks` (R, H, W)
        splits its motion by region (None: its whole frame); `source` names the clip in errors."""
        flows = self.reference_flows(frames, source)
        full = np.ones((len(self.regions),) + self.size, np.float32)
        region = full if masks is None else masks
        return self.encode(flows, np.broadcast_to(region, (len(flows),) + region.shape))

    def animate(self, image: np.ndarray, masks: np.ndarray, latents: np.ndarray, num_frames: int,
                speed: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """uint8 frames (num_frames, H, W, 3) of a uint8 image (H, W, 3) with per-step latents
        (P, R, D) (cycled over the steps), and the accumulated flows (num_frames - 1, H, W, 2)."""
        if num_frames < 2:
            raise UserError(f"--frames {num_frames}: an animation needs at least 2 frames.")
        steps = latents[np.arange(num_frames - 1) % len(latents)]
        frames, flows = _animate(self.params, to_model_range(image[None]), jnp.asarray(masks[None]),
                                 jnp.asarray(steps), float(speed), generator=self.generator)
        video = np.concatenate([image[None], np.asarray(to_uint8(frames[:, 0]))])
        return video, np.asarray(flows[:, 0])

    def codebook(self, num_pairs: int = 256) -> np.ndarray:
        """(R, K, D): per latent row (each region; the global variant's one), k-means centres
        of the latents of up to `num_pairs` training pairs in which the region is present (a
        region never seen: zeros)."""
        from tlgen.data.pipelines import clip_dataset
        from tlgen.families.fgla.training import has_masks, split_batch

        config = self.trained.config
        masked = has_masks(config)
        data = clip_dataset(config.data.dir, "train", length=2, stride=self.stride, batch_size=16,
                            seed=int(config.seed), with_flow=True, with_masks=masked)
        latents, present = [], []
        for batch in itertools.islice(iter(data), max(1, num_pairs // 16)):
            _, _, target, masks = split_batch(batch, len(self.regions), masked)
            latents.append(self.encode(np.asarray(target), np.asarray(masks)))
            present.append(np.asarray(masks).sum(axis=(2, 3)) > 0 if self.per_region
                           else np.ones((len(masks), 1), bool))
        latents, present = np.concatenate(latents), np.concatenate(present)
        dim = latents.shape[-1]
        return np.stack([kmeans(latents[present[:, r], r], CODEBOOK_SIZE)[0].astype(np.float32)
                         if present[:, r].any()
                         else np.zeros((CODEBOOK_SIZE, dim), np.float32)
                         for r in range(latents.shape[1])])


# ----------------------------------------------------------------------------- `tlgen animate`

def add_animate_arguments(parser: argparse.ArgumentParser) -> None:
    motion = parser.add_mutually_exclusive_group()     # as DTVNet's: a reference or a seed
    motion.add_argument("--reference", metavar="VIDEO", help="FGLA: motion of this video, region by region")
    motion.add_argument("--seed", type=seed, default=0,
                        help="FGLA: codebook choice without --reference (default 0)")
    parser.add_argument("--reference-mask", metavar="PNG", help="FGLA: class-index mask of --reference's "
                        "regions (default: the input image's)")
    parser.add_argument("--region-reference", action="append", default=[], metavar="NAME=VIDEO",
                        help="FGLA: region NAME moves like VIDEO (repeat for several regions)")
    parser.add_argument("--mask", metavar="PNG", help="FGLA: class-index mask of --image (its size or aspect)")
    parser.add_argument("--speed", type=number, default=1.0, help="FGLA: motion speed factor (default 1)")


def animate_command(trained: Trained, args: argparse.Namespace) -> Animation:
    """`tlgen animate` on an FGLA run."""
    from tlgen.data.images import read_labels
    from tlgen.data.video_io import probe_video

    anim = RegionAnimator(trained)
    if args.speed <= 0:
        raise UserError(f"--speed {args.speed} must be positive.")
    num_frames = 32 if args.frames is None else args.frames
    image, note = fit_image(args.image_array, anim.size)
    mask = None
    if args.mask:
        mask = read_labels([args.mask], "--mask", args.image_array.shape[:2], "--image", anim.regions,
                           anim.size)[0]
    if args.reference_mask and not args.reference:
        raise UserError(f"--reference-mask {args.reference_mask} labels the --reference video; "
                        "give that video too, or leave the mask out.")
    masks = anim.masks(mask)
    needed = (num_frames - 1) * anim.stride + 1
    sources = []
    if args.reference:
        ref_masks = masks
        info = probe_video(args.reference)
        if args.reference_mask:
            ref_masks = anim.masks(read_labels([args.reference_mask], "--reference-mask",
                                               (info.height, info.width), f"--reference {args.reference}",
                                               anim.regions, anim.size)[0])
        ref_frames, ref_note = reference_frames(args.reference, anim.size, needed, info)
        latents = anim.reference_latents(ref_frames, ref_masks if anim.per_region else None,
                                         f"--reference {args.reference}")
        sources.append(f"reference {args.reference}{ref_note}")
    else:
        book = anim.codebook()
        choice = np.random.default_rng(args.seed).integers(0, CODEBOOK_SIZE, len(book))
        latents = book[np.arange(len(book)), choice][None]
        sources.append(f"codebook (seed {args.seed})")
    if args.region_reference and not anim.per_region:
        raise UserError(f"{trained.workdir} encodes one global latent (model.per_region=False); "
                        "--region-reference needs a per-region run.")
    named = [item.partition("=")[0] for item in args.region_reference]
    for item in args.region_reference:
        name, sep, path = item.partition("=")
        if not sep or name not in anim.regions:
            raise UserError(f"--region-reference {item}: give NAME=VIDEO with NAME one of the run's "
                            f"regions: {', '.join(anim.regions)}.")
        if named.count(name) > 1:
            raise UserError(f"--region-reference names {name} {named.count(name)} times; give each "
                            "region one reference video.")
        if not masks[anim.regions.index(name)].any():
            raise UserError(f"--region-reference {item}: the image has no {name} pixels ("
                            + (f"--mask {args.mask}" if args.mask else
                               f"without --mask it is all {trained.config.model.get('unmasked_region', anim.regions[-1])}")
                            + f"), so it would not move; label its {name} with --mask, or leave the reference out.")
        ref_frames, ref_note = reference_frames(path, anim.size, needed)
        region = anim.reference_latents(ref_frames, None, f"--region-reference {item}")
        steps = max(len(latents), len(region))
        latents = latents[np.arange(steps) % len(latents)].copy()
        latents[:, anim.regions.index(name)] = region[np.arange(steps) % len(region), anim.regions.index(name)]
        sources.append(f"{name} from {path}{ref_note}")
    frames, flows = anim.animate(image, masks, latents, num_frames, args.speed)
    return Animation(frames, {"frames": frames, "flows": flows, "latents": latents},
                     f"{note}; motion: {', '.join(sources)}; speed {args.speed:g}")


# ----------------------------------------------------------------------------- `tlgen eval`

def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", default="validation", help="FGLA: dataset split (default validation)")
    parser.add_argument("--num-clips", type=int, default=16, help="FGLA: clips to score (default 16)")
    parser.add_argument("--frames", type=int, default=9, help="FGLA: frames per clip for the animation "
                        "metrics (default 9: 8 steps)")


def evaluate(trained: Trained, out_dir: str, data_dir: str | None = None, *, split: str = "validation",
             num_clips: int = 16, frames: int = 9, networks=None) -> dict:
    """Animates the first frame of `num_clips` clips of `split` (frames `data.stride` apart)
    with the motion of the clip itself (per-step latents of its true flows) and scores the
    first `frames` frames against the real clip: masked PSNR / SSIM over static pixels
    against the first frame (FGLA eq. 14), Flow-MSE of the flows estimated on the generated
    clip against the clip's stored flows (pixels^2; per mask class too), E_tmp of generated
    and real clips; then the protocol's distribution metrics on the 16-frame clips. The
    clips are drawn as DTVNet's `tlgen eval` draws them (same length, stride and seed: the
    same clips of the same dataset). Writes clips.png (real above generated)."""
    from tlgen.families.fgla.training import has_masks, split_batch
    from tlgen.metrics.animation import region_flow_mse, static_scores, still_notes
    from tlgen.metrics.flow import flow_mse
    from tlgen.metrics.protocol import FVD_FRAMES, Networks, eval_clips, video_metrics
    from tlgen.metrics.report import save_png, video_strips
    from tlgen.metrics.temporal import e_tmp

    if num_clips < 1:
        raise UserError(f"--num-clips {num_clips} must be at least 1.")
    if frames < 2:
        raise UserError(f"--frames {frames} must be at least 2.")
    data_dir = trained.data_dir(data_dir)
    config = trained.config.copy_and_resolve_references()
    config.data.dir = data_dir
    anim = RegionAnimator(trained)
    masked = has_masks(config, trained.workdir)
    batches, length, notes = eval_clips(data_dir, split, lengths=(max(frames, FVD_FRAMES), frames),
                                        stride=anim.stride, num_clips=num_clips, with_masks=masked)
    rows, real_clips, fake_clips = [], [], []
    for i, batch in enumerate(batches):
        real, true = batch["frames"][0], batch["flow"][0]
        pair = {"frames": batch["frames"][:, :2], "flow": batch["flow"][:, :1],
                **({"masks": batch["masks"][:, :1]} if masked else {})}
        masks = np.asarray(split_batch(pair, len(anim.regions), masked)[3][0])
        latents = anim.encode(-true, np.broadcast_to(masks, (len(true),) + masks.shape))
        fake, _ = anim.animate(real[0], masks, latents, length)
        fake_flows = video_flows(fake[:frames])
        rows.append({"clip": i, **static_scores(fake[:frames], real[:frames]),
                     "flow_mse": flow_mse(fake_flows, true[:frames - 1]),
                     **(region_flow_mse(fake_flows, true[:frames - 1], batch["masks"][0, 0]) if masked else {}),
                     "e_tmp": e_tmp(fake[:frames]), "e_tmp_real": e_tmp(real[:frames])})
        real_clips.append(real)
        fake_clips.append(fake)
    os.makedirs(out_dir, exist_ok=True)
    save_png(os.path.join(out_dir, "clips.png"), video_strips(
        [v for pair in zip(real_clips[:4], fake_clips[:4]) for v in pair]))
    distribution = video_metrics(np.stack(real_clips), np.stack(fake_clips), networks or Networks(),
                                 seed=int(config.seed))
    keys = sorted({key for r in rows for key in r} - {"clip"})
    report = {key: float(np.mean([r[key] for r in rows if key in r])) for key in keys}
    report.update(distribution["scores"])
    names = ", ".join(f"{k} {name}" for k, name in enumerate(anim.regions))
    report.update(workdir=trained.workdir, step=trained.step, split=split, num_clips=len(rows),
                  frames=frames, stride=anim.stride, per_region=anim.per_region,
                  data_dir=os.path.abspath(data_dir), clips=rows, samples=distribution["samples"],
                  protocol=distribution["protocol"], not_computed=distribution["not_computed"],
                  notes=notes + still_notes(rows)
                  + [f"{k}: not computed ({v})" for k, v in distribution["not_computed"].items()]
                  + distribution["caveats"]
                  + ([f"flow_mse_region<k>: dx^2 + dy^2 inside class k of the masks ({names}), twice the "
                     "scale of flow_mse (which averages over dx and dy)"] if masked else []),
                  titles={"clips": "Per clip (the clip's own motion; masked = static pixels vs the first frame)"})
    return report


def eval_command(trained: Trained, args: argparse.Namespace) -> dict:
    """`tlgen eval` on an FGLA run."""
    return evaluate(trained, args.out_dir, args.data, split=args.split, num_clips=args.num_clips,
                    frames=args.frames, networks=args.networks)


def generator_benchmark(trained: Trained, batch: dict):
    """`tlgen bench`'s inference figure: animating the batch's first frames for 8 steps with
    their own motion (encoder once, generator + warp per frame)."""
    from tlgen.families.fgla.training import split_batch
    anim = RegionAnimator(trained)
    image, _, target, masks = split_batch(batch, len(anim.regions), "masks" in batch)
    encoder, generator = anim.encoder, anim.generator

    @jax.jit
    def run(params, image, target, masks):
        lmap = fgla.latent_map(encoder.apply({"params": params["encoder"]}, target, masks), masks)
        step = lambda frame, m: generator.apply({"params": params["generator"]}, frame, m)
        return fgla.animate_flows(image, step, jnp.broadcast_to(lmap, (8,) + lmap.shape))[0]
    frames = image.shape[0] * 8
    return (lambda: run(anim.params, image, target, masks)), frames, "encoder + 8 generator steps"
