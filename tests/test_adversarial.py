"""Adversarial losses against hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np

from tlgen.losses import adversarial


def _linear_critic(a):
    return lambda x: jnp.sum(a * x, axis=tuple(range(1, x.ndim)))


def test_gradient_penalty_of_a_linear_critic():
    a = jnp.asarray(np.random.default_rng(0).normal(size=(3, 4, 2)), jnp.float32)
    real = jax.random.normal(jax.random.key(1), (5, 3, 4, 2))
    fake = jax.random.normal(jax.random.key(2), (5, 3, 4, 2))
    norm = float(jnp.linalg.norm(a))
    gp = adversarial.gradient_penalty(_linear_critic(a), real, fake, jax.random.key(3))
    np.testing.assert_allclose(gp, 10.0 * (norm - 1.0) ** 2, rtol=1e-5)
    unit = adversarial.gradient_penalty(_linear_critic(a / norm), real, fake, jax.random.key(3), weight=3.0)
    np.testing.assert_allclose(unit, 0.0, atol=1e-5)


def test_gradient_penalty_interpolates_between_real_and_fake():
    # critic(x) = sum x^2 / 2 -> grad = x_hat; with real == fake the interpolate is real itself.
    real = jnp.full((2, 3), 0.5)
    gp = adversarial.gradient_penalty(lambda x: 0.5 * jnp.sum(x ** 2, -1), real, real, jax.random.key(0))
    np.testing.assert_allclose(gp, 10.0 * (np.sqrt(3 * 0.25) - 1.0) ** 2, rtol=1e-5)


def test_lsgan_terms():
    real, fake = jnp.array([1.0, 3.0]), jnp.array([0.0, -2.0])
    d_real, d_fake = adversarial.lsgan_d_loss(real, fake)
    np.testing.assert_allclose([d_real, d_fake], [2.0, 2.0])
    np.testing.assert_allclose(adversarial.lsgan_g_loss(fake), (1 + 9) / 2)


def test_logistic_losses_equal_numpy_softplus_and_stay_finite_at_large_logits():
    softplus = lambda x: np.logaddexp(0.0, np.asarray(x, np.float64))
    rng = np.random.default_rng(0)
    for real, fake in [rng.normal(0, 3, (2, 16)).astype(np.float32),             # ordinary logits
                       np.float32([[50.0], [-50.0]]), np.float32([[-50.0], [50.0]]),
                       np.float32([[100.0], [-100.0]])]:      # saturated: softplus(-50) = e^-50 to rtol 1e-6
        d_real, d_fake = adversarial.logistic_d_loss(jnp.asarray(real), jnp.asarray(fake))
        g = adversarial.logistic_g_loss(jnp.asarray(fake))
        got = np.array([d_real, d_fake, g])
        assert np.all(np.isfinite(got)) and all(v.dtype == jnp.float32 for v in (d_real, d_fake, g))
        np.testing.assert_allclose(got, [softplus(-real).mean(), softplus(fake).mean(), softplus(-fake).mean()],
                                   rtol=1e-6, atol=np.finfo(np.float32).tiny,   # e^-100: subnormal, flushed to 0
                                   err_msg=str((real, fake)))
