"""Synthetic scenes: determinism, band ground truth, flow ground truth."""

import cv2
import numpy as np
import pytest

from tlgen.data import flow as flow_lib
from tlgen.data.synthetic import DAY, make_scene


@pytest.fixture(scope="module")
def city():
    return make_scene("city", seed=3, size=24)


def test_city_is_deterministic_and_seeded(city):
    times = city.capture_times(30)
    np.testing.assert_array_equal(city.render(times), make_scene("city", seed=3, size=24)
                                  .render(times))
    assert not np.array_equal(city.render(times), make_scene("city", seed=4, size=24)
                              .render(times))


def test_band_with_tiny_cutoff_is_the_frame(city):
    times = np.linspace(0, 3 * DAY, 40)
    diff = city.render_band(times, 1e-6) * 255.0 - city.render(times)
    assert np.abs(diff).mean() < 2.0 and np.abs(diff).max() < 12   # sensor noise sigma 1.5


def test_band_cutoffs_follow_component_timescales(city):
    assert [n for n, _ in city.components][:3] == ["sensor_noise", "vehicles", "pedestrians"]
    # above the season period everything is removed: a constant scene
    times = np.linspace(0, 20 * DAY, 7)
    still = city.render_band(times, 1e9)
    np.testing.assert_allclose(still, still[:1].repeat(7, 0), atol=1e-6)
    # above the weather's 2 days only the 30-day season is left: midnight and noon agree
    # up to its slow drift; at a 1-day cutoff day/night is kept and they differ
    t = np.array([10 * DAY, 10.5 * DAY])
    slow, with_day = city.render_band(t, 2 * DAY + 1), city.render_band(t, DAY)
    assert np.abs(slow[0] - slow[1]).mean() < 0.01 < 0.05 < np.abs(with_day[0] - with_day[1]).mean()
    # the day/night average is the mean over the day of the rendered day/night component
    day_times = 5 * DAY + np.linspace(0, DAY, 96, endpoint=False)
    mean_day = city.render_alone("day_night", day_times).mean(0)
    err = np.abs(city.render_band([5 * DAY], 1e9)[0] - mean_day)
    assert err.mean() < 1e-4 and err.max() < 0.03       # equal except where a lit pixel clips


def test_objects_appear_for_hours_transients_for_seconds(city):
    t = 2 * DAY + np.arange(0, 6 * 3600, 60.0)
    cars = city.render_alone("cars", t)
    changes = np.flatnonzero(np.abs(np.diff(cars, axis=0)).max(axis=(1, 2, 3)) > 0.05)
    assert len(changes) >= 1 and np.diff(changes).min(initial=999) > 5   # stays >> 1 minute
    t = DAY / 2 + np.arange(0, 600, 1.0)          # noon, 10 minutes at 1 s
    cars_pass = city.render_alone("vehicles", t)
    moving = np.abs(np.diff(cars_pass, axis=0)).max(axis=(1, 2, 3)) > 0.05
    assert moving.mean() > 0.2


def test_irregular_capture_has_jitter_and_gaps(city):
    regular = city.capture_times(500, 600.0)
    irregular = city.capture_times(500, 600.0, irregular=True)
    assert len(irregular) < 450 and np.all(np.diff(irregular) > 0)
    assert np.diff(irregular).max() > 5 * 600 and np.diff(regular).max() == 600


@pytest.mark.parametrize("name", ["clouds", "water"])
def test_texture_flow_ground_truth_warps_frames(name):
    scene = make_scene(name, seed=0, size=32)
    assert scene.has_flow and set(np.unique(scene.masks([0.0]))) <= {0, 1, 2}
    t0, t1 = 5.0, 8.0
    a = scene.render_band([t0], 1e-6)[0]
    b = scene.render_band([t1], 1e-6)[0]
    f = scene.flow([t0], [t1])[0]
    assert np.abs(f).max() > 0.2 and np.all(f[scene.masks([t0])[0] == 0] == 0)
    warped = flow_lib.warp_backward(b, f)            # b at x + flow(x) should be a at x
    region = scene.masks([t0])[0]
    moving = np.zeros(a.shape[:2], bool)      # pixels whose 9x9 neighbourhood is one region
    for cls in (1, 2):
        moving |= cv2.erode((region == cls).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    moving[:, :4] = moving[:, -4:] = False
    err_warp = np.abs(warped - a)[moving].mean()
    err_none = np.abs(b - a)[moving].mean()
    assert err_warp < 0.35 * err_none


def test_flow_to_rgb_hue_and_brightness():
    from tlgen.data.flow import flow_to_rgb
    flow = np.zeros((3, 2, 2, 2), np.float32)
    flow[0, ..., 0] = 2.0    # right, full magnitude
    flow[1, ..., 0] = -1.0   # left, half magnitude
    raw = flow_to_rgb(flow)
    assert raw.shape == (3, 2, 2, 3) and raw.dtype == np.uint8
    rgb = raw.astype(int)
    assert rgb[0, 0, 0].max() == 255 and abs(rgb[1, 0, 0].max() - 127) <= 1
    assert rgb[0, 0, 0, 0] == 255 and rgb[0, 0, 0, 2] == 0      # right: red
    assert rgb[1, 0, 0, 2] > rgb[1, 0, 0, 0]                    # left: the opposite hue
    assert (rgb[2] == 0).all()                                  # no motion: black


def test_city_masks_label_what_each_region_renders(city):
    labels = city.masks([0.0, 5 * DAY])
    assert labels.shape == (2, 24, 24) and (labels[0] == labels[1]).all()      # a static camera
    noon, night = (city.render_band([t], DAY).astype(np.float64)[0] for t in (0.5 * DAY, 0.0))
    change = np.abs(noon - night).mean(-1)
    sky, road = labels[0] == 1, labels[0] == 3
    assert (city.window_ids[labels[0] == 1] < 0).all()                        # no window in the sky
    assert (city.window_ids >= 0)[labels[0] == 2].any()                       # windows in buildings
    assert change[sky].mean() > 2 * change[road].mean()                       # the sky changes most
    assert set(np.unique(labels)) == set(range(5))


@pytest.mark.parametrize("name", ["city", "water"])
def test_a_cropped_scene_renders_the_centre_of_the_square(name):
    """What `prepare --size HxW` stores and `tlgen eval` takes as the truth of such a dataset:
    every output of a scene made with a crop is the centre window of the square's."""
    square, tall = make_scene(name, seed=1, size=24), make_scene(name, seed=1, size=24, crop=(24, 10))
    wide = make_scene(name, seed=1, size=24, crop=(11, 24))
    times = [0.0, 4000.0]
    for scene, rows, cols in ((tall, slice(0, 24), slice(7, 17)), (wide, slice(6, 17), slice(0, 24))):
        for out in ("render", "masks"):
            np.testing.assert_array_equal(getattr(scene, out)(times),
                                          getattr(square, out)(times)[:, rows, cols])
        np.testing.assert_array_equal(scene.render_band(times, 3600.0),
                                      square.render_band(times, 3600.0)[:, rows, cols])
        component = square.components[-1][0]
        np.testing.assert_array_equal(scene.render_alone(component, times),
                                      square.render_alone(component, times)[:, rows, cols])
        if scene.has_flow:
            np.testing.assert_array_equal(scene.flow([0.0], [3.0]), square.flow([0.0], [3.0])[:, rows, cols])
    assert make_scene(name, seed=1, size=24, crop=(24, 24)).crop is None
    with pytest.raises(ValueError, match="does not fit"):
        make_scene(name, seed=1, size=24, crop=(25, 10))


def test_a_prepared_non_square_dataset_is_the_crop_its_ground_truth_renders(tmp_path):
    """What `prepare --size HxW` stores is exactly what `tlgen eval` renders as its truth."""
    from tlgen.data import open_dataset
    from tlgen.data.prepare import prepare
    from tlgen.families.timescale_ae.inference import synthetic_scene

    for size in ((12, 21), (21, 12)):                     # odd differences from the square
        out = str(tmp_path / f"{size[0]}x{size[1]}")
        prepare(["synthetic:city:frames=12,interval=1200"], out, size=size, levels=1, val_fraction=0.25)
        ds = open_dataset(out)
        scene, start = synthetic_scene(ds, 0)
        times, get_frames = ds.video_frames(0)
        np.testing.assert_array_equal(get_frames(np.arange(len(times))), scene.render(start + times))
