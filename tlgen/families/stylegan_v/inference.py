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
from einops import rearrange

from tlgen.errors import UserError
from tlgen.family import number
from tlgen.families.stylegan_v.training import G
from tlgen.models import stylegan_v as sv
from tlgen.models.pixels import to_uint8
from tlgen.streaming import fetched
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


BLOCK = 16           # frames per call of the compiled program
LATEST = 2 ** 24     # model times are float32: past this, neighbouring frames share a time


def make_block(gen: sv.Generator):
    """Compiled (params, content keys (BLOCK,), motion keys (BLOCK,), model times (BLOCK,),
    count) -> uint8 frames (BLOCK, H, W, 3), of which the first `count` are made: frame i from
    its video's content code and the motion codes around its time."""
    codes_per_frame = gen.codes_for(0.0)

    @jax.jit
    def block(params, contents, motions, times, count):
        def frame(i):
            t = times[i]
            anchor = jnp.floor(t / gen.min_period).astype(jnp.int32)
            z = jax.random.normal(contents[i], (1, gen.z_dim))
            codes = sv.motion_codes(motions[i], anchor, codes_per_frame, gen.z_dim)
            return to_uint8(gen.apply({"params": params}, z, codes[None], t[None, None], anchor)[0, 0])
        one = jax.eval_shape(frame, 0)
        return jax.lax.fori_loop(0, count, lambda i, out: out.at[i].set(frame(i)),
                                 jnp.zeros((BLOCK, *one.shape), one.dtype))
    return block


def render(block, params, content_keys: jax.Array, motion_keys: jax.Array, times: np.ndarray) -> jax.Array:
    """uint8 (V, len(times), H, W, 3) on the device: frames at model `times` of the V videos of
    the keys (dispatched, not waited for).

    Every frame is made by the same program, in a loop whose length is an argument: no chunk
    size, time scale or number of videos changes a pixel (XLA's results for a batch of
    frames, or for a loop of known length, depend on the count)."""
    videos, steps = np.divmod(np.arange(len(content_keys) * len(times)), len(times))
    out = []
    for first in range(0, len(videos), BLOCK):
        pick = np.resize(np.arange(first, min(first + BLOCK, len(videos))), BLOCK)  # padded by repeats
        out.append(block(params, content_keys[videos[pick]], motion_keys[videos[pick]],
                         np.float32(times[steps[pick]]), np.int32(min(BLOCK, len(videos) - first))))
    return rearrange(jnp.concatenate(out)[:len(videos)], "(v t) h w c -> v t h w c", v=len(content_keys))


def generate(trained: Trained, frames: int, *, num: int = 1, seed: int = 0, time_scale: float = 1.0,
             chunk: int = 16) -> Iterator[np.ndarray]:
    """uint8 chunks (num, n, H, W, 3), n <= chunk, of `num` videos of `frames` frames, in order."""
    if not time_scale > 0:
        raise UserError(f"--time-scale {time_scale:g} must be positive.")
    if chunk < 1:
        raise UserError(f"--chunk {chunk} must be at least 1.")
    if (frames - 1) * time_scale >= LATEST:
        raise UserError(f"--frames {frames} at --time-scale {time_scale:g} reach model time "
                        f"{(frames - 1) * time_scale:.3g}, past the {LATEST} frames that float32 "
                        "times resolve; lower either.")
    block = make_block(sv.generator(trained.config.model, trained.dtype))
    keys = video_keys(seed, num)
    params = trained.params[G]
    yield from fetched(render(block, params, *keys, np.arange(first, min(first + chunk, frames)) * time_scale)
                       for first in range(0, frames, chunk))


def generate_command(trained: Trained, args: argparse.Namespace):
    """`tlgen generate` on a StyleGAN-V run."""
    return generate(trained, args.frames, num=args.num, seed=args.seed, time_scale=args.time_scale,
                    chunk=args.chunk)


def generator_benchmark(trained: Trained, batch: dict):
    """`tlgen bench`'s inference figure: one 16-frame chunk of as many videos as the batch has clips."""
    block = make_block(sv.generator(trained.config.model, trained.dtype))
    keys = video_keys(0, batch["frames"].shape[0])
    call = lambda: render(block, trained.params[G], *keys, np.arange(16.0))  # noqa: E731
    return call, 16 * len(keys[0]), "16 frames per video"
