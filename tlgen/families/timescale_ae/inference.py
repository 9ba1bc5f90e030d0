"""The timescale autoencoder's inference side: timelapses and evaluation from a trained run.

`open_synthesizer(trained, data, video)` pairs a loaded model (`tlgen.trained.load`) with one
video of a prepared dataset; `render_timelapse` makes the timelapse a `tlgen timelapse`
command asks for; `evaluate` is `tlgen eval`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os

import numpy as np

from tlgen.data.dataset import open_training_data
from tlgen.errors import UserError
from tlgen.families.timescale_ae.levels import nearest_level, trained_levels
from tlgen.families.timescale_ae.training import NET
from tlgen.metrics import timescale_eval as rep
from tlgen.metrics.image import ms_ssim, ssim
from tlgen.metrics.protocol import Networks, video_metrics
from tlgen.metrics.temporal import e_tmp
from tlgen.models import timescale_ae as ae
from tlgen.models.pixels import frame_shape
from tlgen.synth.timelapse import Synthesizer, Timelapse
from tlgen.trained import Trained


def open_run_data(trained: Trained, data: str | None):
    """The dataset `data` (default: the run's own), checked to hold frames of the run's size."""
    return open_training_data(trained.data_dir(data),
                              image_size=frame_shape(trained.config.model.image_size), run=trained.workdir)


def open_synthesizer(trained: Trained, data: str | None = None, video: int = 0
                     ) -> tuple[Synthesizer, float]:
    """The trained model over video `video` of its dataset (or of `data`): (Synthesizer, the
    video's start time in seconds since the epoch, 0 when unknown)."""
    ds = open_run_data(trained, data)
    lv = trained_levels(trained.config, ds.level_periods, trained.workdir)
    times, get_frames = ds.video_frames(video)
    meta = next((v for v in ds.metadata["videos"] if v["id"] == video), {})
    return synthesizer(trained, lv, get_frames, times), float(meta.get("start_time") or 0.0)


def synthesizer(trained: Trained, lv, get_frames, times) -> Synthesizer:
    """The trained model over the video whose frames `get_frames` reads at `times`, with the
    bins' periods of `lv` (`trained_levels`) and the model's period (`loss.period`)."""
    return Synthesizer(trained.params[NET], trained.config.model, get_frames, times,
                       lv.level_periods, dtype=trained.dtype,
                       period=float(trained.config.loss.get("period", 0.0)))


def parse_time(text: str | None, start_time: float, default: float, what: str) -> float:
    """Seconds from the video's first frame, from seconds or an ISO-8601 date-time."""
    if text is None:
        return default
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not np.isfinite(seconds):
            raise UserError(f"{what} {text!r} is not a finite number of seconds.")
        return seconds
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{what} {text!r} is neither seconds nor an ISO-8601 date-time "
                        "like 2021-06-01T12:00.") from None
    if not start_time:
        raise UserError(f"{what} {text!r} is a date-time but the video has no absolute start "
                        "time; give seconds from its first frame.")
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp() - start_time


def _when(t: float, start_time: float) -> str:
    """Seconds from the video's first frame, as a date-time when the video has one."""
    if not start_time:
        return f"{t:g} s"
    return dt.datetime.fromtimestamp(start_time + t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S UTC")


def _span(t0: float, t1: float, start_time: float) -> str:
    return f"{t0:g}-{t1:g} s" if not start_time else f"{_when(t0, start_time)} to {_when(t1, start_time)}"


# The synthesizer's words for its arguments -> the flags that give them
_FLAGS = {"keep bins": "--keep-bins", "remove band": "--remove-band", "insert band": "--insert-band"}


def render_timelapse(synth: Synthesizer, start_time: float, args: argparse.Namespace) -> Timelapse:
    """The timelapse of `tlgen timelapse`'s arguments (span, mode, mask, band edits)."""
    times = synth.frame_times
    t0 = parse_time(args.start, start_time, float(times[0]), "--start")
    t1 = parse_time(args.end, start_time, float(times[-1]), "--end")
    video = _span(float(times[0]), float(times[-1]), start_time)
    if not times[-1] > times[0]:
        raise UserError(f"the video has one frame ({_when(float(times[0]), start_time)}); a timelapse "
                        "spans time: choose a video of several frames (--video), or prepare longer footage.")
    if t1 <= times[0] or t0 >= times[-1]:
        raise UserError(f"--start/--end span {_span(t0, t1, start_time)} lies outside the video's "
                        f"{video}; choose times within it.")
    if not t1 > t0:
        raise UserError(f"--end ({t1:g} s) must be after --start ({t0:g} s).")
    if t0 < times[0] or t1 > times[-1]:
        logging.getLogger(__name__).warning(
            "--start/--end span %s reaches past the video's %s: frames beyond it show its nearest "
            "end", _span(t0, t1, start_time), video)
    insert_from = (parse_time(args.insert_from, start_time, 0.0, "--from")
                   if args.insert_from is not None else None)
    if insert_from is not None and not times[0] <= insert_from <= times[-1]:
        raise UserError(f"--from {_when(insert_from, start_time)} lies outside the video's {video}; "
                        "take the band from a time within it.")
    try:
        return synth.timelapse(t0, t1, args.frames, mode=args.mode, keep_bins=args.keep_bins,
                               min_period=args.min_period, interp=args.interp,
                               keyframes=args.keyframes, segment_frames=args.segment,
                               remove=args.remove_band, insert=args.insert_band,
                               insert_from=insert_from, render=args.render)
    except ValueError as e:
        message = str(e)
        words = next((w for w in _FLAGS if message.startswith(w)), None)
        raise UserError(f"{_FLAGS[words] + message[len(words):] if words else message}.") from None


def timelapse_command(trained: Trained, args: argparse.Namespace) -> Timelapse:
    """`tlgen timelapse` on a timescale_ae run."""
    synth, start_time = open_synthesizer(trained, args.data, args.video)
    return render_timelapse(synth, start_time, args)


def eval_command(trained: Trained, args: argparse.Namespace) -> dict:
    """`tlgen eval` on a timescale_ae run."""
    return evaluate(trained, args.out_dir, args.data, networks=args.networks)


EVAL_FRAMES = 64


def evaluation_block(ds, max_frames: int = EVAL_FRAMES):
    """What `tlgen eval` scores: (split, block, pick), `pick` up to `max_frames` indices spread
    evenly over the first block of the validation split (of the first split without one)."""
    split = "validation" if "validation" in ds.splits else ds.splits[0]
    block = ds.blocks(split, 0)[0]
    if block.count < 2:
        raise UserError(f"the {split} split of {ds.data_dir} begins with a block of one frame; tlgen "
                        "eval scores a span of several: prepare longer footage (or a larger --val-fraction).")
    pick = np.unique(np.linspace(0, block.count - 1, min(max_frames, block.count)).astype(int))
    return split, block, pick


def synthetic_scene(ds, video_id: int):
    """(scene, start_time in the scene's seconds) of a synthetic video of `ds`, cropped to the
    dataset's frames as `prepare` did; None for a captured one."""
    video = next(v for v in ds.metadata["videos"] if v["id"] == video_id)
    if not video.get("synthetic"):
        return None
    from tlgen.data.synthetic import make_scene

    scene = make_scene(**video["synthetic"], crop=tuple(ds.image_size))
    return scene, float(video.get("start_time") or 0.0)


def evaluate(trained: Trained, out_dir: str, data_dir: str | None = None, *,
             max_frames: int = EVAL_FRAMES, timelapse_frames: int = 48,
             networks: Networks | None = None) -> dict:
    """`tlgen eval` for a timescale_ae run: the report, with its PNG plots written to `out_dir`.

    On the validation split (first block of the first video): reconstruction PSNR / SSIM /
    MS-SSIM per level against the pyramid target; for synthetic scenes band fidelity per
    cutoff: PSNR against the scene's ground-truth band of the masked reconstruction
    ("decode"), of the frame with the fast bins' decoded contribution removed ("detail":
    x - (decode(w) - decode(mask(w, k)))), of the temporal pyramid, and of the baselines (raw
    frame, oracle-sigma temporal Gaussian, temporal median, period mean, nearest frames; see
    `band_fidelity`), and of the neighbour rendering of mask(w, k) ("neighbours":
    `Synthesizer.render_neighbours`);
    E_tmp of generated timelapses (decoded, and subsampled with the neighbour rendering) vs
    raw subsampling of the same span, and of the subsampled timelapse at each cutoff
    ("flicker"); the PCA of the
    latent trajectory; the distribution and perceptual metrics (`tlgen.metrics.protocol`) of
    the full reconstruction against the frames (SWD always; FID/KID, LPIPS with their
    networks; FVD does not apply to single frames).
    """
    config = trained.config
    data_dir = trained.data_dir(data_dir)
    ds = open_run_data(trained, data_dir)
    lv = trained_levels(config, ds.level_periods, trained.workdir)
    m = lv.num_bins
    split, block, pick = evaluation_block(ds, max_frames)
    source = ds.frames(split)
    times = block.times[pick]
    raw_u8 = np.stack([source[block.start + i]["image"] for i in pick])
    raw = raw_u8.astype(np.float32) / 255.0
    times_all, get_frames = ds.video_frames(block.video_id, [split])
    synth = synthesizer(trained, lv, get_frames, times_all)
    w = synth.encode(raw_u8)
    masked = [np.asarray(synth.decode(ae.mask(w, k)) + 1) / 2 for k in range(1, m + 1)]
    full = masked[-1]                                       # every bin kept
    decoded, detail, pyramid = [], [], []
    recon_rows = []
    for k, dk in enumerate(masked, 1):
        level = nearest_level(ds.level_periods, lv.level_periods[m - k])
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
    os.makedirs(out_dir, exist_ok=True)
    full_u8 = np.round(np.clip(full, 0, 1) * 255).astype(np.uint8)
    distribution = video_metrics(raw_u8[:, None], full_u8[:, None], networks or Networks(),
                                 seed=int(config.seed))
    report = {"workdir": trained.workdir, "data_dir": os.path.abspath(data_dir),
              "step": trained.step, "split": split, "num_frames": int(len(pick)),
              **{f"recon_{k}": v for k, v in distribution["scores"].items()},
              "reconstruction": recon_rows, "samples": distribution["samples"],
              "protocol": distribution["protocol"],
              "not_computed": {**distribution["not_computed"], "fvd": "FVD compares clips; this "
                               "evaluation reconstructs single frames"}}
    report["notes"] = [f"recon_{k}: not computed ({v})" for k, v in report["not_computed"].items()] + [
        f"recon_{caveat}" for caveat in distribution["caveats"]]
    span = float(block.times[-1] - block.times[0])
    longer = [c for c in lv.cutoffs if c > span]
    if longer:
        report["notes"].append(
            f"the evaluated block ({split}, video {block.video_id}) lasts {span:g} s, less than the "
            f"cutoffs {', '.join(f'{c:g}s' for c in longer)}: within it those bins hardly change, "
            "so their rows say little; evaluate on a longer capture (--data, or prepare with a "
            "larger --val-fraction).")
    synthetic = synthetic_scene(ds, block.video_id)
    if synthetic:
        scene, start_time = synthetic
        at = start_time + times                                  # scene times of the frames
        neighbours = [synth.render_neighbours(w, k).astype(np.float32) / 255.0
                      for k in range(1, m + 1)]
        report["leakage"] = bin_leakage(synth.encode, scene, at, lv.cutoffs, w)
        counts = [synth.neighbour_count(k) for k in range(1, m + 1)]
        report["band_fidelity"] = band_fidelity(scene, at, times, times_all, get_frames, lv.cutoffs, {
            "decode": decoded, "neighbours": neighbours, "detail": detail, "pyramid": pyramid},
            raw, counts)
        rows = report["band_fidelity"]
        rep.plot_band_fidelity(os.path.join(out_dir, "band_fidelity.png"), rows, BAND_METHODS)
        listed = lambda cs: ", ".join(f"{c:g}s" for c in cs) or "none"
        for name, what in (("decode", "decode(mask(w, k))"),
                           ("neighbours", "the neighbour rendering of mask(w, k)")):
            wins = [r["cutoff_s"] for r in rows if r[name] > r["pyramid"]]
            best = [r["cutoff_s"] for r in rows if margin_over_baselines(r, name) >= 1.0]
            report["notes"].append(
                f"{what} beats the temporal pyramid at {len(wins)} of {len(rows)} cutoffs "
                f"({listed(wins)}), and every baseline (the raw frame, the oracle blur, the median, "
                f"the period mean and the nearest frames) by 1 dB or more at {len(best)} "
                f"({listed(best)}).")

    t0, t1 = float(times_all[0]), float(times_all[-1])
    n = int(min(timelapse_frames, len(times_all)))
    made = {mode: synth.timelapse(t0, t1, n, mode=mode)
            for mode in ("subsample", "interpolate", "multiscale")}
    report["timelapse"] = [{"method": "raw subsample", "keep_bins": m,
                            "e_tmp": round(e_tmp(made["subsample"].raw), 2)}] + [
        {"method": f"{mode} (masked)", "keep_bins": out.keep_bins, "e_tmp": round(e_tmp(out.frames), 2)}
        for mode, out in made.items()]
    voted = synth.timelapse(t0, t1, n, mode="subsample", render="neighbours")
    report["timelapse"].append({"method": "subsample (neighbours)", "keep_bins": voted.keep_bins,
                                "e_tmp": round(e_tmp(voted.frames), 2)})
    report["timelapse_span_s"] = [t0, t1]
    raw_e = report["timelapse"][0]["e_tmp"]
    report["flicker"] = [{"cutoff_s": lv.cutoffs[k - 1], "keep_bins": k, "raw subsample": raw_e, **{
        render: round(e_tmp(synth.timelapse(t0, t1, n, keep_bins=k, render=render).frames), 2)
        for render in ("decoder", "neighbours")}} for k in range(1, m + 1)]
    calmer = [r["cutoff_s"] for r in report["flicker"] if r["neighbours"] < raw_e]
    report["notes"].append(
        f"timelapses of {n} frames over the block, subsampled: the neighbour rendering flickers less "
        f"than raw subsampling (E_tmp {raw_e:g}) at {len(calmer)} of {len(report['flicker'])} "
        f"cutoffs ({', '.join(f'{c:g}s' for c in calmer) or 'none'}).")

    traj = synth.frame_codes[:: max(1, len(times_all) // 256)]      # encoded once, above
    sel_times = times_all[:: max(1, len(times_all) // 256)]
    coords = {"all bins": rep.pca_2d(np.asarray(traj))[0],
              "bin 0 (slowest)": rep.pca_2d(np.asarray(traj[:, 0]))[0],
              f"bin {m - 1} (fastest)": rep.pca_2d(np.asarray(traj[:, m - 1]))[0]}
    rep.plot_latent_pca(os.path.join(out_dir, "latent_pca.png"), coords, sel_times)
    report["titles"] = {"reconstruction": "Reconstruction per level (vs pyramid target)",
                        "leakage": "Where each scene component lands (share of each bin's variation it makes alone)",
                        "band_fidelity": "Band fidelity (PSNR vs ground-truth band, dB)",
                        "timelapse": "Timelapse flicker (E_tmp, lower is smoother)",
                        "flicker": "Subsampled timelapse flicker per cutoff (E_tmp, lower is smoother)"}
    return report


BASELINES = ("raw", "oracle blur", "median", "period mean", "nearest frames")
BAND_METHODS = ["decode", "neighbours", "detail", "pyramid", *BASELINES]


def margin_over_baselines(row: dict, method: str = "neighbours") -> float:
    """PSNR of `method` minus the best of the baselines (the raw frame, the oracle blur, the
    median, the period mean and the nearest frames; dB) in one band-fidelity row."""
    return row[method] - max(row[b] for b in BASELINES)


def band_fidelity(scene, at, times, times_all, get_frames, cutoffs, candidates: dict,
                  raw: np.ndarray, counts) -> list[dict]:
    """Band-fidelity rows of a synthetic video: PSNR of each candidate (L stacks at `times`,
    seconds from the video's first frame; `at`, the same in the scene's time) against the
    scene's true band at each cutoff, beside the baselines: the raw frame, the oracle temporal
    Gaussian (sigma chosen per cutoff on the truth, in "oracle_sigma_s"), over a window of
    the cutoff the temporal median and the period mean of a day (`period_mean`: the median in
    each hour of the day, the mean over the hours), and the nearest frames (the median of the
    `counts[i]` frames nearest the raw frame `raw` in appearance: `appearance_neighbours`), all
    over the video's frames in the split (`times_all`, `get_frames`)."""
    from tlgen.data.synthetic import DAY

    truth = [scene.render_band(at, c) for c in cutoffs]
    frames_u8 = get_frames(np.arange(len(times_all)))
    frames = frames_u8.astype(np.float32) / 255.0
    blurs, sigmas = zip(*(rep.oracle_gaussian(times_all, frames, times, t, c) for t, c in zip(truth, cutoffs)))
    medians = [rep.temporal_median(times_all, frames, times, c) for c in cutoffs]
    means = [rep.temporal_period_mean(times_all, frames_u8, times, c, DAY) / 255.0 for c in cutoffs]
    by_count = {count: rep.appearance_neighbours(frames, raw, count) for count in set(counts)}
    nearest = [by_count[count] for count in counts]
    rows = rep.band_fidelity_rows(cutoffs, truth, {
        **candidates, "raw": [raw] * len(cutoffs), "oracle blur": blurs, "median": medians,
        "period mean": means, "nearest frames": nearest})
    for row, sigma in zip(rows, sigmas):
        row["oracle_sigma_s"] = round(sigma, 1)
        for name in ("decode", "neighbours"):
            if name in row:
                row[f"{name} - best baseline"] = round(margin_over_baselines(row, name), 3)
    return rows


def bin_for_timescale(timescale: float, cutoffs) -> int:
    """The bin a change of `timescale` belongs in: the one that keeping k* bins adds, k* the
    fewest kept bins whose cutoff it is not faster than (the fastest bin when it is faster
    than every cutoff)."""
    kept = next((k for k, c in enumerate(cutoffs, 1) if timescale >= c), len(cutoffs))
    return kept - 1


def bin_leakage(encode, scene, at, cutoffs, codes) -> list[dict]:
    """Per component of a synthetic scene: how much of each bin's variation it makes. `codes`
    (n, M, ...) are the codes of the frames at scene times `at`; bin j's share of a component
    is the variance of bin j's codes when only that component varies (`render_alone` at `at`,
    through `encode`) over bin j's variance in `codes`, so a bin's scale does not weigh (shares
    need not sum to 1 and can pass it). Also the bin it belongs in, its share there, and the
    largest share it takes of a slower bin (what a masked timelapse would still show of it)."""
    def variance(c):
        c = np.asarray(c, np.float64)
        return c.reshape(c.shape[:2] + (-1,)).var(axis=0).sum(axis=-1)          # (M,)

    total = np.maximum(variance(codes), 1e-30)
    rows = []
    for name, timescale in scene.components:
        if name == "sensor_noise":
            continue
        share = variance(encode(np.rint(scene.render_alone(name, at) * 255).astype(np.uint8))) / total
        home = bin_for_timescale(timescale, cutoffs)
        rows.append({"component": name, "timescale_s": float(timescale), "bin": home,
                     "share_in_bin": round(float(share[home]), 4),
                     "largest_in_slower_bin": round(float(share[:home].max(initial=0.0)), 4),
                     **{f"bin_{j}": round(float(v), 4) for j, v in enumerate(share)}})
    return rows


def decode_benchmark(trained: Trained, batch: dict):
    """`tlgen bench`'s inference figure: decoding codes to frames, the inner loop of every
    timelapse mode. Returns (call, frames per call, what)."""
    import jax

    cfg, dtype, params = trained.config.model, trained.dtype, trained.params[NET]
    background = batch.get("background")
    codes = jax.jit(lambda p, x: ae.encode(p, x, cfg=cfg, dtype=dtype))(params, batch["anchor"])
    decode = jax.jit(lambda p, c, bg: ae.decode(p, c, bg, cfg=cfg, dtype=dtype))
    return (lambda: decode(params, codes, background)), int(codes.shape[0]), "decoder: codes -> frames"
