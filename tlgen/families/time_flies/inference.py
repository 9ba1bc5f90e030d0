"""Time Flies' inference side: `tlgen animate --image I --reference VIDEO`.

Output frame t is made from the reference window (F_t, F_t+1, F_t+2), the reference's last
frame repeated past its end, so a reference of N frames gives N frames (or the first
`--frames`), as in the paper. The image is encoded once; windows go
through the generator in chunks; NoiseAdaIN's noise for frame t comes from its own key
(`time_flies.smoothed_noise`), so the chunking changes nothing and a seed fixes the video.
Labels: `--image-mask` (a class-index PNG of the image's size) and `--reference-masks` (one
PNG for every frame of a static camera, or a folder of one PNG per frame in name order);
without them every pixel is class 0 (one region: plain AdaIN / NoiseAdaIN).
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np

from tlgen.errors import UserError
from tlgen.families.time_flies.training import G, image_encoder
from tlgen.family import Animation, seed
from tlgen.models import time_flies as tf
from tlgen.models.pixels import frame_shape, to_uint8
from tlgen.streaming import fetched
from tlgen.trained import Trained

CHUNK = 8
WINDOW = 3          # reference frames per output frame


def add_animate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reference", metavar="VIDEO",
                        help="Time Flies: the time-lapse whose changes the image takes on (required)")
    parser.add_argument("--image-mask", metavar="PNG",
                        help="Time Flies: class-index labels of --image, of its size or aspect (default: one class)")
    parser.add_argument("--reference-masks", metavar="PATH",
                        help="Time Flies: labels of the reference: one PNG for all frames, or a folder of "
                             "one PNG per frame (in name order: m2 before m10)")
    parser.add_argument("--seed", type=seed, default=0, help="Time Flies: seed of NoiseAdaIN's noise")
    parser.add_argument("--vgg19", metavar="FILE",
                        help="Time Flies: VGG-19 weights for the image encoder (default: the run's "
                             "config.model.vgg19, the file it was trained with)")


def reference_labels(path: str | None, count: int, shape, size, classes: int) -> np.ndarray:
    """(count, H, W) labels of the reference's first `count` frames."""
    from tlgen.data.images import list_images, read_labels
    if path is None:
        return np.zeros((count,) + tuple(size), np.uint8)
    if os.path.isdir(path):
        files = [f for f in list_images(path) if f.lower().endswith(".png")]
        if len(files) < count:
            raise UserError(f"--reference-masks {path} has {len(files)} PNGs but the {count} reference "
                            "frames animated need one each.")
        return read_labels(files[:count], "--reference-masks", shape, "the reference video", classes, size)
    return np.repeat(read_labels([path], "--reference-masks", shape, "the reference video", classes, size),
                     count, axis=0)


class Animator:
    """A loaded Time Flies run: image + reference frames and labels -> frames."""

    def __init__(self, trained: Trained):
        m = trained.config.model
        self.trained, self.size = trained, frame_shape(trained.config.data.image_size)
        self.classes, self.noise, self.classwise = int(m.num_classes), bool(m.noise), bool(m.classwise)
        self.sigma_z, self.blur = float(m.sigma_z), float(m.noise_blur)
        gen = tf.Generator(self.classes, trained.dtype)

        def frames(params, encoded, image_masks, clips, clip_masks, key, first):
            encoded = jax.tree.map(lambda x: jnp.repeat(x, clips.shape[0], axis=0), encoded)
            noise = (tf.smoothed_noise(key, first, clips.shape[0], (*self.size, 64), self.sigma_z,
                                       self.blur) if self.noise else None)
            clips = clips.astype(jnp.float32) / 255.0       # uint8 windows cross to the device
            out = gen.apply({"params": params}, encoded, clips, jnp.repeat(image_masks, clips.shape[0], axis=0),
                            clip_masks, noise)
            return to_uint8(jnp.clip(out, 0.0, 1.0) * 2 - 1)
        self._encode = jax.jit(image_encoder)
        self._frames = jax.jit(frames)

    def animate(self, image: np.ndarray, image_masks: np.ndarray, reference: np.ndarray,
                reference_masks: np.ndarray, seed: int = 0, progress=None) -> np.ndarray:
        """uint8 (N, H, W, 3) from image (H, W, 3) u8, labels (H, W), reference (N + 2 or fewer,
        H, W, 3) u8 (frame t takes the window t, t+1, t+2, the last frame repeated at the end)
        and the labels (N, H, W) of its first N frames."""
        count = len(reference_masks)
        if not self.classwise:
            image_masks, reference_masks = np.zeros_like(image_masks), np.zeros_like(reference_masks)
        last = np.minimum(np.arange(count)[:, None] + np.arange(WINDOW), len(reference) - 1)    # (N, 3)
        params, vgg = self.trained.params[G], self.trained.frozen["vgg19"]
        encoded = self._encode(vgg, jnp.asarray(image[None], jnp.float32) / 255.0)   # once per animation

        def chunk(first):
            idx = np.arange(first, first + CHUNK).clip(max=count - 1)      # a full chunk: one program
            return self._frames(params, encoded, jnp.asarray(image_masks[None], jnp.int32),
                                reference[last[idx]],                  # a chunk's windows, uint8
                                jnp.asarray(reference_masks[idx], jnp.int32),
                                jax.random.key(seed), first)[:count - first]
        out = []
        for frames in fetched(chunk(first) for first in range(0, count, CHUNK)):
            out.append(frames)
            if progress is not None:
                progress.update(len(frames))
        return np.concatenate(out)


def animate_command(trained: Trained, args: argparse.Namespace) -> Animation:
    """`tlgen animate` on a Time Flies run."""
    from tlgen.data.images import read_labels
    from tlgen.data.video_io import probe_video
    from tlgen.progress import progress
    from tlgen.synth.animate import fit_image, reference_frames

    if not args.reference:
        raise UserError("Time Flies animates an image by a reference time-lapse: give --reference VIDEO.")
    if args.frames is not None and args.frames < 1:
        raise UserError(f"--frames {args.frames} must be at least 1.")
    m = trained.config.model
    if not m.classwise and (args.image_mask or args.reference_masks):
        raise UserError(f"{trained.workdir} was trained without classes (config.model.classwise=False): "
                        "--image-mask and --reference-masks would change nothing; leave them out.")
    if bool(args.image_mask) != bool(args.reference_masks):
        given, other = ("--image-mask", "--reference-masks") if args.image_mask else ("--reference-masks", "--image-mask")
        raise UserError(f"{given} goes with {other}: classes are matched between the image and the "
                        f"reference, and without {other} that side is one class (0); give both or neither.")
    if args.vgg19:
        trained.config.model.vgg19 = args.vgg19
    anim = Animator(trained)
    size = anim.size
    info = probe_video(args.reference)
    reference, ref_note = reference_frames(args.reference, size,
                                           args.frames + WINDOW - 1 if args.frames else 1 << 30, info)
    if len(reference) < 2:
        raise UserError(f"--reference {args.reference} has {len(reference)} frame; a reference video "
                        "needs at least 2.")
    if args.frames and len(reference) < args.frames:
        raise UserError(f"--reference {args.reference} has {len(reference)} frames; --frames "
                        f"{args.frames} needs as many (one output frame per reference frame).")
    image, note = fit_image(args.image_array, size)
    image_masks = (np.zeros(size, np.uint8) if not args.image_mask else
                   read_labels([args.image_mask], "--image-mask", args.image_array.shape[:2], "--image",
                               anim.classes, size)[0])
    count = args.frames or len(reference)
    ref_masks = reference_labels(args.reference_masks, count, (info.height, info.width), size, anim.classes)
    bar = progress(total=count, unit="frame", desc="animate")
    try:
        frames = anim.animate(image, image_masks, reference, ref_masks, args.seed, bar)
    finally:
        bar.close()
    return Animation(frames, {"frames": frames},
                     f"{note}; changes from {args.reference}{ref_note}, a window of 3 frames per frame"
                     f"; noise seed {args.seed}")


def generator_benchmark(trained: Trained, batch: dict):
    """`tlgen bench`'s inference figure: one chunk of 8 frames of one animation (image, labels
    and an 8-frame reference drawn from the batch's first clip)."""
    anim = Animator(trained)
    frames = np.asarray(batch["frames"][0])
    masks = np.asarray(batch["masks"][0]) if "masks" in batch else np.zeros(frames.shape[:3], np.uint8)
    reference = np.concatenate([frames, frames])[:CHUNK]
    labels = np.concatenate([masks, masks])[:CHUNK]
    image = np.asarray(batch["mean"][0])
    return (lambda: anim.animate(image, labels[0], reference, labels)), CHUNK, "8 frames of one animation"
