"""The PyTorch peers compute the same architectures and losses as tlgen (same parameter
counts for the same sizes, the same MS-SSIM values)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench.peers import common, dtvnet as dtvnet_peer, timescale_ae as ae_peer  # noqa: E402
from tlgen.losses.reconstruction import ms_ssim  # noqa: E402
from tlgen.models import timescale_ae  # noqa: E402


def jax_count(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_dtvnet_peer_matches_the_family_config():
    """The peer built from configs/dtvnet_clouds.py:tiny has tlgen's parameter counts."""
    from tlgen import config as config_lib
    from tlgen.train import dtvnet as family_module
    from tlgen.train.registry import family
    config = config_lib.load("configs/dtvnet_clouds.py:tiny", ["data.dir="])
    batch = family_module.example_batch(config, 2)
    state = jax.eval_shape(family(config).init, jax.random.PRNGKey(0), batch)
    peer = dtvnet_peer.build(config, batch, torch.device("cpu"), compile=False)
    assert jax_count(state.params["g"]) == peer.parameters["g"] + peer.parameters["e"]
    assert jax_count(state.params["d"]) == peer.parameters["d"]


def test_dtvnet_paper_generator_size():
    assert common.count_parameters(dtvnet_peer.Generator()) == 8_336_800


def test_timescale_ae_parameter_count_matches():
    class Cfg:
        image_size, widths, blocks, num_bins, bin_channels = 32, (16, 32, 48), 1, 4, 6
    params = jax.eval_shape(lambda: timescale_ae.init(jax.random.key(0), Cfg))
    peer = ae_peer.TimescaleAE(Cfg.widths, Cfg.blocks, Cfg.num_bins, Cfg.bin_channels)
    assert jax_count(params) == common.count_parameters(peer)


def test_ms_ssim_matches_tlgen():
    rng = np.random.default_rng(0)
    a = rng.random((2, 48, 48, 3)).astype(np.float32)
    b = np.clip(a + 0.2 * rng.standard_normal(a.shape), 0, 1).astype(np.float32)
    ours = np.asarray(ms_ssim(jnp.asarray(a), jnp.asarray(b)))
    peer = common.ms_ssim(torch.from_numpy(a).permute(0, 3, 1, 2),
                          torch.from_numpy(b).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(peer, ours, rtol=1e-4)
