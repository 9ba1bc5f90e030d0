"""StyleGAN-V's training side: a continuous-time video GAN trained on sparse 3-frame clips.

State: params {"g": generator, "d": discriminator}, one Adam each (StyleGAN2's betas (0, 0.99));
an EMA copy of "g" with StyleGAN2's ramp-up (`ema_beta`); the adaptive augmentation
probability in `extra["augment_p"]`.

One train step: the generator runs once (content code z, motion noise codes, the real clips'
frame times shifted by a random fractional offset in [0, max_frames - span)), then
`tlgen.train.gan.adversarial_update` (D step, lazy R1 every `loss.r1_every` steps averaged
over a clip's frames, G step through the same forward pass, EMA). Both networks see the clips through the same
augmentation (`loss.augment`: "diffaugment" (p = 1), "ada" (adaptive p) or "none"; its
operations `loss.augment_ops`: DiffAugment's or ADA's "bgc"), drawn once per clip and applied
to all its frames.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from tlgen.config import check_at_least, check_frame_size, compute_dtype, size_text
from tlgen.errors import UserError
from tlgen.family import Training
from tlgen.metrics import evaluators
from tlgen.models import stylegan_v as sv
from tlgen.models.pixels import frame_shape, to_model_range, to_uint8
from tlgen.train.gan import (D, G, adapt_augment, adversarial_update, check_periods, checked_loss,
                             clip_augmentation, ema_beta, initial_augment_p, optimizers)
from tlgen.train.state import TrainState

AUGMENTS = ("diffaugment", "ada", "none")


def r1_gamma(config) -> float:
    """`loss.r1_gamma`, or StyleGAN-V's heuristic 0.0002 * resolution^2 / batch when < 0 (the
    frames' pixel count for resolution^2)."""
    gamma = float(config.loss.r1_gamma)
    if gamma >= 0:
        return gamma
    h, w = frame_shape(config.model.resolution)
    return 0.0002 * h * w / int(config.data.batch_size)


def frame_size(config) -> tuple[int, int]:
    """(height, width) of `config.model.resolution`; UserError unless the height is a power of
    two from 16 and the width a multiple of a quarter of it, naming the nearest size that is."""
    h, w = check_frame_size(config, "model.resolution", 4, "the discriminator halves the frames "
                            "to a map 4 high", least=16)
    try:
        sv.base_shape((h, w))                       # the networks' own rule
    except ValueError:
        near_h = 2 ** round(math.log2(h))
        quarter = near_h // 4
        near = (near_h, near_h if h == w else max(1, math.floor(w / quarter + 0.5)) * quarter)
        raise UserError(f"config.model.resolution is {size_text((h, w))}; its height must be a power "
                        f"of two from 16 and its width a multiple of a quarter of the height (the "
                        f"nearest such size is {size_text(near)}).") from None
    return h, w


def networks(config, dtype=jnp.float32):
    """(Generator, Discriminator) of `config.model` for `config.data.num_frames`-frame clips,
    after checking the config."""
    m = config.model
    check_at_least(config, {"data.num_frames": 2, "model.z_dim": 1, "model.w_dim": 1,
                            "model.channel_base": 1, "model.d_channel_base": 1, "model.channel_max": 1,
                            "model.motion_kernel": 1, "model.min_period": 1, "model.max_frames": 2,
                            "model.frames_div": 1, "model.mbstd_group": 1})
    check_periods(config)
    longest = max((int(s) for s in config.data.spans), default=0)
    if longest >= int(m.max_frames):
        raise UserError(f"config.data.spans reach {longest} frames, but D embeds time differences "
                        f"below config.model.max_frames {m.max_frames}; raise it or shorten the spans.")
    res, concat = frame_size(config), int(m.concat_res)
    if concat < 8 or concat >= res[0] or concat & (concat - 1):
        raise UserError(f"config.model.concat_res {concat} must be a power of two from 8 to "
                        f"{res[0] // 2} (half the height of config.model.resolution), where D joins "
                        f"the frames.")
    return sv.generator(config.model, dtype), sv.discriminator(config.model, int(config.data.num_frames), dtype)


def fake_inputs(gen: sv.Generator, rng: jax.Array, t_real: jax.Array, max_frames: float):
    """(z, motion codes, times) of a batch of fake clips with the real clips' time differences,
    started at a random fractional time in [0, max_frames - span)."""
    b = t_real.shape[0]
    kz, kc, ko = jax.random.split(rng, 3)
    rel = t_real - t_real[:, :1]
    start = jax.random.uniform(ko, (b, 1)) * jnp.maximum(max_frames - 1 - rel[:, -1:], 0.0)
    codes = jax.random.normal(kc, (b, gen.codes_for(max_frames), gen.z_dim))
    return jax.random.normal(kz, (b, gen.z_dim)), codes, rel + start


def example_batch(config, batch_size: int) -> dict:
    """Zero arrays with the shapes of one pipeline batch."""
    f, size = int(config.data.num_frames), frame_shape(config.model.resolution)
    return {"frames": np.zeros((batch_size, f, *size, 3), np.uint8),
            "time": np.tile(np.arange(f, dtype=np.float32), (batch_size, 1))}


def training(config) -> Training:
    """The functions the trainer runs for `config.family = "stylegan_v"`."""
    dtype = compute_dtype(config)
    gen, disc = networks(config, dtype)
    lc = config.loss
    every = checked_loss(lc, AUGMENTS)
    augment = clip_augmentation(lc)
    # R1 per frame, averaged over a clip's frames as StyleGAN-V does (the penalty sums a clip)
    gamma = r1_gamma(config) / int(config.data.num_frames)
    batch_size = int(config.data.batch_size)
    max_frames = float(config.model.max_frames)
    g_tx, d_tx = optimizers(config, every)
    ema_kimg, rampup = float(config.ema.kimg), float(config.ema.rampup)

    def make_pipeline(split, shard_index, shard_count):
        from tlgen.data.dataset import open_training_data
        from tlgen.data.pipelines import per_process_batch, sparse_frames_dataset

        open_training_data(config.data.dir, image_size=frame_shape(config.model.resolution),
                           size_key="config.model.resolution")
        try:
            return sparse_frames_dataset(
                config.data.dir, split, num_frames=int(config.data.num_frames),
                spans=tuple(int(s) for s in config.data.spans),
                batch_size=per_process_batch(batch_size, shard_count),
                seed=int(config.seed) + (split != "train"), shard_index=shard_index,
                shard_count=shard_count, augment=bool(config.data.augment) and split == "train",
                worker_count=int(config.data.worker_count))
        except ValueError as e:
            raise UserError(f"{config.data.dir} has no clip to train StyleGAN-V on ({e}); it needs "
                            f"videos or image sequences of at least {config.data.num_frames} "
                            "frames, not single images.") from None

    def init(rng, batch):
        rng = jax.random.wrap_key_data(jax.random.bits(rng, (4,), jnp.uint32), impl="rbg")
        kg, kd, kf = jax.random.split(rng, 3)
        t = jnp.asarray(batch["time"][:1], jnp.float32)
        z, codes, t_fake = fake_inputs(gen, kf, t, max_frames)
        gp = gen.init(kg, z, codes, t_fake)["params"]
        dp = disc.init(kd, to_model_range(batch["frames"][:1]), t)["params"]
        return TrainState.create({G: gp, D: dp}, {G: g_tx, D: d_tx}, ema=(G,),
                                 extra={"augment_p": initial_augment_p(lc)})

    def train_step(state, batch, rng, regularize: bool = False):
        real = to_model_range(batch["frames"])
        t_real = batch["time"].astype(jnp.float32)
        k_fake, k_update = jax.random.split(rng)
        z, codes, t_fake = fake_inputs(gen, k_fake, t_real, max_frames)
        p = state.extra["augment_p"]

        def critic(d_params, clips, key):
            clips = augment(key, clips, p) if augment else clips
            return disc.apply({"params": d_params}, clips, t_real)

        fake, pullback = jax.vjp(lambda gp: gen.apply({"params": gp}, z, codes, t_fake), state.params[G])
        state, metrics, real_logits = adversarial_update(
            state, fake, pullback, real, critic, k_update, regularize=regularize, gamma=gamma,
            every=every, d_tx=d_tx, g_tx=g_tx, ema_decay=ema_beta(state.step, batch_size, ema_kimg, rampup))
        return adapt_augment(state, metrics, real_logits, lc, batch_size)

    def fake_like(state, batch):
        """EMA-generator clips at the batch's frame times, z drawn from the batch's content."""
        t = batch["time"].astype(jnp.float32)
        seed = jnp.sum(batch["frames"][:, 0, :8, :8].astype(jnp.int32))
        z, codes, _ = fake_inputs(gen, jax.random.fold_in(jax.random.key(int(config.seed)), seed), t, max_frames)
        return gen.apply({"params": state.for_inference(G)}, z, codes, t - t[:, :1])

    def sample(state, batch, rng):
        n = min(4, batch["frames"].shape[0])
        t = jnp.tile(jnp.arange(16, dtype=jnp.float32), (n, 1))
        z, codes, _ = fake_inputs(gen, rng, t, max_frames)
        video = gen.apply({"params": state.for_inference(G)}, z, codes, t)
        return {"real": batch["frames"][:n], "generated": to_uint8(video)}

    return Training(init=init, train_step=train_step, make_pipeline=make_pipeline, sample=sample,
                    evaluators={"swd": evaluators.swd(lambda state, batch: to_uint8(fake_like(state, batch)))},
                    regularize_every=every)
