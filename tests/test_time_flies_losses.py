"""Time Flies' losses against NumPy references written class by class (float64 loops)."""

import jax
import jax.numpy as jnp
import numpy as np

from tlgen.losses import style

S = 3
RNG = np.random.default_rng(0)


def _masks(seed, b=2, h=8, w=8):
    """Label maps constant on 2x2 blocks, so the half-size tap's class shares are 0 or 1."""
    coarse = np.random.default_rng(seed).integers(0, S, (b, h // 2, w // 2))
    return coarse.repeat(2, axis=1).repeat(2, axis=2)


def _features(seed, b=2):
    rng = np.random.default_rng(seed)
    return {"relu1_1": rng.normal(size=(b, 8, 8, 4)).astype(np.float32),
            "relu2_1": rng.normal(1.0, 2.0, (b, 4, 4, 6)).astype(np.float32)}


def _at(masks, f):
    """The label map at a tap's size (blocks of 2x2 are one class)."""
    step = masks.shape[1] // f.shape[1]
    return masks[:, ::step, ::step]


def _per_class_mean(values_by_class):
    """Mean over classes present in both (entries not None), then over the batch."""
    return np.mean([np.mean([v for v in row if v is not None]) if any(v is not None for v in row) else 0.0
                    for row in values_by_class])


def test_perceptual_is_the_sum_of_per_layer_mse():
    fa, fb = _features(1), _features(2)
    want = sum(np.mean((fa[k].astype(np.float64) - fb[k]) ** 2) for k in fa)
    np.testing.assert_allclose(style.perceptual(fa, fb), want, rtol=1e-6)


def test_classwise_style_equals_the_reference():
    fa, fb = _features(3), _features(4)
    ma, mb = _masks(5), _masks(6)
    ma[0][ma[0] == 1] = 0                               # class 1 absent from image 0 of a
    want = 0.0
    for k in fa:
        rows = []
        for b in range(2):
            row = []
            for s in range(S):
                pa, pb = _at(ma, fa[k])[b] == s, _at(mb, fb[k])[b] == s
                if not (pa.any() and pb.any()):
                    row.append(None)
                    continue
                xa, xb = fa[k][b][pa].astype(np.float64), fb[k][b][pb].astype(np.float64)
                row.append(np.linalg.norm(xa.mean(0) - xb.mean(0)) + np.linalg.norm(xa.std(0) - xb.std(0)))
            rows.append(row)
        want += _per_class_mean(rows)
    got = style.classwise_style(fa, fb, jnp.asarray(ma), jnp.asarray(mb), S)
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_flow_loss_equals_the_reference():
    real = [_features(10), _features(11), _features(12)]
    fake = [_features(20), _features(21), _features(22)]
    mr, mf = _masks(7), _masks(8)
    pairs = ((0, 1), (0, 2))
    want = 0.0
    for i, j in pairs:
        for k in real[0]:
            rows = []
            for b in range(2):
                row = []
                for s in range(S):
                    pr, pf = _at(mr, real[0][k])[b] == s, _at(mf, fake[0][k])[b] == s
                    if not (pr.any() and pf.any()):
                        row.append(None)
                        continue
                    flow_r = (real[j][k][b][pr].astype(np.float64) - real[i][k][b][pr]).mean(0)
                    flow_f = (fake[j][k][b][pf].astype(np.float64) - fake[i][k][b][pf]).mean(0)
                    row.append(np.mean(np.abs(flow_r - flow_f)))
                rows.append(row)
            want += _per_class_mean(rows)
    got = style.flow([(real[i], real[j]) for i, j in pairs], [(fake[i], fake[j]) for i, j in pairs],
                     jnp.asarray(mr), jnp.asarray(mf), S)
    np.testing.assert_allclose(got, want, rtol=1e-4)
    same = style.flow([(real[0], real[1])], [(real[0], real[1])], jnp.asarray(mr), jnp.asarray(mr), S)
    np.testing.assert_allclose(same, 0.0, atol=1e-7)


def test_cycle_loss_is_the_gram_distance_per_class():
    fa, fb = _features(30)["relu2_1"], _features(31)["relu2_1"]
    ma, mb = _masks(9), _masks(10)
    rows = []
    for b in range(2):
        row = []
        for s in range(S):
            pa, pb = _at(ma, fa)[b] == s, _at(mb, fb)[b] == s
            if not (pa.any() and pb.any()):
                row.append(None)
                continue
            ga = fa[b][pa].T.astype(np.float64) @ fa[b][pa] / (pa.sum() * fa.shape[-1])
            gb = fb[b][pb].T.astype(np.float64) @ fb[b][pb] / (pb.sum() * fb.shape[-1])
            row.append(np.linalg.norm(ga - gb))
        rows.append(row)
    got = style.cycle(fa, fb, jnp.asarray(ma), jnp.asarray(mb), S)
    np.testing.assert_allclose(got, _per_class_mean(rows), rtol=1e-4)


def test_content_mixes_encoder_features_and_whitened_images():
    enc = lambda seed: ({"relu4_1": np.random.default_rng(seed).normal(size=(2, 2, 2, 8)).astype(np.float32)},
                        [np.random.default_rng(seed + 1).normal(size=(2, 4, 4, 3, 3)).astype(np.float32)])
    a, b = RNG.uniform(size=(2, 8, 8, 3)), RNG.uniform(size=(2, 8, 8, 3))
    ea, eb = enc(40), enc(50)
    features = (np.mean((ea[0]["relu4_1"].astype(np.float64) - eb[0]["relu4_1"]) ** 2)
                + np.mean((ea[1][0].astype(np.float64) - eb[1][0]) ** 2))

    def white(img):                                     # the NumPy reference of h(.)
        x = img.reshape(-1, 3) - img.reshape(-1, 3).mean(0)
        chol = np.linalg.cholesky(x.T @ x / len(x) + 1e-3 * np.eye(3))
        return np.linalg.solve(chol, x.T).T
    whitened = np.mean([(white(a[i]) - white(b[i])) ** 2 for i in range(2)])
    got = style.content(ea, eb, jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), 0.3)
    np.testing.assert_allclose(got, 0.3 * features + 0.7 * whitened, rtol=1e-4)
    w = np.asarray(style.whiten(jnp.asarray(a, jnp.float32)))[0].reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(w.T @ w / len(w), np.eye(3), atol=0.05)     # ~unit covariance
    grey = jnp.repeat(jnp.asarray(a[:, :, :, :1], jnp.float32), 3, axis=-1)
    grads = jax.grad(lambda x: style.whiten(x).sum() ** 2)(grey)
    assert np.isfinite(grads).all()                     # a grey image's gradient stays finite


def test_absent_classes_give_finite_gradients():
    fa, fb = _features(60), _features(61)
    ma = mb = np.zeros((2, 8, 8), int)                     # classes 1 and 2 absent everywhere
    loss = lambda fa: (style.classwise_style(fa, fb, jnp.asarray(ma), jnp.asarray(mb), S)
                       + style.cycle(fa["relu2_1"], fb["relu2_1"], jnp.asarray(ma), jnp.asarray(mb), S)
                       + style.flow([(fa, fb)], [(fb, fa)], jnp.asarray(ma), jnp.asarray(mb), S))
    grads = jax.jit(jax.grad(loss))({k: jnp.asarray(v) for k, v in fa.items()})
    assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
    assert any(np.any(g) for g in jax.tree.leaves(grads))
