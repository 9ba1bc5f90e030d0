"""The low-resolution stage's inference side: videos of any length, chunk by chunk, and
their upscaling by a super-resolution run (`--superres`), streamed.

Video v of seed s draws its temporal noise by global frame index from the key folded from
(s, v) (`tlgen.models.long_video.temporal_noise`); a chunk of frames [a, a + n) takes the
noise its latents and margins need, so a chunk's frames are the frames of the one-pass
video (up to float rounding: FFT sizes differ) and memory does not grow with the length.

`tlgen eval` scores the videos, or with `--superres` the upscaled ones
(`tlgen.metrics.generator_eval`).

Upscaled, frame t of the video is made from low-resolution frames t .. t + 2 context (the
video is made 2 context frames longer) and the video's own z: `upscale` keeps the last
2 context low-resolution frames between passes, so passes leave no seams.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from tlgen.errors import UserError
from tlgen.families.long_video.training import G, frame_size
from tlgen.metrics import generator_eval
from tlgen.models import long_video as lv
from tlgen.models import long_video_sr as lsr
from tlgen.models.pixels import to_model_range, to_uint8
from tlgen.streaming import fetched
from tlgen.trained import Trained, load

SUPERRES_FAMILY = "long_video_sr"
UPSCALE_FRAMES = 8     # high-resolution frames per super-resolution pass


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chunk", type=int, default=128,
                        help="long_video: frames made per pass (memory; rounded up to the "
                             "generator's time scale; default 128)")
    parser.add_argument("--superres", metavar="SR_WORKDIR",
                        help="long_video: upscale the videos with this super-resolution "
                             "(long_video_sr) run, trained for this run's frame size, from its newest "
                             "checkpoint (--step picks the low-resolution run's); output frame t "
                             "upscales low-resolution frame t + its config.model.context, the frames "
                             "before and after serving as context")


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
    make = make_chunk(gen, chunk)
    run = jax.jit(lambda params, keys, first: to_uint8(make(params, keys, first)))
    keys = video_keys(seed, num)
    params = trained.params[G]
    chunks = (run(params, keys, jnp.int32(first))[:, :frames - first] for first in range(0, frames, chunk))
    yield from fetched(chunks)


def not_lowres(workdir: str) -> UserError:
    """The error for a super-resolution run given as a low-resolution run's --workdir."""
    return UserError(f"{workdir} is a super-resolution run ({SUPERRES_FAMILY}); give it as --superres {workdir} "
                     "with a low-resolution (long_video) run as --workdir.")


def superres_run(path: str, lowres: Trained) -> Trained:
    """The super-resolution run at `path`, checked against the low-resolution run it upscales."""
    if not os.path.exists(os.path.join(path, "config.json")):
        raise UserError(f"--superres {path} is not the work directory of a `tlgen train` run (no "
                        f"config.json); give a super-resolution ({SUPERRES_FAMILY}) run.")
    from tlgen.checkpoint import run_config

    config = run_config(path)                   # checked before its checkpoint is read
    if config.family != SUPERRES_FAMILY:
        raise UserError(f"--superres {path} is a {config.family} run; give a super-resolution "
                        f"({SUPERRES_FAMILY}) run.")
    gen = lsr.generator(config.model)
    (h, w), size = gen.lowres_size, tuple(int(s) for s in lowres.config.model.size)
    if (h, w) != size:
        raise UserError(f"--superres {path} upscales {h}x{w} frames (x{gen.scale}), but "
                        f"{lowres.workdir} makes {size[0]}x{size[1]} frames; give a super-resolution run "
                        f"trained for them (config.model.size = config.model.scale x {size[0]}x{size[1]}).")
    return load(path)


def upscaler(trained: Trained, num: int, seed: int = 0):
    """(pass, context) of a super-resolution run for `num` videos of `seed`: the jitted pass
    takes uint8 low-resolution windows (num, n + 2 context, h, w, 3) to their n upscaled
    frames (num, n, H, W, 3), uint8."""
    gen = lsr.generator(trained.config.model, trained.dtype)
    z = jax.vmap(lambda key: jax.random.normal(jax.random.split(key)[1], (gen.z_dim,)))(video_keys(seed, num))
    run = jax.jit(lambda params, video: to_uint8(gen.apply({"params": params}, to_model_range(video), z)))
    params = trained.params[G]
    return (lambda video: run(params, video)), gen.context


def upscale(trained: Trained, lowres: Iterator[np.ndarray], *, num: int = 1, seed: int = 0,
            frames: int = UPSCALE_FRAMES) -> Iterator[np.ndarray]:
    """uint8 chunks (num, n, H, W, 3) of the upscaled videos of the uint8 low-resolution
    chunks `lowres` (num, m, h, w, 3) (2 context frames longer in all), `frames` per pass."""
    run, k = upscaler(trained, num, seed)

    def make(video, n):     # frames 0..n-1 of video[:, :n + 2k], in passes of one shape
        short = frames + 2 * k - video.shape[1]
        if short > 0:
            video = np.concatenate([video, np.repeat(video[:, -1:], short, axis=1)], axis=1)
        return run(video)[:, :n]

    def passes():
        pending = None
        for chunk in lowres:
            pending = chunk if pending is None else np.concatenate([pending, chunk], axis=1)
            while pending.shape[1] >= frames + 2 * k:
                yield make(pending[:, :frames + 2 * k], frames)
                pending = pending[:, frames:]
        if pending is not None and pending.shape[1] > 2 * k:
            yield make(pending, pending.shape[1] - 2 * k)
    yield from fetched(passes())


def upscaled(sr: Trained):
    """`generate` followed by `upscale` with the super-resolution run `sr`: the same
    arguments, frames `sr`'s size."""
    context = int(sr.config.model.context)

    def make(trained: Trained, frames: int, *, num: int = 1, seed: int = 0, chunk: int = 128):
        lowres = generate(trained, frames + 2 * context, num=num, seed=seed, chunk=chunk)
        return upscale(sr, lowres, num=num, seed=seed)
    return make


def generate_command(trained: Trained, args: argparse.Namespace):
    """`tlgen generate` on a long_video run (upscaled with --superres)."""
    make = upscaled(superres_run(args.superres, trained)) if args.superres else generate
    return make(trained, args.frames, num=args.num, seed=args.seed, chunk=args.chunk)


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    generator_eval.add_arguments(parser)
    parser.add_argument("--superres", metavar="SR_WORKDIR",
                        help="long_video: score the videos upscaled by this super-resolution (long_video_sr) "
                             "run, against its dataset (or --data) at its frame size")


def eval_command(trained: Trained, args: argparse.Namespace) -> dict:
    """`tlgen eval` on a long_video run: its videos against its dataset, or with --superres
    the upscaled videos against the super-resolution run's."""
    sr = superres_run(args.superres, trained) if args.superres else None
    report = generator_eval.evaluate(trained, args.out_dir, upscaled(sr) if sr else generate,
                                     frame_size((sr or trained).config), data_run=sr, **generator_eval.options(args))
    return {**report, **({"superres": sr.workdir, "superres_step": sr.step} if sr else {})}


def generator_benchmark(trained: Trained, batch: dict):
    """`tlgen bench`'s inference figure: one chunk of a clip's length for each clip of the batch."""
    gen = lv.generator(trained.config.model, trained.dtype)
    frames = gen.whole_scales(batch["frames"].shape[1])
    run = jax.jit(make_chunk(gen, frames))
    keys = video_keys(0, batch["frames"].shape[0])
    params = trained.params[G]
    return (lambda: run(params, keys, jnp.int32(0))), frames * int(keys.shape[0]), f"{frames} frames per video"


def upscale_benchmark(trained: Trained, batch: dict):
    """`tlgen bench`'s inference figure for a super-resolution run: one pass of `upscale` over
    each clip of the batch, reduced to low resolution (the upscaled frames are counted)."""
    lowres = lsr.downsample_area(batch["frames"], int(trained.config.model.scale))
    run, k = upscaler(trained, int(lowres.shape[0]))
    frames = (int(lowres.shape[1]) - 2 * k) * int(lowres.shape[0])
    return (lambda: run(lowres)), frames, f"{int(lowres.shape[1]) - 2 * k} upscaled frames per clip"
