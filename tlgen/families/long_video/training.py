"""The low-resolution stage's training side: a video GAN trained on long clips.

State: params {"g": generator, "d": discriminator}, one Adam each (betas (0, 0.99)); an EMA
copy of "g" (`tlgen.train.gan.ema_beta`).

One train step: the generator makes `generated_frames` frames from fresh temporal noise
(the clip length rounded up to the time scale, plus one time scale) and each fake clip is a
random crop of the clip length from them (a random temporal shift); then
`tlgen.train.gan.adversarial_update` (D step, lazy R1 every `loss.r1_every` steps, G step
through the same forward pass, EMA). The discriminator sees every clip, real and fake,
through DiffAugment (one draw per clip, all frames alike) and a random temporal rescale
(`rescale_time`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tlgen.config import check_at_least, compute_dtype
from tlgen.errors import UserError
from tlgen.family import Training
from tlgen.losses.diffaugment import OPS, augment_clips
from tlgen.metrics import evaluators
from tlgen.models import long_video as lv
from tlgen.models.pixels import frame_shape, to_model_range, to_uint8
from tlgen.train.gan import D, G, adversarial_update, check_periods, checked_loss, ema_beta, optimizers
from tlgen.train.state import TrainState

AUGMENTS = ("diffaugment", "none")


def generated_frames(gen: lv.Generator, clip: int) -> int:
    """Frames the generator makes for one training clip: a whole number of time scales with
    room for a random shift of up to one time scale."""
    return gen.whole_scales(clip) + gen.time_scale


def rescale_time(key: jax.Array, clips: jax.Array) -> jax.Array:
    """Each clip (B, T, H, W, C) resampled in time by s = 2^U(-1, 1) (linear interpolation,
    half-sample centres): sped up (s < 1) it is zero-padded at a random offset, slowed down
    a random window of T frames is kept. Differentiable in the clips."""
    b, t = clips.shape[:2]
    k_scale, k_offset = jax.random.split(key)
    scale = 2.0 ** jax.random.uniform(k_scale, (b,), minval=-1.0, maxval=1.0)
    length = jnp.floor(t * scale)
    offset = jnp.floor(jax.random.uniform(k_offset, (b,)) * (jnp.abs(length - t) + 1))
    offset = jnp.where(length >= t, offset, -offset)

    def one(clip, s, n, o):
        m = jnp.arange(t, dtype=jnp.float32) + o               # frame of the rescaled clip
        src = jnp.clip((m + 0.5) / s - 0.5, 0.0, t - 1.0)
        lo = jnp.floor(src).astype(jnp.int32)
        hi = jnp.minimum(lo + 1, t - 1)
        a = (src - lo)[:, None, None, None]
        out = clip[lo] * (1 - a) + clip[hi] * a
        return jnp.where(((m >= 0) & (m < n))[:, None, None, None], out, 0.0)
    return jax.vmap(one)(clips, scale, length, offset)


def random_crops(key: jax.Array, video: jax.Array, length: int, room: int) -> jax.Array:
    """A window of `length` frames of each video (B, F, ...), starting in [0, room)."""
    starts = jax.random.randint(key, (video.shape[0],), 0, room)
    return jax.vmap(lambda v, s: jax.lax.dynamic_slice_in_dim(v, s, length))(video, starts)


def networks(config, dtype=jnp.float32):
    """(Generator, Discriminator) of `config.model` for `config.data.num_frames`-frame clips,
    after checking the config."""
    m = config.model
    check_at_least(config, {"data.stride": 1, "model.input_channels": 1, "model.kernel_time": 1,
                            "model.temporal_channels": 1, "model.spatial_channels": 1,
                            "model.d_input_channels": 1, "model.d_channels": 1,
                            "model.d_kernel_time": 1, "model.d_head_channels": 1, "model.min_period": 1})
    check_periods(config)
    kt, padding = int(m.kernel_time), int(m.padding)
    if padding < 2 * (kt // 2) + 1:
        raise UserError(f"config.model.padding {padding} is below {2 * (kt // 2) + 1}, the frames a side that "
                        f"a temporal block's two {kt}-frame convolutions and its upsampling corrupt: "
                        "chunked generation would differ from one pass; raise it.")
    latent, filters = int(m.latent_dim), int(m.filters)
    if filters < 1 or latent < filters or latent % filters:
        raise UserError(f"config.model.latent_dim {latent} is not a positive multiple of config.model.filters "
                        f"{filters} (it is noise channels x filters); change either so that filters divides it.")
    for key in ("temporal_time_up", "temporal_space_up", "spatial_space_up"):
        blocks = key.split("_")[0] + "_channels"
        if len(m[key]) != len(m[blocks]):
            raise UserError(f"config.model.{key} {tuple(m[key])} is of length {len(m[key])} but "
                            f"config.model.{blocks} of length {len(m[blocks])}; give one entry per block.")
    clip, shortest = int(config.data.num_frames), 2 ** (len(m.d_channels) - 1)
    if clip < shortest:
        raise UserError(f"config.data.num_frames {clip} is too short: the discriminator halves time once per "
                        f"config.model.d_channels entry after the first, so a clip needs at least {shortest} "
                        "frames; raise num_frames or use fewer d_channels.")
    return lv.generator(m, dtype), lv.discriminator(m, clip, dtype)


def frame_size(config) -> tuple[int, int]:
    """(height, width) of `config.model.size`."""
    return frame_shape(config.model.size)


def clip_pipeline(config, length: int, remedy: str):
    """make_pipeline(split, shard_index, shard_count) of clips of `length` frames of the
    dataset at config.data.dir, checked to hold frames of config.model.size; no video that
    long is one sentence ending in `remedy`."""
    def make_pipeline(split, shard_index, shard_count):
        from tlgen.data.dataset import open_training_data
        from tlgen.data.pipelines import clip_dataset, per_process_batch

        open_training_data(config.data.dir, image_size=frame_size(config),
                           size_key="config.model.size")
        try:
            return clip_dataset(config.data.dir, split, length=length, stride=int(config.data.stride),
                                batch_size=per_process_batch(int(config.data.batch_size), shard_count),
                                seed=int(config.seed) + (split != "train"), shard_index=shard_index,
                                shard_count=shard_count,
                                augment=bool(config.data.augment) and split == "train",
                                worker_count=int(config.data.worker_count))
        except ValueError:
            raise UserError(f"no {split} video of {config.data.dir} is {length} frames long "
                            f"(stride {config.data.stride}); {remedy}.") from None
    return make_pipeline


def clip_batch(config, batch_size: int, frames: int) -> dict:
    """Zero arrays shaped like a batch of `clip_pipeline`: clips of `frames` frames."""
    h, w = frame_size(config)
    return {"frames": np.zeros((batch_size, frames, h, w, 3), np.uint8),
            "time": np.tile(np.arange(frames, dtype=np.float32), (batch_size, 1))}


def example_batch(config, batch_size: int) -> dict:
    """Zero arrays with the shapes of one pipeline batch."""
    return clip_batch(config, batch_size, int(config.data.num_frames))


def training(config) -> Training:
    """The functions the trainer runs for `config.family = "long_video"`."""
    dtype = compute_dtype(config)
    gen, disc = networks(config, dtype)
    lc = config.loss
    every = checked_loss(lc, AUGMENTS)
    clip = int(config.data.num_frames)
    made = generated_frames(gen, clip)
    room = gen.time_scale       # starts 0 .. scale - 1: every phase of the time scale once
    shift = round(max(int(v) for v in config.model.size) / 4)
    batch_size = int(config.data.batch_size)
    g_tx, d_tx = optimizers(config, every)
    ema_kimg, rampup = float(config.ema.kimg), float(config.ema.rampup)

    def noise(key, n):
        return jax.random.normal(key, (n, gen.noise_length(made), gen.noise_channels))

    make_pipeline = clip_pipeline(config, clip, "lower config.data.num_frames or prepare longer videos")

    def init(rng, batch):
        kg, kd, kn = jax.random.split(rng, 3)
        gp = gen.init(kg, noise(kn, 1), made)["params"]
        dp = disc.init(kd, to_model_range(batch["frames"][:1]))["params"]
        return TrainState.create({G: gp, D: dp}, {G: g_tx, D: d_tx}, ema=(G,))

    def critic(d_params, clips, key):
        k_aug, k_time = jax.random.split(key)
        if lc.augment == "diffaugment":   # shifts up to 1/4 of the longer side, as the public code
            clips = augment_clips(k_aug, clips, 1.0, OPS, shift=(shift, shift))
        if lc.time_rescale:
            clips = rescale_time(k_time, clips)
        return disc.apply({"params": d_params}, clips)

    def train_step(state, batch, rng, regularize: bool = False):
        real = to_model_range(batch["frames"])
        k_noise, k_crop, k_update = jax.random.split(rng, 3)
        z = noise(k_noise, real.shape[0])
        fake, pullback = jax.vjp(lambda gp: random_crops(k_crop, gen.apply({"params": gp}, z, made), clip, room),
                                 state.params[G])
        state, metrics, _ = adversarial_update(
            state, fake, pullback, real, critic, k_update, regularize=regularize,
            gamma=float(lc.r1_gamma), every=every, d_tx=d_tx, g_tx=g_tx,
            ema_decay=ema_beta(state.step, batch_size, ema_kimg, rampup))
        return state, metrics

    def fake_like(state, batch):
        """EMA-generator clips, noise drawn from the batch's content (the same every eval)."""
        seed = jnp.sum(batch["frames"][:, 0, :8, :8].astype(jnp.int32))
        z = noise(jax.random.fold_in(jax.random.key(int(config.seed)), seed), batch["frames"].shape[0])
        return to_uint8(gen.apply({"params": state.for_inference(G)}, z, made)[:, :clip])

    def sample(state, batch, rng):
        n = min(4, batch["frames"].shape[0])
        video = gen.apply({"params": state.for_inference(G)}, noise(rng, n), made)[:, :clip]
        return {"real": batch["frames"][:n], "generated": to_uint8(video)}

    frame_steps = lambda batch: jnp.broadcast_to(jnp.arange(clip, dtype=jnp.float32), batch["frames"].shape[:2])
    return Training(init=init, train_step=train_step, make_pipeline=make_pipeline, sample=sample,
                    evaluators={"swd": evaluators.swd(fake_like, frame_steps)},
                    regularize_every=every)
