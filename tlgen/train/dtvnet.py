"""DTVNet family: still-image animation trained on clips with optical flow.

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

from tlgen import checkpoint
from tlgen.data.dataset import open_dataset
from tlgen.data.pipelines import clip_dataset
from tlgen.errors import UserError
from tlgen.losses import adversarial
from tlgen.metrics.flow import flow_mse, video_flows
from tlgen.metrics.image import psnr, ssim
from tlgen.metrics.temporal import e_tmp
from tlgen.models import dtvnet
from tlgen.models.flow_ops import resize_flow
from tlgen.train.registry import Family
from tlgen.train.state import TrainState, compute_dtype, critic_steps, make_optimizer


def networks(config, dtype=jnp.float32):
    """(Generator, FlowEncoder, VideoDiscriminator) for `config.model` / `config.data`."""
    m = config.model
    gen = dtvnet.Generator(
        num_frames=config.data.num_frames, base_width=m.base_width, decoder_width=m.decoder_width,
        motion_dim=m.motion_dim, content_blocks=m.content_blocks, motion_blocks=m.motion_blocks,
        mapping_layers=m.mapping_layers, style_layers=m.style_layers, dtype=dtype)
    enc = dtvnet.FlowEncoder(base_width=m.encoder_width, max_width=m.encoder_max_width,
                             motion_dim=m.motion_dim, dtype=dtype)
    disc = dtvnet.VideoDiscriminator(base_width=m.disc_width, max_width=m.disc_max_width, dtype=dtype)
    return gen, enc, disc


def example_batch(config, batch_size: int = 1) -> dict:
    """Zero arrays with the shapes of one pipeline batch (for init / eval_shape)."""
    t, size = config.data.num_frames, config.data.image_size
    return {"frames": np.zeros((batch_size, t + 1, size, size, 3), np.uint8),
            "flow": np.zeros((batch_size, t, size, size, 2), np.float32)}


def split_batch(batch: dict, num_frames: int):
    """-> (real video (B, T, H, W, 3) in [-1, 1], full-res flows (B, T, H, W, 2))."""
    return dtvnet.to_model_range(batch["frames"][:, :num_frames]), batch["flow"][:, :num_frames].astype(jnp.float32)


def make_family(config) -> Family:
    dtype = compute_dtype(config)
    gen, enc, disc = networks(config, dtype)
    t = int(config.data.num_frames)
    accum = int(config.train.grad_accum)
    g_tx = make_optimizer(config.optim.g, total_steps=config.total_steps, grad_accum=accum)
    d_tx = make_optimizer(config.optim.d, total_steps=config.total_steps, grad_accum=accum)
    loss_cfg = config.loss
    if int(loss_cfg.critic_steps) < 1:
        raise UserError(f"config.loss.critic_steps is {loss_cfg.critic_steps}; use 1 or more.")
    ema_decay = float(config.train.ema_decay)

    def make_pipeline(split, shard_index, shard_count):
        meta = open_dataset(config.data.dir).metadata
        size = tuple(meta["image_size"])
        if size != (config.data.image_size,) * 2:
            raise UserError(f"{config.data.dir} holds {size[1]}x{size[0]} frames but "
                            f"config.data.image_size is {config.data.image_size}; prepare the data "
                            f"with --size {config.data.image_size} or set --config.data.image_size.")
        if not meta.get("has_flow"):
            raise UserError(f"{config.data.dir} has no optical flow; prepare it with --flow.")
        return clip_dataset(config.data.dir, split, length=t + 1, stride=config.data.stride,
                            batch_size=config.data.batch_size // shard_count,
                            seed=config.seed + (split != "train"), shard_index=shard_index,
                            shard_count=shard_count, with_flow=True,
                            augment=bool(config.data.augment) and split == "train",
                            worker_count=config.data.worker_count)

    def init(rng, batch):
        # Parameters are drawn with the RBG generator: same quality, far faster to compile on CPU.
        rng = jax.random.wrap_key_data(jax.random.bits(rng, (4,), jnp.uint32), impl="rbg")
        kg, ke, kd = jax.random.split(rng, 3)
        real, flows = split_batch(batch, t)
        ev = enc.init(ke, flows[:1])
        gv = gen.init(kg, real[:1, 0], jnp.zeros((1, gen.motion_dim)))
        dv = disc.init(kd, real[:1])
        params = {"g": {"generator": gv["params"], "flow_encoder": ev["params"]}, "d": dv["params"]}
        stats = {"generator": gv["batch_stats"], "flow_encoder": ev["batch_stats"]}
        return TrainState.create(params, {"g": g_tx, "d": d_tx}, ema=("g",) if ema_decay > 0 else (),
                                 extra={"batch_stats": stats})

    def g_forward(g_params, stats, image, flows):
        motion, enc_new = enc.apply({"params": g_params["flow_encoder"], "batch_stats": stats["flow_encoder"]},
                                    flows, True, mutable=["batch_stats"])
        (video, low), gen_new = gen.apply({"params": g_params["generator"], "batch_stats": stats["generator"]},
                                          image, motion, True, mutable=["batch_stats"])
        return (video, low), {"generator": gen_new["batch_stats"], "flow_encoder": enc_new["batch_stats"]}

    def train_step(state, batch, rng):
        real, flows = split_batch(batch, t)
        h, w = real.shape[2:4]
        flow_target = resize_flow(flows, (h // 2, w // 2))
        (video, low), pullback, stats = jax.vjp(
            lambda p: g_forward(p, state.extra["batch_stats"], real[:, 0], flows), state.params["g"],
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
        state = state.apply_gradients("g", g_grads, g_tx).update_ema(ema_decay)
        state = state.replace(extra={"batch_stats": stats})
        return state, {"loss": loss_g + loss_d, "loss_g": loss_g, "loss_d": loss_d, "g_adv": adv,
                       "frame_l1": frame_l1, "flow_l1": flow_l1, "d_real": d_real, "d_fake": d_fake,
                       "gradient_penalty": gp}

    def reconstruct(state, batch):
        """Inference with the clip's own encoded motion -> (video, low flows, real, flow target)."""
        real, flows = split_batch(batch, t)
        g = inference_params(state)
        stats = state.extra["batch_stats"]
        motion = enc.apply({"params": g["flow_encoder"], "batch_stats": stats["flow_encoder"]}, flows, False)
        video, low = gen.apply({"params": g["generator"], "batch_stats": stats["generator"]},
                               real[:, 0], motion, False)
        h, w = real.shape[2:4]
        return video, low, real, resize_flow(flows, (h // 2, w // 2))

    def scores(video, real):
        """PSNR and SSIM of frames 1..T-1 on the [0, 1] scale (frame 0 is the input)."""
        a, b = (video[:, 1:] + 1) / 2, (real[:, 1:] + 1) / 2
        return {"psnr": jnp.mean(psnr(a, b)), "ssim": jnp.mean(ssim(a, b))}

    def eval_step(state, batch):
        video, low, real, flow_target = reconstruct(state, batch)
        return {**scores(video, real), "frame_l1": jnp.mean(jnp.abs(video - real)),
                "flow_l1": jnp.mean(jnp.abs(low - flow_target))}

    def sample(state, batch, rng):
        video, _, real, _ = reconstruct(state, batch)
        g = inference_params(state)
        motion = dtvnet.sample_motion(rng, real.shape[0], gen.motion_dim)
        random, _ = gen.apply({"params": g["generator"], "batch_stats": state.extra["batch_stats"]["generator"]},
                              real[:, 0], motion, False)
        return {"real": dtvnet.to_uint8(real), "encoded_motion": dtvnet.to_uint8(video),
                "random_motion": dtvnet.to_uint8(random)}

    def evaluate(workdir: str, data_dir: str | None = None, *, split: str = "validation",
                 num_clips: int = 16, flow_method: str = "dis") -> dict:
        """Reconstruction metrics of `num_clips` clips of `split`, each animated from its first
        frame with its own encoded motion: PSNR / SSIM (frames 1..T-1, [0, 1] scale), Flow-MSE
        (flows estimated on the generated vs. the clip's stored flows, pixels^2), E_tmp of the
        generated and the real clips (x1000 scale)."""
        trained = load_trained(workdir)
        data_config = trained.config.copy_and_resolve_references()
        with data_config.unlocked():
            data_config.data.dir = data_dir or trained.config.data.dir
            data_config.data.batch_size = 1
            data_config.data.augment = False
            data_config.data.worker_count = 0
        batches = iter(make_family(data_config).make_pipeline(split, 0, 1))
        @jax.jit
        def run(state, batch):
            video, _, real, _ = reconstruct(state, batch)
            return dtvnet.to_uint8(video[0]), scores(video, real)

        rows = {"psnr": [], "ssim": [], "flow_mse": [], "e_tmp": [], "e_tmp_real": []}
        for _ in range(num_clips):
            batch = next(batches)
            frames, clip = jax.device_get(run(trained.state, batch))
            for key, value in clip.items():
                rows[key].append(float(value))
            rows["flow_mse"].append(flow_mse(video_flows(frames, flow_method), batch["flow"][0, :t - 1]))
            rows["e_tmp"].append(e_tmp(frames))
            rows["e_tmp_real"].append(e_tmp(batch["frames"][0, :t]))
        report = {k: float(np.mean(v)) for k, v in rows.items()}
        report.update(step=trained.step, split=split, num_clips=num_clips,
                      data_dir=data_config.data.dir, flow_method=flow_method)
        return report

    return Family(init=init, train_step=train_step, make_pipeline=make_pipeline,
                  eval_step=eval_step, sample=sample, evaluate=evaluate)


def inference_params(state: TrainState):
    """The generator + flow encoder parameters for inference: the EMA copy when the run
    keeps one, else the trained ones."""
    return state.ema["g"] if state.ema else state.params["g"]


class Trained:
    """A trained run loaded for inference: config, step, state and the networks' variables."""

    def __init__(self, config, step: int, state: TrainState):
        self.config, self.step, self.state = config, step, state
        stats = state.extra["batch_stats"]
        g = inference_params(state)
        self.generator = {"params": g["generator"], "batch_stats": stats["generator"]}
        self.flow_encoder = {"params": g["flow_encoder"], "batch_stats": stats["flow_encoder"]}


def load_trained(workdir: str, step: int | None = None) -> Trained:
    """Loads `workdir`'s config and checkpoint `step` (default: the newest)."""
    config = checkpoint.run_config(workdir, "dtvnet")
    shapes = jax.eval_shape(make_family(config).init, jax.random.key(0), example_batch(config))
    chosen, state = checkpoint.restore_for_inference(workdir, shapes, step)
    return Trained(config, chosen, state)