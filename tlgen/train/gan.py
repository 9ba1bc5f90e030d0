"""The StyleGAN2-style adversarial update that the GAN families share.

One call: a discriminator step on real and (stopped-gradient) fake clips with the
non-saturating logistic loss; on `regularize` steps a lazy R1 step (gamma / 2 * every *
E||grad D(real)||^2, the discriminator's optimizer built by `lazy_optimizer`); then the
generator step through the generator's forward pass already made (`jax.vjp` pullback)
against the updated discriminator; then the generator's EMA. Gradients pass through
`nan_to_num` as StyleGAN2's do.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from tlgen.errors import UserError
from tlgen.losses import ada_augment, adversarial, diffaugment
from tlgen.losses.diffaugment import ada_update
from tlgen.train.state import make_optimizer

G, D = "g", "d"


def ema_beta(step, batch_size: int, ema_kimg: float, rampup: float | None):
    """StyleGAN2's G-EMA decay after `step` steps of `batch_size`: 0.5 ** (batch / ema_nimg),
    ema_nimg = ema_kimg * 1000, capped at rampup * images seen so far when `rampup` is set."""
    nimg = ema_kimg * 1000.0
    if rampup:
        nimg = jnp.minimum(nimg, jnp.asarray(step, jnp.float32) * batch_size * rampup)
    return 0.5 ** (batch_size / jnp.maximum(nimg, 1e-8))


def lazy_optimizer(optim_cfg, every: int):
    """The optimizer settings of a network regularized every `every` steps (StyleGAN2): lr
    and betas raised to the power every / (every + 1)."""
    cfg = optim_cfg.copy_and_resolve_references()
    if every > 1:
        c = every / (every + 1)
        cfg.lr, cfg.b1, cfg.b2 = cfg.lr * c, cfg.b1 ** c, cfg.b2 ** c
    return cfg


def no_grad_accum(config) -> None:
    """UserError unless `config.train.grad_accum` is 1: a GAN's generator and discriminator
    steps alternate, and these families accumulate no gradients."""
    if int(config.train.grad_accum) != 1:
        raise UserError(f"config.train.grad_accum is {config.train.grad_accum}, but {config.family} "
                        "alternates generator and discriminator steps without accumulating "
                        "gradients; keep 1 and set the batch with config.data.batch_size.")


def no_train_ema(config, instead: str) -> None:
    """UserError unless `config.train.ema_decay` is 0, for a family that keeps no EMA by it
    (`instead`: what it does)."""
    decay = float(config.train.get("ema_decay", 0.0))
    if decay:
        raise UserError(f"config.train.ema_decay is {decay:g}, but {config.family} {instead}; keep 0.")


def optimizers(config, every: int):
    """(g_tx, d_tx) of `config.optim.g` and `config.optim.d`, the latter regularized lazily
    every `every` steps (`lazy_optimizer`), over `config.total_steps`; for the families
    whose generator's EMA follows `config.ema`."""
    no_grad_accum(config)
    no_train_ema(config, "keeps its generator's EMA by config.ema.kimg and config.ema.rampup")
    return (make_optimizer(config.optim.g, total_steps=config.total_steps),
            make_optimizer(lazy_optimizer(config.optim.d, every), total_steps=config.total_steps))


def initial_augment_p(lc):
    """The augmentation probability a run starts with: 1 for DiffAugment, 0 for ADA (and none)."""
    return jnp.float32(1.0 if lc.augment == "diffaugment" else 0.0)


AUGMENT_OPS = {"diffaugment": diffaugment.augment_clips, "bgc": ada_augment.augment_clips}


def clip_augmentation(lc) -> Callable | None:
    """augment(key, clips, p) of `lc.augment_ops` ("diffaugment": DiffAugment's colour,
    translation and cutout; "bgc": ADA's blit, geometric and colour pipeline), None when
    `lc.augment` is "none"."""
    name = lc.get("augment_ops", "diffaugment")
    if name not in AUGMENT_OPS:
        raise UserError(f"config.loss.augment_ops is {name!r}; use one of {', '.join(AUGMENT_OPS)}.")
    return None if lc.augment == "none" else AUGMENT_OPS[name]


def adapt_augment(state, metrics: dict, real_logits, lc, batch_size: int):
    """(state, metrics + "augment_p") after ADA's update of state.extra["augment_p"] when
    `lc.augment` is "ada" (target `lc.ada_target`, speed `lc.ada_kimg`, at most `lc.ada_max_p`,
    default 1)."""
    p = state.extra["augment_p"]
    if lc.augment == "ada":
        p = ada_update(p, real_logits, target=float(lc.ada_target), images=batch_size,
                       speed_kimg=float(lc.ada_kimg), max_p=float(lc.get("ada_max_p", 1.0)))
        state = state.replace(extra={**state.extra, "augment_p": p})
    return state, {**metrics, "augment_p": p}


def checked_loss(lc, augments) -> int:
    """`config.loss.r1_every` after checking it and `config.loss.augment` (one of `augments`)."""
    if lc.augment not in augments:
        raise UserError(f"config.loss.augment is {lc.augment!r}; use one of {', '.join(augments)}.")
    every = int(lc.r1_every)
    if every < 1:
        raise UserError(f"config.loss.r1_every is {every}; use 1 or more (1 = R1 every step).")
    return every


def check_periods(config) -> None:
    """UserError unless config.model's max_period is at least its min_period (both > 0)."""
    m = config.model
    if not 0 < float(m.min_period) <= float(m.max_period):
        raise UserError(f"config.model.max_period {m.max_period:g} must be at least "
                        f"config.model.min_period {m.min_period:g} (both positive, in frames).")


def clean(grads):
    """StyleGAN2's gradient guard: NaN -> 0, +-inf -> +-1e5."""
    return jax.tree.map(functools.partial(jnp.nan_to_num, nan=0.0, posinf=1e5, neginf=-1e5), grads)


def adversarial_update(state, fake: jax.Array, pullback: Callable, real: jax.Array,
                       critic: Callable, rng: jax.Array, *, regularize: bool, gamma: float,
                       every: int, d_tx, g_tx, ema_decay):
    """(state, metrics, real logits) after the D, lazy-R1, G and EMA updates.

    fake: the generator's output, `pullback` its `jax.vjp` pullback from state.params["g"];
    critic(d_params, clips, key) -> logits (the family's augmentation inside)."""
    k_real, k_fake, k_r1, k_g = jax.random.split(rng, 4)
    fake_d = jax.lax.stop_gradient(fake)

    def d_loss(d_params):
        real_logits = critic(d_params, real, k_real)
        l_real, l_fake = adversarial.logistic_d_loss(real_logits, critic(d_params, fake_d, k_fake))
        return l_real + l_fake, (l_real, l_fake, real_logits)

    (loss_d, (l_real, l_fake, real_logits)), grads = jax.value_and_grad(d_loss, has_aux=True)(state.params[D])
    state = state.apply_gradients(D, clean(grads), d_tx)
    r1 = jnp.float32(0.0)
    if regularize:
        def r1_loss(d_params):
            penalty = adversarial.r1_penalty(lambda x: critic(d_params, x, k_r1), real)
            return penalty * (gamma / 2) * every, penalty
        (_, r1), grads = jax.value_and_grad(r1_loss, has_aux=True)(state.params[D])
        state = state.apply_gradients(D, clean(grads), d_tx)
    loss_g, fake_grads = jax.value_and_grad(
        lambda x: adversarial.logistic_g_loss(critic(state.params[D], x, k_g)))(fake)
    (g_grads,) = pullback(fake_grads)
    state = state.apply_gradients(G, clean(g_grads), g_tx).update_ema(ema_decay)
    return state, {"loss": loss_g + loss_d, "loss_g": loss_g, "loss_d": loss_d,
                   "d_real": l_real, "d_fake": l_fake, "r1": r1}, real_logits
