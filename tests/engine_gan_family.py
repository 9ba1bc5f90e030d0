"""A tiny GAN-shaped family for engine tests: generator G and critic D with two optimizers,
an EMA of G, several critic steps per generator step and lazy R1 every k steps (the
trainer's `regularize` steps).

Real data: 4×4 RGB images of a fixed pattern plus noise. Config:
`tests/engine_config.py:gan`.
"""

from __future__ import annotations

import flax.linen as nn
import grain
import jax
import jax.numpy as jnp
import numpy as np

from tlgen.family import Family, Training
from tlgen.train.state import TrainState, critic_steps, make_optimizer

LATENT = 8
SHAPE = (4, 4, 3)


def real_images(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pattern = np.linspace(-1, 1, np.prod(SHAPE)).reshape(SHAPE)
    return (pattern + 0.1 * rng.normal(size=(n,) + SHAPE)).astype(np.float32)


class Generator(nn.Module):
    @nn.compact
    def __call__(self, z):
        h = nn.relu(nn.Dense(32)(z))
        return jnp.tanh(nn.Dense(int(np.prod(SHAPE)))(h)).reshape((-1,) + SHAPE)


class Critic(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.leaky_relu(nn.Dense(32)(x.reshape(x.shape[0], -1)), 0.2)
        return nn.Dense(1)(h)[:, 0]


def training(config) -> Training:
    g, d = Generator(), Critic()
    g_tx = make_optimizer(config.optim, total_steps=config.total_steps)
    d_tx = make_optimizer(config.optim, total_steps=config.total_steps)
    n_critic, r1_every, r1_gamma = config.model.critic_steps, config.model.r1_every, config.model.r1_gamma
    ema_decay = config.train.ema_decay or 0.9

    def make_pipeline(split, shard_index, shard_count):
        data = real_images(config.data.num_examples, config.seed + (split != "train"))
        per = config.data.batch_size // shard_count
        ds = grain.MapDataset.range(config.data.num_examples)
        if split == "train":
            ds = ds.shuffle(seed=config.seed).repeat()
        ds = ds.batch(config.data.batch_size, drop_remainder=True)
        ds = ds.map(lambda idx: {"image": data[idx[shard_index * per:(shard_index + 1) * per]]})
        return ds.to_iter_dataset()

    def init(rng, batch):
        kg, kd = jax.random.split(rng)
        params = {"g": g.init(kg, jnp.zeros((1, LATENT)))["params"],
                  "d": d.init(kd, jnp.zeros((1,) + SHAPE))["params"]}
        return TrainState.create(params, {"g": g_tx, "d": d_tx}, ema=("g",))

    def fake(params, rng, n):
        return g.apply({"params": params}, jax.random.normal(rng, (n, LATENT)))

    def d_loss(d_params, real, fake_images, regularize):
        logits_real = d.apply({"params": d_params}, real)
        logits_fake = d.apply({"params": d_params}, fake_images)
        loss = jnp.mean(jax.nn.softplus(logits_fake) + jax.nn.softplus(-logits_real))
        if not regularize:
            return loss
        # lazy R1: every r1_every steps, weighted by r1_every
        grad = jax.grad(lambda x: d.apply({"params": d_params}, x).sum())(real)
        return loss + r1_gamma * r1_every * 0.5 * jnp.mean(jnp.sum(grad ** 2, axis=(1, 2, 3)))

    def train_step(state, batch, rng, regularize=False):
        real = batch["image"]
        n = real.shape[0]

        def critic(carry, i, key):
            st, _ = carry
            loss, grads = jax.value_and_grad(d_loss)(
                st.params["d"], real, fake(st.params["g"], key, n), regularize)
            return st.apply_gradients("d", grads, d_tx), loss
        state, loss_d = critic_steps(n_critic, critic, (state, jnp.float32(0.0)), rng)

        def g_loss(g_params):
            logits = d.apply({"params": state.params["d"]}, fake(g_params, jax.random.fold_in(rng, n_critic), n))
            return jnp.mean(jax.nn.softplus(-logits))
        loss_g, grads = jax.value_and_grad(g_loss)(state.params["g"])
        state = state.apply_gradients("g", grads, g_tx).update_ema(ema_decay)
        return state, {"loss": loss_g + loss_d, "loss_g": loss_g, "loss_d": loss_d,
                       "regularized": jnp.float32(regularize)}

    @jax.jit
    def sample(state, batch, rng):
        images = fake(state.ema["g"], rng, 4)
        return {"fake": jnp.round((images + 1) * 127.5).astype(jnp.uint8)}

    return Training(init=init, train_step=train_step, make_pipeline=make_pipeline, sample=sample,
                    regularize_every=r1_every)


FAMILY = Family(name="tests.engine_gan_family", training=training,
                example_batch=lambda config, n: {"image": real_images(n, 0)}, networks=("g",))
