"""The timescale autoencoder family: contrastive + reconstruction training on frame pairs.

Levels and bands. With M bins and the dataset's pyramid periods P (P[0] = frame interval),
keeping k bins (k = 1..M) keeps the changes slower than the cutoff C_k = P[M-k]:

* reconstruction (paper eq. 3): decode(mask(w, k)) against pyramid level M-k at the
  anchor's time (`loss.target = "pyramid"`), or against the frame itself for every k
  (`"frame"`: L1 then drives the decoder towards the median frame given the slow bins),
  weighted by lambda_k (`loss.level_weights`, default proportional to k: more weight on
  fast cutoffs);
* contrastive (eq. 1-2): for k = 1..M-1 a positive lies a gap in
  [gap_band[0] * C_k, gap_band[1] * C_k) from its anchor and must agree in bins 0..k-1
  (bands are widened to hold at least one frame interval P[0]; `loss.gap_bands` sets
  them in seconds instead, e.g. one day apart for a day-periodic slow level; the exact
  NT-Xent form is in tlgen.losses.contrastive).

The state holds one network, "ae". `load(workdir)` restores a trained model for synthesis
and evaluation.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tlgen import checkpoint
from tlgen.errors import UserError
from tlgen.losses.contrastive import contrastive_loss, pair_contrastive_loss
from tlgen.losses.reconstruction import reconstruction_loss
from tlgen.metrics.image import psnr
from tlgen.models import timescale_ae as ae
from tlgen.models.pixels import to_uint8
from tlgen.train.registry import Family
from tlgen.train.state import TrainState, compute_dtype, make_optimizer

NET = "ae"


@dataclasses.dataclass(frozen=True)
class Levels:
    """How bins, pyramid levels and gap bands line up for one dataset."""
    num_bins: int
    level_periods: tuple[float, ...]
    gap_bands: tuple[tuple[float, float], ...]     # seconds, one per contrastive level
    contrastive_levels: tuple[int, ...]            # bins kept for each gap band
    target_levels: tuple[int, ...]                 # pyramid level per reconstruction level
    level_weights: tuple[float, ...]               # lambda_k for k = 1..M

    @property
    def cutoffs(self) -> tuple[float, ...]:
        """C_k for k = 1..M (seconds): the slowest bins kept by mask(w, k)."""
        m = self.num_bins
        return tuple(self.level_periods[m - k] for k in range(1, m + 1))


def make_levels(config, level_periods) -> Levels:
    """The bin/level/band layout of `config` on a dataset with `level_periods`."""
    m = int(config.model.num_bins)
    periods = tuple(float(p) for p in level_periods)
    if len(periods) < m:
        raise UserError(f"config.model.num_bins is {m} but the dataset has {len(periods)} pyramid "
                        f"levels; prepare it with `--levels {m}` or set --config.model.num_bins="
                        f"{len(periods)}.")
    lo, hi = (float(x) for x in config.loss.gap_band)
    if not 0 <= lo < hi:
        raise UserError(f"config.loss.gap_band {tuple(config.loss.gap_band)} must be (lo, hi) "
                        "with 0 <= lo < hi (fractions of each level's cutoff).")
    cutoffs = [periods[m - k] for k in range(1, m + 1)]
    levels = tuple(range(1, m))
    # Gaps shorter than the frame interval do not exist: every band keeps at least one step.
    step = periods[0]
    bands = tuple((max(lo * cutoffs[k - 1], step * (1 - 1e-6)),
                   max(hi * cutoffs[k - 1], max(lo * cutoffs[k - 1], step) + step))
                  for k in levels)
    explicit = tuple(tuple(float(x) for x in band) for band in config.loss.gap_bands)
    if explicit:
        if len(explicit) != len(levels) or any(
                len(b) != 2 or (b != (0.0, 0.0) and not 0 <= b[0] < b[1]) for b in explicit):
            raise UserError(f"config.loss.gap_bands needs {len(levels)} (lo, hi) pairs in seconds "
                            f"with 0 <= lo < hi (or (0, 0): derived from gap_band), one per level "
                            f"k = 1..{m - 1}; got {explicit}.")
        bands = tuple(b if b[1] > 0 else a for a, b in zip(bands, explicit))
    targets = tuple(m - k for k in range(1, m + 1)) if config.loss.target == "pyramid" else (0,)
    if config.loss.target not in ("pyramid", "frame"):
        raise UserError(f"config.loss.target is {config.loss.target!r}; use pyramid or frame.")
    weights = tuple(float(x) for x in config.loss.level_weights) or tuple(
        float(k) for k in range(1, m + 1))
    if len(weights) != m:
        raise UserError(f"config.loss.level_weights has {len(weights)} entries; give one per "
                        f"bin count k = 1..{m} (or none for the default).")
    total = sum(weights)
    return Levels(m, periods[:m], bands, levels, targets, tuple(w / total for w in weights))


def _dataset_levels(config) -> Levels:
    from tlgen.data import open_dataset

    if not config.data.dir:
        raise UserError("config.data.dir is empty; pass --config.data.dir=DATASET (a folder "
                        "written by `tlgen prepare`).")
    ds = open_dataset(config.data.dir)
    size = tuple(ds.image_size)
    if size != (config.model.image_size,) * 2:
        raise UserError(f"{config.data.dir} holds {size[0]}x{size[1]} frames but the model is "
                        f"{config.model.image_size}x{config.model.image_size}; prepare it with "
                        f"--size {config.model.image_size} or pick another variant.")
    return make_levels(config, ds.level_periods)


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
    encode = lambda x: ae.encode(params, x, cfg=cfg, dtype=dtype)
    if lc.one_level_per_anchor:
        band = idx % nb
        codes = encode(jnp.concatenate([anchor, _pick(positive, band)], axis=0))
        w_anchor = codes[:b]
        c_loss, per_band = pair_contrastive_loss(
            w_anchor, codes[b:], idx, band, _pick(pos_valid, band),
            levels=lv.contrastive_levels, temperature=float(lc.temperature))
        kept = idx % m + 1                                              # (B,)
        recon = ae.decode(params, ae.mask(w_anchor, kept), cfg=cfg, dtype=dtype)
        target = _pick(batch["target"], kept - 1) if lc.target == "pyramid" else anchor
        level_of = jax.nn.one_hot(kept - 1, m, dtype=jnp.float32).T     # (M, B)
    else:
        frames = jnp.concatenate([anchor[:, None], positive], axis=1)
        codes = encode(frames.reshape((-1,) + frames.shape[2:]))
        codes = codes.reshape((b, 1 + nb) + codes.shape[1:])
        w_anchor = codes[:, 0]
        c_loss, per_band = contrastive_loss(w_anchor, codes[:, 1:], pos_valid,
                                            levels=lv.contrastive_levels,
                                            temperature=float(lc.temperature))
        kept = jnp.repeat(jnp.arange(1, m + 1), b)                      # level-major (M*B,)
        w_all = jnp.broadcast_to(w_anchor[None], (m,) + w_anchor.shape).reshape(
            (m * b,) + w_anchor.shape[1:])
        recon = ae.decode(params, ae.mask(w_all, kept), cfg=cfg, dtype=dtype)
        target = (jnp.moveaxis(batch["target"], 1, 0) if lc.target == "pyramid" else
                  jnp.broadcast_to(anchor[None], (m,) + anchor.shape))
        target = target.reshape((m * b,) + anchor.shape[1:])
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


def make_family(config) -> Family:
    """The Family the trainer runs for `config.family = "timescale_ae"`."""
    lv = _dataset_levels(config)
    if config.mesh.get("axis_types") == "explicit" and not config.loss.one_level_per_anchor:
        raise UserError("config.loss.one_level_per_anchor=False is supported with "
                        "config.mesh.axis_types='auto' only; set one of them.")
    dtype = compute_dtype(config)
    tx = optimizer(config)
    ema_decay = float(config.train.ema_decay)
    loss_fn = lambda p, b: losses(p, b, config=config, lv=lv, dtype=dtype)

    def init(rng, batch):
        del batch
        return initial_state(rng, config, tx)

    def train_step(state, batch, rng):
        del rng
        (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params[NET], batch)
        return state.apply_gradients(NET, grads, tx).update_ema(ema_decay), metrics

    def eval_step(state, batch):
        return loss_fn(inference_params(state), batch)[1]

    def sample(state, batch, rng):
        del rng
        params = inference_params(state)
        anchor = batch["anchor"][:8]
        w = ae.encode(params, anchor, cfg=config.model, dtype=dtype)
        rows = [ae.as_model_input(anchor)]
        for kk in range(lv.num_bins, 0, -1):
            rows.append(ae.decode(params, ae.mask(w, kk), cfg=config.model, dtype=dtype))
        strip = jnp.concatenate(rows, axis=2)        # frame, then k = M..1 bins, left to right
        return {"recon_levels": to_uint8(strip)}

    def make_pipeline(split: str, shard_index: int, shard_count: int):
        from tlgen.data.pipelines import pair_dataset

        batch = int(config.data.batch_size)
        if batch % shard_count:
            raise UserError(f"config.data.batch_size {batch} is not divisible by {shard_count} processes.")
        return pair_dataset(config.data.dir, split, gap_bands=lv.gap_bands,
                            target_levels=lv.target_levels, batch_size=batch // shard_count,
                            seed=int(config.seed) + (split != "train"),
                            shard_index=shard_index, shard_count=shard_count,
                            augment=bool(config.data.augment) and split == "train",
                            worker_count=int(config.data.worker_count))

    return Family(init=init, train_step=train_step, make_pipeline=make_pipeline,
                  eval_step=eval_step, sample=sample, evaluate=evaluate)


def optimizer(config):
    """The optax transformation of `config.optim`."""
    return make_optimizer(config.optim, total_steps=config.total_steps,
                          grad_accum=config.train.grad_accum)


def initial_state(rng, config, tx) -> TrainState:
    """The step-0 state: fresh parameters, `tx`'s state, an EMA copy when the run keeps one."""
    ema = (NET,) if float(config.train.ema_decay) else ()
    return TrainState.create({NET: ae.init(rng, config.model)}, {NET: tx}, ema=ema)


def inference_params(state: TrainState):
    """The EMA parameters when the run keeps them, else the trained ones."""
    return state.ema[NET] if state.ema else state.params[NET]


@dataclasses.dataclass(frozen=True)
class Trained:
    """A trained timescale autoencoder loaded from a work directory."""
    config: Any
    params: Any
    step: int

    @property
    def dtype(self):
        return compute_dtype(self.config)


def load(workdir: str, *, step: int | None = None) -> Trained:
    """Restores the newest (or given) checkpoint of a timescale_ae work directory."""
    config = checkpoint.run_config(workdir, "timescale_ae")
    shapes = jax.eval_shape(lambda r: initial_state(r, config, optimizer(config)), jax.random.key(0))
    chosen, state = checkpoint.restore_for_inference(workdir, shapes, step)
    return Trained(config=config, params=inference_params(state), step=chosen)


def video_frames(ds, video_id: int = 0, splits=None):
    """All frames of one video across the dataset's splits, in time order.

    Returns (times (F,) float64 seconds from the video's first frame,
    get_frames(indices) -> uint8 (N, H, W, 3)).
    """
    parts = []
    for split in splits or ds.splits:
        source = ds.frames(split)
        for block in ds.blocks(split, 0):
            if block.video_id == video_id:
                parts += [(float(t), source, block.start + i) for i, t in enumerate(block.times)]
    if not parts:
        ids = sorted({v["id"] for v in ds.metadata["videos"]})
        raise UserError(f"{ds.data_dir} has no video {video_id}; its videos are {ids}.")
    parts.sort(key=lambda p: p[0])
    times = np.asarray([p[0] for p in parts])

    def get_frames(indices):
        return np.stack([parts[int(i)][1][parts[int(i)][2]]["image"] for i in np.asarray(indices)])
    return times, get_frames


def evaluate(workdir: str, data_dir: str | None = None, *, max_frames: int = 64,
             timelapse_frames: int = 48, out_dir: str | None = None) -> dict:
    """`tlgen eval` for a timescale_ae run; writes eval/report.{json,md} and PNG plots.

    On the validation split (first block of the first video): reconstruction PSNR / SSIM /
    MS-SSIM per level against the pyramid target; for synthetic scenes band fidelity per
    cutoff: PSNR against the scene's ground-truth band of the masked reconstruction
    ("decode"), of the frame with the fast bins' decoded contribution removed ("detail":
    x - (decode(w) - decode(mask(w, k)))), of the temporal pyramid and of the raw frame;
    E_tmp of generated timelapses vs raw subsampling of the same span; the PCA of the
    latent trajectory.
    """
    from tlgen.data import open_dataset
    from tlgen.metrics import timescale_eval as rep
    from tlgen.metrics.image import ms_ssim, ssim
    from tlgen.metrics.temporal import e_tmp
    from tlgen.synth.timelapse import Synthesizer

    trained = load(workdir)
    config, params, dtype = trained.config, trained.params, trained.dtype
    data_dir = data_dir or config.data.dir
    ds = open_dataset(data_dir)
    lv = make_levels(config, ds.level_periods)
    m = lv.num_bins
    split = "validation" if "validation" in ds.splits else ds.splits[0]
    block = ds.blocks(split, 0)[0]
    source = ds.frames(split)
    pick = np.unique(np.linspace(0, block.count - 1, min(max_frames, block.count)).astype(int))
    times = block.times[pick]
    raw_u8 = np.stack([source[block.start + i]["image"] for i in pick])
    raw = raw_u8.astype(np.float32) / 255.0
    times_all, get_frames = video_frames(ds, block.video_id, [split])
    synth = Synthesizer(params, config.model, get_frames, times_all, lv.level_periods, dtype=dtype)
    w = synth.encode(raw_u8)
    full = np.asarray(synth.decode(w) + 1) / 2
    decoded, detail, pyramid = [], [], []
    recon_rows = []
    for k in range(1, m + 1):
        level = m - k
        dk = np.asarray(synth.decode(ae.mask(w, k)) + 1) / 2
        decoded.append(np.clip(dk, 0, 1))
        detail.append(np.clip(raw - (full - dk), 0, 1))
        if level == 0:
            target = raw
        else:
            lsrc = ds.pyramid_level(split, level)
            lblock = next(b for b in ds.blocks(split, level) if b.video_id == block.video_id)
            target = np.stack([ds.level_at(lsrc, lblock, level, t) for t in times]) / 255.0
        pyramid.append(target.astype(np.float32))
        recon_rows.append({"bins_kept": k, "cutoff_s": lv.cutoffs[k - 1], "pyramid_level": level,
                           "psnr": round(rep.mean_psnr(decoded[-1], target), 3),
                           "ssim": round(float(np.mean(ssim(decoded[-1], target))), 4),
                           "ms_ssim": round(float(np.mean(ms_ssim(decoded[-1], target))), 4),
                           "psnr_vs_frame": round(rep.mean_psnr(decoded[-1], raw), 3)})
    out_dir = out_dir or os.path.join(workdir, "eval")
    os.makedirs(out_dir, exist_ok=True)
    report = {"workdir": os.path.abspath(workdir), "data_dir": os.path.abspath(data_dir),
              "step": trained.step, "split": split, "num_frames": int(len(pick)),
              "reconstruction": recon_rows, "notes": []}
    spec = ds.metadata.get("synthetic")
    if spec:
        from tlgen.data.synthetic import make_scene
        scene = make_scene(**spec)
        truth = [scene.render_band(times, c) for c in lv.cutoffs]
        rows = rep.band_fidelity_rows(lv.cutoffs, truth, {
            "decode": decoded, "detail": detail, "pyramid": pyramid, "raw": [raw] * m})
        report["band_fidelity"] = rows
        rep.plot_band_fidelity(os.path.join(out_dir, "band_fidelity.png"), rows,
                               ["decode", "detail", "pyramid", "raw"])
        wins = [r["cutoff_s"] for r in rows if r["decode"] > r["pyramid"]]
        report["notes"].append(f"decode(mask(w, k)) beats the temporal pyramid at {len(wins)} of "
                               f"{len(rows)} cutoffs ({', '.join(f'{c:g}s' for c in wins) or 'none'}).")

    t0, t1 = float(times_all[0]), float(times_all[-1])
    n = int(min(timelapse_frames, len(times_all)))
    raw_sub = synth.timelapse(t0, t1, n, mode="subsample")
    raw_frames = get_frames(np.searchsorted(times_all, raw_sub.source_times[:, 0]))
    tl_rows = [{"method": "raw subsample", "keep_bins": m, "e_tmp": round(e_tmp(raw_frames), 2)}]
    for mode in ("subsample", "interpolate", "multiscale"):
        out = synth.timelapse(t0, t1, n, mode=mode)
        tl_rows.append({"method": f"{mode} (masked)", "keep_bins": out.keep_bins,
                        "e_tmp": round(e_tmp(out.frames), 2)})
    report["timelapse"] = tl_rows
    report["timelapse_span_s"] = [t0, t1]

    traj = synth.encode_frames(np.arange(len(times_all))[:: max(1, len(times_all) // 256)])
    sel_times = times_all[:: max(1, len(times_all) // 256)]
    coords = {"all bins": rep.pca_2d(np.asarray(traj))[0],
              "bin 0 (slowest)": rep.pca_2d(np.asarray(traj[:, 0]))[0],
              f"bin {m - 1} (fastest)": rep.pca_2d(np.asarray(traj[:, m - 1]))[0]}
    rep.plot_latent_pca(os.path.join(out_dir, "latent_pca.png"), coords, sel_times)
    report["plots"] = sorted(p for p in os.listdir(out_dir) if p.endswith(".png"))
    report["files"] = rep.write_report(out_dir, report)
    return report
