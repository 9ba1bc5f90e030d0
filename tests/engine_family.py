"""A small real family for engine tests: conv + MLP regression on a Grain MapDataset.

Its config: `--config tests/engine_config.py:regression`.
"""

from __future__ import annotations

import time

import flax.linen as nn
import grain
import jax
import jax.numpy as jnp
import numpy as np

from tlgen.family import Family, Training
from tlgen.config import compute_dtype
from tlgen.train.state import TrainState, make_optimizer

SPLIT_SEEDS = {"train": 0, "validation": 1}


def examples(split: str, n: int, seed: int) -> dict[str, np.ndarray]:
    """Inputs x (4, 4, 2) and targets y = Σ sin(x) + 0.1·x[0, 0, 0]."""
    rng = np.random.default_rng(1000 * seed + SPLIT_SEEDS[split])
    x = rng.normal(size=(n, 4, 4, 2)).astype(np.float32)
    y = (np.sin(x).sum(axis=(1, 2, 3)) + 0.1 * x[:, 0, 0, 0]).astype(np.float32)[:, None]
    return {"x": x, "y": y}


def make_pipeline_fn(config):
    """(split, shard_index, shard_count) -> IterDataset: each global batch is drawn from the
    shuffled index stream; process p keeps rows [p·B/n, (p+1)·B/n)."""
    def make_pipeline(split: str, shard_index: int, shard_count: int):
        data = examples(split, config.data.num_examples, config.seed)
        per = config.data.batch_size // shard_count
        lo, hi = shard_index * per, (shard_index + 1) * per
        delay = config.data.delay

        def load(indices):
            if delay:
                time.sleep(delay)
            rows = indices[lo:hi]
            return {k: v[rows] for k, v in data.items()}

        ds = grain.MapDataset.range(config.data.num_examples)
        if split == "train":
            ds = ds.shuffle(seed=config.seed).repeat()
        ds = ds.batch(config.data.batch_size, drop_remainder=True).map(load)
        return ds.to_iter_dataset()
    return make_pipeline


class Regressor(nn.Module):
    width: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(4, (3, 3), dtype=self.dtype)(x.astype(self.dtype)))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(self.width, dtype=self.dtype)(x))
        return nn.Dense(1, dtype=self.dtype)(x).astype(jnp.float32)


def training(config) -> Training:
    model = Regressor(config.model.width, compute_dtype(config))
    tx = make_optimizer(config.optim, total_steps=config.total_steps,
                        grad_accum=config.train.grad_accum)
    ema_decay = config.train.ema_decay

    def init(rng, batch):
        x = jnp.zeros((1,) + batch["x"].shape[1:], jnp.float32)
        params = model.init(rng, x)["params"]
        return TrainState.create({"net": params}, {"net": tx}, ema=("net",) if ema_decay else ())

    def loss_fn(params, batch, noise):
        pred = model.apply({"params": params}, batch["x"] + noise)
        return jnp.mean((pred - batch["y"]) ** 2)

    def train_step(state, batch, rng):
        poison = jnp.where(state.step == config.model.nan_step, jnp.nan, 0.0)
        noise = 0.01 * jax.random.normal(rng, batch["x"].shape) + poison
        loss, grads = jax.value_and_grad(loss_fn)(state.params["net"], batch, noise)
        state = state.apply_gradients("net", grads, tx)
        if ema_decay:
            state = state.update_ema(ema_decay)
        return state, {"loss": loss}

    def eval_step(state, batch):
        params = state.ema["net"] if state.ema else state.params["net"]
        return {"loss": loss_fn(params, batch, 0.0)}

    @jax.jit
    def sample(state, batch, rng):
        pred = model.apply({"params": state.params["net"]}, batch["x"])
        gray = jnp.clip(128 + 40 * (pred - batch["y"]), 0, 255).astype(jnp.uint8)
        return {"error": jnp.broadcast_to(gray[:, :, None, None], (gray.shape[0], 2, 2, 3))}

    return Training(init=init, train_step=train_step, make_pipeline=make_pipeline_fn(config),
                    eval_step=eval_step, sample=sample)


def example_batch(config, batch_size):
    return {k: v[:batch_size] for k, v in examples("train", batch_size, config.seed).items()}


FAMILY = Family(name="tests.engine_family", training=training, example_batch=example_batch,
                networks=("net",), explicit_mesh=True)
