"""Grain pipelines: pair bands, determinism, checkpoint state, sharding, clips, flow."""

import hashlib

import grain
import numpy as np
import pytest

from tlgen.data import open_dataset
from tlgen.data import dataset
from tlgen.data.dataset import frame_median, period_mean
from tlgen.data.pipelines import clip_dataset, pair_dataset, sparse_frames_dataset
from tlgen.data.prepare import prepare
from tlgen.errors import UserError

BANDS = [(0.0, 1000.0), (1000.0, 4000.0), (4000.0, 20000.0), (1e6, 2e6)]


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("data") / "city")
    prepare(["synthetic:city:frames=120,interval=600,irregular=1",
             "synthetic:city:seed=1,frames=60,interval=600"], out, size=16, levels=3,
            val_fraction=0.2)
    return out


@pytest.fixture(scope="module")
def clouds(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("data") / "clouds")
    prepare(["synthetic:clouds:frames=24"], out, size=16, levels=2, val_fraction=0)
    return out


def _take(ds, n):
    it = iter(ds)
    return [next(it) for _ in range(n)]


def test_pairs_respect_bands_videos_and_blocks(city):
    ds = open_dataset(city)
    batches = _take(pair_dataset(city, "train", gap_bands=BANDS, target_levels=[0, 2],
                                 batch_size=8, seed=0), 6)
    index = ds.index("train")
    for b in batches:
        assert b["positive"].shape == (8, 4, 16, 16, 3) and b["target"].shape == (8, 2, 16, 16, 3)
        assert b["gap"].dtype == np.float32 and b["time"].dtype == np.float32
        valid = b["pos_valid"]
        assert not valid[:, 3].any() and valid[:, :3].mean() > 0.8   # 1e6 s > any block
        for k, (lo, hi) in enumerate(BANDS):
            gaps = b["gap"][:, k][valid[:, k]]
            assert np.all((gaps >= lo) & (gaps < hi))
        for i in range(8):
            np.testing.assert_array_equal(b["target"][i, 0], b["anchor"][i])
            for k in np.flatnonzero(valid[i]):
                # the positive is a real frame of the same video's train block at that gap
                rows = np.flatnonzero((index["video_id"] == b["video_id"][i]) & np.isclose(
                    np.abs(index["time"] - b["time"][i]), b["gap"][i, k], atol=1e-2))
                frames = ds.frames("train")
                assert any(np.array_equal(frames[r]["image"], b["positive"][i, k]) for r in rows)


def test_pair_target_is_interpolated_pyramid_level(city):
    ds = open_dataset(city)
    b = _take(pair_dataset(city, "validation", gap_bands=BANDS[:1], target_levels=[1],
                           batch_size=4, seed=5), 1)[0]
    lv, lt = ds.pyramid_level("validation", 1), ds.index("validation", 1)
    for i in range(4):
        rows = np.flatnonzero(lt["video_id"] == b["video_id"][i])
        times = lt["time"][rows]
        j = np.searchsorted(times, b["time"][i], "right") - 1
        t0, t1 = times[j], times[min(j + 1, len(times) - 1)]
        w = 0.0 if t1 == t0 else (b["time"][i] - t0) / (t1 - t0)
        ref = (1 - w) * lv[rows[j]]["image"] + w * lv[rows[min(j + 1, len(rows) - 1)]]["image"]
        assert np.abs(b["target"][i, 0].astype(float) - ref).max() <= 1.0


def test_same_seed_same_batches_and_state_resumes(city):
    make = lambda seed: pair_dataset(city, "train", gap_bands=BANDS[:2], target_levels=[0, 1],
                                     batch_size=4, seed=seed, augment=True)
    a, b, c = _take(make(1), 3), _take(make(1), 3), _take(make(2), 3)
    for x, y in zip(a, b):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])
    assert not np.array_equal(a[0]["anchor"], c[0]["anchor"])
    it = iter(make(1))
    for _ in range(2):
        next(it)
    state = it.get_state()
    expected = [next(it) for _ in range(2)]
    resumed = iter(make(1))
    resumed.set_state(state)
    for x, y in zip(expected, [next(resumed) for _ in range(2)]):
        np.testing.assert_array_equal(x["positive"], y["positive"])
        np.testing.assert_array_equal(x["time"], y["time"])


def test_orbax_checkpoint_of_iterator(city, tmp_path):
    import orbax.checkpoint as ocp
    ds = clip_dataset(city, "train", length=3, batch_size=2, seed=0)
    it = iter(ds)
    next(it)
    with ocp.CheckpointManager(str(tmp_path / "ckpt"), item_names=("data",)) as mgr:
        mgr.save(1, args=ocp.args.Composite(data=grain.checkpoint.CheckpointSave(it)))
        mgr.wait_until_finished()
        expected = next(it)
        fresh = iter(ds)
        mgr.restore(1, args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(fresh)))
    np.testing.assert_array_equal(next(fresh)["frames"], expected["frames"])


def test_shards_are_disjoint_and_cover(city):
    n = len(open_dataset(city).frames("train"))
    seen = []
    for shard in range(2):
        ds = sparse_frames_dataset(city, "train", num_frames=2, spans=(1,), batch_size=1, seed=0,
                                   shard_index=shard, shard_count=2)
        seen.append({hashlib.sha1(b["frames"][0, 0].tobytes()).hexdigest() for b in _take(ds, n // 2)})
    # the first frames of one epoch per shard (their bytes: each frame has its own sensor
    # noise): no overlap and (almost) all frames
    assert not (seen[0] & seen[1]) and len(seen[0] | seen[1]) >= 0.9 * (n - 2)


def test_clips_flow_masks_and_flip(clouds):
    ds = open_dataset(clouds)
    assert ds.metadata["has_flow"] and ds.metadata["flow_source"] == "ground_truth"
    plain = _take(clip_dataset(clouds, "train", length=4, stride=2, batch_size=2, seed=0,
                               with_flow=True, with_masks=True), 1)[0]
    assert plain["frames"].shape == (2, 4, 16, 16, 3) and plain["flow"].shape == (2, 3, 16, 16, 2)
    assert plain["masks"].shape == (2, 4, 16, 16)
    np.testing.assert_allclose(np.diff(plain["time"], axis=1), 2.0)
    sky = plain["masks"][:, 0] == 1
    # two composed 1-second ground-truth flows = the 2-second displacement (pixels)
    from tlgen.data.synthetic import make_scene
    v = make_scene("clouds", size=16).flow([0.0], [2.0])[0]
    close = np.abs(plain["flow"][:, 0] - v).max(-1) < 0.02
    assert close[sky].mean() > 0.9           # all but sky pixels that move behind the ridge
    # without flow only the picked records are read: the same frames, times and masks
    bare = _take(clip_dataset(clouds, "train", length=4, stride=2, batch_size=2, seed=0,
                              with_masks=True), 1)[0]
    for key in ("frames", "time", "masks"):
        np.testing.assert_array_equal(bare[key], plain[key])
    flipped = _take(clip_dataset(clouds, "train", length=2, batch_size=8, seed=3, with_flow=True,
                                 augment=True), 1)[0]
    assert (flipped["flow"][..., 0] < -0.1).any() and (flipped["flow"][..., 0] > 0.1).any()


def test_worker_processes_give_the_same_batches(city):
    kwargs = dict(num_frames=3, spans=(2, 4, 6), batch_size=4, seed=9)
    a = _take(sparse_frames_dataset(city, "train", **kwargs), 2)
    b = _take(sparse_frames_dataset(city, "train", worker_count=1, **kwargs), 2)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x["frames"], y["frames"])
        assert np.all(np.diff(x["time"], axis=1) > 0) and x["time"][:, -1].max() <= 6


def test_a_record_source_opens_once_when_many_threads_read_it_first(city, monkeypatch):
    """Grain's prefetch threads all read a fresh source at once (in a worker process, while
    TFDS is not imported yet): one opens it, the rest wait, all get the same records."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import tensorflow_datasets as tfds
    opened, real = [], tfds.builder_from_directory

    def counted(path):
        opened.append(threading.get_ident())
        return real(path)
    monkeypatch.setattr(tfds, "builder_from_directory", counted)
    source, reference = open_dataset(city).frames("train"), open_dataset(city).frames("train")
    with ThreadPoolExecutor(8) as pool:
        images = list(pool.map(lambda i: source[i]["image"], range(16)))
    assert len(opened) == 1
    for i, image in enumerate(images):
        np.testing.assert_array_equal(image, reference[i]["image"])


def test_sparse_clips_draw_their_spans_and_short_videos_take_what_they_allow(clouds, tmp_path):
    batch = _take(sparse_frames_dataset(clouds, "train", spans=(2, 4, 8, 16, 32), batch_size=64, seed=1), 1)[0]
    span = batch["time"][:, -1]
    assert np.all(batch["time"][:, 0] == 0) and np.all(np.diff(batch["time"], axis=1) > 0)
    # 24 frames: 32 never fits, 16 only clips that start early enough; 2 always fits
    assert set(np.unique(span).tolist()) == {2, 4, 8, 16}
    short = str(tmp_path / "short")
    prepare(["synthetic:clouds:frames=4"], short, size=16, levels=1, val_fraction=0)
    batch = _take(sparse_frames_dataset(short, "train", spans=(8, 16, 32), batch_size=4, seed=0), 1)[0]
    # 4 frames, no span of the set fits: a clip starting at frame 0 spans 3, at frame 1 spans 2
    assert set(batch["time"][:, -1].tolist()) <= {2.0, 3.0}
    # videos of 1 and 2 frames beside a longer one hold no 3-frame clip: every clip is the long one's
    mixed = str(tmp_path / "mixed")
    prepare(["synthetic:clouds:frames=6", "synthetic:clouds:frames=1,seed=3",
             "synthetic:clouds:frames=2,seed=4"], mixed, size=16, levels=1, val_fraction=0)
    frames, blocks = open_dataset(mixed).frames("train"), open_dataset(mixed).blocks("train")
    assert [b.count for b in blocks] == [6, 1, 2]
    batch = _take(sparse_frames_dataset(mixed, "train", spans=(2, 4), batch_size=16, seed=0), 1)[0]
    for clip, times in zip(batch["frames"], batch["time"]):
        starts = [r for r in range(6) if np.array_equal(clip[0], frames[r]["image"])]
        assert starts and all(np.array_equal(f, frames[starts[0] + int(t)]["image"])
                              for f, t in zip(clip, times))


def test_clips_carry_their_blocks_mean_image_and_masks(city):
    ds = open_dataset(city)
    frames, blocks = ds.frames("train"), ds.blocks("train")
    batch = _take(clip_dataset(city, "train", length=5, batch_size=4, seed=2, with_masks=True,
                               with_mean=True), 1)[0]
    assert batch["mean"].shape == (4, 16, 16, 3) and batch["masks"].shape == (4, 5, 16, 16)
    for mean, clip, masks in zip(batch["mean"], batch["frames"], batch["masks"]):
        owner = [b for b in blocks if any(np.array_equal(clip[0], frames[r]["image"])
                                          for r in range(b.start, b.stop))]
        assert len(owner) == 1
        b = owner[0]                    # the NumPy mean of 32 evenly spaced frames of its block
        picks = np.unique(np.linspace(b.start, b.stop - 1, min(32, b.count)).round()).astype(int)
        np.testing.assert_array_equal(mean, np.rint(np.mean([frames[int(r)]["image"] for r in picks], axis=0)))
        assert (masks == masks[0]).all() and set(np.unique(masks)) <= set(range(5))   # the street's classes
        assert len(np.unique(masks)) >= 3


def test_pairs_carry_the_median_image_of_their_block(city):
    ds = open_dataset(city)
    frames, blocks = ds.frames("train"), ds.blocks("train")
    batch = _take(pair_dataset(city, "train", gap_bands=BANDS[:1], target_levels=[0], batch_size=4,
                               seed=3, with_background=True), 1)[0]
    assert batch["background"].shape == (4, 16, 16, 3) and batch["background"].dtype == np.uint8
    for anchor, background in zip(batch["anchor"], batch["background"]):
        owner = [b for b in blocks if any(np.array_equal(anchor, frames[r]["image"])
                                          for r in range(b.start, b.stop))]
        assert len(owner) == 1          # blocks under 256 frames: the median of all of them
        block = np.stack([frames[r]["image"] for r in range(owner[0].start, owner[0].stop)])
        np.testing.assert_array_equal(background, np.rint(np.median(block, axis=0)))


def test_period_mean_averages_the_phases_medians_and_votes_out_what_comes_and_goes():
    period = 24.0                                     # 24 phases of 1 s, three periods
    times = np.arange(72.0)
    frames = np.repeat((2 * np.mod(times, 24))[:, None, None, None], 3, axis=-1).astype(np.uint8)
    frames = np.broadcast_to(frames, (72, 2, 2, 3)).copy()
    frames[24 + 5] = 255                              # something passing once, in phase 5
    out = period_mean(lambda rows: frames[rows], times, period)
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out, 23)            # mean of 0, 2, ..., 46; the 255 voted out
    # phases no frame falls in are skipped, not counted as black
    half = times % 24 < 12
    np.testing.assert_array_equal(period_mean(lambda rows: frames[half][rows], times[half], period), 11)


def test_pairs_carry_the_period_mean_around_their_time(city):
    ds = open_dataset(city)
    frames, blocks = ds.frames("train"), ds.blocks("train")
    window, period = 20000.0, 3000.0
    batch = _take(pair_dataset(city, "train", gap_bands=BANDS[:1], target_levels=[0], batch_size=4,
                               seed=3, period_windows=[window, 2 * window], period=period), 1)[0]
    assert batch["period_target"].shape == (4, 2, 16, 16, 3)
    for i in range(4):
        block = next(b for b in blocks if b.video_id == batch["video_id"][i]
                     and b.times[0] <= batch["time"][i] <= b.times[-1])
        for j, w in enumerate((window, 2 * window)):
            centres = np.arange(block.times[0], block.times[-1] + w / 16, w / 8)
            c = centres[np.argmin(np.abs(centres - batch["time"][i]))]
            assert abs(c - batch["time"][i]) <= w / 16 + 1e-3
            near = np.flatnonzero(np.abs(block.times - c) <= w / 2)
            read = lambda rows: np.stack([frames[block.start + int(r)]["image"] for r in near[rows]])
            np.testing.assert_array_equal(batch["period_target"][i, j],
                                          period_mean(read, block.times[near], period))


def test_look_positives_share_the_phase_on_another_period_and_are_nearest_in_look(city):
    ds = open_dataset(city)
    frames, blocks = ds.frames("train"), ds.blocks("train")
    period = 6000.0                                  # ten frames of 600 s
    batch = _take(pair_dataset(city, "train", gap_bands=BANDS[:2], target_levels=[0], batch_size=8,
                               seed=5, period=period, look_bands=[1]), 2)
    checked = 0
    for b in batch:
        for i in range(8):
            block = next(bl for bl in blocks if bl.video_id == b["video_id"][i]
                         and bl.times[0] <= b["time"][i] <= bl.times[-1])
            images = np.stack([frames[block.start + r]["image"] for r in range(block.count)])
            looks = images[:, :16, :16].reshape(-1, 8, 2, 8, 2, 3).mean(axis=(2, 4)).reshape(len(images), -1)
            a = int(np.argmin(np.abs(block.times - b["time"][i])))
            apart = np.abs(block.times - block.times[a])
            rows = [r for r in range(block.count) if apart[r] >= period * 47 / 48
                    and min(apart[r] % period, period - apart[r] % period) <= period / 48]
            assert b["pos_valid"][i, 1] == bool(rows)
            if rows:    # brute force: the candidate of least squared distance in 8x8 cell means
                best = min(rows, key=lambda r: np.sum((looks[r] - looks[a]) ** 2))
                np.testing.assert_array_equal(b["positive"][i, 1], images[best])
                np.testing.assert_allclose(b["gap"][i, 1], apart[best], atol=1e-2)
                checked += 1
    assert checked > 8
    with pytest.raises(ValueError, match="need a period"):
        pair_dataset(city, "train", gap_bands=BANDS[:2], target_levels=[0], batch_size=8, seed=5,
                     look_bands=[1])


def test_video_frames_gather_one_video_across_splits_in_time_order(city):
    ds = open_dataset(city)
    times, get_frames = ds.video_frames(1)
    records = [r for split in ds.splits for r in (ds.frames(split)[i] for i in range(len(ds.frames(split))))
               if r["video_id"] == 1]
    records.sort(key=lambda r: r["frame_index"])
    assert len(times) == len(records) == 60 and len(ds.splits) == 2
    np.testing.assert_allclose(times, np.arange(60) * 600.0)
    np.testing.assert_array_equal(get_frames([59, 0, 7]), np.stack([records[i]["image"] for i in (59, 0, 7)]))
    returned = get_frames([59])
    returned[:] = 0                                   # a caller's copy: the kept frame is untouched
    np.testing.assert_array_equal(get_frames([59])[0], records[59]["image"])
    only_train, _ = ds.video_frames(1, ["train"])
    assert 0 < len(only_train) < 60
    with pytest.raises(UserError, match=r"has no video 5; its videos are \[0, 1\]\."):
        ds.video_frames(5)


def test_video_frames_read_each_record_once_up_to_the_cache_size(city, monkeypatch):
    reads = []
    read = dataset.RecordSource.__getitem__
    monkeypatch.setattr(dataset.RecordSource, "__getitem__", lambda self, i: reads.append(i) or read(self, i))
    _, get_frames = open_dataset(city).video_frames(1)
    first = get_frames([3, 4, 3])
    np.testing.assert_array_equal(get_frames([4, 3]), first[1:])
    assert len(reads) == 2                            # frames 3 and 4, once each
    monkeypatch.setattr(dataset, "FRAME_CACHE_BYTES", 2 * 16 * 16 * 3)
    _, get_frames = open_dataset(city).video_frames(1)
    reads.clear()
    get_frames([0, 1, 2, 0])                          # two frames kept: frame 0 was dropped
    assert len(reads) == 4


@pytest.mark.parametrize("count", [1, 2, 7, 48, 100, 256])
def test_frame_median_is_numpys_median(count):
    frames = np.random.default_rng(count).integers(0, 256, (count, 5, 6, 3), dtype=np.uint8)
    frames[:, 0, 0] = 7                                              # ties
    for x in (frames, frames.astype(np.float32) / 255):
        got = frame_median(x)
        assert got.dtype == np.float32 and got.shape == (5, 6, 3)
        np.testing.assert_array_equal(got, np.median(x.astype(np.float32), axis=0))


def test_the_median_network_finds_the_middle_of_every_binary_sequence():
    """The 0-1 principle: a compare-exchange network puts the right values in the middle places
    for every input when it does for every sequence of zeros and ones (all 2^n, n <= 14)."""
    for n in range(1, 15):
        bits = ((np.arange(2 ** n)[None] >> np.arange(n)[:, None]) & 1).astype(np.uint8)  # (n, 2^n)
        want = np.sort(bits, axis=0)[[(n - 1) // 2, n // 2]]
        got = frame_median(bits[:, :, None, None]).reshape(-1)
        np.testing.assert_array_equal(got, want.astype(np.float32).mean(axis=0), err_msg=f"n={n}")
