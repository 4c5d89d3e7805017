"""Synthetic night rain (numpy/cv2): streaks in depth, night exposure, light glow, sensor noise, stereo, IR.

Model (all images float32 RGB in [0, 1], H x W):

* **Streaks.** Each streak has a depth ``z`` drawn from ``p(z) ~ z^2`` on ``depth_range`` (uniform density in
  the viewing frustum, so far streaks are many and small). With ``s = z_near / z`` its projected length is
  ``length_near * H * s``, its width ``width_near * (min(H, W) / 480) * s`` (at least 1 px), its opacity
  ``opacity * (0.35 + 0.65 s)``. Its **angle** is the direction of the drop's image motion during the
  exposure, which depends on depth in two ways:

  - *Drop size.* A drop is visible only if its projected width is large enough, so the smallest visible
    diameter grows with depth, ``D_min = visible_drop_mm * z / z_near``; each streak's diameter is drawn from
    the Marshall-Palmer distribution ``N(D) ~ exp(-lambda D)`` on ``[D_min, max_drop_mm]``. Its terminal
    velocity is ``v(D) = 9.65 - 10.3 exp(-0.6 D)`` m/s (Atlas et al. 1973) and it drifts with the wind
    ``w = v_ref tan(wind angle)`` (the image's wind angle is that of a 2 mm drop, ``v_ref`` ~ 6.5 m/s). So
    near streaks (small, slow drops) lean with the wind more than far ones (only large, fast drops).
  - *Ego-motion.* With the camera moving forward by ``T`` metres during the exposure (``exposure_travel``),
    a drop at depth ``z`` and image offset ``r`` from the focus of expansion (FOE) moves by
    ``(f t / z) (w, v) + r T / (z - T)`` px. Divided by the fall of a reference drop, the direction is
    ``(w / v_ref, v / v_ref) + ego * (r / (W/2)) * z / (z - T)``, with ``ego`` (``ego_motion``) the
    radial-to-fall ratio of a distant reference drop half an image width from the FOE: streaks fan out
    from the FOE, near ones more (looming factor ``z / (z - T)``).

  A per-streak jitter adds turbulence. The length and width keep the depth model above (they are not
  re-derived from the drop size or the ego-motion). Streaks are drawn
  anti-aliased (cv2, 1/16 px precision) into ``depth_bins`` layers; a layer is blurred by a defocus
  ``sigma = defocus_near * s_bin`` and the layers are over-composited into the rain mask ``alpha`` in [0, 1].
  Streak centres cover the image plus a margin of half the longest streak (plus the largest disparity for
  stereo), so streaks centred just outside the frame still cross its edges and a shifted right view is
  fully covered.
* **Night exposure.** ``base = gain * clean^gamma`` (darkening), lit by light sources (street lights in the
  upper part, headlight pairs low):
  ``illum = sum_k strength_k colour_k exp(-r_k^2 / (2 (bloom_k radius_k)^2))``;
  ``glow = sum_k colour_k exp(-r_k^2 / (2 radius_k^2))`` (the bright source itself).
  ``night = clip(base * (1 + illum) + glow, 0, 1)``. This noise-free ``night`` image is the training target.
* **Rain composite.** A streak lets most background through and adds light it scatters: ambient light
  plus ``scatter * illum`` (streaks near lights shine in the light's colour):
  ``rainy = clip(night * (1 - occlusion * alpha) + alpha * (ambient + scatter * illum), 0, 1)``.
  Where ``alpha == 0`` (no streak) ``rainy == night`` exactly, before noise.
* **Sensor noise** (rainy image only): Poisson-Gaussian,
  ``y = Poisson(x * photons) / photons + N(0, read^2)``.
* **Stereo.** A streak at depth ``z`` has disparity ``d = focal_baseline / z`` pixels (focal length x
  baseline, drawn as ``near_disparity * W * z_near`` unless the caller gives the rig's value); the right
  view draws it at ``x - d`` (same ``y``). Scene disparity (optional) hides streaks behind the scene and
  shifts the lights. For a real pair without a disparity map the lights are treated as distant (not
  shifted) and streak disparities use the given or drawn ``focal_baseline``: pass ``scene_disparity`` and
  ``focal_baseline`` for real pairs when they are known.
* **Thermal.** ``ir_rainy = clip(ir * (1 - ir_attenuation * alpha) + N(0, ir_noise^2), 0, 1)``: rain barely
  changes long-wave IR. Without a real IR image, :func:`pseudo_thermal` makes a crude stand-in.

Every random choice comes from one ``numpy.random.Generator`` seeded by the caller: same seed, same images.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import cv2
import numpy as np

Range = tuple[float, float]


@dataclass(frozen=True)
class NightRainConfig:
    """Ranges the renderer samples each image's parameters from (a fixed value: equal bounds)."""

    density: Range = (4.0, 14.0)           # streaks per 1000 px of the (margin-extended) image
    depth_range: Range = (1.5, 12.0)       # metres; near streaks long/wide/blurred, far ones short/thin
    angle_deg: Range = (-20.0, 20.0)       # wind angle from vertical, per image
    angle_jitter_deg: float = 3.0          # per-streak angle spread (std)
    drop_lambda: Range = (2.0, 3.5)        # Marshall-Palmer slope, 1/mm (heavy ... light rain)
    visible_drop_mm: float = 0.5           # smallest visible drop diameter at the near depth (grows ~ z)
    max_drop_mm: float = 6.0               # larger drops break up
    ego_motion: Range = (0.0, 0.6)         # radial/fall motion ratio of a distant drop W/2 from the FOE
    exposure_travel: Range = (0.1, 0.6)    # metres the camera moves forward during the exposure (< z_near)
    foe_x: Range = (0.4, 0.6)              # focus of expansion, fraction of the width
    foe_y: Range = (0.35, 0.5)             # focus of expansion, fraction of the height
    length_near: Range = (0.12, 0.35)      # streak length at the near depth, fraction of image height
    width_near: Range = (2.0, 4.0)         # streak width at the near depth, px per 480 px of min side
    opacity: Range = (0.6, 0.95)           # streak opacity at the near depth
    defocus_near: Range = (0.8, 2.0)       # blur sigma (px) of the nearest depth layer
    depth_bins: int = 6
    gain: Range = (0.25, 0.6)              # night exposure gain
    gamma: Range = (1.2, 1.8)              # night exposure gamma (> 1 darkens mid tones)
    lights: tuple[int, int] = (1, 4)       # number of light sources (inclusive range)
    light_radius: Range = (0.005, 0.015)    # light core radius, fraction of min side
    bloom: Range = (4.0, 10.0)             # bloom radius / core radius
    light_strength: Range = (0.6, 1.6)     # illumination strength of a light
    ambient: Range = (0.15, 0.35)          # brightness of a streak lit by ambient light only
    scatter: Range = (0.5, 1.2)            # how much a streak near a light takes of its illumination
    occlusion: Range = (0.1, 0.3)          # fraction of background a full streak hides
    photons: Range = (80.0, 400.0)         # Poisson photons at signal 1.0
    read_noise: Range = (0.002, 0.01)      # Gaussian read noise std
    near_disparity: Range = (0.02, 0.08)   # stereo: disparity of a streak at the near depth, x image width
    ir_attenuation: float = 0.03
    ir_noise: float = 0.004


@dataclass(frozen=True)
class Light:
    """A light source: centre (x, y) in pixels, core radius, bloom factor, strength and RGB colour."""

    x: float
    y: float
    radius: float
    bloom: float
    strength: float
    colour: tuple[float, float, float]


@dataclass(frozen=True)
class StreakSet:
    """Streaks of one image: arrays of length N (positions in image pixels of the left/only view)."""

    x: np.ndarray         # centre x
    y: np.ndarray         # centre y
    depth: np.ndarray     # metres
    length: np.ndarray    # pixels
    width: np.ndarray     # pixels (integer line thickness)
    angle: np.ndarray     # radians from vertical
    opacity: np.ndarray   # 0..1

    def __len__(self) -> int:
        return int(self.x.size)


@dataclass(frozen=True)
class SceneParams:
    """The concrete parameters drawn for one image (or one stereo pair)."""

    density: float
    depth_range: Range
    angle: float
    angle_jitter: float
    length_near: float
    width_near: float
    opacity: float
    defocus_near: float
    depth_bins: int
    gain: float
    gamma: float
    ambient: float
    scatter: float
    occlusion: float
    photons: float
    read_noise: float
    focal_baseline: float
    ir_attenuation: float
    ir_noise: float
    lights: tuple[Light, ...] = field(default=())
    drop_lambda: float = 2.5               # Marshall-Palmer slope, 1/mm
    visible_drop_mm: float = 0.5
    max_drop_mm: float = 6.0
    ego_motion: float = 0.0                # 0: no radial flow away from the FOE
    exposure_travel: float = 0.0           # metres, < depth_range[0]
    foe: tuple[float, float] = (0.0, 0.0)  # focus of expansion (x, y), pixels

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class NightRainImage:
    """One rendered view: the rainy input, its noise-free night target and the layers in between."""

    rainy: np.ndarray        # H x W x 3, noisy
    clean: np.ndarray        # H x W x 3, night-exposed clean image (target)
    alpha: np.ndarray        # H x W rain mask in [0, 1] (0 where there is no streak)
    rain_light: np.ndarray   # H x W x 3 light the streaks add
    infrared: np.ndarray | None  # H x W rainy thermal image, if one was given or asked for


@dataclass
class NightRainStereo:
    left: NightRainImage
    right: NightRainImage
    streaks: StreakSet
    params: SceneParams


def _uniform(rng: np.random.Generator, bounds: Range) -> float:
    lo, hi = bounds
    return float(lo) if hi <= lo else float(rng.uniform(lo, hi))


class NightRainRenderer:
    """Renders night rain onto clean images; see the module docstring for the model."""

    def __init__(self, config: NightRainConfig | None = None) -> None:
        self.config = config or NightRainConfig()

    # ------------------------------------------------------------ parameters
    def sample_params(self, rng: np.random.Generator, height: int, width: int) -> SceneParams:
        """Draw one image's parameters (including its lights) from the configured ranges."""
        c = self.config
        p = SceneParams(
            density=_uniform(rng, c.density), depth_range=c.depth_range,
            angle=np.deg2rad(_uniform(rng, c.angle_deg)), angle_jitter=np.deg2rad(c.angle_jitter_deg),
            length_near=_uniform(rng, c.length_near), width_near=_uniform(rng, c.width_near),
            opacity=_uniform(rng, c.opacity), defocus_near=_uniform(rng, c.defocus_near),
            depth_bins=max(1, int(c.depth_bins)), gain=_uniform(rng, c.gain), gamma=_uniform(rng, c.gamma),
            ambient=_uniform(rng, c.ambient), scatter=_uniform(rng, c.scatter),
            occlusion=_uniform(rng, c.occlusion), photons=_uniform(rng, c.photons),
            read_noise=_uniform(rng, c.read_noise),
            focal_baseline=_uniform(rng, c.near_disparity) * width * c.depth_range[0],
            ir_attenuation=c.ir_attenuation, ir_noise=c.ir_noise)
        ego = replace(p, drop_lambda=_uniform(rng, c.drop_lambda), visible_drop_mm=c.visible_drop_mm,
                      max_drop_mm=c.max_drop_mm, ego_motion=_uniform(rng, c.ego_motion),
                      exposure_travel=min(_uniform(rng, c.exposure_travel), 0.8 * c.depth_range[0]),
                      foe=(_uniform(rng, c.foe_x) * width, _uniform(rng, c.foe_y) * height))
        return replace(ego, lights=self._sample_lights(rng, height, width))

    def _sample_lights(self, rng: np.random.Generator, height: int, width: int) -> tuple[Light, ...]:
        c = self.config
        lo, hi = c.lights
        n = int(rng.integers(lo, hi + 1)) if hi > lo else int(lo)
        side = min(height, width)
        lights: list[Light] = []
        while len(lights) < n:
            radius = _uniform(rng, c.light_radius) * side
            bloom, strength = _uniform(rng, c.bloom), _uniform(rng, c.light_strength)
            if rng.random() < 0.5:  # street light: upper part, warm sodium or white LED
                colour = (1.0, 0.72, 0.38) if rng.random() < 0.5 else (1.0, 0.96, 0.9)
                lights.append(Light(float(rng.uniform(0, width)), float(rng.uniform(0.05, 0.45) * height),
                                    radius, bloom, strength, colour))
            else:  # headlight pair: lower middle, cool white
                cx, cy = float(rng.uniform(0.1, 0.9) * width), float(rng.uniform(0.55, 0.85) * height)
                gap = float(rng.uniform(0.03, 0.1) * width)
                for dx in (-gap / 2, gap / 2):
                    lights.append(Light(cx + dx, cy, radius, bloom, strength, (0.92, 0.96, 1.0)))
        return tuple(lights[:n])

    def sample_streaks(self, rng: np.random.Generator, params: SceneParams, height: int, width: int,
                       margin: float = 0.0) -> StreakSet:
        """Streaks over the image extended by ``margin`` px on each side (depths, sizes, angles)."""
        z0, z1 = params.depth_range
        ext_w, ext_h = width + 2 * margin, height + 2 * margin
        n = round(float(params.density) * ext_w * ext_h / 1000.0)
        u = rng.random(n)
        depth = np.cbrt(z0 ** 3 + u * (z1 ** 3 - z0 ** 3)) if z1 > z0 else np.full(n, float(z0))
        s = z0 / depth
        scale = min(height, width) / 480.0
        x, y = rng.uniform(-margin, width + margin, n), rng.uniform(-margin, height + margin, n)
        diameter = drop_diameters(params, depth, rng)
        angle = streak_angles(params, x, y, depth, diameter, width)
        return StreakSet(
            x=x, y=y, depth=depth, length=params.length_near * height * s * rng.uniform(0.7, 1.3, n),
            width=np.maximum(1, np.round(params.width_near * scale * s)).astype(np.int32),
            angle=angle + rng.normal(0.0, 1.0, n) * params.angle_jitter,
            opacity=np.clip(params.opacity * (0.35 + 0.65 * s) * rng.uniform(0.7, 1.0, n), 0.0, 1.0))

    # ------------------------------------------------------------ layers
    def rain_mask(self, streaks: StreakSet, params: SceneParams, height: int, width: int,
                  x_shift: np.ndarray | None = None, scene_disparity: np.ndarray | None = None) -> np.ndarray:
        """Rain mask ``alpha`` (H x W, [0, 1]) of the streaks, each shifted by ``-x_shift`` pixels in x.

        ``scene_disparity`` (H x W, px) hides a streak layer where the scene is nearer than the layer.
        """
        z0, z1 = params.depth_range
        bins = params.depth_bins if z1 > z0 else 1
        edges = np.geomspace(z0, z1, bins + 1) if z1 > z0 else np.array([z0, z0])
        which = np.clip(np.searchsorted(edges, streaks.depth, side='right') - 1, 0, bins - 1)
        shift = np.zeros(len(streaks)) if x_shift is None else np.asarray(x_shift, dtype=np.float64)
        pad = int(np.ceil(4 * params.defocus_near)) + 2  # covers the Gaussian kernel radius
        transmit = np.ones((height, width), np.float32)
        for b in range(bins - 1, -1, -1):  # far to near
            idx = np.nonzero(which == b)[0]
            if idx.size == 0:
                continue
            canvas = np.zeros((height + 2 * pad, width + 2 * pad), np.uint8)
            half = 0.5 * streaks.length[idx]
            dx, dy = half * np.sin(streaks.angle[idx]), half * np.cos(streaks.angle[idx])
            cx, cy = streaks.x[idx] - shift[idx] + pad, streaks.y[idx] + pad
            ends = np.rint(np.stack([cx - dx, cy - dy, cx + dx, cy + dy], axis=1) * 16).astype(np.int64)
            values = np.rint(255 * streaks.opacity[idx]).astype(np.int64)
            for (x1, y1, x2, y2), value, thickness in zip(ends.tolist(), values.tolist(),
                                                          streaks.width[idx].tolist()):
                cv2.line(canvas, (x1, y1), (x2, y2), value, thickness, cv2.LINE_AA, 4)
            layer = canvas.astype(np.float32) / 255.0
            z_bin = float(np.sqrt(edges[b] * edges[b + 1])) if z1 > z0 else float(z0)
            sigma = params.defocus_near * z0 / z_bin
            if sigma > 0.3:
                layer = cv2.GaussianBlur(layer, (0, 0), sigma)
            layer = layer[pad:pad + height, pad:pad + width]
            if scene_disparity is not None:
                layer = layer * (scene_disparity <= params.focal_baseline / z_bin)
            transmit *= 1.0 - np.clip(layer, 0.0, 1.0)
        return (1.0 - transmit).astype(np.float32)

    @staticmethod
    def light_maps(lights: tuple[Light, ...], height: int, width: int,
                   x_shift: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(illumination, glow) H x W x 3 maps of the lights (each shifted by ``-x_shift[k]`` in x)."""
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        illum = np.zeros((height, width, 3), np.float32)
        glow = np.zeros((height, width, 3), np.float32)
        for k, light in enumerate(lights):
            lx = light.x - (0.0 if x_shift is None else float(x_shift[k]))
            r2 = (xx - lx) ** 2 + (yy - light.y) ** 2
            colour = np.asarray(light.colour, np.float32)
            broad = np.exp(-r2 / (2.0 * (light.bloom * light.radius) ** 2))
            core = np.exp(-r2 / (2.0 * light.radius ** 2))
            illum += light.strength * broad[..., None] * colour
            glow += (core + 0.15 * broad)[..., None] * colour
        return illum, glow

    # ------------------------------------------------------------ composites
    @staticmethod
    def night_exposure(clean: np.ndarray, params: SceneParams, illum: np.ndarray,
                       glow: np.ndarray) -> np.ndarray:
        """Noise-free night image of a (day or night) clean image, lit by the lights."""
        base = params.gain * np.power(np.clip(clean, 0.0, 1.0), params.gamma)
        return np.clip(base * (1.0 + illum) + glow, 0.0, 1.0).astype(np.float32)

    @staticmethod
    def composite(night: np.ndarray, alpha: np.ndarray, illum: np.ndarray,
                  params: SceneParams) -> tuple[np.ndarray, np.ndarray]:
        """(rainy without noise, rain light): streaks hide a little and scatter ambient + lamp light."""
        a = alpha[..., None]
        rain_light = a * (params.ambient + params.scatter * illum)
        rainy = np.clip(night * (1.0 - params.occlusion * a) + rain_light, 0.0, 1.0)
        return rainy.astype(np.float32), rain_light.astype(np.float32)

    @staticmethod
    def sensor_noise(image: np.ndarray, params: SceneParams, rng: np.random.Generator) -> np.ndarray:
        """Poisson-Gaussian noise: shot noise at ``photons`` per unit signal plus read noise."""
        shot = rng.poisson(np.clip(image, 0.0, 1.0) * params.photons) / params.photons
        noisy = shot + rng.normal(0.0, params.read_noise, image.shape)
        return np.clip(noisy, 0.0, 1.0).astype(np.float32)

    @staticmethod
    def thermal(infrared: np.ndarray, alpha: np.ndarray, params: SceneParams,
                rng: np.random.Generator) -> np.ndarray:
        """Rainy thermal image: a slight attenuation under streaks plus a little sensor noise."""
        ir = infrared[..., 0] if infrared.ndim == 3 else infrared
        out = ir * (1.0 - params.ir_attenuation * alpha) + rng.normal(0.0, params.ir_noise, ir.shape)
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    # ------------------------------------------------------------ public entry points
    def render(self, clean: np.ndarray, rng: np.random.Generator | int, *, infrared: np.ndarray | None = None,
               noise: bool = True, params: SceneParams | None = None,
               make_thermal: bool = False) -> NightRainImage:
        """Night rain on one clean RGB image (float [0, 1] or uint8)."""
        rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
        clean = _as_float(clean)
        h, w = clean.shape[:2]
        params = params or self.sample_params(rng, h, w)
        streaks = self.sample_streaks(rng, params, h, w, margin=streak_margin(params, h))
        alpha = self.rain_mask(streaks, params, h, w)
        illum, glow = self.light_maps(params.lights, h, w)
        night = self.night_exposure(clean, params, illum, glow)
        rainy, rain_light = self.composite(night, alpha, illum, params)
        if noise:
            rainy = self.sensor_noise(rainy, params, rng)
        ir = None
        if infrared is not None or make_thermal:
            source = _as_float(infrared) if infrared is not None else pseudo_thermal(clean)
            ir = self.thermal(source, alpha, params, rng)
        return NightRainImage(rainy, night, alpha, rain_light, ir)

    def render_stereo(self, left: np.ndarray, right: np.ndarray | None, rng: np.random.Generator | int, *,
                      scene_disparity: np.ndarray | None = None, noise: bool = True,
                      params: SceneParams | None = None,
                      focal_baseline: float | None = None) -> NightRainStereo:
        """Night rain on a rectified stereo pair; each streak's right-view position is ``x - fb / z``.

        ``right`` may be None when ``scene_disparity`` (left-view disparity, px) is given: the right view is
        then synthesised from the left by :func:`warp_left_to_right`. Scene disparity also hides streaks
        behind the scene and shifts the lights. For a real pair give its disparity map (e.g. from the
        dataset or a stereo matcher) and ``focal_baseline`` (focal length in px x baseline in m) when known;
        without them the lights stay unshifted (as if distant) and the streak disparities come from a drawn
        ``focal_baseline`` that is not the real rig's.
        """
        rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
        left = _as_float(left)
        h, w = left.shape[:2]
        if right is None:
            if scene_disparity is None:
                raise ValueError('render_stereo needs a right image or a scene disparity map')
            right = warp_left_to_right(left, scene_disparity)
        right = _as_float(right)
        if right.shape != left.shape:
            raise ValueError(f'left {left.shape} and right {right.shape} differ in size')
        params = params or self.sample_params(rng, h, w)
        if focal_baseline is not None:
            if not focal_baseline > 0:
                raise ValueError(f'focal_baseline must be > 0, not {focal_baseline}')
            params = replace(params, focal_baseline=float(focal_baseline))
        z0 = params.depth_range[0]
        margin = params.focal_baseline / z0 + streak_margin(params, h)
        streaks = self.sample_streaks(rng, params, h, w, margin=margin)
        disparity = params.focal_baseline / streaks.depth
        right_disp = None if scene_disparity is None else warp_left_to_right(scene_disparity, scene_disparity)
        light_shift = None
        if scene_disparity is not None:
            light_shift = np.array([_sample_at(scene_disparity, li.x, li.y) for li in params.lights])
        views = []
        for image, shift, disp, lshift in ((left, None, scene_disparity, None),
                                           (right, disparity, right_disp, light_shift)):
            alpha = self.rain_mask(streaks, params, h, w, x_shift=shift, scene_disparity=disp)
            illum, glow = self.light_maps(params.lights, h, w, x_shift=lshift)
            night = self.night_exposure(image, params, illum, glow)
            rainy, rain_light = self.composite(night, alpha, illum, params)
            if noise:
                rainy = self.sensor_noise(rainy, params, rng)
            views.append(NightRainImage(rainy, night, alpha, rain_light, None))
        return NightRainStereo(views[0], views[1], streaks, params)

    def rain_only(self, clean: np.ndarray, rng: np.random.Generator | int) -> np.ndarray:
        """Day-light rain on a clean image (no night exposure, no lights, no noise): for augmentation
        and contrastive negatives. ``clip(clean * (1 - occlusion a) + a * ambient')`` with a brighter
        ambient (0.6..0.9) so the streaks show on day images."""
        rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
        clean = _as_float(clean)
        h, w = clean.shape[:2]
        params = replace(self.sample_params(rng, h, w), lights=(), ambient=float(rng.uniform(0.6, 0.9)))
        streaks = self.sample_streaks(rng, params, h, w, margin=streak_margin(params, h))
        alpha = self.rain_mask(streaks, params, h, w)
        illum = np.zeros_like(clean)
        return self.composite(clean, alpha, illum, params)[0]


LENGTH_SPREAD = 1.3  # streak lengths vary by a factor uniform in (0.7, 1.3) around the depth model


def streak_margin(params: SceneParams, height: int) -> float:
    """Half the longest possible streak (px): centres this far outside the frame can still cross it."""
    return 0.5 * params.length_near * height * LENGTH_SPREAD


def terminal_velocity(diameter_mm: np.ndarray | float) -> np.ndarray:
    """Terminal fall speed (m/s) of rain drops: ``9.65 - 10.3 exp(-0.6 D)`` (Atlas et al. 1973), >= 0.3."""
    return np.maximum(9.65 - 10.3 * np.exp(-0.6 * np.asarray(diameter_mm, np.float64)), 0.3)


REFERENCE_DROP_MM = 2.0  # the image's wind angle is the lean of a drop of this diameter


def drop_diameters(params: SceneParams, depth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Marshall-Palmer diameters (mm) truncated to the drops visible at each depth (module docstring)."""
    top = float(params.max_drop_mm)
    low = np.minimum(params.visible_drop_mm * depth / params.depth_range[0], 0.9 * top)
    lam = float(params.drop_lambda)
    u = rng.random(depth.shape)
    return low - np.log1p(-u * (1.0 - np.exp(-lam * (top - low)))) / lam


def streak_angles(params: SceneParams, x: np.ndarray, y: np.ndarray, depth: np.ndarray,
                  diameter: np.ndarray, width: int) -> np.ndarray:
    """Direction (radians from vertical) of each drop's image motion: its wind-blown fall (slow small drops
    lean more) plus the forward ego-motion's radial flow away from the FOE with the looming factor
    ``z / (z - T)`` (module docstring)."""
    v_ref = float(terminal_velocity(REFERENCE_DROP_MM))
    fall_x, fall_y = math.tan(params.angle), terminal_velocity(diameter) / v_ref
    travel = min(float(params.exposure_travel), 0.95 * float(np.min(depth))) if len(depth) else 0.0
    looming = depth / (depth - travel)
    gain = params.ego_motion * looming / (0.5 * width)
    fx, fy = params.foe
    return np.arctan2(fall_x + gain * (x - fx), fall_y + gain * (y - fy))


def _as_float(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return image.astype(np.float32, copy=False)


def _sample_at(image: np.ndarray, x: float, y: float) -> float:
    h, w = image.shape[:2]
    return float(image[int(np.clip(round(y), 0, h - 1)), int(np.clip(round(x), 0, w - 1))])


def warp_left_to_right(left: np.ndarray, disparity: np.ndarray) -> np.ndarray:
    """Approximate right view of a rectified pair: ``right(x, y) = left(x + d(x, y), y)`` (bilinear).

    ``d`` is the left-view disparity used as if it were the right view's (exact for smooth disparity such as
    :func:`road_disparity`; occlusions are not modelled).
    """
    h, w = disparity.shape[:2]
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x = xx + disparity.astype(np.float32)
    src = left.astype(np.float32, copy=False)
    out = cv2.remap(src, map_x, yy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(src.shape)


def road_disparity(height: int, width: int, max_disparity: float, horizon: float = 0.45,
                   far_disparity: float = 1.0) -> np.ndarray:
    """A road-scene disparity map: ``far_disparity`` above the horizon, a ground plane rising linearly to
    ``max_disparity`` at the bottom row (float32, H x W, pixels)."""
    rows = np.arange(height, dtype=np.float32)
    y0 = horizon * height
    ground = far_disparity + (max_disparity - far_disparity) * np.clip((rows - y0) / max(height - 1 - y0, 1),
                                                                         0.0, 1.0)
    return np.repeat(ground[:, None], width, axis=1).astype(np.float32)


def pseudo_thermal(clean: np.ndarray) -> np.ndarray:
    """A crude thermal stand-in (H x W) from a visible image: smoothed, contrast-stretched luminance.

    Only for tests and synthetic fusion smoke data; it has none of the physics of a real LWIR image.
    """
    image = _as_float(clean)
    lum = image @ np.array([0.299, 0.587, 0.114], np.float32) if image.ndim == 3 else image
    smooth = cv2.GaussianBlur(lum, (0, 0), 1.5)
    lo, hi = np.percentile(smooth, (1, 99))
    return np.clip((smooth - lo) / max(hi - lo, 1e-6), 0.0, 1.0).astype(np.float32)
