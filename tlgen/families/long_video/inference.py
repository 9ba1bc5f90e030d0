"""The low-resolution stage's inference side: videos of any length, chunk by chunk.

Video v of seed s draws its temporal noise by global frame index from the key folded from
(s, v) (`tlgen.models.long_video.temporal_noise`); a chunk of frames [a, a + n) takes the
noise its latents and margins need, so a chunk's frames are the frames of the one-pass
video (up to float rounding: FFT sizes differ) and memory does not grow with the length.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from tlgen.errors import UserError
from tlgen.families.long_video.training import G
from tlgen.models import long_video as lv
from tlgen.models.pixels import to_uint8
from tlgen.trained import Trained


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chunk", type=int, default=128,
                        help="long_video: frames made per pass (memory; rounded up to the "
                             "generator's time scale; default 128)")


def video_keys(seed: int, num: int) -> jax.Array:
    """The noise keys of videos 0..num-1 of `seed`."""
    return jax.vmap(lambda v: jax.random.fold_in(jax.random.key(seed), v))(jnp.arange(num))


def make_chunk(gen: lv.Generator, frames: int):
    """jit-able (params, keys (V,), first frame) -> float frames (V, frames, H, W, 3) of frames
    first..first+frames-1 of each video (first and frames multiples of the time scale)."""
    count = gen.noise_length(frames)

    def run(params, keys, first):
        def one(key):
            noise = lv.temporal_noise(key, gen.first_noise(first), count, gen.noise_channels)
            return gen.apply({"params": params}, noise, frames)[0]
        return jax.lax.map(one, keys)
    return run


def generate(trained: Trained, frames: int, *, num: int = 1, seed: int = 0,
             chunk: int = 128) -> Iterator[np.ndarray]:
    """uint8 chunks (num, n, H, W, 3) of `num` videos of `frames` frames, in order."""
    if chunk < 1:
        raise UserError(f"--chunk {chunk} must be at least 1.")
    gen = lv.generator(trained.config.model, trained.dtype)
    chunk = gen.whole_scales(min(chunk, frames))
    run = jax.jit(make_chunk(gen, chunk))
    keys = video_keys(seed, num)
    params = trained.params[G]
    for first in range(0, frames, chunk):
        out = np.asarray(to_uint8(run(params, keys, jnp.int32(first))))
        yield out[:, :min(chunk, frames - first)]


def generate_command(trained: Trained, args: argparse.Namespace):
    """`tlgen generate` on a long_video run."""
    return generate(trained, args.frames, num=args.num, seed=args.seed, chunk=args.chunk)


def generator_benchmark(trained: Trained, batch: dict):
    """`tlgen bench`'s inference figure: one chunk of a clip's length for each clip of the batch."""
    gen = lv.generator(trained.config.model, trained.dtype)
    frames = gen.whole_scales(batch["frames"].shape[1])
    run = jax.jit(make_chunk(gen, frames))
    keys = video_keys(0, batch["frames"].shape[0])
    params = trained.params[G]
    return (lambda: run(params, keys, jnp.int32(0))), frames * int(keys.shape[0]), f"{frames} frames per video"
