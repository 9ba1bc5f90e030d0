"""StyleGAN-V's inference side: videos of any length, in chunks of constant memory.

Video v of seed s has content code z and motion noise codes from keys folded from (s, v);
frame i shows model time i * time_scale (frames), so `--time-scale 0.25` is the same video
4x slower. A frame draws only the motion codes around its time (code k from its own key),
and every frame of every video is made by one compiled program, so neither the chunk size,
the time scale nor the number of videos changes a video: the same frames, bit for bit.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from tlgen.errors import UserError
from tlgen.family import number
from tlgen.families.stylegan_v.training import G
from tlgen.models import stylegan_v as sv
from tlgen.models.pixels import to_uint8
from tlgen.trained import Trained


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--time-scale", type=number, default=1.0, metavar="K",
                        help="StyleGAN-V: model frames per output frame (0.25 = 4x slow motion; default 1)")
    parser.add_argument("--chunk", type=int, default=16,
                        help="StyleGAN-V: frames per video made at once (memory; default 16)")


def video_keys(seed: int, num: int) -> tuple[jax.Array, jax.Array]:
    """(content keys, motion keys) of videos 0..num-1 of `seed`, each (num,) keys."""
    keys = jax.vmap(lambda v: jax.random.split(jax.random.fold_in(jax.random.key(seed), v)))(jnp.arange(num))
    return keys[:, 0], keys[:, 1]


def make_frame(gen: sv.Generator):
    """Compiled (params, content key, motion key, model time (frames)) -> one uint8 frame
    (H, W, 3), drawn from its video's content code and the motion codes around its time."""
    count = gen.codes_for(0.0)                       # the motion codes one frame reads

    @jax.jit
    def frame(params, content, motion, t):
        anchor = jnp.floor(t / gen.min_period).astype(jnp.int32)
        z = jax.random.normal(content, (1, gen.z_dim))
        codes = sv.motion_codes(motion, anchor, count, gen.z_dim)
        return to_uint8(gen.apply({"params": params}, z, codes[None], t[None, None], anchor)[0, 0])
    return frame


def render(frame, params, keys: list, times: np.ndarray) -> np.ndarray:
    """uint8 (V, len(times), H, W, 3): frame `times` (model frames) of the videos of `keys`, a
    list of (content key, motion key). One compiled program makes every frame, so that no
    chunk size, time scale or number of videos changes a pixel (XLA's results for a batch of
    frames, or for a loop over them, depend on the count); the frames are dispatched together
    and run while the next are queued."""
    out = [[frame(params, content, motion, np.float32(t)) for t in times] for content, motion in keys]
    return np.stack([np.stack([np.asarray(f) for f in video]) for video in out])


def generate(trained: Trained, frames: int, *, num: int = 1, seed: int = 0, time_scale: float = 1.0,
             chunk: int = 16) -> Iterator[np.ndarray]:
    """uint8 chunks (num, n, H, W, 3), n <= chunk, of `num` videos of `frames` frames, in order."""
    if not time_scale > 0:
        raise UserError(f"--time-scale {time_scale:g} must be positive.")
    if chunk < 1:
        raise UserError(f"--chunk {chunk} must be at least 1.")
    frame = make_frame(sv.generator(trained.config.model, trained.dtype))
    keys = list(zip(*video_keys(seed, num)))
    for first in range(0, frames, chunk):
        yield render(frame, trained.params[G], keys, np.arange(first, min(first + chunk, frames)) * time_scale)


def generate_command(trained: Trained, args: argparse.Namespace):
    """`tlgen generate` on a StyleGAN-V run."""
    return generate(trained, args.frames, num=args.num, seed=args.seed, time_scale=args.time_scale,
                    chunk=args.chunk)


def generator_benchmark(trained: Trained, batch: dict):
    """`tlgen bench`'s inference figure: one 16-frame chunk of as many videos as the batch has clips."""
    frame = make_frame(sv.generator(trained.config.model, trained.dtype))
    keys = list(zip(*video_keys(0, batch["frames"].shape[0])))
    return (lambda: render(frame, trained.params[G], keys, np.arange(16.0))), 16 * len(keys), "16 frames per video"
