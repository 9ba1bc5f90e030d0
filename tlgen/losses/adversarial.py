"""Adversarial losses: LSGAN and the WGAN-GP gradient penalty (DTVNet's critic), the
non-saturating logistic loss and the R1 penalty (StyleGAN2, StyleGAN-V).

Logits are per-sample critic outputs of shape (B,) (or (B, ...), averaged). Every loss is a
float32 scalar. The penalties take the critic as a function of its input only (close over the
parameters), so they work for any network.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

Critic = Callable[[jax.Array], jax.Array]


def lsgan_d_loss(real_logits: jax.Array, fake_logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Least-squares critic terms (real -> 1, fake -> 0): (mean (real-1)^2, mean fake^2)."""
    real = jnp.mean(jnp.square(real_logits.astype(jnp.float32) - 1.0))
    fake = jnp.mean(jnp.square(fake_logits.astype(jnp.float32)))
    return real, fake


def lsgan_g_loss(fake_logits: jax.Array) -> jax.Array:
    """Least-squares generator term (fake -> 1): mean (fake-1)^2."""
    return jnp.mean(jnp.square(fake_logits.astype(jnp.float32) - 1.0))


def _per_sample_input_grads(critic: Critic, x: jax.Array) -> jax.Array:
    """d critic(x)_i / d x_i for every sample i (the critic must treat samples independently)."""
    return jax.grad(lambda v: jnp.sum(critic(v).astype(jnp.float32)))(x)


def gradient_penalty(critic: Critic, real: jax.Array, fake: jax.Array, rng: jax.Array,
                     weight: float = 10.0) -> jax.Array:
    """WGAN-GP: weight * E[(||grad critic(x_hat)||_2 - 1)^2] on random interpolates.

    x_hat = e * real + (1 - e) * fake with e ~ U[0, 1) per sample (Gulrajani et al., 2017).
    Gradients do not flow into `real`/`fake` beyond x_hat's dependence on them; pass
    `jax.lax.stop_gradient(fake)` for the usual critic update.
    """
    real = real.astype(jnp.float32)
    fake = fake.astype(jnp.float32)
    e = jax.random.uniform(rng, (real.shape[0],) + (1,) * (real.ndim - 1), jnp.float32)
    x_hat = e * real + (1.0 - e) * fake
    grads = _per_sample_input_grads(critic, x_hat)
    norms = jnp.sqrt(jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), axis=-1) + 1e-12)
    return weight * jnp.mean(jnp.square(norms - 1.0))


def logistic_d_loss(real_logits: jax.Array, fake_logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Non-saturating logistic critic terms (StyleGAN2): (mean softplus(-real), mean softplus(fake))."""
    return (jnp.mean(jax.nn.softplus(-real_logits.astype(jnp.float32))),
            jnp.mean(jax.nn.softplus(fake_logits.astype(jnp.float32))))


def logistic_g_loss(fake_logits: jax.Array) -> jax.Array:
    """Non-saturating logistic generator term: mean softplus(-fake) = -log sigmoid(fake)."""
    return jnp.mean(jax.nn.softplus(-fake_logits.astype(jnp.float32)))


def r1_penalty(critic: Critic, real: jax.Array) -> jax.Array:
    """R1 (Mescheder et al., 2018): E ||d critic(x) / dx||^2 over real samples x, summed over
    each sample's elements (multiply by gamma / 2 for the loss)."""
    grads = _per_sample_input_grads(critic, real.astype(jnp.float32))
    return jnp.mean(jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), axis=-1))
