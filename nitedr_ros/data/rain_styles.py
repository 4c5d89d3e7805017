"""The rain real cameras see, as seeded, parameterised image models (numpy/cv2), composed into styles.

Every model takes a float32 RGB image in [0, 1] (H x W x 3) and a ``numpy.random.Generator`` and returns the
degraded image; parameters are drawn from the ranges of its config dataclass (a fixed value: equal bounds).
Same seed, same image.

Rain models (applied to the rainy image only; the target is the image before them):

* :class:`StreakLayers` -- Rain100L/H-style streaks: ``layers`` layers, each of one direction (the layers'
  directions spread around a base angle), anti-aliased lines of random length, thickness and brightness,
  slightly blurred; layers combine and composite by screen blending ``1 - (1 - B)(1 - S)``. Light presets:
  one sparse layer of thin streaks; heavy presets: up to five dense layers of bright, wide, long streaks.
* :class:`NoiseStreaks` -- the classic DDN / Photoshop recipe: Gaussian noise -> threshold at a density
  quantile (levels) -> motion blur along a line of length L at angle theta -> screen blend.
* :class:`VeilingHaze` -- rain accumulation: ``B t + A (1 - t)``, ``t = exp(-beta d)``, with depth ``d``
  from a monocular road-scene cue (0 at the bottom row, 1 at the horizon and above), grey airlight ``A``.
* :class:`RoadSplashes` -- splashes on the road below the horizon: small crowns of short bright lines
  radiating upwards, larger nearer the camera (lower in the image).
* :class:`LensDrops` -- raindrops and smears on the lens or windscreen: out-of-focus blobs that refract an
  inverted, blurred patch of the scene around them, with a dark rim and a specular highlight; smears are
  elongated drops. Local: pixels outside every drop are unchanged.
* :class:`NightScene` -- night from a day or night image (applied to the target too): exposure
  ``gain * x^gamma``, street lights and headlights with glow and halos, wet-road reflections of the lights
  (vertically stretched, below each light); :class:`SensorNoise` adds Poisson-Gaussian noise (rainy only).
  Streaks near lights are lit by them (:func:`lit`).

:class:`RainComposer` draws a composition of these for one image from a named :data:`STYLES` preset;
:func:`render_style` renders it. The training corpus uses :data:`TRAINING_STYLES`; the generalisation
validation uses :data:`HELD_OUT_STYLES`, which no training sample is drawn from.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

Range = tuple[float, float]


def _u(rng: np.random.Generator, bounds: Range) -> float:
    lo, hi = bounds
    return float(lo) if hi <= lo else float(rng.uniform(lo, hi))


def _i(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    lo, hi = bounds
    return int(lo) if hi <= lo else int(rng.integers(lo, hi + 1))


def screen(base: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """Screen blend ``1 - (1 - base)(1 - layer)`` (layer H x W or H x W x 3, both in [0, 1])."""
    if layer.ndim == 2 and base.ndim == 3:
        layer = layer[..., None]
    return (1.0 - (1.0 - base) * (1.0 - layer)).astype(np.float32)


def luminance(image: np.ndarray) -> np.ndarray:
    return (image @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.float32)


# -- streaks ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StreakLayers:
    """Rain100L/H-style streak layers (see the module docstring). Lengths are fractions of the height,
    densities streaks per 1000 px, thickness in px per 480 px of the shorter side."""

    layers: tuple[int, int] = (1, 1)
    angle_deg: Range = (-25.0, 25.0)      # base direction from vertical
    layer_spread_deg: Range = (5.0, 25.0)  # direction difference between layers
    jitter_deg: float = 2.0                # per-streak spread
    density: Range = (0.4, 1.5)
    length: Range = (0.03, 0.12)
    thickness: Range = (1.0, 2.0)
    brightness: Range = (0.35, 0.8)
    blur: Range = (0.3, 0.9)

    def layer(self, rng: np.random.Generator, height: int, width: int, angle: float) -> np.ndarray:
        """One streak layer (H x W in [0, 1]) of direction ``angle`` (radians from vertical)."""
        margin = int(_u(rng, self.length) * height * 0.75) + 2
        canvas = np.zeros((height + 2 * margin, width + 2 * margin), np.float32)
        count = int(_u(rng, self.density) * canvas.size / 1000.0)
        if count:
            scale = min(height, width) / 480.0
            cx = rng.uniform(0, canvas.shape[1], count)
            cy = rng.uniform(0, canvas.shape[0], count)
            half = 0.5 * rng.uniform(self.length[0], self.length[1] + 1e-9, count) * height
            theta = angle + np.deg2rad(self.jitter_deg) * rng.normal(0.0, 1.0, count)
            dx, dy = half * np.sin(theta), half * np.cos(theta)
            ends = np.rint(np.stack([cx - dx, cy - dy, cx + dx, cy + dy], 1) * 16).astype(np.int64)
            thick = np.maximum(1, np.rint(rng.uniform(*self.thickness, count) * scale)).astype(int)
            value = rng.uniform(*self.brightness, count)
            for (x1, y1, x2, y2), t, v in zip(ends.tolist(), thick.tolist(), value.tolist()):
                cv2.line(canvas, (x1, y1), (x2, y2), float(v), t, cv2.LINE_AA, 4)
        sigma = _u(rng, self.blur)
        if sigma > 0.2:
            canvas = cv2.GaussianBlur(canvas, (0, 0), sigma)
        return np.clip(canvas[margin:margin + height, margin:margin + width], 0.0, 1.0)

    def mask(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """The combined streak layer S (H x W), layers screen-combined."""
        base = np.deg2rad(_u(rng, self.angle_deg))
        n = _i(rng, self.layers)
        combined = np.zeros((height, width), np.float32)
        for k in range(n):
            offset = 0.0 if k == 0 else np.deg2rad(_u(rng, self.layer_spread_deg)) * (1 if k % 2 else -1)
            combined = screen(combined, self.layer(rng, height, width, base + offset))
        return combined

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return screen(image, self.mask(rng, *image.shape[:2]))


@dataclass(frozen=True)
class NoiseStreaks:
    """Noise -> threshold -> motion blur -> screen blend (DDN's Photoshop recipe)."""

    density: Range = (0.005, 0.04)     # fraction of noise pixels kept by the threshold
    length: Range = (0.04, 0.15)       # motion blur length, fraction of the height
    angle_deg: Range = (-30.0, 30.0)
    strength: Range = (0.6, 1.6)       # levels gain after the blur
    noise_scale: Range = (1.0, 2.5)    # noise drawn at 1/scale resolution: wider streaks

    def mask(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        scale = _u(rng, self.noise_scale)
        h, w = max(2, int(height / scale)), max(2, int(width / scale))
        noise = rng.random((h, w)).astype(np.float32)
        keep = noise > 1.0 - _u(rng, self.density)
        drops = (keep * rng.uniform(0.5, 1.0, (h, w))).astype(np.float32)
        if (h, w) != (height, width):
            drops = cv2.resize(drops, (width, height), interpolation=cv2.INTER_LINEAR)
        length = max(3, int(_u(rng, self.length) * height)) | 1
        kernel = np.zeros((length, length), np.float32)
        cv2.line(kernel, (length // 2, 0), (length // 2, length - 1), 1.0, 1, cv2.LINE_AA)
        rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), _u(rng, self.angle_deg), 1.0)
        kernel = cv2.warpAffine(kernel, rotation, (length, length))
        kernel /= max(float(kernel.sum()), 1e-6)
        streaks = cv2.filter2D(drops, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
        gain = _u(rng, self.strength) * length / 6.0
        return np.clip(streaks * gain, 0.0, 1.0)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return screen(image, self.mask(rng, *image.shape[:2]))


# -- accumulation, splashes, lens ---------------------------------------------------------------------------
def road_depth(height: int, width: int, horizon: float) -> np.ndarray:
    """Monocular depth cue of a road scene in [0, 1]: 0 at the bottom row, rising as 1/(row distance to the
    horizon) to 1 at the horizon and above (far)."""
    rows = np.arange(height, dtype=np.float32)
    y0 = horizon * height
    below = np.clip((height - rows) / max(height - y0, 1.0), 1e-3, 1.0)  # 1 at the horizon, ~0 at the bottom
    depth = np.where(rows <= y0, 1.0, below ** 1.5)
    return np.repeat(depth[:, None], width, axis=1).astype(np.float32)


@dataclass(frozen=True)
class VeilingHaze:
    """Rain accumulation: contrast falls and a grey veil rises with depth."""

    beta: Range = (0.2, 0.8)            # transmission at the horizon exp(-beta): 0.82 .. 0.45
    airlight: Range = (0.6, 0.85)       # day; night scenes use ``night_airlight``
    night_airlight: Range = (0.06, 0.18)
    horizon: Range = (0.3, 0.55)
    night: bool = False

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = image.shape[:2]
        depth = road_depth(h, w, _u(rng, self.horizon))
        depth = cv2.GaussianBlur(depth, (0, 0), max(1.0, 0.02 * h))
        t = np.exp(-_u(rng, self.beta) * depth)[..., None]
        level = _u(rng, self.night_airlight if self.night else self.airlight)
        tint = np.clip(level + rng.normal(0.0, 0.02, 3), 0.0, 1.0).astype(np.float32)
        return (image * t + tint * (1.0 - t)).astype(np.float32)


@dataclass(frozen=True)
class RoadSplashes:
    """Splash crowns on the road surface (below the horizon)."""

    count: tuple[int, int] = (20, 120)
    horizon: Range = (0.4, 0.6)
    size: Range = (0.006, 0.02)        # crown radius at the bottom row, fraction of the height
    brightness: Range = (0.3, 0.75)

    def mask(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        canvas = np.zeros((height, width), np.float32)
        y0 = _u(rng, self.horizon) * height
        n = _i(rng, self.count)
        for _ in range(n):
            y = float(rng.uniform(y0, height))
            near = (y - y0) / max(height - y0, 1.0)  # 0 at the horizon, 1 at the bottom
            radius = max(1.0, _u(rng, self.size) * height * (0.2 + near))
            x = float(rng.uniform(0, width))
            value = _u(rng, self.brightness)
            for _ in range(int(rng.integers(3, 8))):
                a = rng.uniform(-0.9 * math.pi / 2, 0.9 * math.pi / 2)  # upwards fan
                r = radius * rng.uniform(0.5, 1.2)
                end = (int((x + r * math.sin(a)) * 16), int((y - r * math.cos(a)) * 16))
                cv2.line(canvas, (int(x * 16), int(y * 16)), end, value, 1, cv2.LINE_AA, 4)
            cv2.circle(canvas, (int(x * 16), int(y * 16)), int(radius * 0.3 * 16), value * 0.8, -1,
                       cv2.LINE_AA, 4)
        return np.clip(cv2.GaussianBlur(canvas, (0, 0), 0.6), 0.0, 1.0)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return screen(image, self.mask(rng, *image.shape[:2]))


@dataclass(frozen=True)
class LensDrops:
    """Drops and smears on the lens/windscreen: refracting, out-of-focus blobs (local)."""

    count: tuple[int, int] = (3, 25)
    radius: Range = (0.015, 0.07)       # fraction of the shorter side
    smear: float = 0.25                 # probability that a drop is a smear (elongated, along a direction)
    blur: Range = (1.5, 5.0)            # defocus of the refracted scene, px per 480 px
    refraction: Range = (1.5, 4.0)      # how much of the surroundings a drop shows (inverted)
    rim: Range = (0.05, 0.2)            # darkening at the drop edge

    def drops(self, rng: np.random.Generator, height: int, width: int
              ) -> list[tuple[float, float, float, float, float]]:
        """(x, y, radius_x, radius_y, angle) of each drop."""
        side = min(height, width)
        out = []
        for _ in range(_i(rng, self.count)):
            r = _u(rng, self.radius) * side
            elongation = rng.uniform(2.0, 4.0) if rng.random() < self.smear else rng.uniform(1.0, 1.3)
            out.append((float(rng.uniform(0, width)), float(rng.uniform(0, height)), r, r * elongation,
                        float(rng.uniform(0, 180))))
        return out

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = image.shape[:2]
        sigma = _u(rng, self.blur) * min(h, w) / 480.0
        blurred = cv2.GaussianBlur(image, (0, 0), max(sigma, 0.5))
        out = image.copy()
        for x, y, rx, ry, angle in self.drops(rng, h, w):
            k, rim_depth = _u(rng, self.refraction), _u(rng, self.rim)
            reach = math.ceil(max(rx, ry)) + 1
            x0, x1 = max(0, int(x) - reach), min(w, int(x) + reach + 1)
            y0, y1 = max(0, int(y) - reach), min(h, int(y) + reach + 1)
            if x1 <= x0 or y1 <= y0:
                continue
            yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
            a = np.deg2rad(angle)
            dx, dy = xx - x, yy - y
            u = (dx * np.cos(a) + dy * np.sin(a)) / rx
            v = (-dx * np.sin(a) + dy * np.cos(a)) / ry
            r2 = u * u + v * v
            weight = np.clip((1.0 - r2) / 0.25, 0.0, 1.0)  # soft border, 0 outside
            if not weight.any():
                continue
            # a drop is a small wide-angle lens: it shows the scene around it, inverted and defocused
            drop = cv2.remap(blurred, x - k * dx, y - k * dy, cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT_101)
            radial = np.sqrt(np.clip(r2, 0.0, 1.0))
            rim = rim_depth * np.exp(-((1.0 - radial) / 0.15) ** 2)
            highlight = 0.5 * np.exp(-(((xx - (x - 0.35 * rx)) / (0.15 * rx)) ** 2
                                       + ((yy - (y - 0.35 * ry)) / (0.15 * ry)) ** 2))
            drop = np.clip(drop * (1.0 - rim[..., None]) + highlight[..., None], 0.0, 1.0)
            wgt = weight[..., None]
            out[y0:y1, x0:x1] = out[y0:y1, x0:x1] * (1.0 - wgt) + drop * wgt
        return out.astype(np.float32)


# -- night and noise ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Light:
    x: float
    y: float
    radius: float
    strength: float
    colour: tuple[float, float, float]


@dataclass(frozen=True)
class NightScene:
    """Night exposure with lights, glow/halos and wet-road reflections (the target includes all of them)."""

    gain: Range = (0.25, 0.6)
    gamma: Range = (1.2, 1.8)
    lights: tuple[int, int] = (1, 5)
    radius: Range = (0.006, 0.018)     # light core, fraction of the shorter side
    halo: Range = (4.0, 10.0)          # halo radius / core radius
    strength: Range = (0.5, 1.5)
    reflections: float = 0.6           # probability of a wet road (reflections below each light)
    horizon: Range = (0.4, 0.6)

    def sample_lights(self, rng: np.random.Generator, height: int, width: int) -> list[Light]:
        side = min(height, width)
        lights: list[Light] = []
        n = _i(rng, self.lights)
        while len(lights) < n:
            r = _u(rng, self.radius) * side
            s = _u(rng, self.strength)
            if rng.random() < 0.5:  # street light: high, sodium or LED
                colour = (1.0, 0.72, 0.38) if rng.random() < 0.5 else (1.0, 0.96, 0.9)
                lights.append(Light(float(rng.uniform(0, width)), float(rng.uniform(0.05, 0.45) * height),
                                    r, s, colour))
            else:  # a headlight pair
                cx, cy = float(rng.uniform(0.1, 0.9) * width), float(rng.uniform(0.5, 0.8) * height)
                gap = float(rng.uniform(0.03, 0.1) * width)
                for d in (-gap / 2, gap / 2):
                    lights.append(Light(cx + d, cy, r, s, (0.92, 0.96, 1.0)))
        return lights[:n]

    def render(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(night image, illumination map H x W x 3) of a day or night image."""
        h, w = image.shape[:2]
        lights = self.sample_lights(rng, h, w)
        halo = _u(rng, self.halo)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        illum = np.zeros((h, w, 3), np.float32)
        glow = np.zeros((h, w, 3), np.float32)
        wet = rng.random() < self.reflections
        road = _u(rng, self.horizon) * h
        for light in lights:
            colour = np.asarray(light.colour, np.float32)
            r2 = (xx - light.x) ** 2 + (yy - light.y) ** 2
            broad = np.exp(-r2 / (2.0 * (halo * light.radius) ** 2))
            core = np.exp(-r2 / (2.0 * light.radius ** 2))
            illum += light.strength * broad[..., None] * colour
            glow += (core + 0.15 * broad)[..., None] * colour
            if wet:  # mirrored about the road contact line, stretched vertically, fading
                ground = max(road, light.y + 2 * light.radius)
                mirror_y = 2 * ground - light.y
                if mirror_y < h + 4 * halo * light.radius:
                    ry = (yy - mirror_y) / 3.0
                    reflection = np.exp(-((xx - light.x) ** 2 + ry ** 2) / (2.0 * (1.5 * light.radius) ** 2))
                    glow += 0.5 * light.strength * (reflection * (yy > ground))[..., None] * colour
        base = _u(rng, self.gain) * np.power(np.clip(image, 0.0, 1.0), _u(rng, self.gamma))
        night = np.clip(base * (1.0 + illum) + glow, 0.0, 1.0).astype(np.float32)
        return night, illum


def lit(mask: np.ndarray, illum: np.ndarray, ambient: float) -> np.ndarray:
    """A streak mask lit at night: ambient light plus the lamps' illumination (H x W x 3)."""
    return np.clip(mask[..., None] * (ambient + 0.8 * illum), 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class SensorNoise:
    """Poisson-Gaussian noise: shot noise at ``photons`` per unit signal plus read noise."""

    photons: Range = (80.0, 600.0)
    read: Range = (0.002, 0.01)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        photons = _u(rng, self.photons)
        shot = rng.poisson(np.clip(image, 0.0, 1.0) * photons) / photons
        return np.clip(shot + rng.normal(0.0, _u(rng, self.read), image.shape), 0.0, 1.0).astype(np.float32)


# -- styles -------------------------------------------------------------------------------------------------
StreakModel = StreakLayers | NoiseStreaks


@dataclass(frozen=True)
class Style:
    """A named rain style: probabilities of each model and their configs."""

    name: str
    streaks: tuple[StreakModel, ...]   # one is drawn per image
    night: float = 0.5                 # probability of a night scene
    haze: float = 0.3
    splashes: float = 0.2
    lens: float = 0.15
    noise_day: float = 0.3             # sensor noise probability by day (always at night)
    night_scene: NightScene = field(default_factory=NightScene)
    haze_model: VeilingHaze = field(default_factory=VeilingHaze)
    splash_model: RoadSplashes = field(default_factory=RoadSplashes)
    lens_model: LensDrops = field(default_factory=LensDrops)
    noise_model: SensorNoise = field(default_factory=SensorNoise)


LIGHT = StreakLayers()
MEDIUM = StreakLayers(layers=(1, 3), density=(1.0, 3.0), length=(0.05, 0.2), thickness=(1.0, 3.0),
                      brightness=(0.4, 0.85))
HEAVY = StreakLayers(layers=(3, 5), density=(0.8, 2.2), length=(0.1, 0.35), thickness=(2.0, 5.0),
                     brightness=(0.45, 0.85), blur=(0.5, 1.5))
DRIZZLE = NoiseStreaks(density=(0.004, 0.015), length=(0.02, 0.06), strength=(0.5, 1.0))
DOWNPOUR = NoiseStreaks(density=(0.02, 0.06), length=(0.08, 0.25), strength=(1.0, 2.0),
                        noise_scale=(1.5, 3.0))
CROSSWIND = StreakLayers(layers=(2, 4), angle_deg=(30.0, 45.0), density=(1.0, 3.5), length=(0.08, 0.25),
                         thickness=(1.0, 3.0), brightness=(0.4, 0.9))

STYLES: dict[str, Style] = {style.name: style for style in (
    Style('light', (LIGHT, DRIZZLE), night=0.4, haze=0.1, splashes=0.1, lens=0.05),
    Style('medium', (MEDIUM, NoiseStreaks()), night=0.5, haze=0.3, splashes=0.3, lens=0.15),
    Style('heavy', (HEAVY, DOWNPOUR), night=0.4, haze=0.6, splashes=0.4, lens=0.15,
          haze_model=VeilingHaze(beta=(0.5, 1.1))),
    Style('night_city', (MEDIUM, LIGHT, NoiseStreaks()), night=1.0, haze=0.3, splashes=0.3, lens=0.2),
    Style('windscreen', (LIGHT, DRIZZLE), night=0.5, haze=0.2, splashes=0.0, lens=1.0,
          lens_model=LensDrops(count=(8, 40))),
    Style('highway_spray', (MEDIUM, DOWNPOUR), night=0.5, haze=0.8, splashes=1.0, lens=0.3,
          splash_model=RoadSplashes(count=(80, 250))),
    # held out of training: combinations and ranges no training style draws
    Style('storm_night', (HEAVY, DOWNPOUR), night=1.0, haze=1.0, splashes=0.7, lens=0.6,
          haze_model=VeilingHaze(beta=(0.6, 1.3), night=True), lens_model=LensDrops(count=(5, 15))),
    Style('crosswind', (CROSSWIND,), night=0.5, haze=0.5, splashes=0.5, lens=0.3),
)}
# Rain of known density (the rain-diagnostics calibration): streaks per 1000 px, all layers together.
CALIBRATION_DENSITIES: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0, 6.0, 8.0)
DEGRADED_DENSITY = 1.0   # the lower end of the `medium` style (1-3 layers of 1-3 streaks per 1000 px)
BLINDED_DENSITY = 4.0    # the mean of the `medium` style (2 layers of 2 streaks per 1000 px)


def streak_density_style(density: float, layers: int = 2) -> Style:
    """Streaks only, ``density`` streaks per 1000 px over ``layers`` layers of the MEDIUM geometry; no night
    relighting, haze, splashes, lens drops or noise, so the density is the only thing that changes."""
    per_layer = density / layers
    streaks = replace(MEDIUM, layers=(layers, layers), density=(per_layer, per_layer))
    return Style(f'streaks_{density:g}', (streaks,), night=0.0, haze=0.0, splashes=0.0, lens=0.0,
                 noise_day=0.0)


TRAINING_STYLES: tuple[str, ...] = ('light', 'medium', 'heavy', 'night_city', 'windscreen', 'highway_spray')
HELD_OUT_STYLES: tuple[str, ...] = ('storm_night', 'crosswind')


@dataclass
class RainSample:
    """One rendered pair and what made it."""

    rainy: np.ndarray
    clean: np.ndarray
    style: str
    effects: tuple[str, ...]
    density: float   # mean streak-layer intensity (a rain-intensity reference for calibration)


def render_style(clean: np.ndarray, rng: np.random.Generator, style: str | Style) -> RainSample:
    """Rain of a style on a clean float RGB image: (rainy, target) plus what was applied."""
    chosen = STYLES[style] if isinstance(style, str) else style
    target = np.clip(clean, 0.0, 1.0).astype(np.float32)
    effects: list[str] = []
    illum = None
    if rng.random() < chosen.night:
        target, illum = chosen.night_scene.render(target, rng)
        effects.append('night')
    rainy = target
    if rng.random() < chosen.haze:
        haze = chosen.haze_model
        if illum is not None and not haze.night:
            haze = VeilingHaze(beta=haze.beta, horizon=haze.horizon, night_airlight=haze.night_airlight,
                               night=True)
        rainy = haze(rainy, rng)
        effects.append('haze')
    model = chosen.streaks[int(rng.integers(0, len(chosen.streaks)))]
    mask = model.mask(rng, *rainy.shape[:2])
    if illum is not None:
        rainy = screen(rainy, lit(mask, illum, float(rng.uniform(0.15, 0.35))))
    else:
        rainy = screen(rainy, mask)
    effects.append(type(model).__name__)
    if rng.random() < chosen.splashes:
        splash = chosen.splash_model.mask(rng, *rainy.shape[:2])
        rainy = screen(rainy, lit(splash, illum, 0.3) if illum is not None else splash)
        effects.append('splashes')
    if rng.random() < chosen.lens:
        rainy = chosen.lens_model(rainy, rng)
        effects.append('lens')
    if illum is not None or rng.random() < chosen.noise_day:
        rainy = chosen.noise_model(rainy, rng)
        effects.append('noise')
    return RainSample(rainy.astype(np.float32), target, chosen.name, tuple(effects), float(mask.mean()))


RenderFn = Callable[[np.ndarray, np.random.Generator], RainSample]
