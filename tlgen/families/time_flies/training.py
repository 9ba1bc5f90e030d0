"""Time Flies' training side: the paper's self-supervised scheme (§3.2-3.3).

A batch holds clips of five frames F_0 ... F_4 (`data.stride` records apart) with their label
maps and the mean image of the clip's (video, block). The input image I is that mean image
flipped horizontally (so I and the reference share no layout); output frame t (t = 0, 1, 2)
is made from the window V_t = (F_t, F_t+1, F_t+2) and should equal F_t flipped. I's labels
are F_0's, flipped.

    L_G = adv + λ1 perceptual + λ2 content + λ3 classwise style + λ4 flow + λ5 cycle
(`tlgen.losses.style`; λ = 0.1, 0.05, 10, 100, 0.05 in the paper). The content term's α
decays from 1 as `loss.alpha_decay ** step`. The flow term compares the feature flows of the
pairs (F_0, F_1) and (F_0, F_2) (consecutive and long-term, within the clip) with those of the
outputs; the cycle term the classwise Gram matrices of E_GV on the output clip and on V_0.
The video discriminator scores (V_0, V_0 flipped) as real and (V_0, output clip) as fake, the
two clips stacked on the channel axis; non-saturating logistic losses.

State: params {"g": {"video_encoder", "decoder"}, "d": discriminator}; E_GV starts from VGG-19
(`time_flies.video_encoder_params`) and trains with SGD (`optim.e`, the paper's), the decoder
with Adam (`optim.g`), D with Adam (`optim.d`). The frozen network "vgg19" (a user file,
`model.vgg19`) is both E_GI (Haar pooling, reflection padding) and the loss network Φ.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tlgen.config import check_at_least, check_frame_size, compute_dtype
from tlgen.errors import UserError
from tlgen.family import Training
from tlgen.losses import adversarial, style
from tlgen.metrics.image import psnr
from tlgen.models import time_flies as tf
from tlgen.models import vgg19
from tlgen.models.layers import VideoDiscriminator
from tlgen.models.pixels import frame_shape, to_uint8
from tlgen.train.gan import no_grad_accum, no_train_ema
from tlgen.train.state import TrainState, make_optimizer
from tlgen.weights import load_torch_weights

G, D = "g", "d"
CLIP = 5            # frames per training clip: three overlapping 3-frame windows
WINDOWS = CLIP - 2
VGG19_KEY = ("config.model.vgg19 (`tlgen animate`: --vgg19), VGG-19's ImageNet weights as torchvision "
             "names them (`tlgen convert-weights --kind vgg19` converts torchvision's .pth)")


def load_vgg19(config) -> dict:
    """VGG-19's parameters from the user's file `config.model.vgg19`, checked by name and shape."""
    return load_torch_weights(str(config.model.vgg19), vgg19.abstract_params(), key=VGG19_KEY,
                              prefixes=vgg19.torch_prefixes())


def image_encoder(vgg_params, images):
    """E_GI: (relu taps, Haar high frequencies) of images (B, H, W, 3) in [0, 1]."""
    return vgg19.VGG19(pool="haar", padding="reflect").apply({"params": vgg_params}, images)


def loss_features(vgg_params, images) -> dict:
    """Φ: VGG-19's relu1_1 ... relu4_1 of images (B, H, W, 3) in [0, 1]."""
    return vgg19.VGG19().apply({"params": vgg_params}, images)[0]


def flip(images):
    """Horizontal flip of images (..., H, W, C)."""
    return images[..., ::-1, :]


def flip_labels(masks):
    """Horizontal flip of label maps (..., H, W)."""
    return masks[..., ::-1]


def repeat_windows(x):
    """x (B, ...) repeated for the three output frames (3B, ...), window-major."""
    return jnp.concatenate([x] * WINDOWS, axis=0)


def windows(frames):
    """(B, 5, ...) -> the three 3-frame windows stacked on the batch axis (3B, 3, ...), window-major."""
    return jnp.concatenate([frames[:, t:t + 3] for t in range(WINDOWS)], axis=0)


def split_batch(batch: dict, classwise: bool = True):
    """-> (reference frames (B, 5, H, W, 3) in [0, 1], labels (B, 5, H, W), I (B, H, W, 3), I's
    labels); without `classwise` every label is 0 (one region: plain AdaIN)."""
    frames = batch["frames"].astype(jnp.float32) / 255.0
    masks = (batch["masks"].astype(jnp.int32) * int(classwise) if "masks" in batch
             else jnp.zeros(frames.shape[:4], jnp.int32))       # a dataset without masks
    image = flip(batch["mean"].astype(jnp.float32) / 255.0)
    return frames, masks, image, flip_labels(masks[:, 0])


def noise_for(rng, batch_size: int, shape, config):
    """NoiseAdaIN's z_t for the three output frames of each clip (3B, H, W, 64), window-major,
    or None when `model.noise` is off."""
    if not config.model.noise:
        return None
    keys = jax.random.split(rng, batch_size)
    z = jax.vmap(lambda k: tf.smoothed_noise(k, 0, WINDOWS, shape, float(config.model.sigma_z),
                                             float(config.model.noise_blur)))(keys)
    return jnp.concatenate([z[:, t] for t in range(WINDOWS)], axis=0)


def example_batch(config, batch_size: int) -> dict:
    """Zero arrays shaped like one pipeline batch (label maps only for a classwise model)."""
    size = frame_shape(config.data.image_size)
    masks = {"masks": np.zeros((batch_size, CLIP, *size), np.uint8)} if config.model.classwise else {}
    return {"frames": np.zeros((batch_size, CLIP, *size, 3), np.uint8), **masks,
            "mean": np.zeros((batch_size, *size, 3), np.uint8),
            "time": np.zeros((batch_size, CLIP), np.float32)}


def training(config) -> Training:
    """The functions the trainer runs for `config.family = "time_flies"`."""
    check_at_least(config, {"data.stride": 1, "model.num_classes": 1,
                            "model.d_width": 1, "model.d_max_width": 1, "model.sigma_z": 0},
                   positive=("model.noise_blur",))
    dtype = compute_dtype(config)
    classes, classwise = int(config.model.num_classes), bool(config.model.classwise)
    gen = tf.Generator(classes, dtype)
    disc = VideoDiscriminator(int(config.model.d_width), int(config.model.d_max_width), dtype)
    lc = config.loss
    no_grad_accum(config)
    no_train_ema(config, "keeps no moving average of its networks")
    g_tx = optax.multi_transform(
        {"video_encoder": make_optimizer(config.optim.e, total_steps=config.total_steps),
         "decoder": make_optimizer(config.optim.g, total_steps=config.total_steps)},
        {"video_encoder": "video_encoder", "decoder": "decoder"})
    d_tx = make_optimizer(config.optim.d, total_steps=config.total_steps)
    size = check_frame_size(config, "data.image_size", 8, "Time Flies' encoder halves it in three "
                            "Haar poolings")

    def make_pipeline(split, shard_index, shard_count):
        from tlgen.data.dataset import open_training_data
        from tlgen.data.pipelines import clip_dataset, per_process_batch

        ds = open_training_data(config.data.dir, image_size=size)
        if classwise and not ds.metadata.get("has_masks"):
            raise UserError(f"{config.data.dir} has no region masks; Time Flies transfers appearance "
                            "class by class: prepare it with --masks DIR or --masks auto (or use a "
                            "synthetic scene), or train one class with config.model.classwise=False.")
        if classwise and int(ds.metadata["num_classes"]) > classes:
            raise UserError(f"{config.data.dir} has {ds.metadata['num_classes']} mask classes but "
                            f"config.model.num_classes is {classes}; raise it.")
        try:
            return clip_dataset(config.data.dir, split, length=CLIP, stride=int(config.data.stride),
                                batch_size=per_process_batch(int(config.data.batch_size), shard_count),
                                seed=int(config.seed) + (split != "train"), shard_index=shard_index,
                                shard_count=shard_count, with_masks=classwise, with_mean=True,
                                augment=bool(config.data.augment) and split == "train",
                                worker_count=int(config.data.worker_count))
        except ValueError as e:
            raise UserError(f"{config.data.dir} has no clip to train Time Flies on ({e}); it needs "
                            f"videos of at least {(CLIP - 1) * int(config.data.stride) + 1} frames.") from None

    def init(rng, batch, frozen):
        frames, masks, image, image_masks = split_batch(jax.tree.map(lambda x: x[:1], batch), classwise)
        encoded = image_encoder(frozen["vgg19"], image)
        kg, kd = jax.random.split(rng)
        params = gen.init(kg, encoded, frames[:, :3], image_masks, masks[:, 0])["params"]
        params = {**params, "video_encoder": tf.video_encoder_params(frozen["vgg19"])}
        dp = disc.init(kd, jnp.concatenate([frames[:, :3]] * 2, axis=-1) * 2 - 1)["params"]
        return TrainState.create({G: params, D: dp}, {G: g_tx, D: d_tx})

    def generate(params, vgg, frames, masks, image, image_masks, noise):
        """(the three output frames (3B, H, W, 3), E_GI's output for I repeated to 3B), window-major."""
        encoded = jax.tree.map(repeat_windows, image_encoder(vgg, image))
        clip_masks = jnp.concatenate([masks[:, t] for t in range(WINDOWS)], axis=0)
        out = gen.apply({"params": params}, encoded, windows(frames), repeat_windows(image_masks), clip_masks, noise)
        return out, encoded

    def critic(d_params, reference, clip):
        return disc.apply({"params": d_params}, jnp.concatenate([reference, clip], axis=-1) * 2 - 1)

    def as_clips(out, b):
        return jnp.stack([out[t * b:(t + 1) * b] for t in range(WINDOWS)], axis=1)

    def g_losses(params, d_params, vgg, batch, noise, alpha):
        frames, masks, image, image_masks = split_batch(batch, classwise)
        b = frames.shape[0]
        out, encoded_image = generate(params, vgg, frames, masks, image, image_masks, noise)
        targets = jnp.concatenate([flip(frames[:, t]) for t in range(WINDOWS)], axis=0)
        target_masks = jnp.concatenate([flip_labels(masks[:, t]) for t in range(WINDOWS)], axis=0)
        out_masks = repeat_windows(image_masks)
        phi_out, phi_target = loss_features(vgg, out), loss_features(vgg, targets)
        part = lambda f, t: {k: v[t * b:(t + 1) * b] for k, v in f.items()}
        clip = as_clips(out, b)
        terms = {
            "perceptual": style.perceptual(phi_out, phi_target),
            "content": style.content(encoded_image, image_encoder(vgg, out),
                                     repeat_windows(image), out, alpha),
            "style": style.classwise_style(phi_out, phi_target, out_masks, target_masks, classes),
            "flow": style.flow([(part(phi_target, 0), part(phi_target, t)) for t in (1, 2)],
                               [(part(phi_out, 0), part(phi_out, t)) for t in (1, 2)],
                               flip_labels(masks[:, 0]), image_masks, classes),
            "cycle": style.cycle(gen.apply({"params": params}, clip, method="encode_video")[1],
                                 gen.apply({"params": params}, frames[:, :3], method="encode_video")[1],
                                 image_masks, masks[:, 0], classes),
            "adv": adversarial.logistic_g_loss(critic(d_params, frames[:, :3], clip)),
        }
        total = terms["adv"] + sum(float(lc[k]) * terms[k] for k in ("perceptual", "content", "style", "flow", "cycle"))
        return total, (terms, out, targets)

    def train_step(state, batch, rng, frozen):
        vgg = frozen["vgg19"]
        frames, masks, image, image_masks = split_batch(batch, classwise)
        b = frames.shape[0]
        noise = noise_for(rng, b, (*size, 64), config)
        fake = as_clips(jax.lax.stop_gradient(
            generate(state.params[G], vgg, frames, masks, image, image_masks, noise)[0]), b)
        real = frames[:, :3]

        def d_loss(d_params):
            l_real, l_fake = adversarial.logistic_d_loss(critic(d_params, real, flip(real)),
                                                         critic(d_params, real, fake))
            return l_real + l_fake, (l_real, l_fake)

        (loss_d, (l_real, l_fake)), d_grads = jax.value_and_grad(d_loss, has_aux=True)(state.params[D])
        state = state.apply_gradients(D, d_grads, d_tx)
        alpha = jnp.float32(lc.alpha_decay) ** state.step.astype(jnp.float32)
        (loss_g, (terms, out, targets)), g_grads = jax.value_and_grad(g_losses, has_aux=True)(
            state.params[G], state.params[D], vgg, batch, noise, alpha)
        state = state.apply_gradients(G, g_grads, g_tx)
        return state, {"loss": loss_g + loss_d, "loss_g": loss_g, "loss_d": loss_d, "d_real": l_real,
                       "d_fake": l_fake, "alpha": alpha, **terms,
                       "psnr": jnp.mean(psnr(jnp.clip(out, 0, 1), targets))}

    def eval_step(state, batch, frozen):
        frames, masks, image, image_masks = split_batch(batch, classwise)
        noise = noise_for(jax.random.key(int(config.seed)), frames.shape[0], (*size, 64), config)
        _, (terms, out, targets) = g_losses(state.params[G], state.params[D], frozen["vgg19"], batch,
                                            noise, jnp.float32(0.0))
        return {**terms, "psnr": jnp.mean(psnr(jnp.clip(out, 0, 1), targets))}

    def sample(state, batch, rng, frozen):
        frames, masks, image, image_masks = split_batch(batch, classwise)
        b = frames.shape[0]
        noise = noise_for(rng, b, (*size, 64), config)
        out = as_clips(generate(state.params[G], frozen["vgg19"], frames, masks, image, image_masks, noise)[0], b)
        n = min(4, b)
        row = jnp.concatenate([image[:n, None], out[:n]], axis=1)
        return {"reference": to_uint8(flip(frames[:n, :WINDOWS]) * 2 - 1), "animation": to_uint8(row * 2 - 1)}

    return Training(init=init, train_step=train_step, make_pipeline=make_pipeline,
                    eval_step=eval_step, sample=sample)
