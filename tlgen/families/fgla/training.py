"""FGLA's training side: frame pairs with their flow and region masks (Xue et al. §3.3).

Batches are pairs (I_t, I_t+s) of frames `data.stride` apart (the paper: one in four) with
the flow between them and the region masks of I_t. The target flow warps I_t into I_t+s
(`flow_ops.warp` is backward): the negated stored forward flow, exact for translations.
The encoder sees the flow and masks flipped horizontally (values kept), so a latent cannot
carry where things are, only how they move (the paper's self-supervision); the generator
sees I_t and the latent map painted with the unflipped masks and predicts the flow.

loss = frame_weight * L1(warp(I_t, F^), I_t+s) + flow_weight * L1(F^, F)
       + tv_weight * edge-aware TV(F^; warp(I_t, F^), sigma)        (paper eq. 8-12)
with flows in half-image units (the generator's own), images in [-1, 1].

The state holds one network, "fgla": {"encoder", "generator"}; no discriminator.
"""

from __future__ import annotations

import logging

import einops
import jax
import jax.numpy as jnp
import numpy as np

from tlgen.config import check_at_least, check_frame_size, compute_dtype
from tlgen.errors import UserError
from tlgen.family import Training
from tlgen.metrics.image import psnr
from tlgen.models import fgla
from tlgen.models.flow_ops import warp
from tlgen.models.pixels import frame_shape, to_model_range, to_uint8
from tlgen.train.state import TrainState, make_optimizer

NET = "fgla"
log = logging.getLogger(__name__)


def networks(config, dtype=jnp.float32) -> tuple[fgla.MotionEncoder, fgla.MotionGenerator]:
    """(motion encoder, generator) of `config.model`, after checking the config."""
    m = config.model
    check_at_least(config, {"data.stride": 1, "model.latent_dim": 1, "model.encoder_widths": 1,
                            "model.generator_widths": 1}, positive=("model.flow_scale", "model.flow_divisor"))
    check_frame_size(config, "data.image_size", 2 ** (len(m.generator_widths) - 1), "the generator "
                     "halves it once per entry of config.model.generator_widths after the first")
    return (fgla.MotionEncoder(tuple(m.encoder_widths), int(m.latent_dim), bool(m.per_region),
                               float(m.flow_scale), dtype),
            fgla.MotionGenerator(tuple(m.generator_widths), float(m.flow_divisor), dtype))


def region_masks(masks: jax.Array, num_regions: int) -> jax.Array:
    """Class-index masks (B, H, W) -> one 0/1 mask per region (B, R, H, W)."""
    return (masks[:, None] == jnp.arange(num_regions)[None, :, None, None]).astype(jnp.float32)


def edge_aware_tv(flow: jax.Array, image: jax.Array, sigma: float) -> jax.Array:
    """Mean over pixels p of sum over q in {right, above neighbour} of
    exp(-|I(p) - I(q)|_1 / sigma) * |F(p) - F(q)|_1 (paper eq. 10-11); the edge weights are
    not differentiated (they say where edges are, they are not a target)."""
    image = jax.lax.stop_gradient(image)
    total = 0.0
    for axis in (2, 1):                       # right neighbour (x + 1), above neighbour (y - 1)
        n = flow.shape[axis]
        f0, f1 = (jax.lax.slice_in_dim(flow, s, s + n - 1, axis=axis) for s in (0, 1))
        i0, i1 = (jax.lax.slice_in_dim(image, s, s + n - 1, axis=axis) for s in (0, 1))
        weight = jnp.exp(-jnp.sum(jnp.abs(i0 - i1), axis=-1) / sigma)
        total = total + jnp.mean(weight * jnp.sum(jnp.abs(f0 - f1), axis=-1))
    return total


def split_batch(batch: dict, num_regions: int, has_masks: bool = True):
    """-> (I_t, I_t+s in [-1, 1], target flow (pixels) warping I_t into I_t+s, masks (B, R, H, W))."""
    frames = to_model_range(batch["frames"])
    image, nxt = frames[:, 0], frames[:, 1]
    target = -batch["flow"][:, 0].astype(jnp.float32)
    if has_masks:
        masks = region_masks(batch["masks"][:, 0], num_regions)
    else:
        masks = jnp.ones((image.shape[0], 1) + image.shape[1:3], jnp.float32)
        masks = jnp.pad(masks, ((0, 0), (0, num_regions - 1), (0, 0), (0, 0)))
    return image, nxt, target, masks


def predict(params, encoder, generator, image, target, masks):
    """The generator's flow for `image` given the motion encoded from `target` (flipped)."""
    latents = encoder.apply({"params": params["encoder"]}, target[:, :, ::-1], masks[:, :, :, ::-1])
    return generator.apply({"params": params["generator"]}, image, fgla.latent_map(latents, masks))


def losses(params, batch, *, config, encoder, generator, has_masks=True):
    lc, r = config.loss, len(config.model.regions)
    image, nxt, target, masks = split_batch(batch, r, has_masks)
    pred = predict(params, encoder, generator, image, target, masks)
    warped = warp(image, pred)
    unit = jnp.asarray([image.shape[2] / 2, image.shape[1] / 2], jnp.float32)
    frame_l1 = jnp.mean(jnp.abs(warped - nxt))
    flow_l1 = jnp.mean(jnp.abs(pred / unit - target / unit))
    tv = edge_aware_tv(pred / unit, warped, float(lc.tv_sigma))
    loss = float(lc.frame_weight) * frame_l1 + float(lc.flow_weight) * flow_l1 + float(lc.tv_weight) * tv
    epe = jnp.mean(jnp.linalg.norm(pred - target, axis=-1))
    return loss, {"loss": loss, "frame_l1": frame_l1, "flow_l1": flow_l1, "tv": tv, "flow_epe": epe,
                  "psnr": jnp.mean(psnr((warped + 1) / 2, (nxt + 1) / 2))}


def has_masks(config, run: str | None = None) -> bool:
    """Whether the dataset has region masks (without them every pixel is region 0); True when
    the config names no dataset. UserError when its masks hold more classes than
    `config.model.regions` names. `run`: the trained workdir that uses it, named in errors."""
    from tlgen.data.dataset import open_training_data
    if not config.data.dir:
        return True
    ds = open_training_data(config.data.dir, image_size=frame_shape(config.data.image_size), flow=True,
                            run=run)
    classes, regions = int(ds.metadata.get("num_classes", 0)), len(config.model.regions)
    if ds.metadata.get("has_masks") and classes > regions:
        raise UserError(f"{config.data.dir} has {classes} mask classes but config.model.regions "
                        f"names {regions}; name one region per class (class k is regions[k]).")
    return bool(ds.metadata.get("has_masks"))


def training(config) -> Training:
    """The functions the trainer runs for `config.family = "fgla"`."""
    dtype = compute_dtype(config)
    encoder, generator = networks(config, dtype)
    tx = make_optimizer(config.optim, total_steps=config.total_steps, grad_accum=config.train.grad_accum)
    ema_decay = float(config.train.ema_decay)
    if not config.model.regions:
        raise UserError("config.model.regions is empty; name the regions of the masks' classes "
                        "(class k is regions[k]).")
    masked = has_masks(config)
    if not masked:
        log.warning("%s has no region masks: FGLA trains with one region (%s) covering every "
                    "pixel; prepare it with --masks DIR for per-region motion",
                    config.data.dir, config.model.regions[0])
    loss_fn = lambda p, b: losses(p, b, config=config, encoder=encoder, generator=generator,
                                  has_masks=masked)

    def make_pipeline(split, shard_index, shard_count):
        from tlgen.data.pipelines import clip_dataset, per_process_batch
        return clip_dataset(config.data.dir, split, length=2, stride=int(config.data.stride),
                            batch_size=per_process_batch(int(config.data.batch_size), shard_count),
                            seed=int(config.seed) + (split != "train"), shard_index=shard_index,
                            shard_count=shard_count, with_flow=True, with_masks=masked,
                            augment=bool(config.data.augment) and split == "train",
                            worker_count=int(config.data.worker_count))

    def init(rng, batch):
        image, _, target, masks = split_batch(batch, len(config.model.regions), masked)
        ke, kg = jax.random.split(rng)
        enc = encoder.init(ke, target[:1], masks[:1])["params"]
        lmap = jnp.zeros(image.shape[:3] + (int(config.model.latent_dim),))
        gen = generator.init(kg, image[:1], lmap[:1])["params"]
        ema = (NET,) if ema_decay else ()
        return TrainState.create({NET: {"encoder": enc, "generator": gen}}, {NET: tx}, ema=ema)

    def train_step(state, batch, rng):
        (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params[NET], batch)
        return state.apply_gradients(NET, grads, tx).update_ema(ema_decay), metrics

    def eval_step(state, batch):
        return loss_fn(state.for_inference(NET), batch)[1]

    def sample(state, batch, rng):
        params = state.for_inference(NET)
        image, nxt, target, masks = split_batch(batch, len(config.model.regions), masked)
        image, target, masks = image[:4], target[:4], masks[:4]
        latents = encoder.apply({"params": params["encoder"]}, target[:, :, ::-1], masks[:, :, :, ::-1])
        lmap = fgla.latent_map(latents, masks)
        step = lambda frame, latent_map: generator.apply({"params": params["generator"]}, frame, latent_map)
        frames, _ = fgla.animate_flows(image, step, jnp.broadcast_to(lmap, (7,) + lmap.shape))
        video = einops.rearrange(jnp.concatenate([image[None], frames], axis=0), "t b h w c -> b t h w c")
        return {"animation": to_uint8(video)}

    return Training(init=init, train_step=train_step, make_pipeline=make_pipeline,
                    eval_step=eval_step, sample=sample)


def example_batch(config, batch_size: int) -> dict:
    """Zero arrays shaped like one pair batch (label maps when the dataset has them, as
    without one)."""
    size = frame_shape(config.data.image_size)
    masks = {"masks": np.zeros((batch_size, 2, *size), np.uint8)} if has_masks(config) else {}
    return {"frames": np.zeros((batch_size, 2, *size, 3), np.uint8),
            "flow": np.zeros((batch_size, 1, *size, 2), np.float32), **masks,
            "time": np.zeros((batch_size, 2), np.float32)}
