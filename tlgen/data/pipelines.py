"""Grain input pipelines over prepared datasets: frame pairs, clips and sparse frames.

Every pipeline is a `grain.IterDataset` of batches (dicts of numpy arrays):
  * sharded per process: the index space (anchors / clip starts) is sliced
    `[shard_index::shard_count]`, so shards are disjoint and together cover the data;
  * deterministic for a seed: the order comes from a seeded shuffle (reshuffled every
    epoch) and per-element randomness from Grain's seeded `random_map`;
  * infinite (`repeat(None)`), batched with `drop_remainder=True`;
  * checkpointable: `iter(ds)` has `get_state()` / `set_state()` and works with
    `grain.checkpoint.CheckpointSave/Restore` in Orbax;
  * optionally run in `worker_count` worker processes (`mp_prefetch`).
Augmentation (`augment=True`) is one random horizontal flip and one random crop (80-100%
of each side, resized back) shared by all images of an element; flow is flipped with its
x component negated, and rescaled with the crop.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import einops
import grain
import numpy as np

from tlgen.data import flow as flow_lib
from tlgen.data.dataset import (BACKGROUND_FRAMES, Block, cell_means, frame_median, open_dataset,
                                period_mean, squared_distances, summary_image, within_window)
from tlgen.errors import UserError


def _finish(ds: grain.MapDataset, fn, *, batch_size: int, seed: int, shard_index: int,
            shard_count: int, worker_count: int) -> grain.IterDataset:
    if not 0 <= shard_index < shard_count:
        raise ValueError(f"shard_index {shard_index} not in [0, {shard_count})")
    if len(ds) <= shard_index:
        raise ValueError(f"its {len(ds)} samples leave none for process {shard_index} of {shard_count}")
    ds = ds[shard_index::shard_count]
    ds = ds.seed(seed).shuffle().repeat(None).random_map(fn)
    # Batches are prefetched by a few threads (Grain's default buffer of 500 is for records).
    it = ds.batch(batch_size, drop_remainder=True).to_iter_dataset(
        grain.ReadOptions(num_threads=4, prefetch_buffer_size=4))
    if worker_count > 0:
        from absl import flags
        if not flags.FLAGS.is_parsed():  # Grain workers read absl flags (defaults are fine)
            flags.FLAGS.mark_as_parsed()
        it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))
    return it


def per_process_batch(batch_size: int, shard_count: int) -> int:
    """Each of `shard_count` processes' part of a global batch (UserError if it does not split)."""
    if batch_size % shard_count:
        raise UserError(f"config.data.batch_size {batch_size} is not divisible by the "
                        f"{shard_count} processes; change it.")
    return batch_size // shard_count


def _block_of(blocks: Sequence[Block], index: int) -> Block:
    starts = [b.start for b in blocks]
    return blocks[int(np.searchsorted(starts, index, "right")) - 1]


class _Augment:
    """One flip + crop drawn per element, applied identically to all its images."""

    def __init__(self, rng: np.random.Generator, height: int, width: int, enabled: bool):
        self.enabled, self.h, self.w = enabled, height, width
        if not enabled:
            return
        self.flip = bool(rng.random() < 0.5)
        ch, cw = (int(round(s * rng.uniform(0.8, 1.0))) for s in (height, width))
        self.box = (int(rng.integers(0, height - ch + 1)), int(rng.integers(0, width - cw + 1)),
                    ch, cw)

    def _crop_resize(self, x: np.ndarray, interp) -> np.ndarray:
        y, x0, ch, cw = self.box
        flat, lead = einops.pack([x], "* h w c")
        out = np.stack([cv2.resize(np.ascontiguousarray(f), (self.w, self.h), interpolation=interp)
                        .reshape(self.h, self.w, -1) for f in flat[:, y:y + ch, x0:x0 + cw]])
        out = out[:, :, ::-1] if self.flip else out
        return np.ascontiguousarray(einops.unpack(out, lead, "* h w c")[0])

    def images(self, x: np.ndarray) -> np.ndarray:
        """uint8 (..., H, W, 3)."""
        return self._crop_resize(x, cv2.INTER_LINEAR) if self.enabled else x

    def masks(self, x: np.ndarray) -> np.ndarray:
        """uint8 (..., H, W) class indices (nearest neighbour)."""
        return self._crop_resize(x[..., None], cv2.INTER_NEAREST)[..., 0] if self.enabled else x

    def flows(self, x: np.ndarray) -> np.ndarray:
        """float32 (..., H, W, 2) pixel flows: rescaled with the crop, x negated on flip."""
        if not self.enabled:
            return x
        _, _, ch, cw = self.box
        out = self._crop_resize(x.astype(np.float32), cv2.INTER_LINEAR)
        out = out * np.array([self.w / cw, self.h / ch], np.float32)
        if self.flip:
            out[..., 0] = -out[..., 0]
        return out


class _Reader:
    """Shared dataset access for the element functions (picklable for worker processes)."""

    def __init__(self, data_dir: str, split: str):
        self.data_dir, self.split = data_dir, split
        self._ds = ds = open_dataset(data_dir)
        self.h, self.w = ds.image_size
        self.metadata = ds.metadata
        self.frames = ds.frames(split)
        self.blocks = ds.blocks(split, 0)

    def reader(self, start: int):
        """read(indices) -> uint8 frames (n, H, W, 3) of records start + indices."""
        return lambda idx: np.stack([self.frames[start + int(i)]["image"] for i in idx])


class _PairElement(_Reader):
    def __init__(self, data_dir, split, gap_bands, target_levels, augment, with_background,
                 period_windows=(), period=0.0, look_bands=()):
        super().__init__(data_dir, split)
        self.period, self.look_bands = float(period), frozenset(int(k) for k in look_bands)
        self.looks = ({b.start: self._looks(b) for b in self.blocks} if self.look_bands else None)
        self.backgrounds = ({b.start: self._backgrounds(b) for b in self.blocks}
                            if with_background else None)
        self.period_means = [{b.start: self._period_means(b, window, period) for b in self.blocks}
                             for window in period_windows]
        ds = self._ds
        self.bands = [(float(lo), float(hi)) for lo, hi in gap_bands]
        self.levels = [int(l) for l in target_levels]
        self.periods = ds.level_periods
        self.level_sources = {l: ds.pyramid_level(split, l) for l in set(self.levels) if l}
        self.level_blocks = {l: {b.video_id: b for b in ds.blocks(split, l)}
                             for l in set(self.levels) if l}
        self.augment = augment

    def _backgrounds(self, block: Block) -> list[tuple[int, int, np.ndarray]]:
        """(first, stop, median image) of the whole block and of windows of BACKGROUND_FRAMES
        consecutive frames (half overlapping): a model sees many backgrounds, not one per video."""
        n = BACKGROUND_FRAMES
        spans = [(0, block.count)] + [(a, min(a + n, block.count))
                                      for a in range(0, max(block.count - n, 0) + 1, n // 2)]
        return [(a, z, summary_image(self.reader(block.start + a), z - a, frame_median, n))
                for a, z in dict.fromkeys(spans)]

    def _period_means(self, block: Block, window: float, period: float):
        """(centres (W,), uint8 images (W, H, W, 3)): every window/8 seconds over the block, the
        `period_mean` of its frames within window/2 of that time."""
        times = block.times
        centres = np.arange(times[0], times[-1] + window / 16, window / 8)
        read = self.reader(block.start)
        images = []
        for c in centres:
            near = within_window(times, c, window)
            images.append(period_mean(lambda rows: read(near[rows]), times[near], period))
        return centres, np.stack(images)

    def _looks(self, block: Block, chunk: int = 256) -> np.ndarray:
        """`cell_means` of every frame of the block (read `chunk` frames at a time)."""
        read = self.reader(block.start)
        return np.concatenate([cell_means(read(np.arange(a, min(a + chunk, block.count))))
                               for a in range(0, block.count, chunk)])

    def _same_phase_look(self, block: Block, i: int) -> int | None:
        """The frame at frame i's phase of the period (+-1/48 of it) at least a period away
        whose look (`cell_means`) is nearest frame i's: another day, the same light and weather."""
        times, p = block.times, self.period
        apart = np.abs(times - times[i])
        phase_gap = np.abs(np.mod(apart + p / 2, p) - p / 2)
        rows = np.flatnonzero((phase_gap <= p / 48) & (apart >= p * 47 / 48))
        if not len(rows):
            return None
        looks = self.looks[block.start]
        return int(rows[np.argmin(squared_distances(looks[i:i + 1], looks[rows])[0])])

    def _positive(self, block: Block, i: int, lo: float, hi: float, rng) -> int | None:
        times, t = block.times, block.times[i]
        f0, f1 = np.searchsorted(times, [t + lo, t + hi], "left")
        b0, b1 = np.searchsorted(times, [t - hi, t - lo], "right")
        sides = [(int(f0 if f0 != i else f0 + 1), int(f1), 1),
                 (int(b0), int(b1 if b1 - 1 != i else b1 - 1), -1)]
        sides = [(a, b, d) for a, b, d in sides if b > a]
        if not sides:
            return None
        counts = np.array([b - a for a, b, _ in sides], np.float64)
        a, b, direction = sides[int(rng.choice(len(sides), p=counts / counts.sum()))]
        target = t + direction * rng.uniform(lo, hi)
        j = int(np.clip(np.searchsorted(times[a:b], target), 0, b - a - 1)) + a
        if j > a and abs(times[j - 1] - target) < abs(times[j] - target):
            j -= 1
        return j

    def __call__(self, index, rng: np.random.Generator) -> dict:
        index = int(index)
        block = _block_of(self.blocks, index)
        i = index - block.start
        anchor = self.frames[index]
        t = float(block.times[i])
        positives, valid, gaps = [], [], []
        look = self._same_phase_look(block, i) if self.look_bands else None   # shared by its bands
        for k, (lo, hi) in enumerate(self.bands):
            j = look if k in self.look_bands else self._positive(block, i, lo, hi, rng)
            valid.append(j is not None)
            j = i if j is None else j
            positives.append(anchor["image"] if j == i else self.frames[block.start + j]["image"])
            gaps.append(abs(float(block.times[j]) - t))
        targets = [anchor["image"] if l == 0 else
                   self._ds.level_at(self.level_sources[l], self.level_blocks[l][block.video_id],
                                     l, t) for l in self.levels]
        aug = _Augment(rng, self.h, self.w, self.augment)
        out = {
            "anchor": aug.images(anchor["image"]),
            "positive": aug.images(np.stack(positives)),
            "pos_valid": np.array(valid, bool),
            "gap": np.array(gaps, np.float32),
            "target": aug.images(np.stack(targets)),
            "time": np.float32(t),
            "video_id": np.int32(block.video_id),
        }
        if self.backgrounds is not None:
            images = [im for a, z, im in self.backgrounds[block.start] if a <= i < z]
            out["background"] = aug.images(images[int(rng.integers(len(images)))])
        if self.period_means:
            targets = []
            for means in self.period_means:                 # one per window: the nearest centre's
                centres, images = means[block.start]
                targets.append(images[int(np.argmin(np.abs(centres - t)))])
            out["period_target"] = aug.images(np.stack(targets))
        return out


def pair_dataset(data_dir: str, split: str, *, gap_bands: Sequence[tuple[float, float]],
                 target_levels: Sequence[int], batch_size: int, seed: int,
                 shard_index: int = 0, shard_count: int = 1, augment: bool = False,
                 worker_count: int = 0, with_background: bool = False,
                 period_windows: Sequence[float] = (), period: float = 0.0,
                 look_bands: Sequence[int] = ()) -> grain.IterDataset:
    """Anchor frames with one positive per gap band and pyramid targets at the anchor's time.

    For band k = [lo, hi) the positive is a frame of the anchor's own (video, split block)
    whose time gap to the anchor lies in [lo, hi): a gap is drawn uniformly in [lo, hi) on
    one side (sides weighted by how many frames they have in the band) and the real frame
    nearest to that time within the band is taken, so irregular captures and gaps are
    respected. Where no frame lies in the band, `pos_valid` is False, the positive is the
    anchor and the gap is 0. `target[:, j]` is pyramid level `target_levels[j]` at the
    anchor's time, linearly interpolated between the level's two neighbouring frames.
    Batch: anchor (B,H,W,3) u8, positive (B,K,H,W,3) u8, pos_valid (B,K) bool, gap (B,K) f32,
    target (B,L,H,W,3) u8, time (B,) f32, video_id (B,) i32; `with_background` adds
    background (B,H,W,3) u8: the per-pixel median of BACKGROUND_FRAMES frames spread over the
    anchor's (video, block) or over a window of that many frames around it, drawn at random.
    With `period_windows` (seconds) and a `period`, period_target (B,P,H,W,3) u8: for window j
    the `period_mean` of the block's frames within window/2 of the anchor's time (computed at
    centres window/8 apart, the nearest taken): the frame with the period's cycle at its mean.
    For the bands in `look_bands` (indices) the positive is instead the frame at the anchor's
    phase of the `period` (+-1/48 of it), at least a period away, whose look (means over 8x8
    cells) is nearest the anchor's: the same time of day on another day with the same light
    and weather, what passes by different.
    """
    if look_bands and not period > 0:
        raise ValueError(f"look_bands {list(look_bands)} need a period")
    element = _PairElement(data_dir, split, gap_bands, target_levels, augment, with_background,
                           period_windows, period, look_bands)
    if any(not 0 <= l < element.metadata["levels"] for l in element.levels):
        raise ValueError(f"target_levels {list(target_levels)} outside the dataset's "
                         f"{element.metadata['levels']} levels")
    return _finish(grain.MapDataset.range(len(element.frames)), element, batch_size=batch_size,
                   seed=seed, shard_index=shard_index, shard_count=shard_count,
                   worker_count=worker_count)


def _longest(blocks: Sequence[Block]) -> str:
    return f" (the longest has {max(b.count for b in blocks)})" if blocks else " (it has none)"


def _starts(blocks: Sequence[Block], span: int) -> np.ndarray:
    """Record indices where `span` consecutive records stay inside one block."""
    parts = [np.arange(b.start, b.stop - span + 1) for b in blocks if b.count >= span]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


class _ClipElement(_Reader):
    def __init__(self, data_dir, split, length, stride, with_flow, with_masks, augment, with_mean=False):
        super().__init__(data_dir, split)
        if with_flow and not self.metadata["has_flow"]:
            raise UserError(f"{data_dir} has no flow; prepare it with --flow.")
        if with_masks and not self.metadata["has_masks"]:
            raise UserError(f"{data_dir} has no masks; prepare it with --masks.")
        self.length, self.stride = length, stride
        self.with_flow, self.with_masks, self.augment = with_flow, with_masks, augment
        self.starts = _starts(self.blocks, (length - 1) * stride + 1)
        self.means = ({b.start: summary_image(self.reader(b.start), b.count) for b in self.blocks}
                      if with_mean else None)

    def __call__(self, index, rng: np.random.Generator) -> dict:
        start = int(self.starts[int(index)])
        stop = start + (self.length - 1) * self.stride + 1
        # Records between the picked frames are needed only to compose their flows.
        records = [self.frames[r] for r in range(start, stop, 1 if self.with_flow else self.stride)]
        picked = records[::self.stride] if self.with_flow else records
        aug = _Augment(rng, self.h, self.w, self.augment)
        out = {"frames": aug.images(np.stack([r["image"] for r in picked])),
               "time": np.array([r["time"] for r in picked], np.float32)}
        if self.with_flow:
            flows = []
            for k in range(self.length - 1):
                f = records[k * self.stride]["flow"].astype(np.float32)
                for r in records[k * self.stride + 1:(k + 1) * self.stride]:
                    f = flow_lib.compose(f, r["flow"].astype(np.float32))
                flows.append(f)
            out["flow"] = aug.flows(np.stack(flows)).astype(np.float32)
        if self.with_masks:
            out["masks"] = aug.masks(np.stack([r["mask"] for r in picked]))
        if self.means is not None:
            out["mean"] = aug.images(self.means[_block_of(self.blocks, start).start])
        return out


def clip_dataset(data_dir: str, split: str, *, length: int, stride: int = 1, batch_size: int,
                 seed: int, shard_index: int = 0, shard_count: int = 1, with_flow: bool = False,
                 with_masks: bool = False, with_mean: bool = False, augment: bool = False,
                 worker_count: int = 0) -> grain.IterDataset:
    """Clips of `length` frames `stride` records apart, never crossing a (video, block).

    Batch: frames (B,T,H,W,3) u8, time (B,T) f32 seconds from the video's first frame;
    with_flow: flow (B,T-1,H,W,2) f32 pixels, flow[:, t] from frame t to t+1 (stored
    consecutive flows composed when stride > 1); with_masks: masks (B,T,H,W) u8; with_mean:
    mean (B,H,W,3) u8, the mean image of the clip's (video, block) over up to 32 evenly spaced
    frames (augmented with the clip).
    """
    element = _ClipElement(data_dir, split, length, stride, with_flow, with_masks, augment, with_mean)
    if len(element.starts) == 0:
        raise ValueError(f"no {split} block of {data_dir} holds a clip of {length} frames "
                         f"with stride {stride}{_longest(element.blocks)}")
    return _finish(grain.MapDataset.range(len(element.starts)), element, batch_size=batch_size,
                   seed=seed, shard_index=shard_index, shard_count=shard_count,
                   worker_count=worker_count)


def clip_count(data_dir: str, split: str, length: int, stride: int = 1) -> int:
    """The distinct clips `clip_dataset` draws from; its first pass shows each once."""
    return len(_starts(open_dataset(data_dir).blocks(split, 0), (length - 1) * stride + 1))


class _SparseElement(_Reader):
    def __init__(self, data_dir, split, num_frames, spans, augment):
        super().__init__(data_dir, split)
        self.num_frames, self.spans, self.augment = num_frames, tuple(spans), augment
        self.starts = _starts(self.blocks, num_frames)

    def __call__(self, index, rng: np.random.Generator) -> dict:
        start = int(self.starts[int(index)])
        block = _block_of(self.blocks, start)
        room = block.stop - 1 - start
        fits = [s for s in self.spans if self.num_frames - 1 <= s <= room]
        span = int(rng.choice(fits)) if fits else room
        inner = np.sort(rng.choice(np.arange(1, span), self.num_frames - 2, replace=False))
        offsets = np.concatenate([[0], inner, [span]]).astype(np.int64)
        aug = _Augment(rng, self.h, self.w, self.augment)
        return {"frames": aug.images(np.stack([self.frames[start + o]["image"] for o in offsets])),
                "time": offsets.astype(np.float32)}


def sparse_frames_dataset(data_dir: str, split: str, *, num_frames: int = 3,
                          spans=(2, 4, 8, 16, 32), batch_size: int, seed: int,
                          shard_index: int = 0, shard_count: int = 1, augment: bool = False,
                          worker_count: int = 0) -> grain.IterDataset:
    """`num_frames` sorted frames of one (video, block), StyleGAN-V's sparse training clips.

    The first-to-last distance (records) is drawn from the `spans` that fit between the first
    frame and the block's end, or is all that is left when none fits (short videos are
    sampled, never skipped); inner frames distinct and uniform in between. Batch: frames
    (B,F,H,W,3) u8, time (B,F) f32 = frame-index offsets from the first frame.
    """
    if num_frames < 2 or not spans or min(spans) < num_frames - 1:
        raise UserError(f"sparse clips need num_frames >= 2 and every span >= num_frames - 1, got "
                        f"{num_frames} and {tuple(spans)} (config.data); change them.")
    element = _SparseElement(data_dir, split, num_frames, spans, augment)
    if len(element.starts) == 0:
        raise ValueError(f"no {split} block of {data_dir} has {num_frames} frames"
                         f"{_longest(element.blocks)}")
    return _finish(grain.MapDataset.range(len(element.starts)), element, batch_size=batch_size,
                   seed=seed, shard_index=shard_index, shard_count=shard_count,
                   worker_count=worker_count)
