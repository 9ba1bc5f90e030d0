"""Time Flies' building blocks: Haar wavelet pooling, classwise AdaIN / NoiseAdaIN (NumPy
reference and invariants), the smoothed noise's correlation, VGG-19 loaded from a user file
(equal to a PyTorch reference through `tlgen convert-weights`), E_GV's initialization."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import save_file

from tests import random_weights
from tlgen.errors import UserError
from tlgen.models import time_flies as tf
from tlgen.models import vgg19
from tlgen.models.layers import haar_pool, haar_unpool
from tlgen.weights import load_torch_weights

RNG = np.random.default_rng(0)


def test_haar_pooling_is_orthonormal_and_unpooling_inverts_it():
    x = RNG.normal(size=(2, 8, 12, 5)).astype(np.float32)
    ll, high = haar_pool(x)
    assert ll.shape == (2, 4, 6, 5) and high.shape == (2, 4, 6, 5, 3)
    np.testing.assert_allclose(haar_unpool(ll, high), x, atol=1e-6)            # perfect reconstruction
    np.testing.assert_allclose(ll, 2 * x.reshape(2, 4, 2, 6, 2, 5).mean(axis=(2, 4)), atol=1e-6)
    np.testing.assert_allclose(np.sum(ll ** 2) + np.sum(np.asarray(high) ** 2), np.sum(x ** 2), rtol=1e-5)
    ramp = np.broadcast_to(np.arange(4.0)[None, None, :, None], (1, 2, 4, 1))   # changes along x only
    _, high = haar_pool(ramp)
    np.testing.assert_allclose(high[0, 0, :, 0], [[1, 0, 0], [1, 0, 0]])      # LH = horizontal change


def _masks(seed, b=2, h=8, w=8, classes=3):
    return np.random.default_rng(seed).integers(0, classes, (b, h, w))


def _reference_adain(x, y, mx, my, noise, classes=3, eps=tf.EPS):
    """Eq. 2/3 class by class, in float64."""
    out = np.zeros_like(x, np.float64)
    z = np.ones_like(x) if noise is None else noise
    for b in range(x.shape[0]):
        for s in range(classes):
            px, py = mx[b] == s, my[b] == s
            if not px.any():
                continue
            xs = x[b][px].astype(np.float64)
            ys = (y[b][py] if py.any() else y[b].reshape(-1, y.shape[-1])).astype(np.float64)
            norm = (xs - xs.mean(0)) / np.sqrt(xs.var(0) + eps)
            out[b][px] = np.sqrt(ys.var(0) + eps) * norm + ys.mean(0) * z[b][px]
    return out


@pytest.mark.parametrize("with_noise", [False, True])
def test_classwise_adain_equals_the_numpy_reference(with_noise):
    x = RNG.normal(2.0, 3.0, (2, 8, 8, 4)).astype(np.float32)
    y = RNG.normal(-1.0, 0.5, (2, 8, 8, 4)).astype(np.float32)
    mx, my = _masks(1), _masks(2)
    my[1][my[1] == 2] = 0                                  # class 2 absent from video 1's frame
    noise = RNG.normal(1.0, 0.5, x.shape).astype(np.float32) if with_noise else None
    w = lambda m: tf.class_weights(jnp.asarray(m), 3, (8, 8))
    got = tf.classwise_adain(x, y, w(mx), w(my), noise)
    np.testing.assert_allclose(got, _reference_adain(x, y, mx, my, noise), rtol=1e-4, atol=1e-4)


def test_each_class_takes_the_reference_class_statistics():
    x = RNG.normal(0.0, 2.0, (1, 16, 16, 3)).astype(np.float32)
    y = RNG.normal(5.0, 0.3, (1, 16, 16, 3)).astype(np.float32) * np.array([1, 2, 3], np.float32)
    mx, my = _masks(3, 1, 16, 16), _masks(4, 1, 16, 16)
    w = lambda m: tf.class_weights(jnp.asarray(m), 3, (16, 16))
    out = np.asarray(jax.jit(tf.classwise_adain)(x, y, w(mx), w(my)))
    for s in range(3):
        got, want = out[0][mx[0] == s], y[0][my[0] == s]
        np.testing.assert_allclose(got.mean(0), want.mean(0), atol=1e-4)
        np.testing.assert_allclose(got.std(0), want.std(0), rtol=1e-3)


def test_classes_the_reference_lacks_take_its_whole_statistics():
    x = RNG.normal(size=(1, 8, 8, 2)).astype(np.float32)
    y = RNG.normal(3.0, 2.0, (1, 8, 8, 2)).astype(np.float32)
    mx = np.zeros((1, 8, 8), int)
    mx[:, :4] = 1                                          # image: classes 0 and 1
    my = np.full((1, 8, 8), 2)                             # video: class 2 only
    w = lambda m: tf.class_weights(jnp.asarray(m), 3, (8, 8))
    out = np.asarray(jax.jit(tf.classwise_adain)(x, y, w(mx), w(my)))
    for s in (0, 1):                                       # each takes mu(y), sigma(y) of all of y
        got = out[0][mx[0] == s]
        np.testing.assert_allclose(got.mean(0), y[0].reshape(-1, 2).mean(0), atol=1e-4)
        np.testing.assert_allclose(got.std(0), y[0].reshape(-1, 2).std(0), rtol=1e-3)
    grads = jax.jit(jax.grad(lambda y: tf.classwise_adain(x, y, w(mx), w(my)).sum()))(y)
    assert np.isfinite(grads).all() and np.any(grads)       # y's whole map now drives them


def test_class_weights_are_area_shares():
    masks = np.array([[[0, 1, 1, 1], [0, 0, 1, 2], [2, 2, 2, 2], [2, 2, 2, 2]]])
    w = np.asarray(tf.class_weights(jnp.asarray(masks), 3, (2, 2)))
    np.testing.assert_allclose(w[0, 0, 0], [0.75, 0.25, 0.0])
    np.testing.assert_allclose(w[0, 0, 1], [0.0, 0.75, 0.25])
    np.testing.assert_allclose(w[0, 1, 0], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(w.sum(-1), 1.0)


smoothed_noise = jax.jit(tf.smoothed_noise, static_argnums=(2, 3))     # count and shape


def test_smoothed_noise_has_the_stated_correlation_and_chunks_agree():
    key, blur, sigma_z = jax.random.key(0), 1.0, 0.5
    z = np.asarray(smoothed_noise(key, 0, 64, (32, 32, 16), sigma_z, blur), np.float64)
    g = np.exp(-0.5 * np.arange(-1, 2) ** 2 / blur ** 2)
    g /= g.sum()
    energy = np.sum(g ** 2)
    lag = {1: (g[0] * g[1] + g[1] * g[2]) / energy, 2: g[0] * g[2] / energy, 3: 0.0}
    inner = z[:, 3:-3, 3:-3] - 1.0                         # away from the reflected borders
    assert abs(inner.mean()) < 0.003
    np.testing.assert_allclose(inner.var(), sigma_z ** 2 * energy ** 3, rtol=0.03)
    for axis in (0, 1, 2):
        for k, want in lag.items():
            a = np.take(inner, range(inner.shape[axis] - k), axis=axis)
            b = np.take(inner, range(k, inner.shape[axis]), axis=axis)
            got = np.mean(a * b) / inner.var()
            assert abs(got - want) < 0.02, (axis, k, got, want)
    parts = [smoothed_noise(key, first, n, (32, 32, 16), sigma_z, blur) for first, n in ((0, 5), (5, 59))]
    np.testing.assert_array_equal(np.concatenate(parts), z.astype(np.float32))


def _vgg_file(tmp_path, seed=0):
    return random_weights.write(str(tmp_path / "vgg19.safetensors"), vgg19.abstract_params(),
                                vgg19.torch_prefixes(), seed=seed)


def _save(arrays, path):
    np.savez(path, **arrays) if path.endswith(".npz") else save_file(arrays, path)
    return path


def test_vgg19_loads_the_same_values_from_npz_and_safetensors(tmp_path):
    from safetensors.numpy import load_file
    arrays = load_file(_vgg_file(tmp_path))
    arrays["features.19.bias"] = np.linspace(-1, 1, 512, dtype=np.float32)   # random_weights' biases are 0
    load = lambda suffix: load_torch_weights(_save(arrays, str(tmp_path / f"w.{suffix}")), vgg19.abstract_params(),
                                             key="vgg", prefixes=vgg19.torch_prefixes())
    params = load("npz")
    np.testing.assert_array_equal(params["conv1_1"]["kernel"], arrays["features.0.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(params["conv4_1"]["bias"], arrays["features.19.bias"])
    jax.tree.map(np.testing.assert_array_equal, params, load("safetensors"))


@pytest.mark.parametrize("suffix", ["safetensors", "npz"])
def test_vgg19_loader_names_every_missing_or_misshaped_layer(tmp_path, suffix):
    from safetensors.numpy import load_file
    arrays = load_file(_vgg_file(tmp_path))
    arrays["features.7.weight"] = arrays["features.7.weight"][:, :5]
    del arrays["features.19.bias"]
    bad = _save(arrays, str(tmp_path / f"bad.{suffix}"))
    with pytest.raises(UserError) as error:
        load_torch_weights(bad, vgg19.abstract_params(), key="--config.model.vgg19",
                           prefixes=vgg19.torch_prefixes())
    message = str(error.value)
    assert message.startswith("--config.model.vgg19 does not hold the expected weights: ")
    assert "'features.7.weight' has shape (128, 5, 3, 3), expected (128, 128, 3, 3)." in message
    assert "has no array 'features.19.bias' (expected shape (512,))." in message


def test_video_encoder_starts_as_vgg_on_a_still_clip(tmp_path):
    params = load_torch_weights(_vgg_file(tmp_path), vgg19.abstract_params(), key="vgg",
                                prefixes=vgg19.torch_prefixes())
    image = RNG.uniform(size=(2, 16, 16, 3)).astype(np.float32)
    taps, highs = jax.jit(vgg19.VGG19().apply)({"params": params}, image)
    assert highs == [] and [taps[k].shape[1:] for k in vgg19.TAPS] == [
        (16, 16, 64), (8, 8, 128), (4, 4, 256), (2, 2, 512)]
    still = np.repeat(image[:, None], 3, axis=1)
    relu1_1, relu2_1 = jax.jit(tf.VideoEncoder().apply)({"params": tf.video_encoder_params(params)}, still)
    np.testing.assert_allclose(relu1_1, taps["relu1_1"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(relu2_1, taps["relu2_1"], rtol=1e-4, atol=1e-4)


def test_generator_trains_both_encoders_through_the_adains(tmp_path):
    params = load_torch_weights(_vgg_file(tmp_path), vgg19.abstract_params(), key="vgg",
                                prefixes=vgg19.torch_prefixes())
    image = RNG.uniform(size=(1, 16, 16, 3)).astype(np.float32)
    clip = RNG.uniform(size=(1, 3, 16, 16, 3)).astype(np.float32)
    masks = jnp.asarray(_masks(5, 1, 16, 16))
    encoded = jax.jit(vgg19.VGG19(pool="haar", padding="reflect").apply)({"params": params}, image)
    assert [h.shape for h in encoded[1]] == [(1, 8, 8, 64, 3), (1, 4, 4, 128, 3), (1, 2, 2, 256, 3)]
    gen = tf.Generator(num_classes=3)
    variables = jax.eval_shape(gen.init, jax.random.key(0), encoded, clip, masks, masks)
    variables = jax.tree.map(lambda s: jnp.asarray(RNG.normal(0, 0.05, s.shape), jnp.float32), variables)
    noise = smoothed_noise(jax.random.key(1), 0, 1, (16, 16, 64))

    @jax.jit
    def loss_and_grads(p):
        loss = lambda p: jnp.mean(jnp.square(gen.apply({"params": p}, encoded, clip, masks, masks, noise) - image))
        return jax.value_and_grad(loss)(p)
    loss, grads = loss_and_grads(variables["params"])
    assert np.isfinite(loss)
    for name in ("conv1_1", "conv2_1"):                    # E_GV is trained through both AdaINs
        assert np.any(grads["video_encoder"][name]["kernel"])
    assert np.any(grads["decoder"]["dec1_1"]["kernel"])


torch = (__import__("torch") if os.environ.get("TLGEN_REQUIRE_TORCH")
         else pytest.importorskip("torch", reason="PyTorch reference"))


def test_vgg19_features_equal_torchvision_layout_through_convert_weights(tmp_path):
    from tlgen.cli.main import main
    from torch import nn
    torch.manual_seed(0)
    layers, cin = [], 3
    for stage, widths in enumerate(((64, 64), (128, 128), (256, 256, 256, 256), (512,))):
        if stage:
            layers.append(nn.MaxPool2d(2, 2))
        for width in widths:
            layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU()]
            cin = width
    module = nn.Module()
    module.features = nn.Sequential(*layers)             # torchvision's vgg19.features[:21]
    pth, out = str(tmp_path / "vgg19.pth"), str(tmp_path / "vgg19.safetensors")
    torch.save(module.state_dict(), pth)
    assert main(["convert-weights", "--kind", "vgg19", pth, "--out", out]) == 0
    params = load_torch_weights(out, vgg19.abstract_params(), key="vgg", prefixes=vgg19.torch_prefixes())
    image = RNG.uniform(size=(2, 32, 32, 3)).astype(np.float32)
    taps, _ = vgg19.VGG19().apply({"params": params}, image)
    x = (torch.from_numpy(image).permute(0, 3, 1, 2) - torch.tensor(vgg19.MEAN).view(1, 3, 1, 1)) \
        / torch.tensor(vgg19.STD).view(1, 3, 1, 1)
    want = {}
    with torch.no_grad():
        for i, layer in enumerate(module.features):
            x = layer(x)
            if i in (1, 6, 11, 20):
                want[f"relu{len(want) + 1}_1"] = x.permute(0, 2, 3, 1).numpy()
    for name in vgg19.TAPS:
        np.testing.assert_allclose(taps[name], want[name], rtol=1e-4, atol=1e-4)
