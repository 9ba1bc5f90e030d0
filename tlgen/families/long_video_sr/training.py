"""The super-resolution stage's training side.

A sample is a clip of `data.num_frames` + 2 context high-resolution frames; the generator is
conditioned on the whole clip reduced `model.scale` times (`downsample_area`, what the
low-resolution stage trains on) and makes the middle `data.num_frames` frames, which the
discriminator compares with the real ones. The discriminator sees the low-resolution frames
too (upsampled) for a share `loss.lowres_prob` of the samples, zeros for the others (drawn
per sample and pass); the augmentation (`loss.augment_ops`: ADA's "bgc" or DiffAugment's;
adaptive p with "ada") is drawn once per sample for its low- and high-resolution frames alike.
Then `tlgen.train.gan.adversarial_update` (lazy R1 on the high-resolution frames).

State: params {"g", "d"}, one Adam each, an EMA copy of "g", extra {"augment_p"}.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tlgen.config import check_at_least, compute_dtype
from tlgen.errors import UserError
from tlgen.families.long_video.training import clip_batch, clip_pipeline
from tlgen.family import Evaluator, Training
from tlgen.metrics import evaluators
from tlgen.metrics.image import psnr
from tlgen.models import long_video_sr as sr
from tlgen.models.pixels import to_model_range, to_uint8
from tlgen.train.gan import (D, G, adapt_augment, adversarial_update, checked_loss,
                             clip_augmentation, ema_beta, initial_augment_p, optimizers)
from tlgen.train.state import TrainState

AUGMENTS = ("ada", "diffaugment", "none")


def networks(config, dtype=jnp.float32):
    """(Generator, Discriminator) of `config.model`, after checking the config."""
    m = config.model
    check_at_least(config, {"data.stride": 1, "model.z_dim": 1, "model.w_dim": 1, "model.channel_base": 1,
                            "model.d_channel_base": 1, "model.channel_max": 1, "model.context": 0,
                            "model.margin": 0})
    h, w = (int(s) for s in m.size)
    scale = int(m.scale)
    if scale < 1 or h % scale or w % scale:
        raise UserError(f"config.model.size {h}x{w} is not a whole multiple of config.model.scale "
                        f"{scale}; choose a size both sides of which it divides.")
    if int(m.num_layers) < 3:
        raise UserError(f"config.model.num_layers {m.num_layers} is too few: the last two synthesis layers "
                        "are at the full resolution and at least one must come before them; set it to 3 or more.")
    if int(config.data.num_frames) < 1:
        raise UserError(f"config.data.num_frames {config.data.num_frames} must be at least 1 "
                        "(the high-resolution frames of a training sample).")
    return sr.generator(m, dtype), sr.discriminator(m, dtype)


def middle(frames, context: int, count: int):
    """The middle `count` frames of clips (B, count + 2 context, ...)."""
    return frames[:, context:context + count]


def example_batch(config, batch_size: int) -> dict:
    """Zero arrays with the shapes of one pipeline batch."""
    return clip_batch(config, batch_size, int(config.data.num_frames) + 2 * int(config.model.context))


def training(config) -> Training:
    """The functions the trainer runs for `config.family = "long_video_sr"`."""
    dtype = compute_dtype(config)
    gen, disc = networks(config, dtype)
    lc = config.loss
    every = checked_loss(lc, AUGMENTS)
    augment = clip_augmentation(lc)
    count, context, scale = int(config.data.num_frames), gen.context, gen.scale
    clip = count + 2 * context
    batch_size = int(config.data.batch_size)
    lowres_prob = float(lc.lowres_prob)
    g_tx, d_tx = optimizers(config, every)
    ema_kimg, rampup = float(config.ema.kimg), float(config.ema.rampup)

    make_pipeline = clip_pipeline(config, clip, f"a sample is {count} frames and {context} of context "
                                                "on each side; prepare longer videos")

    def inputs(batch):
        """(real middle frames, low-resolution clips) in [-1, 1]."""
        return (to_model_range(middle(batch["frames"], context, count)),
                to_model_range(sr.downsample_area(batch["frames"], scale)))

    def init(rng, batch):
        kg, kd, kz = jax.random.split(rng, 3)
        real, lowres = inputs(jax.tree.map(lambda a: a[:1], batch))
        gp = gen.init(kg, lowres, jax.random.normal(kz, (1, gen.z_dim)))["params"]
        dp = disc.init(kd, sr.upsample_linear(lowres[:, context:context + count], scale), real)["params"]
        return TrainState.create({G: gp, D: dp}, {G: g_tx, D: d_tx}, ema=(G,),
                                 extra={"augment_p": initial_augment_p(lc)})

    def train_step(state, batch, rng, regularize: bool = False):
        real, lowres = inputs(batch)
        k_z, k_update = jax.random.split(rng)
        z = jax.random.normal(k_z, (real.shape[0], gen.z_dim))
        lowres_up = sr.upsample_linear(lowres[:, context:context + count], scale)
        p = state.extra["augment_p"]

        def critic(d_params, frames, key):
            k_aug, k_keep = jax.random.split(key)
            both = jnp.concatenate([lowres_up, frames], axis=1)
            if augment:
                both = augment(k_aug, both, p)
            keep = jax.random.uniform(k_keep, (frames.shape[0], 1, 1, 1, 1)) < lowres_prob
            return disc.apply({"params": d_params}, both[:, :count] * keep, both[:, count:])

        fake, pullback = jax.vjp(lambda gp: gen.apply({"params": gp}, lowres, z), state.params[G])
        state, metrics, real_logits = adversarial_update(
            state, fake, pullback, real, critic, k_update, regularize=regularize,
            gamma=float(lc.r1_gamma), every=every, d_tx=d_tx, g_tx=g_tx,
            ema_decay=ema_beta(state.step, batch_size, ema_kimg, rampup))
        return adapt_augment(state, metrics, real_logits, lc, batch_size)

    def upscaled(state, batch):
        """EMA-generator frames for the batch, z drawn from its content (the same every eval)."""
        _, lowres = inputs(batch)
        seed = jnp.sum(batch["frames"][:, 0, :8, :8].astype(jnp.int32))
        z = jax.random.normal(jax.random.fold_in(jax.random.key(int(config.seed)), seed),
                              (lowres.shape[0], gen.z_dim))
        return gen.apply({"params": state.for_inference(G)}, lowres, z)

    def sample(state, batch, rng):
        n = min(4, batch["frames"].shape[0])
        batch = jax.tree.map(lambda a: a[:n], batch)
        real = middle(batch["frames"], context, count)
        lowres = sr.downsample_area(real, scale)
        return {"real": real, "generated": to_uint8(upscaled(state, batch)),
                "lowres": to_uint8(sr.upsample_linear(to_model_range(lowres), scale))}

    swd = evaluators.swd(lambda state, batch: to_uint8(upscaled(state, batch)),
                         lambda batch: jnp.broadcast_to(jnp.arange(count, dtype=jnp.float32),
                                                        batch["frames"].shape[:1] + (count,)))

    def compute(state, batch):
        """SWD and motion SWD against the real middle frames, psnr against them, and
        lowres_psnr: the generated frames reduced back to low resolution against the frames
        they were made from (dB; how faithful the upscaling is), from one generator pass."""
        real = middle(batch["frames"], context, count)
        out = {**swd.compute(state, batch), "real": real}
        out["psnr"] = psnr(out["fake"], real, max_val=255.0)
        out["lowres_psnr"] = psnr(sr.downsample_area(out["fake"], scale), sr.downsample_area(real, scale),
                                  max_val=255.0)
        return out

    def accumulate(total, out):
        total = total or {"swd": None, "psnr": [], "lowres_psnr": []}
        return {"swd": swd.accumulate(total["swd"], out),
                **{k: total[k] + [np.asarray(out[k])] for k in ("psnr", "lowres_psnr")}}

    def finalize(total):
        return {**swd.finalize(total["swd"]),
                **{k: float(np.mean(np.concatenate([p.ravel() for p in total[k]]))) for k in ("psnr", "lowres_psnr")}}

    return Training(init=init, train_step=train_step, make_pipeline=make_pipeline, sample=sample,
                    evaluators={"swd": Evaluator(compute, accumulate, finalize)},
                    regularize_every=every)
