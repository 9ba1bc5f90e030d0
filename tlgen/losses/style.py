"""Time Flies' losses on VGG-19 features (paper §3.2), classwise where the paper says so.

Features are dicts {tap: (B, h, w, C)} (`vgg19.VGG19`); class weights come from label maps
(B, H, W) through `time_flies.class_weights` at each tap's size. A classwise term averages
over the classes present (at least one pixel) in both of the images it compares (N_s), then
over the batch. Distances: the perceptual and content terms are mean squared differences per
layer (summed over layers); the style and cycle terms L2 norms of statistic differences; the
flow term the mean absolute difference of per-class mean feature changes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from tlgen.models.time_flies import class_stats, class_weights


def _mse(a, b):
    return jnp.mean(jnp.square(a.astype(jnp.float32) - b.astype(jnp.float32)))


def perceptual(fa: dict, fb: dict) -> jax.Array:
    """Σ_l mean (Φ^l(a) − Φ^l(b))² (eq. 4)."""
    return sum(_mse(fa[k], fb[k]) for k in fa)


def whiten(images: jax.Array, eps: float = 1e-3) -> jax.Array:
    """Colour whitening h(·) of each image (B, H, W, 3): centred pixels times the inverse
    Cholesky factor of their 3x3 covariance (+ eps I), so the channels come out uncorrelated
    with unit variance (stable gradients even for a grey image, where an eigendecomposition's
    are not)."""
    x = images.astype(jnp.float32).reshape(images.shape[0], -1, images.shape[-1])
    x = x - jnp.mean(x, axis=1, keepdims=True)
    cov = jnp.einsum("bpc,bpd->bcd", x, x) / x.shape[1] + eps * jnp.eye(x.shape[-1])
    chol = jnp.linalg.cholesky(cov)
    white = jax.vmap(lambda l, v: jax.scipy.linalg.solve_triangular(l, v.T, lower=True).T)(chol, x)
    return white.reshape(images.shape)


def content(encoded_a, encoded_b, images_a, images_b, alpha) -> jax.Array:
    """α (‖E_GI(a) − E_GI(b)‖² over relu4_1 and every high-frequency part) + (1 − α) ‖h(a) − h(b)‖²
    (eq. 5): `encoded_*` are E_GI's (taps, highs)."""
    (ta, ha), (tb, hb) = encoded_a, encoded_b
    features = _mse(ta["relu4_1"], tb["relu4_1"]) + sum(_mse(a, b) for a, b in zip(ha, hb))
    return alpha * features + (1.0 - alpha) * _mse(whiten(images_a), whiten(images_b))


def _norm(x):
    """‖x‖ over the last axis, with a finite gradient at 0 (an absent class's statistics)."""
    return jnp.sqrt(jnp.sum(jnp.square(x), axis=-1) + 1e-12)


def _classwise(per_class, wa, wb):
    """Mean over the classes present in both (B, S) of a per-class value (B, S), then over B."""
    both = ((jnp.sum(wa, axis=(1, 2)) >= 1.0) & (jnp.sum(wb, axis=(1, 2)) >= 1.0)).astype(jnp.float32)
    return jnp.mean(jnp.sum(per_class * both, axis=1) / jnp.maximum(jnp.sum(both, axis=1), 1.0))


def _weights(masks, num_classes, f):
    return class_weights(masks, num_classes, f.shape[1:3])


def classwise_style(fa: dict, fb: dict, masks_a, masks_b, num_classes: int) -> jax.Array:
    """(1/N_s) Σ_s Σ_l ‖μ(Φ_s^l(a)) − μ(Φ_s^l(b))‖ + ‖σ(Φ_s^l(a)) − σ(Φ_s^l(b))‖ (eq. 6)."""
    total = 0.0
    for k in fa:
        wa, wb = _weights(masks_a, num_classes, fa[k]), _weights(masks_b, num_classes, fb[k])
        ma, va, _ = class_stats(fa[k], wa)
        mb, vb, _ = class_stats(fb[k], wb)
        gap = _norm(ma - mb) + _norm(jnp.sqrt(va + 1e-8) - jnp.sqrt(vb + 1e-8))
        total = total + _classwise(gap, wa, wb)
    return total


def feature_flow(f0: dict, f1: dict, masks, num_classes: int) -> dict:
    """F_s^l = μ_s(Φ^l(frame 1) − Φ^l(frame 0)) per tap (eq. 7): {tap: (B, S, C)}."""
    return {k: class_stats(f1[k] - f0[k], _weights(masks, num_classes, f0[k]))[0] for k in f0}


def flow(real_pairs, fake_pairs, real_masks, fake_masks, num_classes: int) -> jax.Array:
    """(1/N_s) Σ_s Σ_l |F_s^l(real pair) − F_s^l(fake pair)|, summed over the pairs given
    (eq. 8: (F_t, F_t+1) and (F_1, F_t)); each pair is (features 0, features 1)."""
    total = 0.0
    for (r0, r1), (g0, g1) in zip(real_pairs, fake_pairs):
        fr, fg = feature_flow(r0, r1, real_masks, num_classes), feature_flow(g0, g1, fake_masks, num_classes)
        for k in fr:
            gap = jnp.mean(jnp.abs(fr[k] - fg[k]), axis=-1)
            total = total + _classwise(gap, _weights(real_masks, num_classes, r0[k]),
                                       _weights(fake_masks, num_classes, g0[k]))
    return total


def class_gram(f: jax.Array, weights: jax.Array) -> jax.Array:
    """Per-class Gram matrices (B, S, C, C) of features (B, h, w, C): Σ_p w_s f fᵀ / (n_s C)."""
    f = f.astype(jnp.float32)
    count = jnp.maximum(jnp.sum(weights, axis=(1, 2)), 1e-6)
    gram = jnp.einsum("bhws,bhwc,bhwd->bscd", weights, f, f)
    return gram / (count[..., None, None] * f.shape[-1])


def cycle(fa: jax.Array, fb: jax.Array, masks_a, masks_b, num_classes: int) -> jax.Array:
    """(1/N_s) Σ_s ‖G_s(E_GV(a)) − G_s(E_GV(b))‖_F (eq. 9) on E_GV features (B, h, w, C)."""
    wa, wb = _weights(masks_a, num_classes, fa), _weights(masks_b, num_classes, fb)
    diff = class_gram(fa, wa) - class_gram(fb, wb)
    gap = _norm(diff.reshape(diff.shape[:2] + (-1,)))
    return _classwise(gap, wa, wb)
