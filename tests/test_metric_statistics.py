"""Distribution distances against NumPy/SciPy references and their defining properties:
Fréchet distance, streaming statistics, KID, SWD; FID of a set with itself is 0 and grows
with noise; FVD tells real clips from the same clips shuffled in time (random weights)."""

import os

import numpy as np
import pytest
import scipy.linalg
import scipy.stats

from tlgen.metrics import distribution as dist


def _gaussian(rng, n, d, scale=1.0):
    a = rng.normal(size=(d, d)) * scale / np.sqrt(d)
    return rng.normal(size=(n, d)) @ a + rng.normal(size=d)


def test_frechet_distance_equals_the_scipy_sqrtm_formula():
    rng = np.random.default_rng(0)
    x, y = _gaussian(rng, 400, 16), _gaussian(rng, 300, 16, 2.0)
    mu1, mu2, c1, c2 = x.mean(0), y.mean(0), np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(c1 @ c2).real                      # pytorch-fid's formula
    want = (mu1 - mu2) @ (mu1 - mu2) + np.trace(c1) + np.trace(c2) - 2 * np.trace(root)
    np.testing.assert_allclose(dist.frechet_distance(mu1, c1, mu2, c2), want, rtol=1e-9)
    assert dist.frechet_distance(mu1, c1, mu1, c1) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_of_singular_covariances_is_finite_and_zero_for_equal_sets():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 64))                                # fewer samples than dimensions
    a, b = dist.FeatureStats(64).update(x), dist.FeatureStats(64).update(x.copy())
    # the square roots of ~54 zero eigenvalues leave rounding of ~1e-7 of the trace
    assert dist.frechet_from_stats(a, b) == pytest.approx(0.0, abs=1e-6 * np.trace(a.cov))
    c = dist.FeatureStats(64).update(x + 0.1)
    assert np.isfinite(dist.frechet_from_stats(a, c)) and dist.frechet_from_stats(a, c) > 0
    # rank 9 against a full-rank covariance: the n x n form, cov1^(1/2) cov2 cov1^(1/2)
    full = dist.FeatureStats(64).update(rng.normal(size=(200, 64)))
    values, vectors = np.linalg.eigh(a.cov)
    root = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    roots = np.sqrt(np.clip(np.linalg.eigvalsh(root @ full.cov @ root), 0, None))
    want = np.sum((a.mean - full.mean) ** 2) + np.trace(a.cov) + np.trace(full.cov) - 2 * np.sum(roots)
    np.testing.assert_allclose(dist.frechet_from_stats(a, full), want, rtol=1e-6)
    # a zero covariance (rank 0): its root is 0
    np.testing.assert_allclose(dist.frechet_distance(x[0], np.zeros((64, 64)), full.mean, full.cov),
                               np.sum((x[0] - full.mean) ** 2) + np.trace(full.cov), rtol=1e-12)


def test_streaming_statistics_equal_numpy_and_merge():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(257, 5)) * 3 + 7
    stats = dist.FeatureStats(5, keep=True)
    for start in range(0, len(x), 50):
        stats.update(x[start:start + 50].astype(np.float32))
    np.testing.assert_allclose(stats.mean, x.astype(np.float32).mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats.cov, np.cov(x.astype(np.float32).astype(np.float64), rowvar=False), rtol=1e-9)
    halves = dist.FeatureStats(5).update(x[:100]).merge(dist.FeatureStats(5).update(x[100:]))
    np.testing.assert_allclose(halves.cov, np.cov(x, rowvar=False), rtol=1e-9)
    assert stats.features.shape == (257, 5) and stats.count == 257


def test_kid_equals_a_direct_unbiased_mmd():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(30, 8)), rng.normal(size=(30, 8)) + 0.3
    got, _ = dist.kernel_inception_distance(a, b, subsets=1, subset_size=30)
    k = lambda p, q: (p @ q / 8 + 1) ** 3
    xx = sum(k(a[i], a[j]) for i in range(30) for j in range(30) if i != j) / (30 * 29)
    yy = sum(k(b[i], b[j]) for i in range(30) for j in range(30) if i != j) / (30 * 29)
    xy = sum(k(a[i], b[j]) for i in range(30) for j in range(30)) / 900
    assert got == pytest.approx(xx + yy - 2 * xy, rel=1e-9)
    same, _ = dist.kernel_inception_distance(a, a.copy(), subsets=5, subset_size=20)
    assert abs(same) < got


def test_sliced_wasserstein_equals_scipy_per_direction_and_swd_grows_with_noise():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(200, 3)), rng.normal(size=(200, 3)) * 1.5 + 0.2
    dirs = np.random.default_rng(0).standard_normal((3, 8))
    dirs /= np.linalg.norm(dirs, axis=0)
    want = np.mean([scipy.stats.wasserstein_distance(a @ d, b @ d) for d in dirs.T])
    assert dist.sliced_wasserstein(a, b, directions=8, seed=0) == pytest.approx(want, rel=1e-9)
    assert dist.sliced_wasserstein(a, a) == 0.0
    images = np.random.default_rng(5).random((16, 64, 64, 3))
    scores = [dist.swd(images, np.clip(images + s * rng.normal(size=images.shape), 0, 1))["swd"]
              for s in (0.02, 0.1, 0.3)]
    assert scores[0] < scores[1] < scores[2]


def test_laplacian_pyramid_reconstructs_the_image():
    images = np.random.default_rng(6).random((2, 64, 64, 3))
    levels = dist.laplacian_pyramid(images, min_size=16)
    assert [lv.shape[1] for lv in levels] == [64, 32, 16]
    g = levels[-1]
    for lap in reversed(levels[:-1]):
        up = np.zeros(lap.shape)
        up[:, ::2, ::2] = g
        g = lap + dist._blur(up) * 4.0
    np.testing.assert_allclose(g, images, atol=1e-12)


torch = __import__("torch") if os.environ.get("TLGEN_REQUIRE_TORCH") else pytest.importorskip("torch")


def test_fid_is_zero_for_a_set_with_itself_and_grows_with_noise(tmp_path):
    from bench.peers import metrics as ref
    from tests.test_metric_networks import _convert
    from tlgen.data.synthetic import make_scene
    from tlgen.metrics.perceptual import Inception
    torch.manual_seed(0)
    images = make_scene("city", size=32).render(np.arange(8) * 3600.0).astype(np.float32) / 255.0
    net = ref.calibrate_batch_norms(ref.FIDInceptionV3(), torch.from_numpy(images).permute(0, 3, 1, 2), 75)
    inception = Inception.load(_convert(tmp_path, "inception", net))
    features = lambda x: dist.FeatureStats(2048).update(inception.features(x, size=75))
    real = features(images)
    fids = []
    for sigma in (0.0, 0.1, 0.4):
        noisy = np.clip(images + sigma * np.random.default_rng(8).normal(size=images.shape), 0, 1)
        fids.append(dist.frechet_from_stats(real, features(noisy)))
    assert fids[0] == pytest.approx(0.0, abs=1e-6) and fids[0] < fids[1] < fids[2]


def test_fvd_tells_real_clips_from_the_same_clips_shuffled_in_time(tmp_path):
    """Random (calibrated) weights: the same frames in another order are far further from
    the real clips than the real clips a tenth of a second later (2.2x measured)."""
    from bench.peers import metrics as ref
    from tests.test_metric_networks import _convert
    from tlgen.data.synthetic import make_scene
    from tlgen.metrics.perceptual import I3D
    torch.manual_seed(1)
    scene = make_scene("water", size=16)
    clips = lambda offset: np.stack([scene.render(10.0 * k + offset + np.arange(16) * 1.5) for k in range(8)])
    real, later = clips(0.0), clips(0.1)
    shuffled = real[:, np.random.default_rng(9).permutation(16)]
    net = ref.calibrate_batch_norms(ref.InceptionI3d(), torch.from_numpy(real / 127.5 - 1).float().permute(0, 4, 1, 2, 3))
    i3d = I3D.load(_convert(tmp_path, "i3d", net))
    stats = lambda c: dist.FeatureStats(400).update(i3d.features(c, size=16))
    a = stats(real)
    assert dist.frechet_from_stats(a, stats(real.copy())) == pytest.approx(0.0, abs=1e-6)
    assert dist.frechet_from_stats(a, stats(shuffled)) > 1.5 * dist.frechet_from_stats(a, stats(later))


def test_the_network_metrics_share_one_generator_pass_per_batch(tmp_path):
    """FID and LPIPS from one evaluator: the family's `fake` is made once per batch (traced
    once), and each network gets the real and the generated images."""
    import jax

    from tests import random_weights
    from tlgen.metrics import evaluators
    from tlgen.models import inception as inception_model
    from tlgen.models import lpips as lpips_model
    paths = {"inception": random_weights.write(str(tmp_path / "inception.safetensors"),
                                               inception_model.abstract_params()),
             "lpips": random_weights.write(str(tmp_path / "lpips.safetensors"), lpips_model.abstract_params("alex"),
                                           lpips_model.torch_prefixes("alex"))}
    calls = []

    def fake(state, batch):
        calls.append(1)
        return batch["real"][::-1]
    (name, combined), = evaluators.metric_evaluators(paths, lambda state, batch: batch["real"], fake).items()
    frozen = {key: load() for key, load in evaluators.frozen_networks(paths).items()}
    batch = {"real": jax.ShapeDtypeStruct((2, 64, 64, 3), np.float32)}
    shapes = jax.eval_shape(lambda b, f: combined.compute(None, b, f), batch, frozen)
    assert name == "networks" and len(calls) == 1
    assert {k: v.shape for k, v in shapes["inception"].items()} == {"real": (2, 2048), "fake": (2, 2048)}
    assert shapes["lpips"]["lpips"].shape == ()


class _Stand:
    """Features of a metric network's width from the pixels (for the protocol's bookkeeping:
    the networks themselves are compared with PyTorch in test_metric_networks)."""
    def __init__(self, width):
        self.width = width

    def features(self, x):
        x = np.asarray(x, np.float64)
        return np.random.default_rng(int(x.sum())).normal(size=(len(x), self.width))


def test_the_protocol_skips_a_distance_of_one_sample_and_notes_small_samples():
    from tlgen.metrics.protocol import Networks, video_metrics
    rng = np.random.default_rng(0)
    clips = lambda n, t: rng.integers(0, 256, (n, t, 16, 16, 3), dtype=np.uint8)
    networks = Networks(inception=_Stand(2048), i3d=_Stand(400))
    one = video_metrics(clips(1, 16), clips(1, 16), networks)
    assert "fid" in one["scores"] and "fvd" not in one["scores"]
    assert one["not_computed"]["fvd"] == "1 clip; a distance between distributions needs 2 or more"
    assert one["caveats"] == [
        "fid from 16 frames, fewer than its 2048 features: the covariances are singular and the "
        "score is biased by the sample size; compare it only with scores from as many frames",
        "kid_std is 0 (up to rounding): each subset is the whole set of 16 frames (subsets of at most 1000)"]
    assert abs(one["scores"]["kid_std"]) < 1e-12         # 0 up to rounding
    two = video_metrics(clips(2, 16), clips(2, 16), networks)
    assert "fvd" in two["scores"] and two["caveats"][2].startswith("fvd from 2 clips, fewer than its 400 features")
    unpaired = video_metrics(clips(2, 16), clips(2, 16), networks, paired=False)
    assert unpaired["not_computed"]["lpips"] == "the generated videos have no real counterpart to compare frame by frame"
    assert "lpips" not in unpaired["scores"] and "fvd" in unpaired["scores"]
    single = video_metrics(clips(1, 1), clips(1, 1), networks)
    assert single["not_computed"]["fid"] == "1 frame; a distance between distributions needs 2 or more"
    assert "fid" not in single["scores"] and "kid" not in single["scores"]


def test_real_features_computed_once_serve_several_methods_with_the_same_scores():
    from tlgen.metrics.protocol import Networks, real_features, video_metrics
    rng = np.random.default_rng(1)
    clips = lambda: rng.integers(0, 256, (2, 16, 16, 16, 3), dtype=np.uint8)     # noqa: E731
    real, fakes = clips(), [clips(), clips()]
    calls = []

    class Counted(_Stand):
        def features(self, x):
            calls.append(len(x))
            return super().features(x)
    networks = Networks(inception=Counted(2048), i3d=Counted(400))
    alone = [video_metrics(real, fake, networks) for fake in fakes]
    calls.clear()
    features = real_features(real, networks)
    shared = [video_metrics(real, fake, networks, features=features) for fake in fakes]
    assert calls == [32, 2] + [32, 2] * 2            # the real clips once, then each method's own
    assert shared == alone and {"fid", "kid", "fvd"} <= set(shared[0]["scores"])
