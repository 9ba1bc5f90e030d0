"""Reading a prepared dataset: metadata, per-frame records, pyramid levels (no TensorFlow)."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import threading

import numpy as np

from tlgen.data import pyramid
from tlgen.data.layout import FORMAT, INDEX_FILE, METADATA_FILE, builder_dir
from tlgen.errors import UserError
from tlgen.files import STORAGE_ERRNOS


class RecordSource:
    """Random-access, picklable view of one TFDS split: `src[i]` -> dict of numpy arrays.

    Records are in time order within each video (videos in source order). The ArrayRecord
    reader opens lazily, so the object can be sent to Grain worker processes; it opens
    once, under a lock: Grain's prefetch threads that imported TFDS's lazy modules at the
    same time deadlocked.
    """
    _opening = threading.Lock()

    def __init__(self, tfds_dir: str, split: str, length: int):
        self.tfds_dir, self.split, self._length = tfds_dir, split, length
        self._source = None

    def _open(self):
        if self._source is None:
            with self._opening:
                if self._source is None:
                    import tensorflow_datasets as tfds
                    try:
                        builder = tfds.builder_from_directory(self.tfds_dir)
                    except OSError as e:    # TFDS: dataset_info.json or features.json gone or cut
                        if e.errno in STORAGE_ERRNOS:
                            raise
                        raise UserError(f"{self.tfds_dir} cannot be read ({e}); the dataset is "
                                        "incomplete or damaged: prepare it again.") from None
                    self._source = builder.as_data_source(self.split)
        return self._source

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> dict:
        if not -self._length <= index < self._length:
            raise IndexError(f"record {index} out of range for {self.split} ({self._length})")
        try:
            return self._open()[int(index) % self._length]
        except RuntimeError as e:           # ArrayRecord: a file missing, unreadable or cut short
            raise UserError(f"{self.tfds_dir} cannot be read ({e}); the dataset is incomplete or "
                            "damaged: prepare it again.") from None

    def __getstate__(self):
        return {**self.__dict__, "_source": None}

    def __repr__(self) -> str:
        return f"RecordSource({self.tfds_dir!r}, {self.split!r}, {self._length})"


@dataclasses.dataclass(frozen=True)
class Block:
    """A contiguous run of one video's records inside a split level."""
    video_id: int
    start: int          # first record index in the split level
    count: int
    times: np.ndarray   # float64 seconds from the video's first frame

    @property
    def stop(self) -> int:
        return self.start + self.count


class Dataset:
    """A dataset written by `tlgen prepare` (see `open_dataset`)."""

    def __init__(self, data_dir: str, metadata: dict, index: dict[str, np.ndarray]):
        self.data_dir, self.metadata, self._index = data_dir, metadata, index

    @property
    def splits(self) -> list[str]:
        return list(self.metadata["splits"])

    @property
    def level_periods(self) -> list[float]:
        return list(self.metadata["level_periods"])

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.metadata["image_size"])

    def _check(self, split: str, level: int = 0) -> None:
        if split not in self.metadata["splits"]:
            raise UserError(f"{self.data_dir} has no split {split!r}; it has "
                            f"{', '.join(self.splits)}.")
        if not 0 <= level < self.metadata["levels"]:
            raise ValueError(f"pyramid level {level} out of range [0, {self.metadata['levels']})")

    def index(self, split: str, level: int = 0) -> dict[str, np.ndarray]:
        """Per-record arrays of a split level: time (float64), video_id, frame_index."""
        self._check(split, level)
        return {k: self._index[f"{split}/{level}/{k}"] for k in ("time", "video_id", "frame_index")}

    @functools.lru_cache(maxsize=None)
    def blocks(self, split: str, level: int = 0) -> tuple[Block, ...]:
        """The (video, split block) runs of a split level, in record order."""
        self._check(split, level)
        times = self._index[f"{split}/{level}/time"]
        return tuple(Block(b["video_id"], b["start"], b["count"],
                           times[b["start"]:b["start"] + b["count"]])
                     for b in self.metadata["splits"][split]["levels"][level]["blocks"])

    def frames(self, split: str) -> RecordSource:
        """Per-frame records {"image", "time", "video_id", "frame_index"[, "flow", "mask"]}."""
        return self.pyramid_level(split, 0)

    def pyramid_level(self, split: str, level: int) -> RecordSource:
        """Records of temporal-pyramid level `level` (level 0 = the frames themselves)."""
        self._check(split, level)
        count = self.metadata["splits"][split]["levels"][level]["num_frames"]
        if level == 0:
            return RecordSource(builder_dir(self.data_dir, "frames"), split, count)
        return RecordSource(builder_dir(self.data_dir, "pyramid"),
                            f"{split}_level{level}", count)

    def video_frames(self, video_id: int = 0, splits=None):
        """All frames of one video across `splits` (default all), in time order: (times (F,)
        float64 seconds from the video's first frame, get_frames(indices) -> uint8 (N, H, W, 3)).
        get_frames keeps the frames it read, up to FRAME_CACHE_BYTES of them (the neighbour
        renderings read the same frames many times)."""
        parts = []
        for split in splits or self.splits:
            source = self.frames(split)
            for block in self.blocks(split, 0):
                if block.video_id == video_id:
                    parts += [(float(t), source, block.start + i) for i, t in enumerate(block.times)]
        if not parts:
            ids = sorted({v["id"] for v in self.metadata["videos"]})
            raise UserError(f"{self.data_dir} has no video {video_id}; its videos are {ids}.")
        parts.sort(key=lambda p: p[0])
        times = np.asarray([p[0] for p in parts])
        height, width = self.image_size

        @functools.lru_cache(maxsize=max(1, FRAME_CACHE_BYTES // (height * width * 3)))
        def frame(i: int) -> np.ndarray:
            _, source, index = parts[i]
            return source[index]["image"]

        def get_frames(indices):
            return np.stack([frame(int(i)) for i in np.asarray(indices)])
        return times, get_frames

    def level_at(self, source: RecordSource, block: Block, level: int, t: float) -> np.ndarray:
        """uint8 image of pyramid `level` at time `t` of `block`'s video, linearly interpolated
        in time between the two neighbouring level frames (nearest across gaps and ends)."""
        i0, i1, w = pyramid.bracket(block.times, self.level_periods[level], t)
        a = source[block.start + i0]["image"]
        if i1 == i0 or w == 0.0:
            return a
        b = source[block.start + i1]["image"]
        return np.rint((1.0 - w) * a + w * b.astype(np.float32)).astype(np.uint8)


# Bytes of decoded frames `Dataset.video_frames` keeps.
FRAME_CACHE_BYTES = 256 << 20

# Frames a video's (or block's) background image is the median of.
BACKGROUND_FRAMES = 256


def spread(count: int, max_frames: int) -> np.ndarray:
    """Up to `max_frames` indices of range(count), spread evenly (first and last included)."""
    return np.unique(np.linspace(0, count - 1, min(max_frames, count)).round().astype(int))


def within_window(times: np.ndarray, t: float, window: float) -> np.ndarray:
    """Indices of the `times` within window/2 of t; the nearest one when none is."""
    near = np.abs(times - t) <= window / 2
    near[np.argmin(np.abs(times - t))] = True
    return np.flatnonzero(near)


def squared_distances(query: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """(n, F) squared Euclidean distances between rows of query (n, D) and pool (F, D)."""
    query, pool = np.asarray(query, np.float64), np.asarray(pool, np.float64)
    return np.sum(query ** 2, 1)[:, None] - 2 * query @ pool.T + np.sum(pool ** 2, 1)[None]


def cell_means(images: np.ndarray, grid: int = 8) -> np.ndarray:
    """float64 (n, grid * grid * 3): the means of images (n, H, W, 3) over a grid x grid of
    cells, their look (light, weather) without the detail of what passes by."""
    n, h, w, c = images.shape
    x = np.asarray(images[:, :h - h % grid, :w - w % grid], np.float64)
    return x.reshape(n, grid, h // grid, grid, w // grid, c).mean(axis=(2, 4)).reshape(n, -1)


@functools.lru_cache(maxsize=None)
def median_network(n: int) -> tuple[tuple[int, int], ...]:
    """The compare-exchanges (i, j), i < j, of Batcher's odd-even merge sort of n values that
    the two middle ones, sorted places (n - 1) // 2 and n // 2, depend on."""
    pairs, p = [], 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                pairs += [(i + j, i + j + k) for i in range(min(k, n - j - k))
                          if (i + j) // (2 * p) == (i + j + k) // (2 * p)]
            k //= 2
        p *= 2
    needed, kept = {(n - 1) // 2, n // 2}, []
    for i, j in reversed(pairs):                  # only what reaches the middle places
        if i in needed or j in needed:
            needed |= {i, j}
            kept.append((i, j))
    return tuple(reversed(kept))


def frame_median(frames: np.ndarray) -> np.ndarray:
    """float32 (H, W, C): the per-pixel median of frames (n, H, W, C), the value np.median gives
    (the mean of the two middle values when n is even), by a sorting network over whole frames
    (`median_network`: elementwise minima and maxima of contiguous frames; 5-27x faster than
    partitioning each pixel's values for 8 to 256 frames, bench/results/frame-median-cpu.json)."""
    frames = np.asarray(frames)
    n = len(frames)
    rows = list(frames.reshape(n, -1))
    for i, j in median_network(n):
        rows[i], rows[j] = np.minimum(rows[i], rows[j]), np.maximum(rows[i], rows[j])
    low, high = (rows[k].astype(np.float32) for k in ((n - 1) // 2, n // 2))
    return ((low + high) / 2).reshape(frames.shape[1:])


def nearest_medians(read, dist: np.ndarray, count: int) -> np.ndarray:
    """float32 (n, H, W, 3): for each row of `dist` (n, F), the per-pixel median of the `count`
    frames nearest (read(sorted indices) -> frames (count, H, W, 3))."""
    count = min(int(count), dist.shape[1])
    nearest = np.argpartition(dist, count - 1, axis=1)[:, :count]
    return np.stack([frame_median(read(np.sort(i))) for i in nearest])


def frame_mean(frames: np.ndarray) -> np.ndarray:
    """float64 (H, W, C): the per-pixel mean of frames (n, H, W, C)."""
    return np.mean(frames, axis=0)


def summary_image(read, count: int, reduce=frame_mean, max_frames: int = 32) -> np.ndarray:
    """`reduce` over up to `max_frames` of `count` frames spread evenly, uint8 (H, W, 3):
    `frame_mean`, or `frame_median` with BACKGROUND_FRAMES for a video's background (no
    passers-by, no noise). read(indices) -> uint8 frames (n, H, W, 3)."""
    return np.rint(reduce(read(spread(count, max_frames)))).astype(np.uint8)


# A period mean (`period_mean`) takes the median within each of PERIOD_PHASES phases of the
# period, over up to PHASE_FRAMES frames each.
PERIOD_PHASES, PHASE_FRAMES = 24, 8


def period_phase(times: np.ndarray, period: float) -> np.ndarray:
    """int (n,): which of PERIOD_PHASES equal phases of `period` (seconds) each time falls in."""
    return np.minimum((np.mod(times, period) / period * PERIOD_PHASES).astype(int),
                      PERIOD_PHASES - 1)


def period_mean(read, times: np.ndarray, period: float) -> np.ndarray:
    """uint8 (H, W, 3): the mean over PERIOD_PHASES phases of `period` (seconds) of the
    per-pixel median of each phase's frames (up to PHASE_FRAMES of them, spread evenly): what
    repeats every period at its mean (a day's light), what comes and goes voted out. `times`
    (n,) seconds of the frames read(indices) returns; phases no frame falls in are skipped."""
    phase = period_phase(times, period)
    medians = []
    for j in np.unique(phase):
        rows = np.flatnonzero(phase == j)
        medians.append(frame_median(read(rows[spread(len(rows), PHASE_FRAMES)])))
    return np.rint(np.mean(medians, axis=0, dtype=np.float64)).astype(np.uint8)


def _read_metadata(data_dir: str) -> dict:
    """The dataset's METADATA_FILE; OSError / ValueError when it is not a tlgen dataset's."""
    with open(os.path.join(data_dir, METADATA_FILE)) as f:
        metadata = json.load(f)
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError(f"{data_dir} is not a tlgen dataset")
    return metadata


def open_dataset(data_dir: str) -> Dataset:
    """Opens a folder written by `tlgen prepare`; UserError if it is not one (or is unnamed:
    an empty `config.data.dir` is not the current directory)."""
    if not data_dir:
        raise UserError("config.data.dir is empty; pass --config.data.dir=DATASET (a folder "
                        "written by `tlgen prepare`).")
    try:
        metadata = _read_metadata(data_dir)
        with np.load(os.path.join(data_dir, INDEX_FILE)) as npz:
            index = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, KeyError):
        raise UserError(_not_a_dataset(data_dir)) from None
    return Dataset(os.path.abspath(data_dir), metadata, index)


def _not_a_dataset(path: str) -> str:
    """What `path`, which is not a readable dataset, is instead, and what to do."""
    if not os.path.exists(path):
        return (f"{path} does not exist; give a dataset folder written by `tlgen prepare` "
                "(tlgen prepare SOURCE --out DIR).")
    if os.path.isfile(path):
        return (f"{path} is a file, not a dataset folder; prepare footage into one first: "
                f"tlgen prepare {path} --out DIR.")
    if os.path.isfile(os.path.join(path, "config.json")):
        return (f"{path} is a training work directory, not a dataset; give the dataset folder "
                "it trained on (its config.data.dir) or another one written by `tlgen prepare`.")
    return (f"{path} is not a tlgen dataset (no readable {METADATA_FILE} / {INDEX_FILE}); "
            f"create one with `tlgen prepare SOURCE --out {path}`.")


def data_identity(data_dir: str) -> dict | None:
    """What makes `data_dir` the dataset it is: its metadata but for when, by which tlgen and
    from which paths it was prepared (the same sources prepared again with the same options
    are the same data); None when it is not a readable dataset."""
    try:
        metadata = _read_metadata(data_dir)
    except (OSError, ValueError):
        return None
    videos = [{k: v for k, v in video.items() if k != "source"} for video in metadata["videos"]]
    return {**{k: v for k, v in metadata.items() if k not in ("created", "tlgen_version")},
            "videos": videos}


def open_training_data(data_dir: str, *, image_size: tuple[int, int] | None = None,
                       size_key: str = "config.data.image_size", flow: bool = False,
                       run: str | None = None) -> Dataset:
    """Opens `config.data.dir` for training, with one-sentence errors when it is empty, not a
    dataset, holds frames of another size than `image_size` (height, width; named by `size_key`,
    or by the trained `run` that uses it) or lacks the optical flow the family needs."""
    if image_size is not None:
        want = tuple(image_size)
        if min(want) < 1:
            raise UserError(f"{size_key} is {'x'.join(map(str, want))}; give the frames' size in pixels.")
    ds = open_dataset(data_dir)
    if image_size is not None:
        if tuple(ds.image_size) != want:
            (h, w), (wh, ww) = ds.image_size, want
            size = wh if wh == ww else f"{wh}x{ww}"
            if run:
                raise UserError(f"{data_dir} holds {h}x{w} frames but the run {run} takes {wh}x{ww}; "
                                f"prepare it with --size {size}.")
            raise UserError(f"{data_dir} holds {h}x{w} frames but {size_key} is {wh}x{ww}; prepare "
                            f"it with --size {size} or set --{size_key}=\"({h}, {w})\".")
    if flow and not ds.metadata.get("has_flow"):
        raise UserError(f"{data_dir} has no optical flow; prepare it with --flow.")
    return ds
