"""`tlgen prepare`: sources (videos, image folders, synthetic scenes) -> a TFDS dataset.

Pipeline: every source is decoded frame by frame (resized / center-cropped) into raw staging
files inside a temporary folder beside the output; the split blocks (train = the start of
each video, validation = its last `val_fraction`) and the temporal pyramid of every
(video, block) are computed from those files in bounded chunks; the TFDS builder writes the
ArrayRecord files (computing optical flow on the way if asked); `tlgen.json` (metadata) and
`index.npz` (per-record times, video ids, frame indices) are written last and the folder is
renamed to the output. An interrupted run leaves only the hidden temporary folder.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence

import numpy as np

from tlgen.data import builder as builder_lib
from tlgen.data import images, pyramid, video_io
from tlgen.data.layout import FORMAT, FORMAT_VERSION, INDEX_FILE, METADATA_FILE, is_dataset
from tlgen.data.flow import METHODS as FLOW_METHODS, FlowEstimator
from tlgen.errors import StorageError, UserError
from tlgen.files import STORAGE_ERRNOS, check_output_folder, signals_held, storage_sentence
from tlgen.progress import progress

SPLITS = ("train", "validation")
SYNTHETIC_PREFIX = "synthetic:"
AUTO_MASKS = "auto"
log = logging.getLogger(__name__)


# The largest frame side `--size` takes (8K video's width).
MIN_SIZE, MAX_SIZE = 8, 8192


def parse_size(text: str | int | None) -> tuple[int, int] | None:
    """`"64"` -> (64, 64); `"48x64"` -> (48, 64) (height x width)."""
    if text is None or text == "":
        return None
    try:
        parts = [int(p) for p in str(text).lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2):
        raise UserError(f"--size {text!r} is not a size; use e.g. 64, 128 or 96x128 (HxW).")
    if min(parts) < MIN_SIZE:
        raise UserError(f"--size {text!r} is smaller than {MIN_SIZE} pixels a side; use e.g. 64, "
                        "128 or 96x128 (HxW).")
    if max(parts) > MAX_SIZE:
        raise UserError(f"--size {text!r} is larger than {MAX_SIZE} pixels a side; models train "
                        "on 32 to 1024 (e.g. --size 256).")
    return (parts[0], parts[-1])


class _RawFile:
    """Append-only raw array file in the staging folder, reopened as a read-only memmap."""

    def __init__(self, path: str, shape: tuple[int, ...], dtype):
        self.path, self.shape, self.dtype, self.count = path, tuple(shape), np.dtype(dtype), 0
        self._f = open(path, "wb")

    def append(self, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array, self.dtype)
        self._f.write(array.tobytes())
        self.count += array.size // int(np.prod(self.shape))

    def close(self) -> np.memmap | np.ndarray:
        self._f.close()
        if self.count == 0:
            return np.zeros((0,) + self.shape, self.dtype)
        return np.memmap(self.path, self.dtype, "r", shape=(self.count,) + self.shape)


@dataclasses.dataclass
class _Video:
    """One staged source."""
    id: int
    source: str
    kind: str                     # "video" | "images" | "synthetic"
    times: np.ndarray             # float64 seconds from the first frame
    start_time: float             # Unix seconds of the first frame (0 if unknown)
    frames: np.ndarray            # memmap uint8 (N, H, W, 3)
    fps: float | None = None
    masks: np.ndarray | None = None
    flow: np.ndarray | None = None   # ground-truth forward flow to the next frame (synthetic)
    synthetic: dict | None = None
    stems: list[str] | None = None   # file stems of an image folder, in time order
    name_order: np.ndarray | None = None  # each frame's place in the folder's name order
    native: tuple[int, int] | None = None  # the source's frame size (H, W) before resizing
    blocks: dict = dataclasses.field(default_factory=dict)   # split -> (start, stop)
    levels: dict = dataclasses.field(default_factory=dict)   # (split, level) -> (times, values)

    @property
    def interval(self) -> float:
        return float(np.median(np.diff(self.times))) if len(self.times) > 1 else 0.0


def _parse_synthetic(spec: str) -> tuple[str, dict]:
    """`synthetic:city` or `synthetic:clouds:seed=3,frames=200,interval=2,irregular=1`."""
    body = spec[len(SYNTHETIC_PREFIX):]
    name, _, opts = body.partition(":")
    from tlgen.data.synthetic import SCENES
    if name not in SCENES:
        raise UserError(f"{spec}: unknown synthetic scene {name!r}; choose from "
                        f"{', '.join(sorted(SCENES))}.")
    kinds = {"seed": int, "frames": int, "interval": float, "irregular": lambda v: v not in
             ("0", "false", "no", "")}
    options = {}
    for item in filter(None, opts.split(",")):
        key, _, value = item.partition("=")
        if key not in kinds:
            raise UserError(f"{spec}: unknown option {key!r}; use {', '.join(kinds)} "
                            "(e.g. synthetic:city:seed=1,irregular=1).")
        try:
            options[key] = kinds[key](value)
        except ValueError:
            raise UserError(f"{spec}: option {key}={value!r} is not a number.") from None
    least = {"seed": 0, "frames": 1}
    for key, value in options.items():
        if key in least and value < least[key]:
            raise UserError(f"{spec}: option {key}={value} must be at least {least[key]}.")
    if "interval" in options and not 0 < options["interval"] < float("inf"):
        raise UserError(f"{spec}: option interval={options['interval']} must be a positive "
                        "number of seconds.")
    return name, options


class _Stager:
    """Decodes sources into raw staging files of one common frame size."""

    def __init__(self, folder: str, size: tuple[int, int] | None, interval: float | None,
                 bar, flow_method: str = "dis"):
        self.folder, self.size, self.interval, self.bar = folder, size, interval, bar
        self.flow_method = flow_method
        self.explicit = size is not None

    def _fix_size(self, native: tuple[int, int], what: str) -> tuple[int, int]:
        """The dataset's frame size: --size, else the first source's; others must match."""
        if self.size is None:
            self.size = native
        elif native != self.size and not self.explicit:
            raise UserError(f"{what} is {native[0]}x{native[1]} but earlier sources are "
                            f"{self.size[0]}x{self.size[1]} (HxW); pass --size to resize all.")
        return self.size

    def stage(self, vid: int, source: str, masks_dir: str | None) -> _Video:
        if source.startswith(SYNTHETIC_PREFIX):
            video = self._synthetic(vid, source)
        elif os.path.isdir(source):
            video = self._folder(vid, source)
        elif os.path.isfile(source):
            video = self._video(vid, source)
        else:
            raise UserError(f"{source} does not exist; give video files, image folders or "
                            "synthetic:<scene>.")
        if masks_dir == AUTO_MASKS:
            video.masks = self._auto_masks(video)
        elif masks_dir is not None:
            video.masks = self._masks(video, masks_dir)
        return video

    def _writer(self, vid: int, name: str, shape, dtype) -> _RawFile:
        return _RawFile(os.path.join(self.folder, f"v{vid}_{name}.raw"), shape, dtype)

    def _video(self, vid: int, path: str) -> _Video:
        ext = os.path.splitext(path)[1].lower()
        if ext not in video_io.VIDEO_EXTENSIONS:
            raise UserError(f"{path} is neither a video ({', '.join(video_io.VIDEO_EXTENSIONS)}) "
                            "nor a folder of images.")
        info = video_io.probe_video(path)
        size = self._fix_size((info.height, info.width), path)
        if not self.interval and not info.fps > 0:
            raise UserError(f"{path} has no frame rate in its header; pass --interval SECONDS.")
        out = self._writer(vid, "frames", size + (3,), np.uint8)
        resize = size if self.explicit else None
        stored = []                                # the frames' own times: variable rates kept
        for frame in video_io.iter_video_frames(path, resize, info, times=stored):
            out.append(frame)
            self.bar.update(1)
        frames = out.close()
        times = (np.arange(len(frames), dtype=np.float64) * self.interval if self.interval
                 else np.asarray(stored, np.float64))
        return _Video(vid, path, "video", times, 0.0, frames, fps=info.fps or None,
                      native=(info.height, info.width))

    def _folder(self, vid: int, folder: str) -> _Video:
        paths = images.list_images(folder)
        if not paths and is_dataset(folder):
            raise UserError(f"{folder} is a prepared tlgen dataset, not footage; train on it with "
                            "--config.data.dir, or prepare the footage it came from.")
        videos = [n for n in os.listdir(folder) if n.lower().endswith(video_io.VIDEO_EXTENSIONS)]
        if not paths and videos:
            raise UserError(f"{folder} holds videos, not frames; give the videos as sources "
                            f"(e.g. {os.path.join(folder, '*' + os.path.splitext(videos[0])[1])}).")
        if not paths:
            raise UserError(f"{folder} contains no images ({', '.join(images.IMAGE_EXTENSIONS)}); "
                            "point to a folder of frames.")
        times = images.folder_times(folder, paths, self.interval)
        order = np.argsort(times, kind="stable")
        paths, times = [paths[i] for i in order], times[order]
        out, first = None, None
        for path in paths:
            image = images.read_image(path)
            if first is None:
                first = path
                size = self._fix_size(image.shape[:2], path)
                out = self._writer(vid, "frames", size + (3,), np.uint8)
                native = image.shape[:2]
            elif image.shape[:2] != native and not self.explicit:
                raise UserError(
                    f"{path} is {image.shape[0]}x{image.shape[1]} but {os.path.basename(first)} "
                    f"in the same folder is {native[0]}x{native[1]} (HxW); pass --size to "
                    "resize all frames.")
            out.append(images.resize_crop(image, size))
            self.bar.update(1)
        return _Video(vid, folder, "images", times - times[0],
                      float(times[0]) if times[0] > 1e8 else 0.0, out.close(),
                      stems=[os.path.splitext(os.path.basename(p))[0] for p in paths],
                      name_order=order, native=native)

    def _synthetic(self, vid: int, spec: str) -> _Video:
        from tlgen.data.synthetic import make_scene
        name, opts = _parse_synthetic(spec)
        size = self.size or (64, 64)
        scene = make_scene(name, seed=opts.get("seed", 0), size=max(size), crop=size)
        self.size = size
        times = scene.capture_times(opts.get("frames"), opts.get("interval"),
                                    irregular=opts.get("irregular", False))
        frames = self._writer(vid, "frames", size + (3,), np.uint8)
        flows = self._writer(vid, "flow", size + (2,), np.float16) if scene.has_flow else None
        masks = self._writer(vid, "masks", size, np.uint8) if scene.num_classes else None
        for i in range(0, len(times), 64):
            t = times[i:i + 64]
            frames.append(scene.render(t))
            if flows is not None:
                nxt = np.append(times[i + 1:i + 65], np.nan)[:len(t)]
                flows.append(scene.flow(t, np.where(np.isnan(nxt), t, nxt)))
            if masks is not None:
                masks.append(scene.masks(t))
            self.bar.update(len(t))
        # Scene time 0 is midnight of day 0, read as the Unix epoch: scene time = start + time.
        video = _Video(vid, spec, "synthetic", times - times[0], float(times[0]),
                       frames.close(), synthetic=scene.spec)
        if flows is not None:
            video.flow = flows.close()
        if masks is not None:
            video.masks = masks.close()
        return video

    def _auto_masks(self, video: _Video) -> np.ndarray:
        """One mask for every frame: regions of like motion and colour (`tlgen.data.regions`)."""
        from tlgen.data.regions import motion_regions
        mask = motion_regions(video.frames, FlowEstimator(self.flow_method))
        log.info("%s: --masks auto found %d region(s) (class 0 the stillest, then by speed)",
                 video.source, int(mask.max()) + 1)
        out = self._writer(video.id, "masks_auto", self.size, np.uint8)
        for start in range(0, len(video.frames), 64):
            out.append(np.broadcast_to(mask, (min(64, len(video.frames) - start),) + mask.shape))
        return out.close()

    def _masks(self, video: _Video, folder: str) -> np.ndarray:
        if not os.path.isdir(folder):
            raise UserError(f"--masks {folder} is not a folder of class-index PNGs.")
        paths = [p for p in images.list_images(folder) if p.lower().endswith(".png")]
        by_stem = {os.path.splitext(os.path.basename(p))[0]: p for p in paths}
        if video.stems and all(s in by_stem for s in video.stems):
            paths = [by_stem[s] for s in video.stems]
        elif len(paths) != len(video.frames):
            raise UserError(f"--masks {folder} has {len(paths)} PNGs but {video.source} has "
                            f"{len(video.frames)} frames; give one mask per frame (same file "
                            "stem, or the same count in name order).")
        elif video.name_order is not None:        # name order to name order, then frames' time order
            paths = [paths[i] for i in video.name_order]
        out = self._writer(video.id, "masks", self.size, np.uint8)
        values = set()
        for path in paths:
            mask = images.read_mask(path, video.native, f"a frame of {video.source}", "--masks")
            mask = images.resize_crop(mask, self.size, nearest=True)
            values.update(np.unique(mask).tolist())
            out.append(mask)
        masks = out.close()
        if values == images.BLACK_AND_WHITE:
            log.info("--masks %s holds only 0 and 255: read as classes 0 and 1", folder)
            masks = np.memmap(out.path, np.uint8, "r+", shape=masks.shape)
            masks[masks == 255] = 1
        return masks


def _split_blocks(video: _Video, val_fraction: float, levels: int) -> None:
    n = len(video.frames)
    sizes = pyramid.split_sizes(n, val_fraction, levels)
    if sizes is None:
        most = next((k for k in range(levels - 1, 0, -1)
                     if pyramid.split_sizes(n, val_fraction, k) is not None), 0)
        frames = f"{n} frame{'s' * (n != 1)}"
        raise UserError(
            f"{video.source} has {frames}, of which --val-fraction {val_fraction} leaves none for "
            "training; use --val-fraction 0 or a longer capture." if not most else
            f"{video.source} has {frames}: its training block (what --val-fraction {val_fraction} "
            f"leaves) holds --levels {most} at most, not {levels}; use fewer --levels, a smaller "
            "--val-fraction or a longer capture.")
    n_val = sizes[1]
    video.blocks = {"train": (0, n - n_val)}
    if n_val:
        video.blocks["validation"] = (n - n_val, n)


def _build_levels(video: _Video, periods: list[float], folder: str, bar) -> None:
    for split, (start, stop) in video.blocks.items():
        times, values = video.times[start:stop], video.frames[start:stop]
        for level in range(1, len(periods)):
            out = _RawFile(os.path.join(folder, f"v{video.id}_{split}_l{level}.raw"),
                           values.shape[1:], np.uint8)
            grid = []
            for t, v in pyramid.next_level(times, values, periods[level - 1], float(times[0])):
                out.append(v)
                grid.append(t)
                bar.update(len(t))
            times, values = np.concatenate(grid), out.close()
            video.levels[(split, level)] = (times, values)


def _frame_examples(videos: list[_Video], split: str, flow_method: str | None,
                    with_masks: bool, bar) -> Iterator[dict]:
    estimator = FlowEstimator(flow_method) if flow_method else None
    for video in videos:
        if split not in video.blocks:
            continue
        start, stop = video.blocks[split]
        shape = video.frames.shape[1:3]
        for i in range(start, stop):
            example = {"image": np.asarray(video.frames[i]), "time": float(video.times[i]),
                       "video_id": video.id, "frame_index": i}
            if video.flow is not None:
                flow = video.flow[i] if i + 1 < stop else np.zeros(shape + (2,), np.float16)
                example["flow"] = np.asarray(flow, np.float16)
            elif estimator is not None:
                flow = (estimator(video.frames[i], video.frames[i + 1]) if i + 1 < stop
                        else np.zeros(shape + (2,), np.float32))
                example["flow"] = flow.astype(np.float16)
            if with_masks:
                example["mask"] = (np.asarray(video.masks[i]) if video.masks is not None
                                   else np.zeros(shape, np.uint8))
            bar.update(1)
            yield example


def _level_frame_index(times: np.ndarray, period: float) -> np.ndarray:
    """Grid index of each pyramid-level sample (grid points dropped at gaps keep their index)."""
    return np.rint((times - times[0]) / period).astype(np.int32)


def _level_examples(videos: list[_Video], split: str, level: int, period: float) -> Iterator[dict]:
    for video in videos:
        if (split, level) not in video.levels:
            continue
        times, values = video.levels[(split, level)]
        for k, index in enumerate(_level_frame_index(times, period)):
            yield {"image": np.asarray(values[k]), "time": float(times[k]),
                   "video_id": video.id, "frame_index": int(index)}


def _block_table(videos, split, level=0) -> list[dict]:
    rows, start = [], 0
    for video in videos:
        if split not in video.blocks:
            continue
        if level == 0:
            first, stop = video.blocks[split]
            times = video.times[first:stop]
        else:
            times = video.levels[(split, level)][0]
            first = 0
        rows.append({"video_id": video.id, "start": start, "count": len(times),
                     "first_frame_index": int(first), "t0": float(times[0]),
                     "t1": float(times[-1])})
        start += len(times)
    return rows


def _check_output(out: str, overwrite: bool, inputs: Sequence[str]) -> None:
    """`out` may be written: new, an empty folder, or (with `overwrite`) a tlgen dataset
    holding none of the `inputs` (the sources and mask folders, which must survive)."""
    for path in inputs:
        path = os.path.abspath(path)
        if os.path.commonpath([path, out]) == out:
            raise UserError(f"--out {out} holds the input {path}; choose an --out outside the "
                            "footage.")
    if os.path.exists(out) and not os.path.isdir(out):
        raise UserError(f"--out {out} is a file, not a dataset folder; choose another --out.")
    if not os.path.exists(out) or not os.listdir(out):
        return
    if not is_dataset(out):
        raise UserError(f"--out {out} holds other files, not a tlgen dataset (no tlgen.json), and "
                        "prepare replaces only a dataset; choose another --out.")
    if not overwrite:
        raise UserError(f"{out} already exists; pass --overwrite to replace it or choose "
                        "another --out.")


def prepare(sources: Sequence[str], out: str, *, size: tuple[int, int] | str | None = None,
            interval: float | None = None, levels: int | None = None, val_fraction: float = 0.1,
            flow: bool = False, flow_method: str = "dis", masks: Sequence[str] = (),
            overwrite: bool = False) -> dict:
    """Prepares `sources` into a dataset folder `out` and returns its metadata.

    See `tlgen prepare --help` for the options; `levels` None chooses them from the capture
    (`pyramid.auto_levels`). Bad input raises UserError before anything that looks like a
    dataset is written.
    """
    if not sources:
        raise UserError("give at least one source (video file, image folder or synthetic:city).")
    if levels is not None and levels < 1:
        raise UserError(f"--levels {levels} must be at least 1.")
    if not 0 <= val_fraction < 1:
        raise UserError(f"--val-fraction {val_fraction} must be in [0, 1).")
    if interval is not None and interval <= 0:
        raise UserError(f"--interval {interval} must be a positive number of seconds.")
    if list(masks) == [AUTO_MASKS]:
        masks = [AUTO_MASKS] * len(sources)
    if masks and len(masks) != len(sources):
        raise UserError(f"got {len(masks)} --masks folders for {len(sources)} sources; give "
                        "one per source, in the same order (or one --masks auto for all).")
    if flow_method not in FLOW_METHODS:       # --flow's estimator, and --masks auto's
        raise UserError(f"--flow-method {flow_method!r}: choose {' or '.join(FLOW_METHODS)}.")
    size = parse_size(size) if isinstance(size, (str, int)) else size
    check_output_folder(out, "--out")
    out = os.path.abspath(out)
    _check_output(out, overwrite, [x for x in [*sources, *masks]
                                   if not x.startswith(SYNTHETIC_PREFIX) and x != AUTO_MASKS])
    for source in sources:
        if source.startswith(SYNTHETIC_PREFIX):
            _parse_synthetic(source)
        elif not os.path.exists(source):
            raise UserError(f"{source} does not exist; give video files, image folders or "
                            "synthetic:<scene>.")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    prefix = f".{os.path.basename(out)}.tmp-"
    left = sorted(n for n in os.listdir(os.path.dirname(out)) if n.startswith(prefix))
    if left:
        log.warning("%s holds %s, left by an interrupted prepare of %s; delete %s to free the space",
                    os.path.dirname(out), ", ".join(left), out, "them" if len(left) > 1 else "it")
    tmp = tempfile.mkdtemp(prefix=prefix, dir=os.path.dirname(out))
    try:
        metadata = _prepare_into(tmp, sources, size, interval, levels, val_fraction,
                                 flow, flow_method, masks)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)          # mkdtemp's folder is private; a dataset is not
        _publish(tmp, out)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, RuntimeError) and "No space left on device" in str(e):   # ArrayRecord's writer
            e = OSError(errno.ENOSPC, "No space left on device")
        if isinstance(e, OSError) and e.errno in STORAGE_ERRNOS:
            raise StorageError(storage_sentence(e, out)) from None
        raise
    return metadata


def _publish(tmp: str, out: str) -> None:
    """Moves the finished dataset `tmp` to `out`, replacing a dataset there; Ctrl-C and SIGTERM
    wait until both renames are done (between them `out` would be neither)."""
    old, published = None, False
    try:
        with signals_held():
            if os.path.exists(out):
                old = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.old-", dir=os.path.dirname(out))
                os.rename(out, os.path.join(old, "data"))
            os.rename(tmp, out)
            published = True
    finally:
        if published and old:
            shutil.rmtree(old, ignore_errors=True)


def _prepare_into(tmp, sources, size, interval, levels, val_fraction, flow, flow_method,
                  masks) -> dict:
    staging = os.path.join(tmp, "staging")
    os.makedirs(staging)
    with progress(unit="frame", desc="decode") as bar:
        stager = _Stager(staging, size, interval, bar, flow_method)
        videos = [stager.stage(i, s, masks[i] if masks else None) for i, s in enumerate(sources)]
    base = max(v.interval for v in videos) or 1.0
    if levels is None:
        levels = pyramid.auto_levels(base, [len(v.frames) for v in videos], val_fraction)
    for video in videos:
        _split_blocks(video, val_fraction, levels)
    periods = pyramid.level_periods(base, levels)
    with progress(unit="frame", desc="pyramid") as bar:
        for video in videos:
            _build_levels(video, periods, staging, bar)

    height, width = stager.size
    gt_flow = [v.flow is not None for v in videos]
    with_flow = flow or any(gt_flow)
    with_masks = any(v.masks is not None for v in videos)
    flow_source = (None if not with_flow else "ground_truth" if all(gt_flow)
                   else flow_method if not any(gt_flow) else f"ground_truth+{flow_method}")
    estimate = flow_method if with_flow and not all(gt_flow) else None
    splits = [s for s in SPLITS if any(s in v.blocks for v in videos)]
    total = sum(len(v.frames) for v in videos)

    import tensorflow_datasets as tfds
    tfds.disable_progress_bar()
    downloads = os.path.join(staging, "downloads")
    with progress(total=total, unit="frame", desc="write") as bar:
        frame_splits = {
            s: (sum(v.blocks[s][1] - v.blocks[s][0] for v in videos if s in v.blocks),
                lambda s=s: _frame_examples(videos, s, estimate, with_masks, bar))
            for s in splits}
        builder_lib.write(tmp, builder_lib.TlgenConfig(
            name="frames", height=height, width=width, with_flow=with_flow,
            with_masks=with_masks), frame_splits, downloads)
    if levels > 1:
        level_splits = {
            f"{s}_level{l}": (sum(len(v.levels[(s, l)][0]) for v in videos if s in v.blocks),
                              lambda s=s, l=l: _level_examples(videos, s, l, periods[l]))
            for s in splits for l in range(1, levels)}
        builder_lib.write(tmp, builder_lib.TlgenConfig(name="pyramid", height=height,
                                                       width=width), level_splits, downloads)

    index, split_meta = {}, {}
    for s in splits:
        split_meta[s] = {"levels": []}
        for level in range(levels):
            blocks = _block_table(videos, s, level)
            parts = [v for v in videos if s in v.blocks]
            if level == 0:
                times = [v.times[slice(*v.blocks[s])] for v in parts]
                frame_index = [np.arange(*v.blocks[s]) for v in parts]
            else:
                times = [v.levels[(s, level)][0] for v in parts]
                frame_index = [_level_frame_index(t, periods[level]) for t in times]
            index[f"{s}/{level}/time"] = np.concatenate(times).astype(np.float64)
            index[f"{s}/{level}/video_id"] = np.concatenate(
                [np.full(len(t), v.id, np.int32) for t, v in zip(times, parts)])
            index[f"{s}/{level}/frame_index"] = np.concatenate(frame_index).astype(np.int32)
            split_meta[s]["levels"].append(
                {"num_frames": int(sum(b["count"] for b in blocks)), "blocks": blocks})
        split_meta[s]["num_frames"] = split_meta[s]["levels"][0]["num_frames"]
    np.savez(os.path.join(tmp, INDEX_FILE), **index)

    from tlgen import __version__
    synthetic = next((v.synthetic for v in videos if v.synthetic), None)
    metadata = {
        "format": FORMAT, "version": FORMAT_VERSION, "tlgen_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "image_size": [height, width],
        "videos": [{
            "id": v.id, "source": v.source, "kind": v.kind, "num_frames": len(v.frames),
            "interval": v.interval, "fps": v.fps, "start_time": v.start_time,
            "duration": float(v.times[-1]), "synthetic": v.synthetic,
            "blocks": {s: list(map(int, b)) for s, b in v.blocks.items()}} for v in videos],
        "num_frames": total,
        "num_pyramid_frames": int(sum(len(t) for v in videos for t, _ in v.levels.values())),
        "levels": levels, "level_periods": periods,
        "pyramid": {"sigma": "level period", "radius_sigmas": pyramid.RADIUS,
                    "min_weight": pyramid.MIN_WEIGHT, "lookup": "linear",
                    "per": "video and split block"},
        "val_fraction": val_fraction, "splits": split_meta,
        "has_flow": with_flow, "flow_source": flow_source,
        "has_masks": with_masks,
        "num_classes": int(max((int(np.max(v.masks)) for v in videos if v.masks is not None),
                               default=0)) + 1 if with_masks else 0,
        "synthetic": synthetic,
        "tfds": {"name": builder_lib.NAME, "version": builder_lib.VERSION},
    }
    shutil.rmtree(staging)
    with open(os.path.join(tmp, METADATA_FILE), "w") as f:
        json.dump(metadata, f, indent=1)
    return metadata
