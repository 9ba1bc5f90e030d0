"""StyleGAN-V's inference side: videos of any length, in chunks of constant memory.

Video v of seed s has content code z and motion noise codes from keys folded from (s, v);
frame i shows model time i * time_scale (frames), so `--time-scale 0.25` is the same video
4x slower. A chunk draws only the motion codes its frames need (code k from its own key),
and each frame of each video is made in a pass of its own, so neither the chunk size nor the
number of videos changes a video: the same frames, bit for bit.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import einops
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


def make_chunk(gen: sv.Generator, chunk: int, time_scale: float):
    """jit-able (params, content keys (V,), motion keys (V,), first frame) -> uint8 frames
    (V, chunk, H, W, 3) of frames first..first+chunk-1."""
    count = gen.codes_for(0.0)                       # the motion codes one frame reads

    def run(params, content_keys, motion_keys, first):
        t = (first + jnp.arange(chunk, dtype=jnp.float32)) * time_scale
        z = jax.vmap(lambda k: jax.random.normal(k, (gen.z_dim,)))(content_keys)

        # One frame of one video per pass, with the motion codes around its own time: a
        # frame's program and inputs are the same whatever the chunk, the time scale and the
        # number of videos, so its pixels are too (XLA's results for a batch of frames, or
        # for a longer run of codes, depend on their count).
        def frame(args):
            zi, key, tj = args
            anchor = jnp.floor(tj / gen.min_period).astype(jnp.int32)
            codes = sv.motion_codes(key, anchor, count, gen.z_dim)
            return gen.apply({"params": params}, zi[None], codes[None], tj[None, None], anchor)[0, 0]
        v = z.shape[0]
        flat = (jnp.repeat(z, chunk, axis=0), jnp.repeat(motion_keys, chunk, axis=0), jnp.tile(t, v))
        return einops.rearrange(to_uint8(jax.lax.map(frame, flat)), "(v t) h w c -> v t h w c", v=v)
    return run


def generate(trained: Trained, frames: int, *, num: int = 1, seed: int = 0, time_scale: float = 1.0,
             chunk: int = 16) -> Iterator[np.ndarray]:
    """uint8 chunks (num, n, H, W, 3), n <= chunk, of `num` videos of `frames` frames, in order."""
    if not time_scale > 0:
        raise UserError(f"--time-scale {time_scale:g} must be positive.")
    if chunk < 1:
        raise UserError(f"--chunk {chunk} must be at least 1.")
    gen = sv.generator(trained.config.model, trained.dtype)
    run = jax.jit(make_chunk(gen, min(chunk, frames), time_scale))
    content, motion = video_keys(seed, num)
    params = trained.params[G]
    for first in range(0, frames, chunk):
        out = np.asarray(run(params, content, motion, jnp.float32(first)))
        yield out[:, :min(chunk, frames - first)]


def generate_command(trained: Trained, args: argparse.Namespace):
    """`tlgen generate` on a StyleGAN-V run."""
    return generate(trained, args.frames, num=args.num, seed=args.seed, time_scale=args.time_scale,
                    chunk=args.chunk)


def generator_benchmark(trained: Trained, batch: dict):
    """`tlgen bench`'s inference figure: one 16-frame chunk of as many videos as the batch has clips."""
    gen = sv.generator(trained.config.model, trained.dtype)
    run = jax.jit(make_chunk(gen, 16, 1.0))
    content, motion = video_keys(0, batch["frames"].shape[0])
    params = trained.params[G]
    return (lambda: run(params, content, motion, jnp.float32(0))), 16 * int(content.shape[0]), "16 frames per video"
