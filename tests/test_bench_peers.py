"""The PyTorch peers compute the same architectures and losses as tlgen (same parameter
counts for the same sizes, the same MS-SSIM values)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

# CI sets TLGEN_REQUIRE_TORCH=1: there a missing torch fails these tests instead of skipping them.
torch = __import__("torch") if os.environ.get("TLGEN_REQUIRE_TORCH") else pytest.importorskip("torch")

from bench.peers import common, dtvnet as dtvnet_peer, timescale_ae as ae_peer  # noqa: E402
from tlgen.losses.reconstruction import ms_ssim  # noqa: E402
from tlgen.models import timescale_ae  # noqa: E402


def jax_count(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_dtvnet_peer_matches_the_family_config():
    """The peer built from configs/dtvnet_clouds.py:tiny has tlgen's parameter counts."""
    from tlgen import config as config_lib
    from tlgen.families.dtvnet import training as family_module
    config = config_lib.load("configs/dtvnet_clouds.py:tiny", ["data.dir="])
    batch = family_module.example_batch(config, 2)
    state = jax.eval_shape(family_module.training(config).init, jax.random.PRNGKey(0), batch)
    peer = dtvnet_peer.Peer(config, batch, torch.device("cpu"), compile=False)
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


def _load_flax_params(net, params) -> None:
    """Copies tlgen timescale_ae parameters into the peer's modules, layer for layer."""
    def conv(module, p):
        module.weight.copy_(torch.from_numpy(np.asarray(p["kernel"]).transpose(3, 2, 0, 1).copy()))
        module.bias.copy_(torch.from_numpy(np.array(p["bias"])))

    def norm(module, p):
        module.weight.copy_(torch.from_numpy(np.array(p["scale"])))
        module.bias.copy_(torch.from_numpy(np.array(p["bias"])))

    def block(module, p):
        norm(module.norm0, p["GroupNorm_0"]), conv(module.conv0, p["Conv_0"])
        norm(module.norm1, p["GroupNorm_1"]), conv(module.conv1, p["Conv_1"])
        if isinstance(module.skip, torch.nn.Conv2d):
            conv(module.skip, p["Conv_2"])

    def levels(sequentials, side):
        # level i > 0 starts with (pad or upsample, the resolution-changing conv)
        for i, level in enumerate(sequentials):
            layers = list(level)
            if i:
                conv(layers[1], params[f"{side}_{'down' if side == 'enc' else 'up'}_{i - 1}"])
                layers = layers[2:]
            for j, res in enumerate(layers):
                block(res, params[f"{side}_blocks_{i}_{j}"])

    with torch.no_grad():
        conv(net.enc_stem, params["enc_stem"])
        levels(net.encoder, "enc")
        norm(net.enc_head[0], params["enc_norm"]), conv(net.enc_head[2], params["enc_out"])
        conv(net.dec_in, params["dec_in"])
        levels(net.decoder, "dec")
        norm(net.dec_head[0], params["dec_norm"]), conv(net.dec_head[2], params["dec_out"])
        for i, module in enumerate(getattr(net, "dec_background", ())):
            conv(module, params[f"dec_background_{i}"])


@pytest.mark.parametrize("one_level,target,background", [
    (True, "frame", True), (False, "frame", True), (False, "pyramid", False)])
def test_timescale_ae_peer_loss_equals_tlgen(one_level, target, background):
    """With tlgen's parameters copied in, the peer's loss is tlgen's training loss."""
    from tlgen import config as config_lib
    from tlgen.families.timescale_ae import make_levels, training as family_module
    config = config_lib.load("configs/timescale_ae_synthetic.py:tiny", [
        "model.image_size=32", "model.widths=(8, 16, 16)", "model.num_bins=4",
        "model.bin_channels=3", "loss.gap_bands=()", f"loss.target={target}",
        f"loss.one_level_per_anchor={one_level}", f"model.background={background}"])
    b, m, size = 6, 4, 32
    rng = np.random.default_rng(0)
    frames = lambda *lead: rng.integers(0, 256, lead + (size, size, 3), dtype=np.uint8)
    batch = {"anchor": frames(b), "positive": frames(b, m - 1), "target": frames(b, m),
             "pos_valid": rng.random((b, m - 1)) > 0.2, "background": frames(b)}
    lv = make_levels(config, (60.0, 120.0, 240.0, 480.0))
    params = jax.jit(lambda key: timescale_ae.init(key, config.model))(jax.random.key(3))   # eager: slower
    if background:      # its output layer starts at zero: weights that let the decoder show
        kernel = params["dec_out"]["kernel"]
        params = {**params, "dec_out": {**params["dec_out"], "kernel": jnp.asarray(
            0.05 * rng.standard_normal(kernel.shape), jnp.float32)}}
    ours, _ = jax.jit(lambda p, b: family_module.losses(p, b, config=config, lv=lv, dtype=jnp.float32))(params, batch)
    peer = ae_peer.Peer(config, batch, torch.device("cpu"), compile=False)
    _load_flax_params(peer.net, params)
    with torch.no_grad():
        theirs = float(peer._loss(peer.frames, peer.target))
    np.testing.assert_allclose(theirs, float(ours), rtol=2e-4)


def _tensor(array, *axes):
    array = np.array(array)
    return torch.from_numpy(array.transpose(axes) if axes else array)


def _load_conv(module, p, *, transposed=False):
    kernel = np.array(p["kernel"])
    if transposed:   # lax.conv_transpose's kernel is the spatially flipped scatter kernel
        module.weight.copy_(_tensor(kernel[::-1, ::-1], 2, 3, 0, 1))
    else:            # (..., in, out) -> (out, in, ...)
        nd = kernel.ndim
        module.weight.copy_(_tensor(kernel, nd - 1, nd - 2, *range(nd - 2)))
    if "bias" in p:
        module.bias.copy_(_tensor(p["bias"]))


def _load_norm(module, p):
    module.weight.copy_(_tensor(p["scale"]))
    module.bias.copy_(_tensor(p["bias"]))


def _load_dense(module, p):
    module.weight.copy_(_tensor(p["kernel"], 1, 0))
    module.bias.copy_(_tensor(p["bias"]))


def _load_pyramid(pyramid, p):
    convs = [m for m in pyramid.net if isinstance(m, torch.nn.Conv3d)]
    norms = [m for m in pyramid.net if isinstance(m, torch.nn.BatchNorm3d)]
    for i, conv in enumerate(convs[:-1]):
        _load_conv(conv, p[f"conv{i}"])
    _load_conv(convs[-1], p["head"])
    for i, norm in enumerate(norms, start=1):
        _load_norm(norm, p[f"bn{i}"])


def _load_generator(g, p):
    def block(module, q):
        for i, (conv, norm) in enumerate([(1, 2), (5, 6)]):
            _load_conv(module.body[conv], q[f"conv{i}"]), _load_norm(module.body[norm], q[f"bn{i}"])

    def conv_bn(seq, q):
        _load_conv(seq[0], q["conv"]), _load_norm(seq[1], q["bn"])

    _load_conv(g.encoder[1], p["encoder_conv0"]), _load_norm(g.encoder[2], p["encoder_bn0"])
    conv_bn(g.encoder[4], p["encoder_down"]), conv_bn(g.encoder[5], p["encoder_conv2"])
    for i, res in enumerate(g.content):
        block(res, p[f"content_{i}"])
    for i, layer in enumerate(g.mapping):
        _load_dense(layer, p[f"mapping_{i}"])
    conv_bn(g.motion_in, p["motion_in"])
    for i, (res, adapt) in enumerate(zip(g.motion_blocks, g.adapt)):
        block(res, p[f"motion_{i}"])
        for j, layer in enumerate(adapt[:-1]):
            _load_dense(layer, p[f"motion_{i}_adapt_{j}"])
        _load_dense(adapt[-1], p[f"motion_{i}_style"])
    _load_conv(g.to_flows, p["to_flows"])
    conv_bn(g.decoder[0], p["decoder_conv0"]), conv_bn(g.decoder[1], p["decoder_conv1"])
    _load_conv(g.decoder[2], p["decoder_up"], transposed=True)
    _load_norm(g.decoder[3], p["decoder_up_bn"]), _load_conv(g.decoder[6], p["to_frames"])


def test_dtvnet_peer_networks_compute_tlgen_networks():
    """With tlgen's parameters copied in, the peer's generator, flow encoder and critic give
    tlgen's outputs (training-mode batch norm)."""
    from tlgen import config as config_lib
    from tlgen.families.dtvnet import training as family_module
    config = config_lib.load("configs/dtvnet_clouds.py:tiny", ["data.dir="])
    batch = family_module.example_batch(config, 2)
    rng = np.random.default_rng(0)
    batch["frames"] = rng.integers(0, 256, batch["frames"].shape, dtype=np.uint8)
    batch["flow"] = rng.normal(0, 2, batch["flow"].shape).astype(np.float32)
    gen, enc, disc = family_module.networks(config)
    state = jax.jit(family_module.training(config).init)(jax.random.PRNGKey(0), batch)
    g, d = state.params["g"], state.params["d"]
    stats = state.extra["batch_stats"]
    peer = dtvnet_peer.Peer(config, batch, torch.device("cpu"), compile=False)
    with torch.no_grad():
        _load_generator(peer.g, g["generator"])
        _load_pyramid(peer.e.pyramid, g["flow_encoder"]["pyramid"])
        _load_dense(peer.e.fc, g["flow_encoder"]["fc"])
        _load_pyramid(peer.d.pyramid, d["pyramid"])
        motion = peer.e(peer.flows)
        video, flows = peer.g(peer.image, motion)
        critic = peer.d(peer.real)
    t = int(config.data.num_frames)
    real, flow_in = family_module.split_batch(batch, t)

    @jax.jit
    def ours(g, d, stats, real, flow_in):
        motion, _ = enc.apply({"params": g["flow_encoder"], "batch_stats": stats["flow_encoder"]},
                              flow_in, True, mutable=["batch_stats"])
        (video, flows), _ = gen.apply({"params": g["generator"], "batch_stats": stats["generator"]},
                                      real[:, 0], motion, True, mutable=["batch_stats"])
        return motion, video, flows, disc.apply({"params": d}, real)
    ours_motion, ours_video, ours_flows, ours_critic = ours(g, d, stats, real, flow_in)
    np.testing.assert_allclose(motion.numpy(), ours_motion, atol=2e-4)
    np.testing.assert_allclose(video.permute(0, 1, 3, 4, 2).numpy(), ours_video, atol=2e-4)
    np.testing.assert_allclose(flows.permute(0, 1, 3, 4, 2).numpy(), ours_flows, atol=2e-4)
    np.testing.assert_allclose(critic.numpy(), ours_critic, rtol=1e-4, atol=1e-4)


def _fgla_peer_with_tlgen_params(config, batch):
    """The PyTorch FGLA peer holding tlgen's initial parameters, and those parameters."""
    from bench.peers import fgla as fgla_peer
    from tlgen.families.fgla import training as fgla_training
    params = jax.jit(fgla_training.training(config).init)(jax.random.PRNGKey(0), batch).params["fgla"]
    peer = fgla_peer.Peer(config, batch, torch.device("cpu"), compile=False)
    t = lambda a, perm=None: torch.from_numpy(np.asarray(a).transpose(perm).copy() if perm else np.array(a))

    def conv(module, p):
        module.weight.data.copy_(t(p["kernel"], (3, 2, 0, 1)))
        module.bias.data.copy_(t(p["bias"]))

    enc, gen = params["encoder"], params["generator"]
    with torch.no_grad():
        for i, layer in enumerate(peer.encoder.convs):
            conv(layer.conv, enc[f"pconv{i}"])
        peer.encoder.to_latent.weight.copy_(t(enc["to_latent"]["kernel"], (1, 0)))
        peer.encoder.to_latent.bias.copy_(t(enc["to_latent"]["bias"]))
        conv(peer.generator.inp, gen["in"])
        conv(peer.generator.to_flow, gen["to_flow"])
        for i in range(len(peer.generator.down)):
            conv(peer.generator.down[i], gen[f"down{i}"])
            conv(peer.generator.down_conv[i], gen[f"down{i}_conv"])
            conv(peer.generator.up[i], gen[f"up{i}"])
            conv(peer.generator.up_conv[i], gen[f"up{i}_conv"])
    return peer, params


@pytest.mark.parametrize("per_region", [True, False])
def test_fgla_peer_computes_tlgen_latents_flows_and_loss(per_region):
    """Same parameters, same batch: the partial-conv encoder's latents, the U-Net's flow and
    the training loss of tlgen and the PyTorch peer agree."""
    from tlgen import config as config_lib
    from tlgen.families.fgla import training as fgla_training
    from tlgen.models import fgla
    config = config_lib.load("configs/fgla_landscape.py:tiny", ["data.dir=", f"model.per_region={per_region}",
                                                                "data.image_size=16", "model.encoder_widths=(8, 8)",
                                                                "model.generator_widths=(4, 8, 8)"])
    rng = np.random.default_rng(0)
    batch = fgla_training.example_batch(config, 2)
    batch["frames"] = rng.integers(0, 256, batch["frames"].shape, dtype=np.uint8)
    batch["flow"] = rng.normal(0, 2, batch["flow"].shape).astype(np.float32)
    batch["masks"][:, :, :6] = 1
    batch["masks"][:, :, 12:] = 2
    batch["masks"][1] = 0                                 # the second sample: one region only
    peer, params = _fgla_peer_with_tlgen_params(config, batch)
    assert jax_count(params) == peer.parameters["fgla"]
    encoder, generator = fgla_training.networks(config)
    image, _, target, masks = fgla_training.split_batch(batch, 3)

    @jax.jit
    def tlgen_outputs(params):
        latents = encoder.apply({"params": params["encoder"]}, target, masks)
        flow = generator.apply({"params": params["generator"]}, image, fgla.latent_map(latents, masks))
        loss, _ = fgla_training.losses(params, batch, config=config, encoder=encoder, generator=generator)
        return latents, flow, loss

    latents, flow, loss = tlgen_outputs(params)
    with torch.no_grad():
        peer_latents = peer.encoder(peer.target, peer.masks)
        np.testing.assert_allclose(peer_latents.numpy(), np.asarray(latents), rtol=1e-4, atol=1e-5)
        peer_flow = peer.generator(peer.image, fgla_peer_latent_map(peer_latents, peer.masks))
        np.testing.assert_allclose(peer_flow.permute(0, 2, 3, 1).numpy(), np.asarray(flow), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(float(peer.losses()), float(loss), rtol=1e-4)


def fgla_peer_latent_map(latents, masks):
    from bench.peers import fgla as fgla_peer
    return fgla_peer.latent_map(latents, masks)


@pytest.mark.parametrize("fused, resolution", [(False, "16"), (True, "(16, 28)")])
def test_stylegan_v_peer_computes_tlgen_frames_and_logits(fused, resolution):
    """With tlgen's parameters copied in, the peer's generator and discriminator give tlgen's
    frames and logits (fused and unfused modulated convs alike; square frames and 16x28 ones
    from a 4x7 constant)."""
    from bench.peers import stylegan_v as sgv_peer
    from tlgen import config as config_lib
    from tlgen.families.stylegan_v import training as family_module
    from tlgen.models.pixels import frame_shape
    config = config_lib.load("configs/stylegan_v_clouds.py:tiny", [
        "data.dir=", f"model.resolution={resolution}", "model.concat_res=8", "model.max_frames=64",
        "model.max_period=64", f"model.fused_modconv={fused}"])
    batch = family_module.example_batch(config, 4)
    rng = np.random.default_rng(0)
    batch["frames"] = rng.integers(0, 256, batch["frames"].shape, dtype=np.uint8)
    batch["time"] = np.array([[0, 3, 7], [0, 1, 2], [5, 9, 21], [0, 16, 32]], np.float32)
    state = jax.jit(family_module.training(config).init)(jax.random.PRNGKey(0), batch)   # eager: slower
    peer = sgv_peer.Peer(config, batch, torch.device("cpu"), compile=False)
    assert peer.parameters == {"g": jax_count(state.params["g"]), "d": jax_count(state.params["d"])}
    sgv_peer.load(peer.g, state.params["g"])
    sgv_peer.load(peer.d, state.params["d"])
    gen, disc = family_module.networks(config)
    z = rng.normal(size=(4, 64)).astype(np.float32)
    codes = rng.normal(size=(4, gen.codes_for(64.0), 64)).astype(np.float32)
    t = batch["time"] + np.float32(2.5)
    ours = np.array(jax.jit(gen.apply)({"params": state.params["g"]}, z, codes, t))
    ours_logits = np.asarray(jax.jit(disc.apply)({"params": state.params["d"]}, ours, batch["time"]))
    assert ours.shape[2:4] == frame_shape(config.model.resolution)
    with torch.no_grad():
        frames = peer.g(torch.from_numpy(z), torch.from_numpy(codes), torch.from_numpy(t))
        logits = peer.d(torch.from_numpy(ours).permute(0, 1, 4, 2, 3), torch.from_numpy(batch["time"]))
    np.testing.assert_allclose(frames.permute(0, 1, 3, 4, 2).numpy(), ours, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(logits.numpy(), ours_logits, rtol=1e-4, atol=1e-4)
    peer.step()                                            # the peer's training step runs
    assert all(torch.isfinite(p).all() for p in peer.g.parameters())


def test_long_video_peer_computes_tlgen_frames_and_logits():
    """With tlgen's parameters copied in, the peer's low-resolution generator (its filter bank
    a direct conv1d, as the public code runs it; tlgen's an FFT) and discriminator give
    tlgen's frames and logits, and its training step runs."""
    from bench.peers import long_video as lv_peer
    from tests.test_long_video_family import TINY
    from tlgen import config as config_lib
    from tlgen.families.long_video import training as family_module
    overrides = [o[len("--config."):] for o in TINY if o.startswith("--config.model.") or "num_frames" in o]
    config = config_lib.load("configs/long_video_city.py:tiny", ["data.dir=", *overrides])
    batch = family_module.example_batch(config, 2)
    rng = np.random.default_rng(0)
    batch["frames"] = rng.integers(0, 256, batch["frames"].shape, dtype=np.uint8)
    state = jax.jit(family_module.training(config).init)(jax.random.PRNGKey(0), batch)
    peer = lv_peer.Peer(config, batch, torch.device("cpu"), compile=False)
    assert peer.parameters == {"g": jax_count(state.params["g"]), "d": jax_count(state.params["d"])}
    lv_peer.load(peer.g, state.params["g"])
    lv_peer.load(peer.d, state.params["d"])
    gen, disc = family_module.networks(config)
    made = family_module.generated_frames(gen, 8)
    noise = rng.normal(size=(2, gen.noise_length(made), gen.noise_channels)).astype(np.float32)
    ours = np.asarray(jax.jit(gen.apply, static_argnums=2)({"params": state.params["g"]}, noise, made))
    clip = np.array(ours[:, 1:9])
    ours_logits = np.asarray(jax.jit(disc.apply)({"params": state.params["d"]}, clip))
    with torch.no_grad():
        frames = peer.g(torch.from_numpy(noise), made)
        logits = peer.d(torch.from_numpy(clip).permute(0, 1, 4, 2, 3))
    assert ours.shape == (2, made, 16, 32, 3) and ours.std() > 0.01
    np.testing.assert_allclose(frames.permute(0, 2, 3, 4, 1).numpy(), ours, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(logits.numpy(), ours_logits, rtol=1e-4, atol=1e-5)
    peer.step()
    assert all(torch.isfinite(p).all() for p in peer.g.parameters())


def test_time_flies_peer_computes_tlgen_losses(tmp_path):
    """With tlgen's parameters (and VGG-19) copied in, the peer's frames equal tlgen's
    elementwise and its six loss terms equal tlgen's on the same batch and noise, at α = 0
    (eval_step's) and α = 0.5 (the content term's high-frequency half included)."""
    from bench.peers import time_flies as tf_peer
    from tests import random_weights
    from tlgen import config as config_lib
    from tlgen.families.time_flies import training as family_module
    from tlgen.losses import style
    from tlgen.models import time_flies as tf_model
    from tlgen.models import vgg19
    from tlgen.weights import load_torch_weights
    config = config_lib.load("configs/time_flies_city.py:tiny", [
        "data.dir=", "data.image_size=16", "model.d_width=8", "model.d_max_width=16"])
    path = random_weights.write(str(tmp_path / "vgg.safetensors"), vgg19.abstract_params(), vgg19.torch_prefixes())
    vgg = load_torch_weights(path, vgg19.abstract_params(), key="vgg", prefixes=vgg19.torch_prefixes())
    batch = family_module.example_batch(config, 2)
    rng = np.random.default_rng(0)
    batch["frames"] = rng.integers(0, 256, batch["frames"].shape, dtype=np.uint8)
    batch["mean"] = rng.integers(0, 256, batch["mean"].shape, dtype=np.uint8)
    batch["masks"] = np.repeat(rng.integers(0, 5, (2, 1, 8, 8)), 2, 2).repeat(2, 3).repeat(5, 1).astype(np.uint8)
    fam = family_module.training(config)
    state = jax.jit(fam.init)(jax.random.key(0), batch, frozen={"vgg19": vgg})   # eager: 3x slower
    ours = jax.device_get(jax.jit(fam.eval_step)(state, batch, frozen={"vgg19": vgg}))
    noise = family_module.noise_for(jax.random.key(int(config.seed)), 2, (16, 16, 64), config)

    @jax.jit
    def frames_and_content(params, alpha):                 # eval_step's frames; content at any α
        frames, masks, image, image_masks = family_module.split_batch(batch)
        encoded = jax.tree.map(family_module.repeat_windows, family_module.image_encoder(vgg, image))
        out = tf_model.Generator(int(config.model.num_classes)).apply(
            {"params": params}, encoded, family_module.windows(frames),
            family_module.repeat_windows(image_masks), jnp.concatenate([masks[:, t] for t in range(3)]), noise)
        return out, style.content(encoded, family_module.image_encoder(vgg, out),
                                  family_module.repeat_windows(image), out, alpha)
    out_ours, content0 = frames_and_content(state.params["g"], 0.0)
    content = {0.0: float(content0), 0.5: float(frames_and_content(state.params["g"], 0.5)[1])}
    np.testing.assert_allclose(content[0.0], ours["content"], rtol=1e-5)    # the same frames as eval_step
    assert abs(content[0.5] - content[0.0]) > 0.01 * content[0.0]           # the features half counts
    peer = tf_peer.Peer(config, batch, torch.device("cpu"), compile=False)
    assert peer.parameters == {"g": jax_count(state.params["g"]), "d": jax_count(state.params["d"])}
    tf_peer.load(peer.vgg, vgg)
    tf_peer.load(peer.g, state.params["g"])
    with torch.no_grad():
        _load_pyramid(peer.d.pyramid, state.params["d"]["pyramid"])
        out, clip, image_masks = peer.outputs(torch.from_numpy(np.array(noise)).permute(0, 3, 1, 2))
        theirs = {alpha: peer.generator_losses(out, clip, image_masks, alpha=alpha) for alpha in content}
        targets = torch.cat([peer.frames[:, t].flip(-1) for t in range(3)])
        mse = (out.clamp(0, 1) - targets).square().mean((1, 2, 3))
        psnr = (10 * torch.log10(1 / mse)).mean()
    np.testing.assert_allclose(out.permute(0, 2, 3, 1).numpy(), out_ours, rtol=0, atol=1e-5)  # 2.3e-6 seen; range ±3
    for alpha, terms in theirs.items():
        for name in ("perceptual", "content", "style", "flow", "cycle", "adv"):
            want = content[alpha] if name == "content" else ours[name]
            np.testing.assert_allclose(float(terms[name]), want, rtol=2e-4, err_msg=f"{name}, alpha {alpha}")
    np.testing.assert_allclose(float(psnr), ours["psnr"], rtol=1e-4)
    peer.step()                                            # the peer's training step runs
    assert all(torch.isfinite(p).all() for p in peer.g.parameters())
