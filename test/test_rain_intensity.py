"""Rain intensity (the derain residual) and the "camera degraded" diagnostics: the measure itself, its rise
with rain density through the shipped derain model, its level on clean images, the node's status and topic."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from nitedr_ros.core.clock import NS_PER_MS, ManualClock
from nitedr_ros.core.diagnostics import Level
from nitedr_ros.core.node_core import NodeCore
from nitedr_ros.core.parameters import RAIN_ERROR_INTENSITY, RAIN_WARN_INTENSITY
from nitedr_ros.core.testing import RecordingSink, make_image, pattern_image
from nitedr_ros.pipeline.frames import ImageFrame
from nitedr_ros.pipeline.rain_intensity import rain_intensity

ROOT = Path(__file__).resolve().parents[1]


def test_the_measure_is_the_mean_luminance_change_in_8_bit_levels():
    clean = np.full((64, 64, 3), 50, np.uint8)
    rainy = clean.copy()
    rainy[:, ::8] = 130  # a streak every 8th column: +80 levels on 1/8 of the pixels (on the 4-px grid: 1/2)
    assert rain_intensity(ImageFrame(clean, 'rgb8'), ImageFrame(clean, 'rgb8')) == 0.0
    value = rain_intensity(ImageFrame(rainy, 'rgb8'), ImageFrame(clean, 'rgb8'), step=1)
    assert value == pytest.approx(80 / 8, rel=1e-6)
    # other encodings measure the same thing on the 0-255 scale
    bgr = rain_intensity(ImageFrame(rainy[..., ::-1].copy(), 'bgr8'), ImageFrame(clean, 'bgr8'), step=1)
    mono16 = rain_intensity(ImageFrame(rainy[..., 0].astype(np.uint16) * 257, 'mono16'),
                            ImageFrame(clean[..., 0].astype(np.uint16) * 257, 'mono16'), step=1)
    assert bgr == pytest.approx(value, rel=1e-5) and mono16 == pytest.approx(value, rel=1e-5)


@pytest.fixture(scope='module')
def shipped_derain():
    pytest.importorskip('onnxruntime')
    from nitedr_ros.engines.options import EngineOptions
    from nitedr_ros.engines.selection import open_engine
    from nitedr_ros.pipeline.derain import DerainPipeline

    engine = open_engine('cleannet_realtime.onnx', EngineOptions('onnxruntime-cpu', threads=2))
    return DerainPipeline('single', {'derain': engine})


def test_intensity_rises_with_rain_density_and_stays_low_on_clean_night_images(shared_data, shipped_derain):
    import cv2

    from nitedr_ros.data.corpus import clean_night_images
    from nitedr_ros.data.imageio import read_rgb
    from nitedr_ros.data.rain_styles import render_style, streak_density_style

    images = []
    for _, path in clean_night_images(shared_data)[:4]:
        image = read_rgb(path)
        scale = 480 / max(image.shape[:2])  # the calibration's size (streak length scales with the image)
        images.append(cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    densities = (0.0, 1.0, 3.0, 8.0)  # streaks per 1000 px, thin night rain up to a downpour
    medians = []
    for density in densities:
        values = []
        for index, image in enumerate(images):
            rainy = image
            if density:
                sample = render_style(image.astype(np.float32) / 255.0, np.random.default_rng(index),
                                      streak_density_style(density))
                rainy = np.clip(np.rint(sample.rainy * 255.0), 0, 255).astype(np.uint8)
            frame = ImageFrame(np.ascontiguousarray(rainy), 'rgb8')
            values.append(shipped_derain.process({'rgb': frame}).rain_intensity['derained_rgb'])
        medians.append(float(np.median(values)))
    assert all(a < b for a, b in itertools.pairwise(medians)), medians
    assert medians[0] < RAIN_WARN_INTENSITY, medians  # clean night images: no warning
    assert medians[-1] > RAIN_ERROR_INTENSITY, medians  # a downpour: blinded


def test_the_parameter_defaults_are_the_published_calibration():
    from nitedr_ros.data.rain_styles import BLINDED_DENSITY, DEGRADED_DENSITY

    calibration = json.loads((ROOT / 'benchmarks' / 'results' / 'rain_intensity.json').read_text())
    assert (calibration['warn_intensity'], calibration['error_intensity']) == (RAIN_WARN_INTENSITY,
                                                                               RAIN_ERROR_INTENSITY)
    assert (calibration['degraded_density'], calibration['blinded_density']) == (DEGRADED_DENSITY,
                                                                                 BLINDED_DENSITY)
    assert calibration['monotonic']
    assert calibration['densities']['0']['median'] < RAIN_WARN_INTENSITY < RAIN_ERROR_INTENSITY


@dataclass
class _Result:
    outputs: dict
    timings: object = None
    rain_intensity: dict = field(default_factory=dict)


class RainyPipeline:
    """Passes frames through and reports a given rain intensity per set."""

    def __init__(self, values):
        self.values = list(values)

    def process(self, frames, *, fuse=True, **_):
        return _Result({'derained_rgb': frames['rgb']}, None, {'derained_rgb': self.values.pop(0)})


def test_the_node_reports_degraded_and_blinded_cameras_and_publishes_the_intensity():
    values = [1.0] * 10 + [RAIN_WARN_INTENSITY + 2] * 15 + [RAIN_ERROR_INTENSITY + 20] * 15
    sink = RecordingSink()
    clock = ManualClock(1000 * NS_PER_MS)
    core = NodeCore({'mode': 'single', 'max_input_age_ms': 0.0, 'sync.min_interval_ms': 0.0}, sink=sink,
                    clock=clock, pipeline=RainyPipeline(values), synchronous=True)
    core.start()
    levels = []
    image = pattern_image(8, 8, 'rgb8')
    try:
        for index in range(len(values)):
            clock.set_ns((1000 + 50 * index) * NS_PER_MS)
            core.on_image('rgb', make_image(image, 'rgb8', (1000 + 50 * index) * NS_PER_MS))
            if index % 5 == 4:
                rain = next(s for s in core.statuses() if s.name.endswith(': rain'))
                levels.append(rain.level)
        assert levels[1] == Level.OK and levels[4] == Level.WARN and levels[-1] == Level.ERROR
        assert dict(rain.values)['degraded'] == 'blinded' and 'rgb camera blinded by rain' in rain.message
        published = [value for name, value in sink.debug if name == 'rain_intensity']
        assert published == values  # every published set, on ~/rain_intensity
    finally:
        core.stop()
