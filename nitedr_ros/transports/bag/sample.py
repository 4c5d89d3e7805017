"""``nitedr bag make-sample``: a small night-rain rosbag2 with RGB, stereo and thermal cameras.

Content: RoadScene-rain night triplets (rainy RGB + registered infrared) for the RGB and thermal cameras,
and the Middlebury "Aloe" stereo pair with night rain rendered onto it (streaks at random depths, so the
right view sees each streak shifted by its own disparity) for the stereo cameras. Images come from the
shared data folder when present, else from the small copies bundled in ``nitedr_ros/samples``.
The camera moves: each frame is a window panning slowly across the source image.

Timing is that of real free-running cameras: each camera has its own rate and phase, ``header.stamp`` is
the capture time with clock jitter, and the bag (record) time is the stamp plus a transport delay that
differs per camera, so record order and stamp order do not always agree. The stereo pair is hardware
triggered (left and right share each stamp). The thermal camera runs 6 ms behind the RGB camera, so with
the default rates (RGB 20 Hz, thermal 10 Hz) every thermal frame has an RGB frame within the node's
default 15 ms slop and every other RGB frame is left over (dropped by the synchronizer, as on a real car).
Each image has its ``camera_info`` with the same stamp.

The thermal camera is registered to the RGB camera (as in the datasets) unless ``thermal_offset`` /
``thermal_scale`` make it a separate sensor: its frame is then the scene mapped by
``x_thermal = scale * x_rgb + offset`` at ``scale`` x the RGB resolution, its camera_info says so, and the
summary gives the registration homography (thermal -> RGB) that undoes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ...errors import ConfigError
from ...paths import SAMPLES_DIR, shared_data_dir
from .reader import CAMERA_INFO, IMAGE
from .ros2_messages import Ros2Messages
from .writer import AtomicBagWriter, ros2_typestore

log = logging.getLogger(__name__)

NIGHT_SCENES = ('066', '150', '168')
DEFAULT_START_NS = 1_700_000_000_000_000_000


@dataclass(frozen=True)
class CameraSpec:
    """One camera of the sample bag."""

    stream: str
    topic: str
    info_topic: str
    frame_id: str
    rate_hz: float
    phase_s: float
    delay_ms: tuple[float, float]  # transport delay mean, std (record time - stamp)
    encoding: str


@dataclass(frozen=True)
class SampleSpec:
    """What ``make-sample`` writes."""

    duration_s: float = 4.0
    width: int = 320
    height: int = 240
    rgb_hz: float = 20.0
    stereo_hz: float = 15.0
    thermal_hz: float = 10.0
    jitter_ms: float = 0.5
    start_ns: int = DEFAULT_START_NS
    seed: int = 7
    cameras: tuple[str, ...] = ('rgb', 'stereo', 'thermal')
    storage: str = 'sqlite3'
    thermal_offset: tuple[float, float] = (0.0, 0.0)  # thermal pixels (x, y) of a misaligned thermal camera
    thermal_scale: float = 1.0  # thermal resolution / RGB resolution
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.duration_s <= 0 or self.duration_s > 600:
            raise ConfigError(f'sample duration must be in (0, 600] s, got {self.duration_s}')
        if self.width < 16 or self.height < 16 or self.width > 4096 or self.height > 4096:
            raise ConfigError(f'sample size must be 16..4096 px, got {self.width}x{self.height}')
        for name, rate in (('rgb', self.rgb_hz), ('stereo', self.stereo_hz), ('thermal', self.thermal_hz)):
            if not 0.5 <= rate <= 120:
                raise ConfigError(f'{name} rate must be 0.5..120 Hz, got {rate}')
        if not 0.1 <= self.thermal_scale <= 4.0:
            raise ConfigError(f'thermal scale must be 0.1..4, got {self.thermal_scale}')
        if any(abs(v) > 4096 for v in self.thermal_offset):
            raise ConfigError(f'thermal offset must be within +-4096 px, got {self.thermal_offset}')
        unknown = set(self.cameras) - {'rgb', 'stereo', 'thermal'}
        if unknown or not self.cameras:
            raise ConfigError(f'cameras must be among rgb, stereo, thermal, got {", ".join(self.cameras)}')

    def thermal_mapping(self) -> np.ndarray | None:
        """RGB pixel -> thermal pixel (3x3) of a misaligned thermal camera; None when registered."""
        if self.thermal_offset == (0.0, 0.0) and self.thermal_scale == 1.0:
            return None
        s = self.thermal_scale
        return np.array([[s, 0.0, self.thermal_offset[0]], [0.0, s, self.thermal_offset[1]], [0.0, 0.0, 1.0]])

    def thermal_mapping_inverse(self) -> list[float]:
        """The registration homography (thermal pixel -> RGB pixel, row by row) that undoes the mapping."""
        mapping = self.thermal_mapping()
        if mapping is None:
            return [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        inverse = np.linalg.inv(mapping)
        return [round(float(v), 9) for v in (inverse / inverse[2, 2]).ravel()]

    def thermal_hw(self) -> tuple[int, int]:
        return round(self.height * self.thermal_scale), round(self.width * self.thermal_scale)

    def camera_specs(self) -> list[CameraSpec]:
        specs = []
        if 'rgb' in self.cameras:
            specs.append(CameraSpec('rgb', '/rgb/image', '/rgb/camera_info', 'rgb_camera_optical_frame',
                                    self.rgb_hz, 0.004, (8.0, 2.0), 'rgb8'))
        if 'stereo' in self.cameras:
            for side, delay in (('left', (11.0, 2.5)), ('right', (12.0, 2.5))):
                specs.append(CameraSpec(side, f'/stereo/{side}/image', f'/stereo/{side}/camera_info',
                                        f'stereo_{side}_optical_frame', self.stereo_hz, 0.011, delay, 'rgb8'))
        if 'thermal' in self.cameras:
            specs.append(CameraSpec('thermal', '/thermal/image', '/thermal/camera_info',
                                    'thermal_camera_optical_frame', self.thermal_hz, 0.010, (21.0, 4.0),
                                    'mono8'))
        return specs


@dataclass
class SampleSources:
    """Source images (uint8) and where they came from."""

    scenes: list[tuple[np.ndarray, np.ndarray]]  # (rainy RGB, infrared gray), registered
    stereo: tuple[np.ndarray, np.ndarray, np.ndarray]  # left RGB, right RGB, left disparity (px)
    origin: str


def load_sources(data_dir: Path | None = None) -> SampleSources:
    """RoadScene-rain night triplets and the Aloe stereo pair: shared data if present, else bundled copies."""
    data_dir = data_dir if data_dir is not None else shared_data_dir()
    if data_dir is not None:
        road = data_dir / 'roadscene-rain' / 'train'
        aloe = data_dir / 'stereo' / 'middlebury_aloe_image_pipeline'
        rgb_files = [road / 'Vis' / 'input' / f'{name}.jpg' for name in NIGHT_SCENES]
        ir_files = [road / 'Inf' / 'input' / f'{name}.jpg' for name in NIGHT_SCENES]
        stereo_files = [aloe / 'left.png', aloe / 'right.png', aloe / 'disparity.png']
        if all(path.is_file() for path in rgb_files + ir_files + stereo_files):
            scenes = [(_read_rgb(rgb), _read_gray(ir)) for rgb, ir in zip(rgb_files, ir_files)]
            left, right = _read_rgb(stereo_files[0]), _read_rgb(stereo_files[1])
            disparity = _read_gray(stereo_files[2]).astype(np.float32)
            return SampleSources(scenes, (left, right, disparity), f'shared data in {data_dir}')
    scenes = [(_read_rgb(SAMPLES_DIR / f'roadscene_{name}_rgb_rainy.jpg'),
               _read_gray(SAMPLES_DIR / f'roadscene_{name}_ir.jpg')) for name in NIGHT_SCENES]
    left, right = _read_rgb(SAMPLES_DIR / 'aloe_left.jpg'), _read_rgb(SAMPLES_DIR / 'aloe_right.jpg')
    disparity = _read_gray(SAMPLES_DIR / 'aloe_disparity_half.png').astype(np.float32)
    return SampleSources(scenes, (left, right, disparity), f'bundled images in {SAMPLES_DIR}')


def _read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ConfigError(f'cannot read sample image {path}')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _read_gray(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ConfigError(f'cannot read sample image {path}')
    return image


def _cover(image: np.ndarray, height: int, width: int, zoom: float) -> np.ndarray:
    """Resize so the image covers ``zoom`` x the output size (aspect kept)."""
    scale = zoom * max(height / image.shape[0], width / image.shape[1])
    size = (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _window(image: np.ndarray, height: int, width: int, progress: float) -> np.ndarray:
    """The ``height x width`` window at ``progress`` (0..1) of a slow left-to-right, slightly downward pan."""
    x = round((image.shape[1] - width) * progress)
    y = round((image.shape[0] - height) * (0.3 + 0.4 * progress))
    return image[y:y + height, x:x + width]


class _StereoRain:
    """Night rain on the stereo pair: the project's renderer when available, else darkening + streaks."""

    def __init__(self, left: np.ndarray, right: np.ndarray, disparity: np.ndarray, spec: SampleSpec) -> None:
        height, width = spec.height, spec.width
        scale = 1.1 * max(height / left.shape[0], width / left.shape[1])
        size = (round(left.shape[1] * scale), round(left.shape[0] * scale))
        self.left = cv2.resize(left, size, interpolation=cv2.INTER_AREA)
        self.right = cv2.resize(right, size, interpolation=cv2.INTER_AREA)
        self.disparity = cv2.resize(disparity, size, interpolation=cv2.INTER_NEAREST) * scale
        self.height, self.width = height, width
        self.render: Callable[[np.ndarray, np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]
        try:
            from ...data.rain_renderer import NightRainRenderer
        except ImportError:
            self.method = 'darkening and simple streaks (nitedr_ros.data.rain_renderer not available)'
            self.render = _simple_night_rain
        else:
            renderer = NightRainRenderer()
            self.method = 'nitedr_ros.data.rain_renderer (streak disparity from depth, scene occlusion)'

            def render(left: np.ndarray, right: np.ndarray, disparity: np.ndarray,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
                views = renderer.render_stereo(left, right, seed, scene_disparity=disparity)
                return _to_uint8(views.left.rainy), _to_uint8(views.right.rainy)
            self.render = render

    def frame(self, progress: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        x = round((self.left.shape[1] - self.width) * progress)
        y = round((self.left.shape[0] - self.height) * 0.5)
        crop = (slice(y, y + self.height), slice(x, x + self.width))
        left, right = self.left[crop], self.right[crop]
        return self.render(np.ascontiguousarray(left), np.ascontiguousarray(right),
                           np.ascontiguousarray(self.disparity[crop]), seed)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _simple_night_rain(left: np.ndarray, right: np.ndarray, _disparity: np.ndarray,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fallback: darken (gain 0.35, gamma 1.5) and draw bright streaks, each shifted by its own disparity."""
    rng = np.random.default_rng(seed)
    views = [np.clip(0.35 * (view / 255.0) ** 1.5 * 255.0, 0, 255).astype(np.uint8) for view in (left, right)]
    height, width = left.shape[:2]
    for _ in range(int(0.004 * height * width)):
        depth = rng.uniform(1.5, 20.0)
        shift = 40.0 / depth
        x, y = rng.uniform(0, width + shift), rng.uniform(0, height)
        length = 0.15 * height / depth * 3
        dx = length * 0.15
        value = int(rng.uniform(90, 170))
        for view, offset in ((views[0], 0.0), (views[1], shift)):
            start = (round(x - offset), round(y))
            end = (round(x - offset + dx), round(y + length))
            cv2.line(view, start, end, (value, value, value), 1, cv2.LINE_AA)
    return views[0], views[1]


def make_sample(out: str | Path, spec: SampleSpec | None = None, *, force: bool = False,
                progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Write the sample bag to ``out`` (temporary name, renamed when complete); returns a summary."""
    spec = spec or SampleSpec()
    sources = load_sources()
    typestore = ros2_typestore()
    types = typestore.types
    messages = Ros2Messages(typestore)
    rng = np.random.default_rng(spec.seed)
    height, width = spec.height, spec.width
    scene_images = [(_cover(rgb, height, width, 1.2), _cover(ir, height, width, 1.2))
                    for rgb, ir in sources.scenes]
    stereo = _StereoRain(*sources.stereo, spec) if 'stereo' in spec.cameras else None
    scene_seconds = spec.duration_s / len(scene_images)

    def scene_frame(t: float, index: int) -> np.ndarray:
        scene = min(int(t / scene_seconds), len(scene_images) - 1)
        image = scene_images[scene][index]
        if image.shape[:2] != scene_images[scene][0].shape[:2]:  # IR resized to the RGB grid
            image = cv2.resize(image, scene_images[scene][0].shape[1::-1], interpolation=cv2.INTER_AREA)
        pan = (t - scene * scene_seconds) / scene_seconds
        return np.ascontiguousarray(_window(image, height, width, pan))

    # capture times of every camera (stereo left/right share them)
    records: list[tuple[int, str, Any]] = []  # (record time ns, topic, message)
    counts: dict[str, int] = {}
    specs = spec.camera_specs()
    focal = 0.9 * width
    stereo_stamps: list[int] = []
    stereo_frames: list[tuple[np.ndarray, np.ndarray]] = []
    if stereo is not None:
        period = 1.0 / spec.stereo_hz
        times = np.arange(0.011, spec.duration_s, period)
        for index, t in enumerate(times):
            stereo_stamps.append(_stamp(spec, t, rng))
            stereo_frames.append(stereo.frame(t / spec.duration_s, spec.seed * 100_003 + index))
            if progress:
                progress(index + 1, len(times))
    for camera in specs:
        if camera.stream in ('left', 'right'):
            stamps = stereo_stamps
            frames = [pair[0 if camera.stream == 'left' else 1] for pair in stereo_frames]
        else:
            times = np.arange(camera.phase_s, spec.duration_s, 1.0 / camera.rate_hz)
            stamps = [_stamp(spec, t, rng) for t in times]
            frames = [scene_frame(t, 1 if camera.stream == 'thermal' else 0) for t in times]
        mapping = spec.thermal_mapping() if camera.stream == 'thermal' else None
        size_hw = spec.thermal_hw() if mapping is not None else (height, width)
        if mapping is not None:  # a separate thermal sensor: the scene mapped into its own pixels
            frames = [cv2.warpPerspective(image, mapping, (size_hw[1], size_hw[0]), flags=cv2.INTER_AREA,
                                          borderMode=cv2.BORDER_REFLECT) for image in frames]
        info = _camera_info(types, camera, width, height, focal, mapping)
        for stamp, image in zip(stamps, frames):
            header = messages.header(stamp, camera.frame_id)
            channels = 1 if camera.encoding == 'mono8' else 3
            msg = types[IMAGE](header, size_hw[0], size_hw[1], camera.encoding, 0, size_hw[1] * channels,
                               np.ascontiguousarray(image).reshape(-1))
            delay = max(1.0, rng.normal(*camera.delay_ms))
            record = stamp + round(delay * 1e6)
            records.append((record, camera.topic, msg))
            records.append((record + 100_000, camera.info_topic, info(header)))
        counts[camera.topic] = len(stamps)
    records.sort(key=lambda item: item[0])

    output = AtomicBagWriter(out, storage=spec.storage, force=force)
    with output:
        writer = output.writer
        connections = {}
        for camera in specs:
            connections[camera.topic] = writer.add_connection(camera.topic, IMAGE, typestore=typestore)
            connections[camera.info_topic] = writer.add_connection(camera.info_topic, CAMERA_INFO,
                                                                   typestore=typestore)
        msgtypes = {camera.topic: IMAGE for camera in specs} | {camera.info_topic: CAMERA_INFO
                                                                 for camera in specs}
        for record, topic, msg in records:
            writer.write(connections[topic], record, typestore.serialize_cdr(msg, msgtypes[topic]))
    misaligned = 'thermal' in spec.cameras and spec.thermal_mapping() is not None
    registration = spec.thermal_mapping_inverse() if misaligned else None
    return {'path': str(output.final), 'topics': counts, 'duration_s': spec.duration_s,
            'size': f'{width}x{height}', 'sources': sources.origin,
            'stereo_rain': stereo.method if stereo is not None else 'no stereo cameras',
            'messages': len(records), 'storage': spec.storage, 'thermal_homography': registration}


def _stamp(spec: SampleSpec, t: float, rng: np.random.Generator) -> int:
    return spec.start_ns + round((t + rng.normal(0.0, spec.jitter_ms * 1e-3)) * 1e9)


def _camera_info(types: Any, camera: CameraSpec, width: int, height: int,
                 focal: float, mapping: np.ndarray | None = None) -> Callable[[Any], Any]:
    """camera_info of a camera; ``mapping`` (RGB pixel -> this camera's pixel) for a separate thermal sensor
    whose K is the RGB K mapped."""
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    baseline = 0.12 if camera.stream == 'right' else 0.0
    k3 = np.array([[focal, 0, cx], [0, focal, cy], [0, 0, 1]], np.float64)
    if mapping is not None:
        k3 = mapping @ k3
        height, width = round(height * mapping[0, 0]), round(width * mapping[0, 0])
        focal, cx, cy = k3[0, 0], k3[0, 2], k3[1, 2]
    k = k3.reshape(-1)
    p = np.array([focal, 0, cx, -focal * baseline, 0, focal, cy, 0, 0, 0, 1, 0], np.float64)
    r = np.eye(3).reshape(-1)
    roi = types['sensor_msgs/msg/RegionOfInterest'](0, 0, 0, 0, False)

    def make(header: Any) -> Any:
        return types[CAMERA_INFO](header, height, width, 'plumb_bob', np.zeros(5), k, r, p, 0, 0, roi)
    return make
