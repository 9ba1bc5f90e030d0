"""The timescale autoencoder's training side: contrastive + reconstruction on frame pairs.

* reconstruction (paper eq. 3): decode(mask(w, k)) against pyramid level M-k at the
  anchor's time (`loss.target = "pyramid"`), or against the frame itself for every k
  (`"frame"`: L1 then drives the decoder towards the median frame given the slow bins),
  or, with `loss.period_target`, against the period's mean at the levels whose cutoff lies
  beyond the period (`levels.py`); weighted by lambda_k (`loss.level_weights`, default
  proportional to k: more weight on fast cutoffs);
* contrastive (eq. 1-2): for k = 1..M-1 a positive lies a gap in level k's band from its
  anchor and must agree in bins 0..k-1 (bands: `levels.py`; the exact NT-Xent form is in
  tlgen.losses.contrastive).

The state holds one network, "ae".
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from einops import rearrange, repeat

from tlgen.errors import UserError
from tlgen.family import Training
from tlgen.families.timescale_ae.levels import Levels, levels_for
from tlgen.losses.contrastive import contrastive_loss, pair_contrastive_loss
from tlgen.losses.reconstruction import reconstruction_loss
from tlgen.metrics.image import psnr
from tlgen.models import timescale_ae as ae
from tlgen.models.pixels import frame_shape, to_uint8
from tlgen.config import check_at_least, check_frame_size, compute_dtype
from tlgen.train.state import TrainState, make_optimizer

NET = "ae"


def losses(params, batch, *, config, lv: Levels, dtype) -> tuple[jax.Array, dict]:
    """Total loss and fp32 metrics of one pair batch (see the module docstring).

    With `loss.one_level_per_anchor`, anchor i uses only its positive of band i mod (M-1)
    and reconstructs only level k = i mod M + 1 (every level still gets its mean over
    its anchors): 2B encodes and B decodes per step instead of B(M) each.
    """
    cfg, lc = config.model, config.loss
    anchor, positive, pos_valid = batch["anchor"], batch["positive"], batch["pos_valid"]
    b, nb, m = anchor.shape[0], len(lv.contrastive_levels), lv.num_bins
    idx = jnp.arange(b)
    background = batch.get("background")            # (B, H, W, 3): each anchor's video's
    encode = lambda x: ae.encode(params, x, cfg=cfg, dtype=dtype)
    if lc.one_level_per_anchor:
        band = idx % nb
        codes = encode(jnp.concatenate([anchor, _pick(positive, band)], axis=0))
        w_anchor = codes[:b]
        c_loss, per_band = pair_contrastive_loss(
            w_anchor, codes[b:], idx, band, _pick(pos_valid, band),
            levels=lv.contrastive_levels, temperature=float(lc.temperature))
        kept = idx % m + 1                                              # (B,)
        recon = ae.decode(params, ae.mask(w_anchor, kept), background, cfg=cfg, dtype=dtype)
        target = _pick(batch["target"], kept - 1) if lc.target == "pyramid" else anchor
        for j, k in enumerate(lv.period_levels):
            target = jnp.where((kept == k)[:, None, None, None], batch["period_target"][:, j], target)
        level_of = jax.nn.one_hot(kept - 1, m, dtype=jnp.float32).T     # (M, B)
    else:
        frames = jnp.concatenate([anchor[:, None], positive], axis=1)
        codes = encode(rearrange(frames, "b n h w c -> (b n) h w c"))
        codes = rearrange(codes, "(b n) ... -> b n ...", n=1 + nb)
        w_anchor = codes[:, 0]
        c_loss, per_band = contrastive_loss(w_anchor, codes[:, 1:], pos_valid,
                                            levels=lv.contrastive_levels,
                                            temperature=float(lc.temperature))
        kept = jnp.repeat(jnp.arange(1, m + 1), b)                      # level-major (M*B,)
        w_all = repeat(w_anchor, "b ... -> (n b) ...", n=m)
        bg = None if background is None else repeat(background, "b ... -> (n b) ...", n=m)
        recon = ae.decode(params, ae.mask(w_all, kept), bg, cfg=cfg, dtype=dtype)
        target = (jnp.moveaxis(batch["target"], 1, 0) if lc.target == "pyramid" else
                  jnp.broadcast_to(anchor[None], (m,) + anchor.shape))
        for j, k in enumerate(lv.period_levels):
            target = target.at[k - 1].set(batch["period_target"][:, j])
        target = rearrange(target, "n b ... -> (n b) ...")
        level_of = jax.nn.one_hot(kept - 1, m, dtype=jnp.float32).T     # (M, M*B)
    target = ae.as_model_input(target)
    count = jnp.maximum(jnp.sum(level_of, axis=1), 1.0)
    per_level = level_of @ reconstruction_loss(recon, target, float(lc.alpha)) / count
    level_psnr = level_of @ psnr((recon + 1) / 2, (target + 1) / 2) / count
    r_loss = jnp.sum(jnp.asarray(lv.level_weights) * per_level)
    loss = float(lc.contrastive_weight) * c_loss + float(lc.recon_weight) * r_loss
    metrics = {"loss": loss, "contrastive": c_loss, "recon": r_loss}
    for i, kk in enumerate(lv.contrastive_levels):
        metrics[f"contrastive_k{kk}"] = per_band[i]
    for i in range(m):
        metrics[f"recon_k{i + 1}"] = per_level[i]
        metrics[f"psnr_k{i + 1}"] = level_psnr[i]
    return loss, metrics


def _pick(x: jax.Array, j: jax.Array) -> jax.Array:
    """x[i, j[i]] for every row i, as a masked reduction (no gather across a sharded batch)."""
    hit = jnp.arange(x.shape[1])[None, :] == j[:, None]
    hit = hit.reshape(hit.shape + (1,) * (x.ndim - 2))
    return jnp.max(jnp.where(hit, x, jnp.zeros((), x.dtype)), axis=1)


POSITIVES = ("apart", "look")


def period_positive(config) -> str:
    """`loss.period_positive`: the positive of a period band one period "apart", or the frame
    of the same phase on another day nearest in "look" (see `levels.py`)."""
    value = config.loss.get("period_positive", "apart")
    if value not in POSITIVES:
        raise UserError(f"config.loss.period_positive is {value!r}; use one of {', '.join(POSITIVES)}.")
    return value


def training(config) -> Training:
    """The functions the trainer runs for `config.family = "timescale_ae"`."""
    m = config.model
    check_at_least(config, {"model.widths": 1, "model.blocks": 0, "model.bin_channels": 1},
                   positive=("loss.temperature",))
    check_frame_size(config, "model.image_size", 2 ** (len(m.widths) - 1), "the encoder halves "
                     "it once per entry of config.model.widths after the first")
    lv = levels_for(config)
    look_bands = lv.period_bands if period_positive(config) == "look" else ()
    if config.mesh.get("axis_types") == "explicit" and not config.loss.one_level_per_anchor:
        raise UserError("config.loss.one_level_per_anchor=False is supported with "
                        "config.mesh.axis_types='auto' only; set one of them.")
    dtype = compute_dtype(config)
    tx = make_optimizer(config.optim, total_steps=config.total_steps,
                        grad_accum=config.train.grad_accum)
    ema_decay = float(config.train.ema_decay)
    loss_fn = lambda p, b: losses(p, b, config=config, lv=lv, dtype=dtype)

    def init(rng, batch):
        del batch
        ema = (NET,) if ema_decay else ()
        return TrainState.create({NET: ae.init(rng, config.model)}, {NET: tx}, ema=ema)

    def train_step(state, batch, rng):
        del rng
        (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params[NET], batch)
        return state.apply_gradients(NET, grads, tx).update_ema(ema_decay), metrics

    def eval_step(state, batch):
        return loss_fn(state.for_inference(NET), batch)[1]

    def sample(state, batch, rng):
        del rng
        params = state.for_inference(NET)
        anchor = batch["anchor"][:8]
        background = batch["background"][:8] if "background" in batch else None
        w = ae.encode(params, anchor, cfg=config.model, dtype=dtype)
        rows = [ae.as_model_input(anchor)]
        for kk in range(lv.num_bins, 0, -1):
            rows.append(ae.decode(params, ae.mask(w, kk), background, cfg=config.model,
                                  dtype=dtype))
        strip = jnp.concatenate(rows, axis=2)        # frame, then k = M..1 bins, left to right
        return {"recon_levels": to_uint8(strip)}

    def make_pipeline(split: str, shard_index: int, shard_count: int):
        from tlgen.data.pipelines import pair_dataset, per_process_batch

        return pair_dataset(config.data.dir, split, gap_bands=lv.gap_bands,
                            target_levels=lv.target_levels,
                            batch_size=per_process_batch(int(config.data.batch_size), shard_count),
                            seed=int(config.seed) + (split != "train"),
                            shard_index=shard_index, shard_count=shard_count,
                            augment=bool(config.data.augment) and split == "train",
                            worker_count=int(config.data.worker_count),
                            with_background=bool(config.model.get("background", False)),
                            period_windows=[lv.cutoffs[k - 1] for k in lv.period_levels],
                            period=float(config.loss.period),
                            look_bands=look_bands)

    return Training(init=init, train_step=train_step, make_pipeline=make_pipeline,
                    eval_step=eval_step, sample=sample)


def example_batch(config, batch_size: int) -> dict:
    """Zero arrays shaped like one pair batch (see `tlgen.data.pipelines.pair_dataset`)."""
    lv = levels_for(config)
    size, k, l = frame_shape(config.model.image_size), len(lv.gap_bands), len(lv.target_levels)
    frames = lambda *lead: np.zeros(lead + size + (3,), np.uint8)
    batch = {"anchor": frames(batch_size), "positive": frames(batch_size, k),
             "pos_valid": np.ones((batch_size, k), bool), "gap": np.zeros((batch_size, k), np.float32),
             "target": frames(batch_size, l), "time": np.zeros((batch_size,), np.float32),
             "video_id": np.zeros((batch_size,), np.int32)}
    if config.model.get("background", False):
        batch["background"] = frames(batch_size)
    if lv.period_levels:
        batch["period_target"] = frames(batch_size, len(lv.period_levels))
    return batch
