"""DTVNet's training side: still-image animation trained on clips with optical flow.

State: params {"g": {"generator", "flow_encoder"}, "d": discriminator}, one Adam per entry
("g" trains the generator and the flow encoder together), BatchNorm statistics in
`extra["batch_stats"]`, optional EMA of "g".

One train step (as the public code): the generator runs once (flow encoder -> motion ->
video + low-resolution flows); `config.loss.critic_steps` (>= 1) critic updates on that fake with
D loss = 0.5 * (LSGAN real + LSGAN fake) + WGAN-GP; then the generator update with
G loss = adv * LSGAN + frame_l1 * L1(video) + flow_l1 * L1(low-res flows), the gradient
pulled back through the same forward pass (`jax.vjp`), so G runs forward once per step.

Clips: `config.data.num_frames + 1` frames; frame 0 is the input image, frames 0..T-1 the
target video, flows 0..T-1 (frame t -> t+1) the flow encoder's input and, shrunk to the
half-resolution grid, the flow target.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tlgen.family import Training
from tlgen.losses import adversarial
from tlgen.metrics.evaluators import frozen_networks, metric_evaluators
from tlgen.metrics.image import psnr, ssim
from tlgen.models import dtvnet
from tlgen.models.flow_ops import resize_flow
from tlgen.models.pixels import frame_shape
from tlgen.config import check_at_least, check_frame_size, compute_dtype
from tlgen.train.state import TrainState, critic_steps, make_optimizer

G = "g"   # generator + flow encoder: what inference needs


def networks(config, dtype=jnp.float32):
    """(Generator, FlowEncoder, VideoDiscriminator) for `config.model` / `config.data`."""
    m = config.model
    gen = dtvnet.Generator(
        num_frames=config.data.num_frames, base_width=m.base_width, decoder_width=m.decoder_width,
        motion_dim=m.motion_dim, content_blocks=m.content_blocks, motion_blocks=m.motion_blocks,
        mapping_layers=m.mapping_layers, style_layers=m.style_layers, dtype=dtype)
    enc = dtvnet.FlowEncoder(base_width=m.encoder_width, max_width=m.encoder_max_width,
                             motion_dim=m.motion_dim, dtype=dtype)
    # the public critic's last LeakyReLU has PyTorch's default slope, 0.01
    disc = dtvnet.VideoDiscriminator(base_width=m.disc_width, max_width=m.disc_max_width, dtype=dtype,
                                     last_slope=0.01)
    return gen, enc, disc


def example_batch(config, batch_size: int) -> dict:
    """Zero arrays with the shapes of one pipeline batch (for init / eval_shape / benchmarks)."""
    t, (h, w) = config.data.num_frames, frame_shape(config.data.image_size)
    return {"frames": np.zeros((batch_size, t + 1, h, w, 3), np.uint8),
            "flow": np.zeros((batch_size, t, h, w, 2), np.float32),
            "time": np.zeros((batch_size, t + 1), np.float32)}


def split_batch(batch: dict, num_frames: int):
    """-> (real video (B, T, H, W, 3) in [-1, 1], full-res flows (B, T, H, W, 2))."""
    return (dtvnet.to_model_range(batch["frames"][:, :num_frames]),
            batch["flow"][:, :num_frames].astype(jnp.float32))


def variables(params: dict, extra: dict) -> tuple[dict, dict]:
    """Flax variables (generator, flow encoder) of the "g" parameters and the BN statistics."""
    stats = extra["batch_stats"]
    return ({"params": params["generator"], "batch_stats": stats["generator"]},
            {"params": params["flow_encoder"], "batch_stats": stats["flow_encoder"]})


def reconstruct(gen, enc, params: dict, extra: dict, batch: dict):
    """Inference with each clip's own encoded motion -> (video, low flows, real, flow target)."""
    real, flows = split_batch(batch, gen.num_frames)
    g_vars, e_vars = variables(params, extra)
    motion = enc.apply(e_vars, flows, False)
    video, low = gen.apply(g_vars, real[:, 0], motion, False)
    h, w = real.shape[2:4]
    return video, low, real, resize_flow(flows, (h // 2, w // 2))


def scores(video, real) -> dict:
    """PSNR and SSIM of frames 1..T-1 on the [0, 1] scale (frame 0 is the input)."""
    a, b = (video[:, 1:] + 1) / 2, (real[:, 1:] + 1) / 2
    return {"psnr": jnp.mean(psnr(a, b)), "ssim": jnp.mean(ssim(a, b))}


def training(config) -> Training:
    """The functions the trainer runs for `config.family = "dtvnet"`."""
    check_at_least(config, {"data.num_frames": 2, "model.motion_dim": 1,
                            "model.base_width": 1, "model.decoder_width": 1, "model.encoder_width": 1,
                            "loss.critic_steps": 1})
    # the flow encoder halves the frames, then needs more than 4 pixels a side for its pyramid
    size = check_frame_size(config, "data.image_size", 2, "DTVNet's encoder halves it", least=10)
    dtype = compute_dtype(config)
    gen, enc, disc = networks(config, dtype)
    t = int(config.data.num_frames)
    accum = int(config.train.grad_accum)
    loss_cfg = config.loss
    g_tx = make_optimizer(config.optim.g, total_steps=config.total_steps, grad_accum=accum)
    d_tx = make_optimizer(config.optim.d, total_steps=config.total_steps * int(loss_cfg.critic_steps),
                          grad_accum=accum)     # the critic's schedule counts its own updates
    ema_decay = float(config.train.ema_decay)

    def make_pipeline(split, shard_index, shard_count):
        from tlgen.data.dataset import open_training_data
        from tlgen.data.pipelines import clip_dataset, per_process_batch

        open_training_data(config.data.dir, image_size=size, flow=True)
        return clip_dataset(config.data.dir, split, length=t + 1, stride=config.data.stride,
                            batch_size=per_process_batch(int(config.data.batch_size), shard_count),
                            seed=config.seed + (split != "train"), shard_index=shard_index,
                            shard_count=shard_count, with_flow=True,
                            augment=bool(config.data.augment) and split == "train",
                            worker_count=config.data.worker_count)

    def init(rng, batch, frozen=None):
        # Parameters are drawn with the RBG generator: same quality, far faster to compile on CPU.
        rng = jax.random.wrap_key_data(jax.random.bits(rng, (4,), jnp.uint32), impl="rbg")
        kg, ke, kd = jax.random.split(rng, 3)
        real, flows = split_batch(batch, t)
        ev = enc.init(ke, flows[:1])
        gv = gen.init(kg, real[:1, 0], jnp.zeros((1, gen.motion_dim)))
        dv = disc.init(kd, real[:1])
        params = {G: {"generator": gv["params"], "flow_encoder": ev["params"]}, "d": dv["params"]}
        stats = {"generator": gv["batch_stats"], "flow_encoder": ev["batch_stats"]}
        return TrainState.create(params, {G: g_tx, "d": d_tx}, ema=(G,) if ema_decay > 0 else (),
                                 extra={"batch_stats": stats})

    def g_forward(g_params, stats, image, flows):
        motion, enc_new = enc.apply({"params": g_params["flow_encoder"], "batch_stats": stats["flow_encoder"]},
                                    flows, True, mutable=["batch_stats"])
        (video, low), gen_new = gen.apply({"params": g_params["generator"], "batch_stats": stats["generator"]},
                                          image, motion, True, mutable=["batch_stats"])
        return (video, low), {"generator": gen_new["batch_stats"], "flow_encoder": enc_new["batch_stats"]}

    def train_step(state, batch, rng, frozen=None):
        real, flows = split_batch(batch, t)
        h, w = real.shape[2:4]
        flow_target = resize_flow(flows, (h // 2, w // 2))
        (video, low), pullback, stats = jax.vjp(
            lambda p: g_forward(p, state.extra["batch_stats"], real[:, 0], flows), state.params[G],
            has_aux=True)
        fake = jax.lax.stop_gradient(video)

        def d_loss(d_params, key):
            critic = lambda x: disc.apply({"params": d_params}, x)
            l_real, l_fake = adversarial.lsgan_d_loss(critic(real), critic(fake))
            gp = (adversarial.gradient_penalty(critic, real, fake, key, weight=loss_cfg.gp_weight)
                  if loss_cfg.gp_weight else jnp.float32(0.0))     # weight 0: not computed at all
            return 0.5 * (l_real + l_fake) + gp, (l_real, l_fake, gp)

        def critic(carry, i, key):
            st, _ = carry
            (loss_d, aux), grads = jax.value_and_grad(d_loss, has_aux=True)(st.params["d"], key)
            return st.apply_gradients("d", grads, d_tx), (loss_d, aux)

        zero = jnp.float32(0.0)
        state, (loss_d, (d_real, d_fake, gp)) = critic_steps(
            int(loss_cfg.critic_steps), critic, (state, (zero, (zero, zero, zero))), rng)

        def g_loss(video, low):
            adv = adversarial.lsgan_g_loss(disc.apply({"params": state.params["d"]}, video))
            frame_l1 = jnp.mean(jnp.abs(video - real))
            flow_l1 = jnp.mean(jnp.abs(low - flow_target))
            total = loss_cfg.adv_weight * adv + loss_cfg.frame_l1_weight * frame_l1 + loss_cfg.flow_l1_weight * flow_l1
            return total, (adv, frame_l1, flow_l1)

        (loss_g, (adv, frame_l1, flow_l1)), out_grads = jax.value_and_grad(
            g_loss, argnums=(0, 1), has_aux=True)(video, low)
        (g_grads,) = pullback(out_grads)
        state = state.apply_gradients(G, g_grads, g_tx).update_ema(ema_decay)
        state = state.replace(extra={"batch_stats": stats})
        return state, {"loss": loss_g + loss_d, "loss_g": loss_g, "loss_d": loss_d, "g_adv": adv,
                       "frame_l1": frame_l1, "flow_l1": flow_l1, "d_real": d_real, "d_fake": d_fake,
                       "gradient_penalty": gp}

    def eval_step(state, batch, frozen=None):
        video, low, real, flow_target = reconstruct(gen, enc, state.for_inference(G), state.extra, batch)
        return {**scores(video, real), "frame_l1": jnp.mean(jnp.abs(video - real)),
                "flow_l1": jnp.mean(jnp.abs(low - flow_target))}

    def sample(state, batch, rng, frozen=None):
        params = state.for_inference(G)
        video, _, real, _ = reconstruct(gen, enc, params, state.extra, batch)
        motion = dtvnet.sample_motion(rng, real.shape[0], gen.motion_dim)
        random, _ = gen.apply(variables(params, state.extra)[0], real[:, 0], motion, False)
        return {"real": dtvnet.to_uint8(real), "encoded_motion": dtvnet.to_uint8(video),
                "random_motion": dtvnet.to_uint8(random)}

    # Dataset-level metrics when config.eval names their networks: real clips against the
    # clips animated with their own encoded motion, in [0, 1].
    real = lambda state, batch: (split_batch(batch, t)[0] + 1) / 2
    fake = lambda state, batch: (reconstruct(gen, enc, state.for_inference(G), state.extra, batch)[0] + 1) / 2
    return Training(init=init, train_step=train_step, make_pipeline=make_pipeline,
                    eval_step=eval_step, sample=sample,
                    evaluators=metric_evaluators(config.get("eval") or {}, real, fake))


def frozen(config) -> dict:
    """The metric networks `config.eval` names (loaded once by the trainer)."""
    return frozen_networks(config.get("eval") or {})
