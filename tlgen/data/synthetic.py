"""Procedural fixed-camera scenes with known timescales and ground truth.

`make_scene("city")`: a street in front of buildings, rendered from components at known
timescales (seconds):

    sensor_noise 0        Gaussian pixel noise (never part of any ground truth)
    vehicles     20       cars driving through (visible ~20 s)
    pedestrians  60       people walking along the sidewalk (visible ~60 s)
    vans         3600     delivery vans in a loading zone (stay ~1 h)
    cars         7200     parked cars (stay ~2 h)
    trucks       14400    trucks at the curb (stay ~4 h)
    stalls       28800    market stalls on the plaza (stay ~8 h)
    day_night    86400    sun, sky colour, windows and street lamps that switch on in the dark
    weather      172800   cloud cover (sum of sinusoids, shortest period 2 days)
    season       2592000  foliage colour (30-day cycle)

A component's timescale is its period for periodic components, its shortest period for the
weather, and the mean time an object stays in view for objects. "Slower than a cutoff"
means timescale >= cutoff. `render_band(times, p)` renders the scene with every component
whose timescale is < p held at its mean state: objects absent, day/night at its 24-hour
average (the frame is linear in the illumination, sky colours and window/lamp switches, so
this is exactly the time average over the day), weather and season at their mean. Sensor
noise is never included, so `render_band(t, tiny) == render(t) / 255` up to noise and
quantization. `render_alone(name, times)` varies only that component (others at their mean).

Moving-texture scenes "clouds" and "water": periodic textures translating at known
velocities (pixels per second) behind static ground, with ground-truth flow `flow(a, b)`
and region masks (0 ground, 1 sky, 2 water). The city's masks label its empty street: 0 ground,
1 sky, 2 buildings, 3 road, 4 trees.

Everything is a deterministic function of (name, seed, size, time). A scene made with a
`crop` (height, width) renders the centre of its square: how `tlgen prepare --size HxW`
fits it to a non-square size, and how the ground truth of such a dataset is rendered.
"""

from __future__ import annotations

import dataclasses

import numpy as np

DAY = 86400.0


def _mix64(x: np.ndarray) -> np.ndarray:
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hash_uniform(*keys) -> np.ndarray:
    """Deterministic uniform [0, 1) numbers from integer keys (broadcast arrays)."""
    with np.errstate(over="ignore"):
        h = np.uint64(0x9E3779B97F4A7C15)
        for k in keys:
            k = np.asarray(k).astype(np.int64).astype(np.uint64)
            h = _mix64(h ^ (k + np.uint64(0x9E3779B97F4A7C15) + (h << np.uint64(6))))
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _smoothstep(a, b, x):
    t = np.clip((np.asarray(x, np.float64) - a) / (b - a), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _rect(u, v, x0, x1, y0, y1):
    return (u >= x0) & (u < x1) & (v >= y0) & (v < y1)


@dataclasses.dataclass(frozen=True)
class _ObjectClass:
    name: str
    dwell: float                      # mean stay (seconds): the component's timescale
    slots: tuple[tuple[float, float, float, float], ...]  # x0, x1, y0, y1 (fractions)
    occupancy: float                  # probability a stay starts in a dwell-long cell


@dataclasses.dataclass(frozen=True)
class _Transient:
    name: str
    duration: float                   # seconds in view: the component's timescale
    cell: float                       # one possible appearance per cell (seconds)
    rate: float                       # probability of an appearance per cell at full day
    lanes: tuple[tuple[float, float, int], ...]  # y0, y1, direction (+1 right, -1 left)
    width: float
    height_frac: float


class Scene:
    """Base class: deterministic renderer with ground truth; see the module docstring."""

    name = ""
    components: list[tuple[str, float]] = []
    default_capture: tuple[int, float] = (0, 0.0)
    has_flow = False
    num_classes = 0
    # (height, width) of the centre that every rendered output keeps; the scene's own arrays
    # (size, layout, u, v, ...) stay those of the whole square
    crop: tuple[int, int] | None = None

    def __init__(self, seed: int = 0, size: int = 64):
        self.seed, self.size = int(seed), int(size)
        c = (np.arange(self.size, dtype=np.float64) + 0.5) / self.size
        self.u, self.v = np.meshgrid(c, c)

    @property
    def spec(self) -> dict:
        """Keyword arguments of `make_scene` that recreate this scene's square (a dataset's
        frames, of its own size, are its crop)."""
        return {"name": self.name, "seed": self.seed, "size": self.size}

    def timescale(self, name: str) -> float:
        return dict(self.components)[name]

    def render(self, times) -> np.ndarray:
        """Observed frames: uint8 (N, H, W, 3) with every component and sensor noise."""
        times = np.atleast_1d(np.asarray(times, np.float64))
        x = self._render(times, {n for n, _ in self.components})
        sigma = 1.5 / 255.0
        for i, t in enumerate(times):
            rng = np.random.default_rng([self.seed, 7, int(np.float64(t).view(np.uint64))])
            x[i] += rng.normal(0.0, sigma, x[i].shape).astype(np.float32)
        return self._centre(np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8))

    def render_band(self, times, min_period: float) -> np.ndarray:
        """float32 (N, H, W, 3) in [0, 1]: only components with timescale >= min_period."""
        keep = {n for n, ts in self.components if ts >= min_period and n != "sensor_noise"}
        return self._centre(np.clip(self._render(np.atleast_1d(np.asarray(times, np.float64)), keep), 0, 1))

    def render_alone(self, name: str, times) -> np.ndarray:
        """float32 (N, H, W, 3): only component `name` varies, the others at their mean."""
        if name not in dict(self.components):
            raise ValueError(f"{self.name} has no component {name!r}: {self.components}")
        return self._centre(np.clip(self._render(np.atleast_1d(np.asarray(times, np.float64)), {name}), 0, 1))

    def capture_times(self, num_frames: int | None = None, interval: float | None = None, *,
                      irregular: bool = False, start: float = 0.0) -> np.ndarray:
        """Capture times (seconds). Irregular: jittered, ~10% dropped frames, two long gaps."""
        n, dt = self.default_capture
        n, dt = int(num_frames or n), float(interval or dt)
        times = start + dt * np.arange(n, dtype=np.float64)
        if not irregular:
            return times
        rng = np.random.default_rng([self.seed, 11])
        times = times + rng.uniform(-0.3, 0.3, n) * dt
        keep = rng.random(n) >= 0.1
        for center in rng.uniform(0.2, 0.8, 2) * n:
            half = int(rng.uniform(0.01, 0.03) * n) + 1
            keep[max(1, int(center) - half):int(center) + half] = False
        keep[0] = True
        return np.sort(times[keep])

    def flow(self, times_a, times_b) -> np.ndarray:
        """Ground-truth flow (N, H, W, 2) in pixels from frames at times_a to times_b."""
        return self._centre(self._flow(times_a, times_b))

    def masks(self, times) -> np.ndarray:
        """Region class indices uint8 (N, H, W) (the classes: the module docstring)."""
        return self._centre(np.repeat(self._layout_classes()[None], len(np.atleast_1d(times)), 0))

    def _centre(self, x: np.ndarray) -> np.ndarray:
        """The centre `crop` of (N, size, size, ...) outputs (all of them without one)."""
        if self.crop is None:
            return x
        top, left = (self.size - self.crop[0]) // 2, (self.size - self.crop[1]) // 2
        return np.ascontiguousarray(x[:, top:top + self.crop[0], left:left + self.crop[1]])

    def _flow(self, times_a, times_b) -> np.ndarray:
        raise NotImplementedError(f"scene {self.name!r} has no ground-truth flow")

    def _layout_classes(self) -> np.ndarray:
        raise NotImplementedError(f"scene {self.name!r} has no region masks")

    def _render(self, times: np.ndarray, keep: set[str]) -> np.ndarray:
        raise NotImplementedError


class CityScene(Scene):
    """A street with buildings: day/night, weather, season, objects and passers-by."""

    name = "city"
    default_capture = (3024, 1200.0)   # 42 days every 20 minutes
    num_classes = 5                    # 0 ground, 1 sky, 2 buildings, 3 road, 4 trees

    OBJECTS = (
        _ObjectClass("vans", 3600.0, ((0.04, 0.20, 0.74, 0.82),), 0.5),
        _ObjectClass("cars", 7200.0, ((0.24, 0.38, 0.755, 0.82), (0.42, 0.56, 0.755, 0.82)), 0.6),
        _ObjectClass("trucks", 14400.0, ((0.62, 0.94, 0.72, 0.82),), 0.45),
        _ObjectClass("stalls", 28800.0, ((0.08, 0.26, 0.60, 0.68), (0.60, 0.78, 0.60, 0.68)), 0.5),
    )
    TRANSIENTS = (
        _Transient("vehicles", 20.0, 30.0, 0.8, ((0.84, 0.89, 1), (0.90, 0.95, -1)), 0.14, 1.0),
        _Transient("pedestrians", 60.0, 20.0, 0.9, ((0.67, 0.72, 1), (0.955, 1.0, -1)), 0.025, 1.0),
    )
    WEATHER = ((2.0 * DAY, 0.40), (3.1 * DAY, 0.35), (4.7 * DAY, 0.25))
    SEASON = 30.0 * DAY

    components = sorted(
        [("sensor_noise", 0.0), ("day_night", DAY), ("weather", 2.0 * DAY), ("season", SEASON)]
        + [(o.name, o.dwell) for o in OBJECTS] + [(t.name, t.duration) for t in TRANSIENTS],
        key=lambda c: c[1])

    def __init__(self, seed: int = 0, size: int = 64):
        super().__init__(seed, size)
        rng = np.random.default_rng([self.seed, 1])
        u, v = self.u, self.v
        self.horizon = 0.70
        albedo = np.zeros((size, size, 3))
        albedo[:] = (0.42, 0.40, 0.38)                                 # sidewalks
        albedo[_rect(u, v, 0, 1, 0.74, 0.955)] = (0.20, 0.20, 0.22)    # road
        lane = _rect(u, v, 0, 1, 0.892, 0.898) & (np.floor(u * 12) % 2 == 0)
        albedo[lane] = (0.85, 0.85, 0.80)
        building = np.zeros((size, size), bool)
        self.window_ids = -np.ones((size, size), int)
        x, n_windows = 0.0, 0
        while x < 1.0:
            w = rng.uniform(0.12, 0.24)
            top = rng.uniform(0.12, 0.45)
            body = _rect(u, v, x, x + w, top, self.horizon - 0.1)
            building |= body
            albedo[body] = rng.uniform(0.3, 0.7, 3) * rng.uniform(0.6, 1.0)
            cols, rows = max(1, int(w / 0.06)), max(1, int((self.horizon - 0.12 - top) / 0.07))
            for r in range(rows):
                for c in range(cols):
                    wx, wy = x + (c + 0.3) * w / cols, top + 0.02 + r * 0.07
                    win = _rect(u, v, wx, wx + 0.4 * w / cols, wy, wy + 0.035) & body
                    self.window_ids[win] = n_windows
                    n_windows += 1
            x += w + rng.uniform(0.0, 0.05)
        albedo[self.window_ids >= 0] = (0.10, 0.12, 0.16)
        plaza = _rect(u, v, 0, 1, self.horizon - 0.1, 0.74)
        albedo[plaza] = (0.50, 0.47, 0.42)
        self.sky = ~building & (v < self.horizon - 0.1)
        self.sky_grad = np.clip(v / (self.horizon - 0.1), 0, 1)
        trees = np.zeros((size, size), bool)
        for cx in rng.uniform(0.05, 0.95, 4):
            trees |= ((u - cx) / 0.07) ** 2 + ((v - 0.50) / 0.09) ** 2 < 1
        self.trees = trees
        self.albedo = albedo.astype(np.float32)
        layout = np.zeros((size, size), np.uint8)
        layout[self.sky] = 1
        layout[building] = 2
        layout[_rect(u, v, 0, 1, 0.74, 0.955)] = 3
        layout[trees & ~self.sky] = 4
        self.layout = layout
        self.window_threshold = rng.uniform(0.15, 0.75, n_windows)
        self.window_color = rng.uniform(0.8, 1.0, (n_windows, 3)) * (1.0, 0.85, 0.55)
        lamps = np.zeros((size, size))
        for lx in (0.15, 0.5, 0.85):
            lamps += np.exp(-(((u - lx) / 0.06) ** 2 + ((v - 0.76) / 0.05) ** 2))
        self.lamps = (np.clip(lamps, 0, 1)[..., None] * (0.55, 0.45, 0.25)).astype(np.float32)
        self.weather_phase = rng.uniform(0, 2 * np.pi, len(self.WEATHER))
        self.season_phase = rng.uniform(0, 2 * np.pi)
        self.object_colors = rng.uniform(0.15, 0.9, (64, 3))
        self._day_mean = self._day_features(np.linspace(0, DAY, 96, endpoint=False)).mean(0)

    def _layout_classes(self) -> np.ndarray:
        """Region classes (H, W) of the empty street: 0 ground, 1 sky, 2 buildings (windows
        included), 3 road, 4 trees (objects and passers-by not labelled)."""
        return self.layout

    # -- component states --------------------------------------------------------------------
    def _daylight(self, times):
        elevation = -np.cos(2 * np.pi * (np.asarray(times) % DAY) / DAY)
        return _smoothstep(-0.25, 0.35, elevation), elevation

    def _day_features(self, times) -> np.ndarray:
        """Per time: [light rgb, sky top rgb, sky horizon rgb, lamp, window switches...]."""
        d, e = self._daylight(times)
        warm = _smoothstep(0.2, 0.7, d)[:, None]
        light = (0.10 + 0.90 * d)[:, None] * (warm + (1 - warm) * np.array([1.0, 0.78, 0.6]))
        top = np.array([0.02, 0.03, 0.09]) + d[:, None] * np.array([0.28, 0.45, 0.78])
        glow = np.exp(-(e / 0.18) ** 2)[:, None] * np.array([0.55, 0.28, 0.10])
        horizon = np.array([0.04, 0.05, 0.12]) + d[:, None] * np.array([0.55, 0.65, 0.80]) + glow
        lamp = (d < 0.3).astype(np.float64)[:, None]
        windows = (d[:, None] < self.window_threshold[None, :]).astype(np.float64)
        return np.concatenate([light, top, horizon, lamp, windows], axis=1)

    def _weather(self, times):
        c = 0.5 + 0.5 * sum(a * np.sin(2 * np.pi * np.asarray(times) / p + ph)
                            for (p, a), ph in zip(self.WEATHER, self.weather_phase))
        return c

    def _season(self, times):
        return 0.5 + 0.5 * np.sin(2 * np.pi * np.asarray(times) / self.SEASON + self.season_phase)

    # -- rendering ---------------------------------------------------------------------------
    def _render(self, times: np.ndarray, keep: set[str]) -> np.ndarray:
        n = len(times)
        feats = (self._day_features(times) if "day_night" in keep
                 else np.broadcast_to(self._day_mean, (n, self._day_mean.size)))
        cloud = self._weather(times) if "weather" in keep else np.full(n, 0.5)
        season = self._season(times) if "season" in keep else np.full(n, 0.5)
        light = feats[:, 0:3] * (1 - 0.45 * cloud)[:, None]
        out = np.empty((n, self.size, self.size, 3), np.float32)
        green, autumn = np.array([0.16, 0.42, 0.12]), np.array([0.70, 0.40, 0.08])
        for i in range(n):
            albedo = self.albedo.copy()
            albedo[self.trees] = green + season[i] * (autumn - green)
            frame = albedo * light[i]
            gray = 0.75 * feats[i, 0:3].mean()
            sky = (feats[i, 3:6] * (1 - self.sky_grad[..., None])
                   + feats[i, 6:9] * self.sky_grad[..., None])
            sky = sky * (1 - 0.7 * cloud[i]) + 0.7 * cloud[i] * gray
            frame[self.sky] = sky[self.sky]
            frame += feats[i, 9] * self.lamps
            lit = self.window_ids >= 0
            frame[lit] += (feats[i, 10:][self.window_ids[lit]][:, None]
                           * self.window_color[self.window_ids[lit]])
            out[i] = frame
        for obj in self.OBJECTS:
            if obj.name in keep:
                self._draw_objects(out, times, obj, light)
        for tr in self.TRANSIENTS:
            if tr.name in keep:
                self._draw_transients(out, times, tr, light)
        return out

    def _draw_objects(self, out, times, obj: _ObjectClass, light):
        cls = [o.name for o in self.OBJECTS].index(obj.name) + 100
        cell = np.floor(times / obj.dwell).astype(np.int64)[:, None] - np.arange(3)[None, :]
        for s, (x0, x1, y0, y1) in enumerate(obj.slots):
            r = [hash_uniform(self.seed, cls, s, cell, j) for j in range(4)]
            start = (cell + r[1]) * obj.dwell
            active = (r[0] < obj.occupancy) & (start <= times[:, None]) & \
                     (times[:, None] < start + obj.dwell * (0.5 + r[2]))
            latest = np.argmax(np.where(active, start, -np.inf), axis=1)
            rows = np.flatnonzero(active.any(axis=1))
            body = _rect(self.u, self.v, x0, x1, y0 + 0.3 * (y1 - y0), y1)
            roof = _rect(self.u, self.v, x0 + 0.15 * (x1 - x0), x1 - 0.15 * (x1 - x0), y0, y1)
            for i in rows:
                color = self.object_colors[int(r[3][i, latest[i]] * 64)]
                out[i][roof] = (0.6 * color) * light[i]
                out[i][body] = color * light[i]

    def _draw_transients(self, out, times, tr: _Transient, light):
        cls = [t.name for t in self.TRANSIENTS].index(tr.name) + 200
        span = int(np.ceil(tr.duration / tr.cell)) + 1
        cell = np.floor(times / tr.cell).astype(np.int64)[:, None] - np.arange(span)[None, :]
        day, _ = self._daylight(times)
        for lane, (y0, y1, direction) in enumerate(tr.lanes):
            r = [hash_uniform(self.seed, cls, lane, cell, j) for j in range(3)]
            start = (cell + r[1]) * tr.cell
            phase = (times[:, None] - start) / tr.duration
            active = (r[0] < tr.rate * (0.25 + 0.75 * day[:, None])) & (phase >= 0) & (phase < 1)
            for i, j in zip(*np.nonzero(active)):
                x = -tr.width + phase[i, j] * (1 + tr.width)
                if direction < 0:
                    x = 1 - x - tr.width
                color = self.object_colors[int(r[2][i, j] * 64)]
                out[i][_rect(self.u, self.v, x, x + tr.width, y0, y1)] = color * light[i]


class _TextureScene(Scene):
    """Periodic procedural textures translating over static ground."""

    has_flow = True
    num_classes = 3
    default_capture = (512, 1.0)
    # region name -> (class index, velocity in image widths per second (x, y), modes, k_max)
    REGIONS: dict = {}

    def __init__(self, seed: int = 0, size: int = 64):
        super().__init__(seed, size)
        rng = np.random.default_rng([self.seed, 2, len(self.name)])
        self.layout = self._layout(rng)
        self.textures = {}
        for name, (_, vel, modes, kmax) in self.REGIONS.items():
            k = rng.integers(-kmax, kmax + 1, (modes, 2))
            k = k[(k != 0).any(axis=1)]
            amp = rng.uniform(0.5, 1.0, len(k)) / np.linalg.norm(k, axis=1)
            self.textures[name] = (k.astype(np.float64), amp / amp.sum(),
                                   rng.uniform(0, 2 * np.pi, len(k)), np.asarray(vel, np.float64))
        self.texture_mean = {name: self._shade(name, self._texture(name, 0.0, dense=True))
                             .reshape(-1, 3).mean(axis=0) for name in self.REGIONS}

    @property
    def components(self):
        return sorted([("sensor_noise", 0.0)] + [
            (f"{name}_motion", 1.0 / (kmax * np.linalg.norm(vel)))
            for name, (_, vel, _, kmax) in self.REGIONS.items()], key=lambda c: c[1])

    def _texture(self, name, t, dense=False):
        k, amp, phase, vel = self.textures[name]
        if dense:  # one full period of the texture: its spatial (= long-run temporal) mean
            g = np.arange(256) / 256.0
            u, v = np.meshgrid(g, g)
        else:
            u, v = self.u - vel[0] * t, self.v - vel[1] * t
        arg = 2 * np.pi * (k[:, 0, None, None] * u[None] + k[:, 1, None, None] * v[None])
        return np.tensordot(amp, np.cos(arg + phase[:, None, None]), axes=1)

    def _render(self, times, keep):
        out = np.empty((len(times), self.size, self.size, 3), np.float32)
        for i, t in enumerate(times):
            frame = self.ground.copy()
            for name, (cls, *_rest) in self.REGIONS.items():
                region = self.layout == cls
                shade = (self._shade(name, self._texture(name, t)) if f"{name}_motion" in keep
                         else np.broadcast_to(self.texture_mean[name], frame.shape))
                frame[region] = shade[region]
            out[i] = frame
        return out

    def _flow(self, times_a, times_b) -> np.ndarray:
        dt = np.atleast_1d(np.asarray(times_b, np.float64) - np.asarray(times_a, np.float64))
        per_pixel = np.zeros((self.size, self.size, 2))
        for name, (cls, *_rest) in self.REGIONS.items():
            per_pixel[self.layout == cls] = self.textures[name][3] * self.size
        return (dt[:, None, None, None] * per_pixel[None]).astype(np.float32)

    def _layout_classes(self) -> np.ndarray:
        """Region classes (H, W): 0 ground, 1 sky, 2 water."""
        return self.layout.astype(np.uint8)


class CloudsScene(_TextureScene):
    """Clouds drifting over a static hilly landscape."""

    name = "clouds"
    REGIONS = {"cloud": (1, (0.020, 0.004), 24, 5)}

    def _layout(self, rng):
        ridge = 0.55 + 0.08 * np.sin(2 * np.pi * (self.u * rng.uniform(1, 2) + rng.uniform()))
        ground = self.v >= ridge
        shade = 0.8 + 0.2 * np.sin(40 * self.u + 25 * self.v) * np.cos(31 * self.v)
        self.ground = (np.array([0.22, 0.38, 0.16]) * shade[..., None]).astype(np.float32)
        return np.where(ground, 0, 1).astype(np.uint8)

    def _shade(self, name, tex):
        density = _smoothstep(-0.15, 0.45, tex)[..., None]
        sky = np.array([0.35, 0.55, 0.90])
        return (sky * (1 - density) + np.array([0.95, 0.95, 0.97]) * density).astype(np.float32)


class WaterScene(_TextureScene):
    """A river flowing under a cloudy sky between static banks."""

    name = "water"
    REGIONS = {"cloud": (1, (0.010, 0.0), 16, 4), "water": (2, (-0.035, 0.012), 32, 8)}

    def _layout(self, rng):
        layout = np.full((self.size, self.size), 0, np.uint8)
        layout[self.v < 0.35 + 0.05 * np.sin(6 * self.u + rng.uniform(0, 6))] = 1
        layout[(self.v > 0.55 + 0.04 * np.sin(9 * self.u)) & (self.v < 0.9)] = 2
        shade = 0.8 + 0.2 * np.cos(37 * self.u) * np.sin(23 * self.v)
        self.ground = (np.array([0.36, 0.30, 0.20])[None, None] * shade[..., None]
                       ).astype(np.float32)
        return layout

    def _shade(self, name, tex):
        if name == "cloud":
            density = _smoothstep(-0.1, 0.5, tex)[..., None]
            return (np.array([0.45, 0.6, 0.85]) * (1 - density) + 0.92 * density).astype(np.float32)
        ripple = 0.5 + 0.5 * tex[..., None]
        return (np.array([0.05, 0.20, 0.35]) + ripple * np.array([0.25, 0.35, 0.40])
                ).astype(np.float32)


SCENES = {cls.name: cls for cls in (CityScene, CloudsScene, WaterScene)}


def make_scene(name: str = "city", *, seed: int = 0, size: int = 64,
               crop: tuple[int, int] | None = None) -> Scene:
    """A built-in scene: "city" (timescales), "clouds" / "water" (moving textures + flow),
    rendered `size` x `size` (its centre `crop` (height, width) when given)."""
    if name not in SCENES:
        raise ValueError(f"unknown synthetic scene {name!r}; choose from {sorted(SCENES)}")
    scene = SCENES[name](seed=seed, size=size)
    if crop is not None and tuple(crop) != (scene.size, scene.size):
        if not 0 < min(crop) <= max(crop) <= scene.size:
            raise ValueError(f"crop {tuple(crop)} does not fit a {size}x{size} scene")
        scene.crop = (int(crop[0]), int(crop[1]))
    return scene
