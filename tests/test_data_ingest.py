"""Ingest: timestamps, image loading, video I/O, prepare -> read back."""

import calendar
import datetime as dt
import logging
import os
import subprocess
import tempfile

import cv2
import numpy as np
import pytest
from PIL import Image

import imageio_ffmpeg

from tlgen.data import images, open_dataset, video_io
from tlgen.data.prepare import prepare
from tlgen.errors import UserError

T0 = calendar.timegm(dt.datetime(2021, 6, 1, 12, 0, 0).timetuple())


@pytest.mark.parametrize("name, expected", [
    ("2021-06-01T12-00-00.png", T0),
    ("cam_2021-06-01T12:00:00.5Z.jpg", T0 + 0.5),
    ("2021-06-01 12_00_00.tif", T0),
    ("20210601_120000.jpg", T0),
    ("IMG_20210601-120000.webp", T0),
    (f"{T0}.png", T0),
    (f"roof_{T0}.25.png", T0 + 0.25),
    ("frame_0001.png", None),
    ("frame_000000001.png", None),                # a zero-padded counter, not 1970
    ("frame_0000000001.png", None),               # ten digits too
    ("2021-06-01T14-00-00+02-00.png", T0),         # a UTC offset is applied
    ("2021-06-01T14:00:00+0200.jpg", T0),
    ("2021-06-01T10-30-00.5-01-30.png", T0 + 0.5),
    ("20210601.png", None),
    ("2021-13-01T12-00-00.png", None),
])
def test_time_from_name(name, expected):
    assert images.time_from_name(name) == expected


def test_time_from_exif(tmp_path):
    path = str(tmp_path / "shot.jpg")
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = "2021:06:01 12:00:07"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path, exif=exif)
    assert images.time_from_exif(path) == T0 + 7
    plain = str(tmp_path / "plain.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(plain)
    assert images.time_from_exif(plain) is None


def test_folder_times_errors_name_files(tmp_path):
    paths = [str(tmp_path / n) for n in ("20210601_120000.png", "20210601_120000.jpg")]
    with pytest.raises(UserError, match="duplicate timestamps.*20210601_120000.png"):
        images.folder_times(str(tmp_path), paths, None)
    mixed = [str(tmp_path / n) for n in ("20210601_120000.png", "oops.png")]
    for p in mixed:
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(p)
    with pytest.raises(UserError, match="unparseable timestamps in oops.png"):
        images.folder_times(str(tmp_path), mixed, None)
    for given in ([mixed[1]] * 3, paths + mixed[1:]):   # --interval: evenly, whatever the names say
        np.testing.assert_array_equal(images.folder_times(str(tmp_path), given, 2.5), [0.0, 2.5, 5.0])


def test_a_folder_of_numbered_frames_is_read_in_the_numbers_order(tmp_path):
    folder = tmp_path / "numbered"
    folder.mkdir()
    for i in (1, 2, 3, 10, 11, 20):                          # img10 sorts before img2 as text
        Image.fromarray(np.full((4, 4, 3), i, np.uint8)).save(folder / f"img{i}.png")
    out = str(tmp_path / "ds")
    prepare([str(folder)], out, interval=60.0, levels=1, val_fraction=0)
    frames = open_dataset(out).frames("train")
    assert [int(frames[i]["image"][0, 0, 0]) for i in range(6)] == [1, 2, 3, 10, 11, 20]
    assert sorted(["b10", "b9", "a10", "B1", "b09x"], key=images.name_order) == ["B1", "a10", "b9",
                                                                                 "b09x", "b10"]


def test_read_image_depths_and_channels(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "rgb16.png"), (rgb[..., ::-1].astype(np.uint16) * 257))
    np.testing.assert_array_equal(images.read_image(str(tmp_path / "rgb16.png")), rgb)
    cv2.imwrite(str(tmp_path / "gray.png"), rgb[..., 0])
    np.testing.assert_array_equal(images.read_image(str(tmp_path / "gray.png")),
                                  np.repeat(rgb[..., :1], 3, -1))
    rgba = np.concatenate([rgb, np.full((5, 7, 1), 9, np.uint8)], -1)
    Image.fromarray(rgba).save(tmp_path / "rgba.webp", lossless=True)
    np.testing.assert_array_equal(images.read_image(str(tmp_path / "rgba.webp")), rgb)


def test_resize_crop_keeps_aspect_and_centers():
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, 10:30] = 255                       # the central square
    out = images.resize_crop(image, (10, 10))
    assert out.shape == (10, 10, 3) and out.min() == 255


@pytest.mark.parametrize("shape, side", [((72, 128), 26), ((100, 224), 64), ((100, 220), 64)])
def test_video_frames_are_cropped_where_images_are(tmp_path, shape, side):
    """A video fitted to a square by ffmpeg and the same picture fitted by resize_crop (as
    label maps and stills are) put a vertical edge in the same column, odd excess included."""
    image = np.zeros(shape + (3,), np.uint8)
    image[:, shape[1] // 2:] = 255
    path = str(tmp_path / "edge.mp4")
    video_io.write_video(path, np.stack([image] * 2), fps=10, quality_crf=0)
    decoded = video_io.first_frames(path, (side, side), 1)[0][side // 2, :, 0].astype(float)
    fitted = images.resize_crop(image, (side, side))[side // 2, :, 0].astype(float)
    assert abs(decoded.sum() - fitted.sum()) / 255 < 0.25        # the edge within a quarter pixel


def _frames(n, h=16, w=24, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h, w, 3)).astype(np.float64)
    return np.stack([np.roll(base, i, axis=1) for i in range(n)]).astype(np.uint8)


def test_write_read_video_roundtrip(tmp_path, caplog):
    frames = np.repeat(np.repeat(_frames(6, 8, 12), 2, 1), 2, 2)   # smooth-ish 16x24
    path = str(tmp_path / "v.mp4")
    video_io.write_video(path, frames, fps=5)
    back, fps = video_io.read_video(path)
    assert back.shape == frames.shape and fps == 5
    assert np.abs(back.astype(int) - frames).mean() < 12
    # odd sizes are edge-padded to even ones (H.264's 4:2:0), the frames within them kept
    video_io.write_video(path, frames[:, :15, :23], fps=5)
    assert f"{path}: its 15x23 frames are stored as 16x24, the last row or column repeated" in caplog.text
    with pytest.raises(TypeError, match="frames of float64; give uint8"):     # not a black video
        video_io.write_video(str(tmp_path / "float.mp4"), frames / 255.0, fps=5)
    assert not (tmp_path / "float.mp4").exists()
    odd, _ = video_io.read_video(path)
    assert odd.shape == frames.shape and np.abs(odd[:, :15, :23].astype(int) - frames[:, :15, :23]).mean() < 12
    assert np.abs(odd[:, 15].astype(int) - odd[:, 14]).mean() < 6        # the padded row repeats the last


def test_prepare_png_folder_reads_back_exactly(tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"      # the system's temporary folder while preparing
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    folder = tmp_path / "cam"
    folder.mkdir()
    frames = _frames(12)
    times = T0 + 60.0 * np.array([0, 1, 2, 3, 4, 5, 9, 10, 11, 12, 13, 14])  # a 3-frame gap
    for f, t in zip(frames, times):
        stamp = dt.datetime.fromtimestamp(t, dt.timezone.utc)
        Image.fromarray(f).save(folder / f"{stamp:%Y-%m-%dT%H-%M-%S}.png")
    masks = tmp_path / "masks"
    masks.mkdir()
    for i, name in enumerate(sorted(os.listdir(folder))):
        Image.fromarray(np.full((16, 24), i % 3, np.uint8)).save(masks / name)
    out = str(tmp_path / "ds")
    meta = prepare([str(folder)], out, levels=2, val_fraction=0.25, masks=[str(masks)])
    assert os.listdir(scratch) == []    # nothing left behind in it
    ds = open_dataset(out)
    assert meta["videos"][0]["start_time"] == T0 and meta["level_periods"] == [60.0, 120.0]
    train, val = ds.frames("train"), ds.frames("validation")
    assert (len(train), len(val)) == (9, 3)
    got = [train[i] for i in range(9)] + [val[i] for i in range(3)]
    np.testing.assert_array_equal(np.stack([g["image"] for g in got]), frames)
    np.testing.assert_array_equal([g["time"] for g in got], times - T0)
    np.testing.assert_array_equal([g["frame_index"] for g in got], np.arange(12))
    np.testing.assert_array_equal([g["mask"][0, 0] for g in got], np.arange(12) % 3)
    np.testing.assert_array_equal(ds.index("validation")["time"], times[9:] - T0)
    # pyramid records: the grid index of each level-1 sample, gaps included, as in the index
    level = ds.pyramid_level("train", 1)
    records = [level[i] for i in range(len(level))]
    level_times = np.array([r["time"] for r in records])
    expected = np.rint((level_times - level_times[0]) / 120.0)
    np.testing.assert_array_equal([r["frame_index"] for r in records], expected)
    np.testing.assert_array_equal(ds.index("train", 1)["frame_index"], expected)


def test_level_records_index_the_grid_when_its_second_point_is_missing():
    from types import SimpleNamespace

    from tlgen.data.prepare import _level_examples
    times = np.array([0.0, 240.0, 360.0])            # grid of 120 s; the point at 120 s dropped
    video = SimpleNamespace(id=3, levels={("train", 1): (times, np.zeros((3, 2, 2, 3), np.uint8))})
    records = list(_level_examples([video], "train", 1, 120.0))
    assert [r["frame_index"] for r in records] == [0, 2, 3]
    assert [r["time"] for r in records] == list(times) and {r["video_id"] for r in records} == {3}


def test_prepare_mp4_within_codec_tolerance_and_interval(tmp_path):
    frames = np.repeat(np.repeat(_frames(20, 8, 12, seed=1), 2, 1), 2, 2)
    path = str(tmp_path / "clip.mp4")
    video_io.write_video(path, frames, fps=10)
    out = str(tmp_path / "ds")
    prepare([path], out, levels=2, val_fraction=0.1)
    ds = open_dataset(out)
    src = ds.frames("train")
    got = np.stack([src[i]["image"] for i in range(len(src))] +
                   [ds.frames("validation")[i]["image"] for i in range(2)])
    assert got.shape == frames.shape
    assert np.abs(got.astype(int) - frames).mean() < 12
    assert src[3]["time"] == pytest.approx(0.3)
    prepare([path], out, interval=60.0, size="8x8", levels=1, val_fraction=0, overwrite=True)
    ds = open_dataset(out)
    assert ds.frames("train")[2]["image"].shape == (8, 8, 3)
    assert ds.frames("train")[2]["time"] == 120.0 and ds.splits == ["train"]


def test_open_dataset_rejects_other_folders(tmp_path):
    with pytest.raises(UserError, match="is not a tlgen dataset"):
        open_dataset(str(tmp_path))
    (tmp_path / "week.mp4").write_bytes(b"")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    for path, says in ((tmp_path / "gone", "does not exist; give a dataset folder written by `tlgen prepare`"),
                       (tmp_path / "week.mp4", "is a file, not a dataset folder; prepare footage into "
                                               f"one first: tlgen prepare {tmp_path / 'week.mp4'} --out DIR."),
                       (tmp_path / "run", "is a training work directory, not a dataset")):
        with pytest.raises(UserError) as error:
            open_dataset(str(path))
        assert str(error.value).startswith(f"{path} {says}")


def _ffmpeg(*args):
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", *args], check=True)


def _times(out):
    return open_dataset(out).index("train")["time"]


def test_videos_keep_their_frames_own_times(tmp_path, caplog):
    vfr = str(tmp_path / "vfr.mkv")            # a 0.6 s pause after frame 19 (variable frame rate)
    _ffmpeg("-f", "lavfi", "-i", "testsrc=s=32x24:r=10:d=4", "-vf", "setpts='(N+5*gte(N\\,20))/10/TB'",
            "-fps_mode", "vfr", vfr)
    prepare([vfr], str(tmp_path / "a"), levels=1, val_fraction=0)
    np.testing.assert_allclose(_times(str(tmp_path / "a"))[17:23], [1.7, 1.8, 1.9, 2.5, 2.6, 2.7])
    gif = str(tmp_path / "delays.gif")          # per-frame delays of 0.1 s, then 1 s
    ims = [Image.new("RGB", (16, 16), (20 * i, 0, 0)) for i in range(10)]
    ims[0].save(gif, save_all=True, append_images=ims[1:], duration=[100] * 5 + [1000] * 5)
    prepare([gif], str(tmp_path / "b"), levels=1, val_fraction=0)
    np.testing.assert_allclose(_times(str(tmp_path / "b")), [0, .1, .2, .3, .4, .5, 1.5, 2.5, 3.5, 4.5])
    prepare([gif], str(tmp_path / "c"), levels=1, val_fraction=0, interval=60)   # --interval wins
    np.testing.assert_allclose(_times(str(tmp_path / "c")), np.arange(10) * 60.0)
    audio = str(tmp_path / "audio.mp4")         # 4 s of video, 10 s of sound: not "truncated"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=s=32x24:r=10:d=4", "-f", "lavfi", "-i", "sine=d=10",
            "-c:a", "aac", audio)
    with caplog.at_level(logging.WARNING):
        prepare([audio], str(tmp_path / "d"), levels=1, val_fraction=0)
    assert len(_times(str(tmp_path / "d"))) == 40 and "cover 4 s of the 10 s" in caplog.text


def test_a_phones_rotated_video_is_stored_upright_without_a_warning(tmp_path, caplog):
    stored = str(tmp_path / "stored.mp4")          # 32 wide, 24 high as stored, shown turned
    _ffmpeg("-f", "lavfi", "-i", "testsrc=s=32x24:r=10:d=1", stored)
    turned = str(tmp_path / "turned.mp4")
    _ffmpeg("-display_rotation", "90", "-i", stored, "-c", "copy", turned)
    info = video_io.probe_video(turned)
    with caplog.at_level(logging.WARNING):
        prepare([turned], str(tmp_path / "ds"), levels=1, val_fraction=0)
    assert (info.height, info.width) == (32, 24) and caplog.text == ""
    upright = open_dataset(str(tmp_path / "ds")).frames("train")[0]["image"]
    first = video_io.first_frames(stored, (24, 32), 1)[0]
    assert upright.shape == (32, 24, 3)
    assert min(np.abs(upright.astype(int) - np.rot90(first, k).astype(int)).mean() for k in (1, -1)) < 8


def test_image_folders_orientation_bmp_and_folders_named_like_images(tmp_path):
    folder = tmp_path / "cam"
    folder.mkdir()
    photo = np.zeros((6, 10, 3), np.uint8)
    photo[:, :5] = (255, 0, 0)                  # left half red, as stored
    exif = Image.Exif()
    exif[0x0112] = 6                            # shown turned 90 degrees clockwise
    Image.fromarray(photo).save(folder / "2021-06-01T12-00-00.jpg", exif=exif, quality=100)
    Image.fromarray(np.rot90(photo, -1)).save(folder / "2021-06-01T12-10-00.bmp")
    (folder / "2021-06-01T12-20-00.png").mkdir()                   # a folder, not an image
    out = str(tmp_path / "ds")
    prepare([str(folder)], out, levels=1, val_fraction=0)
    src = open_dataset(out).frames("train")
    assert len(src) == 2
    upright = src[0]["image"]
    assert upright.shape == (10, 6, 3) and upright[0, 0, 0] > 192 > 64 > upright[-1, 0, 0]  # red on top
    assert np.abs(upright.astype(int) - np.rot90(photo, -1)).mean() < 20   # JPEG (turned wrong: ~120)
    np.testing.assert_array_equal(src[1]["image"], np.rot90(photo, -1))


def test_masks_palette_binary_and_colour_and_paired_in_name_order(tmp_path):
    frames, masks = tmp_path / "frames", tmp_path / "masks"
    frames.mkdir(), masks.mkdir()
    minutes = [10, 0, 20, 5]                     # IMG_0..3 taken out of name order (EXIF)
    for i, m in enumerate(minutes):
        exif = Image.Exif()
        exif.get_ifd(0x8769)[36867] = f"2021:06:01 12:{m:02d}:00"
        Image.fromarray(np.full((8, 8, 3), 10 * i, np.uint8)).save(frames / f"IMG_{i}.jpg", exif=exif)
        palette = Image.fromarray(np.full((8, 8), i % 3, np.uint8), "P")
        palette.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0])
        palette.save(masks / f"mask_{i}.png")
    out = str(tmp_path / "ds")
    prepare([str(frames)], out, masks=[str(masks)], levels=1, val_fraction=0)
    src = open_dataset(out).frames("train")
    order = np.argsort(minutes)                  # frames in time order, each with its own mask
    assert [int(src[j]["mask"][0, 0]) for j in range(4)] == [int(i) % 3 for i in order]
    assert [int(src[j]["image"][0, 0, 0]) // 10 for j in range(4)] == [int(i) for i in order]
    for i in range(4):                          # black and white: classes 0 and 1
        Image.fromarray(np.full((8, 8), 255 * (i % 2), np.uint8)).save(masks / f"mask_{i}.png")
    meta = prepare([str(frames)], out, masks=[str(masks)], levels=1, val_fraction=0, overwrite=True)
    assert meta["num_classes"] == 2
    for i in range(4):                          # half the frames' size: resized as they are
        Image.fromarray(np.full((4, 4), i % 2, np.uint8)).save(masks / f"mask_{i}.png")
    prepare([str(frames)], out, masks=[str(masks)], levels=1, val_fraction=0, overwrite=True)
    src = open_dataset(out).frames("train")
    assert [src[j]["mask"].shape for j in range(4)] == [(8, 8)] * 4
    assert [int(src[j]["mask"][7, 7]) for j in range(4)] == [int(i) % 2 for i in order]
    Image.fromarray(np.zeros((4, 8), np.uint8)).save(masks / "mask_1.png")
    with pytest.raises(UserError, match=r"mask_1.png is 4x8 but a frame of .*frames is 8x8 \(HxW\); "
                                        r"give a mask of that size \(or of its aspect\)\."):
        prepare([str(frames)], str(tmp_path / "bad"), masks=[str(masks)], levels=1, val_fraction=0)
    assert not (tmp_path / "bad").exists()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(masks / "mask_1.png")
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[:4] = (128, 0, 0)
    Image.fromarray(colour).save(masks / "mask_2.png")
    with pytest.raises(UserError, match=r"mask_2.png is a colour image; masks hold one class index per "
                                        r"pixel: save it as an 8-bit grayscale or palette PNG\."):
        prepare([str(frames)], str(tmp_path / "bad"), masks=[str(masks)], levels=1, val_fraction=0)


def test_labels_of_the_images_aspect_black_and_white_and_out_of_range(tmp_path):
    labels = np.arange(12, dtype=np.uint8).reshape(3, 4) % 3
    read = lambda paths, classes=3: images.read_labels(paths, "--mask", (3, 4), "--image", classes, (3, 4))
    path, other = str(tmp_path / "m.png"), str(tmp_path / "n.png")
    Image.fromarray(np.kron(labels, np.ones((2, 2), np.uint8))).save(path)     # twice the size
    np.testing.assert_array_equal(read([path])[0], labels)
    Image.fromarray(255 * (labels == 1).astype(np.uint8)).save(path)            # black and white
    np.testing.assert_array_equal(read([path], 2)[0], labels == 1)
    Image.fromarray(np.full((3, 4), 255, np.uint8)).save(other)                 # all white, in a set
    np.testing.assert_array_equal(read([path, other], 2), [labels == 1, np.ones((3, 4))])
    Image.fromarray(np.where(labels == 2, 128, 255 * (labels == 1)).astype(np.uint8)).save(other)
    with pytest.raises(UserError, match=r"--mask .*m.png has class 255, but the run knows 3 classes"):
        read([path, other])                 # 0, 128 and 255 in the set: not black and white
    Image.fromarray(np.zeros((6, 2), np.uint8)).save(path)
    with pytest.raises(UserError, match=r"--mask .*m.png is 6x2 but --image is 3x4 \(HxW\); give a mask of that size"):
        read([path])
    Image.fromarray(labels).save(path)
    with pytest.raises(UserError, match=r"--mask .*m.png has class 2, but the run knows 2 regions \(sky, water\)"):
        read([path], ["sky", "water"])


def test_flow_on_frames_too_small_for_dis_and_an_incomplete_dataset_are_one_sentence(tmp_path):
    clip = str(tmp_path / "clip.mp4")
    video_io.write_video(clip, _frames(6, 16, 24), fps=5)
    with pytest.raises(UserError, match=r"DIS optical flow cannot take frames of 8x8 .* --flow-method "
                                        r"farneback\."):
        prepare([clip], str(tmp_path / "small"), size="8", flow=True, levels=1, val_fraction=0)
    assert not os.path.exists(tmp_path / "small")
    out = str(tmp_path / "ds")
    prepare([clip], out, levels=1, val_fraction=0)
    for root, _, names in os.walk(out):
        for name in names:
            if ".array_record" in name:
                os.remove(os.path.join(root, name))
    with pytest.raises(UserError, match=r"cannot be read \(.*\); the dataset is incomplete or damaged: "
                                        r"prepare it again\."):
        open_dataset(out).frames("train")[0]
    for root, _, names in os.walk(out):             # TFDS's own description of the dataset gone
        if "dataset_info.json" in names:
            os.remove(os.path.join(root, "dataset_info.json"))
    with pytest.raises(UserError, match=r"cannot be read \(.*\); the dataset is incomplete or damaged: "
                                        r"prepare it again\."):
        open_dataset(out).frames("train")[0]
