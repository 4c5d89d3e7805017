"""Derain pipeline on CPU with tiny ONNX models: encodings, geometry, modes, thermal, errors, timings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nitedr_ros.engines import open_engine, tiny_models
from nitedr_ros.engines.base import ShapeLimits
from nitedr_ros.engines.options import EngineOptions
from nitedr_ros.errors import ConfigError, FrameError
from nitedr_ros.pipeline import (
    ENCODINGS,
    DerainPipeline,
    ImageFrame,
    LatencyWindow,
    PipelineConfig,
    ThermalNormalizer,
    build_pipeline,
    default_model,
)
from nitedr_ros.pipeline.frames import from_rgb_chw, to_rgb_chw
from nitedr_ros.pipeline.geometry import fit, plan_fit, unfit
from nitedr_ros.pipeline.timing import percentile_summary

RNG = np.random.default_rng(7)


@pytest.fixture(scope='module')
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp('pipeline_models')
    return {
        'identity': tiny_models.identity_model(folder / 'cleannet_identity.onnx'),
        'gain': tiny_models.channel_gain_model(folder / 'cleannet_gain.onnx', (1.0, 0.5, 0.0)),
        'fusion': tiny_models.blend_fusion_model(folder / 'fusionnet_blend.onnx', 0.5),
        'stereo': tiny_models.identity_model(folder / 'stereoirr_identity.onnx', 'stereoirr'),
        'nan': tiny_models.nonfinite_model(folder / 'cleannet_nan.onnx'),
        'inf': tiny_models.nonfinite_model(folder / 'cleannet_inf.onnx', float('inf')),
    }


def ort(path: Path):
    return open_engine(path, EngineOptions('onnxruntime-cpu', threads=1))


def random_frame(encoding: str, height: int = 29, width: int = 43) -> ImageFrame:
    spec = ENCODINGS[encoding]
    shape = (height, width) if spec.channels == 1 else (height, width, spec.channels)
    return ImageFrame(RNG.integers(0, int(spec.max_value) + 1, shape, dtype=spec.dtype), encoding)


VISIBLE_ENCODINGS = sorted(e for e, spec in ENCODINGS.items() if not spec.thermal_only)


@pytest.mark.parametrize('encoding', VISIBLE_ENCODINGS)
def test_every_encoding_round_trips_through_an_identity_model(models, encoding):
    pipeline = DerainPipeline('single', {'derain': ort(models['identity'])})
    frame = random_frame(encoding)  # 29 x 43: padded to 32 x 48 and cropped back
    out = pipeline.process({'rgb': frame}).outputs['derained_rgb']
    assert out.encoding == encoding
    assert out.data.dtype == frame.data.dtype and out.data.shape == frame.data.shape
    np.testing.assert_array_equal(out.data, frame.data)


def test_mono_with_a_channel_axis_keeps_it(models):
    pipeline = DerainPipeline('single', {'derain': ort(models['identity'])})
    frame = ImageFrame(RNG.integers(0, 256, (16, 24, 1), dtype=np.uint8), 'mono8')
    out = pipeline.process({'rgb': frame}).outputs['derained_rgb']
    np.testing.assert_array_equal(out.data, frame.data)


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8', '8UC3', 'rgb16'])
def test_channel_order_reaches_the_model_as_rgb(models, encoding):
    """The gain model keeps R, halves G and zeroes B: each encoding must put them back where they were."""
    pipeline = DerainPipeline('single', {'derain': ort(models['gain'])})
    frame = random_frame(encoding, 16, 16)
    out = pipeline.process({'rgb': frame}).outputs['derained_rgb'].data.astype(np.int64)
    src = frame.data.astype(np.int64)
    order = ENCODINGS[encoding].order
    r, g, b = (0, 1, 2) if order.startswith('rgb') else (2, 1, 0)
    np.testing.assert_array_equal(out[..., r], src[..., r])
    assert np.abs(out[..., g] - src[..., g] / 2).max() <= 1
    assert out[..., b].max() == 0
    if ENCODINGS[encoding].channels == 4:
        np.testing.assert_array_equal(out[..., 3], src[..., 3])  # alpha kept


def test_mono_derainer_runs_on_grey_rgb_and_returns_mono(models):
    pipeline = DerainPipeline('single', {'derain': ort(models['gain'])})
    frame = random_frame('mono8', 16, 16)
    out = pipeline.process({'rgb': frame}).outputs['derained_rgb']
    assert out.encoding == 'mono8' and out.data.shape == (16, 16)
    expected = frame.data * (0.299 + 0.587 * 0.5)  # luma of (v, v/2, 0)
    assert np.abs(out.data - expected).max() <= 1.0


def test_nitedr_mode_derains_and_fuses(models):
    pipeline = DerainPipeline('nitedr', {'derain': ort(models['identity']), 'fusion': ort(models['fusion'])},
                              thermal=ThermalNormalizer((1000.0, 3000.0)))
    rgb = random_frame('rgb8', 40, 64)
    thermal = ImageFrame(np.full((20, 32), 2000, np.uint16), '16UC1')  # half resolution, mid-range
    result = pipeline.process({'rgb': rgb, 'thermal': thermal})
    assert set(result.outputs) == {'derained_rgb', 'fused'}
    np.testing.assert_array_equal(result.outputs['derained_rgb'].data, rgb.data)
    fused = result.outputs['fused']
    assert fused.encoding == 'rgb8' and fused.data.shape == rgb.data.shape
    expected = 0.5 * rgb.data + 0.5 * 127.5
    assert np.abs(fused.data - expected).max() <= 1.0
    assert set(result.timings.inference_by_role) == {'derain', 'fusion'}


def test_nitedr_without_fusion_runs_only_the_derain_model(models):
    pipeline = DerainPipeline('nitedr', {'derain': ort(models['identity']), 'fusion': ort(models['fusion'])})
    rgb = random_frame('bgr8', 24, 32)
    result = pipeline.process({'rgb': rgb}, fuse=False)
    assert set(result.outputs) == {'derained_rgb'}
    assert set(result.timings.inference_by_role) == {'derain'}
    assert pipeline.required_streams(fuse=False) == ('rgb',)
    with pytest.raises(FrameError, match=r'thermal: missing.*fuse=False'):
        pipeline.process({'rgb': rgb})


def test_stereo_mode_one_call_for_both_views(models):
    engine = ort(models['stereo'])
    calls = []
    original = engine.infer
    engine.infer = lambda feed: calls.append(sorted(feed)) or original(feed)
    pipeline = DerainPipeline('stereo', {'stereo': engine})
    assert calls == [['left', 'right']]  # the output check at open
    calls.clear()
    left, right = random_frame('rgb8', 30, 50), random_frame('bgr8', 30, 50)
    result = pipeline.process({'left': left, 'right': right})
    assert calls == [['left', 'right']]
    np.testing.assert_array_equal(result.outputs['derained_left'].data, left.data)
    np.testing.assert_array_equal(result.outputs['derained_right'].data, right.data)
    assert result.outputs['derained_right'].encoding == 'bgr8'


BAD_FRAMES = [
    ('unknown encoding', {'rgb': ImageFrame(np.zeros((4, 4, 2), np.uint8), 'yuv422')}, 'rgb',
     "unknown encoding 'yuv422'"),
    ('zero size', {'rgb': ImageFrame(np.zeros((0, 8, 3), np.uint8), 'rgb8')}, 'rgb', 'zero-size'),
    ('wrong channels', {'rgb': ImageFrame(np.zeros((8, 8), np.uint8), 'rgb8')}, 'rgb',
     'rgb8 needs 3 channel'),
    ('mono with 3 channels', {'rgb': ImageFrame(np.zeros((8, 8, 3), np.uint8), 'mono8')}, 'rgb',
     'mono8 needs 1 channel'),
    ('wrong dtype', {'rgb': ImageFrame(np.zeros((8, 8, 3), np.uint16), 'rgb8')}, 'rgb', 'needs uint8'),
    ('not an array', {'rgb': ImageFrame([[1, 2]], 'rgb8')}, 'rgb', 'expected an ImageFrame'),
    ('missing stream', {'thermal': ImageFrame(np.zeros((8, 8), np.uint8), 'mono8')}, 'rgb', 'missing'),
]


@pytest.mark.parametrize('case,frames,stream,message', BAD_FRAMES, ids=[c[0] for c in BAD_FRAMES])
def test_bad_input_names_stream_and_problem(models, case, frames, stream, message):
    pipeline = DerainPipeline('single', {'derain': ort(models['identity'])})
    with pytest.raises(FrameError, match=message) as info:
        pipeline.process(frames)
    assert info.value.stream == stream
    assert str(info.value).startswith(f'{stream}: ')


def test_bad_thermal_frame(models):
    pipeline = DerainPipeline('nitedr', {'derain': ort(models['identity']), 'fusion': ort(models['fusion'])})
    frames = {'rgb': random_frame('rgb8', 8, 8), 'thermal': ImageFrame(np.zeros((8, 8), np.float64), '64FC1')}
    with pytest.raises(FrameError, match="unknown encoding '64FC1'") as info:
        pipeline.process(frames)
    assert info.value.stream == 'thermal'


def test_mismatched_stereo_sizes(models):
    pipeline = DerainPipeline('stereo', {'stereo': ort(models['stereo'])})
    with pytest.raises(FrameError, match='size 32x24 differs from left 32x16') as info:
        pipeline.process({'left': random_frame('rgb8', 16, 32), 'right': random_frame('rgb8', 24, 32)})
    assert info.value.stream == 'right'
    with pytest.raises(FrameError, match='missing'):
        pipeline.process({'left': random_frame('rgb8', 16, 32)})


@pytest.mark.parametrize('model', ['nan', 'inf'])
def test_non_finite_model_output(models, model):
    pipeline = DerainPipeline('single', {'derain': ort(models[model])})
    with pytest.raises(FrameError, match='derain model output contains NaN or Inf') as info:
        pipeline.process({'rgb': random_frame('rgb8', 16, 16)})
    assert info.value.stream == 'derained_rgb'


def test_wrong_engine_for_a_role_is_a_config_error(models):
    with pytest.raises(ConfigError, match='fusion role needs inputs'):
        DerainPipeline('nitedr', {'derain': ort(models['identity']), 'fusion': ort(models['identity'])})
    with pytest.raises(ConfigError, match='needs an engine for role'):
        DerainPipeline('stereo', {'derain': ort(models['identity'])})


def test_timings_and_latency_window(models):
    pipeline = DerainPipeline('single', {'derain': ort(models['identity'])}, window_size=3)
    for _ in range(5):
        timings = pipeline.process({'rgb': random_frame('rgb8', 32, 32)}).timings
        assert timings.total_ms >= timings.inference_ms > 0
        assert timings.preprocess_ms > 0 and timings.postprocess_ms > 0
        assert timings.transfer_ms >= 0.0
        stages = timings.preprocess_ms + timings.inference_ms + timings.transfer_ms + timings.postprocess_ms
        assert timings.total_ms >= stages
    summary = pipeline.latency_summary()
    assert set(summary) == {'preprocess_ms', 'inference_ms', 'transfer_ms', 'postprocess_ms', 'total_ms'}
    assert summary['total_ms']['count'] == 3
    assert pipeline.windows['total_ms'].total_count == 5


def test_latency_window_percentiles():
    window = LatencyWindow(100)
    assert window.summary()['count'] == 0
    for value in range(1, 201):  # only the last 100 (101..200) stay
        window.add(float(value))
    summary = window.summary()
    assert summary['count'] == 100 and summary['max'] == 200.0
    assert summary['p50'] == pytest.approx(150.5)
    assert summary['p95'] == pytest.approx(np.percentile(np.arange(101, 201), 95))
    assert summary['p99'] == pytest.approx(np.percentile(np.arange(101, 201), 99))
    np.testing.assert_array_equal(window.values(), np.arange(101, 201))
    with pytest.raises(ValueError):
        LatencyWindow(0)


def test_percentile_summary_names_each_percentile_and_summarises_nothing_to_zeros():
    values = [4.0, 1.0, 3.0, 2.0]
    summary = percentile_summary(values, (50, 90, 99.9))
    assert list(summary) == ['p50', 'p90', 'p99.9', 'max', 'mean', 'count']
    assert summary['p50'] == 2.5 and summary['p90'] == pytest.approx(np.percentile(values, 90))
    assert summary['max'] == 4.0 and summary['mean'] == 2.5 and summary['count'] == 4
    assert percentile_summary([]) == {'p50': 0.0, 'p95': 0.0, 'p99': 0.0, 'max': 0.0, 'mean': 0.0, 'count': 0}


def test_thermal_fixed_and_automatic_ranges():
    fixed = ThermalNormalizer((1000.0, 2000.0))
    plane = fixed('thermal', ImageFrame(np.array([[500, 1000, 1500, 2500]], np.uint16), '16UC1'))
    np.testing.assert_allclose(plane, [[0.0, 0.0, 0.5, 1.0]])
    auto = ThermalNormalizer(smoothing=0.5, sample_stride=1)
    ramp = np.tile(np.linspace(1000, 2000, 101).astype(np.uint16), (4, 1))
    out = auto('thermal', ImageFrame(ramp, 'mono16'))
    low, high = auto.current_range
    assert low == pytest.approx(1010, abs=1) and high == pytest.approx(1990, abs=1)
    assert out.min() == 0.0 and out.max() == 1.0 and out.dtype == np.float32
    auto('thermal', ImageFrame(ramp + 1000, 'mono16'))  # scene warms up: range follows halfway
    assert auto.current_range[0] == pytest.approx(1510, abs=1)
    eight_bit = auto('thermal', ImageFrame(np.array([[0, 255]], np.uint8), 'mono8'))
    np.testing.assert_allclose(eight_bit, [[0.0, 1.0]])
    colour = auto('thermal', ImageFrame(np.full((2, 2, 3), 255, np.uint8), 'rgb8'))
    np.testing.assert_allclose(colour, 1.0)
    with pytest.raises(ConfigError):
        ThermalNormalizer((5.0, 5.0))


@pytest.mark.parametrize('h,w', [(29, 43), (8, 8), (3, 5), (1, 1), (15, 17)])
def test_reflect_pad_matches_numpy_and_crops_back(h, w):
    chw = RNG.random((3, h, w), dtype=np.float32)
    plan = plan_fit(h, w, 8)
    padded = fit(chw, plan)
    ph, pw = plan.padded_hw
    assert ph % 8 == 0 and pw % 8 == 0 and padded.flags['C_CONTIGUOUS']
    np.testing.assert_array_equal(padded[0], np.pad(chw, ((0, 0), (0, ph - h), (0, pw - w)), mode='reflect'))
    np.testing.assert_array_equal(unfit(padded, plan), chw)


def test_fit_without_change_is_a_view():
    chw = RNG.random((3, 16, 24), dtype=np.float32)
    plan = plan_fit(16, 24, 8)
    assert plan.identity
    assert np.shares_memory(fit(chw, plan), chw)


def test_fit_to_engine_limits():
    # Larger than the engine maximum: scaled down keeping the aspect ratio, then restored.
    plan = plan_fit(1080, 1920, 8, ShapeLimits(minimum=(64, 64), maximum=(720, 1280)))
    assert plan.scaled_hw == (720, 1280) and plan.padded_hw == (720, 1280)
    chw = np.ones((3, 1080, 1920), np.float32)
    fitted = fit(chw, plan)
    assert fitted.shape == (1, 3, 720, 1280)
    assert unfit(fitted, plan).shape == (3, 1080, 1920)
    # Smaller than the engine minimum: padded up.
    assert plan_fit(40, 40, 8, ShapeLimits(minimum=(64, 64), maximum=(720, 1280))).padded_hw == (64, 64)
    # Static engine: resized to its size.
    assert plan_fit(100, 200, 8, ShapeLimits(fixed=(256, 256))).padded_hw == (256, 256)


def test_conversion_helpers_are_exact_for_8_and_16_bit():
    for encoding in ('rgb8', 'rgb16', 'mono16'):
        frame = random_frame(encoding, 7, 9)
        back = from_rgb_chw(to_rgb_chw('rgb', frame), frame)
        np.testing.assert_array_equal(back.data, frame.data)


def test_build_pipeline_from_config(models):
    config = PipelineConfig(mode='nitedr', models={'derain': str(models['identity']),
                                                   'fusion': str(models['fusion'])},
                            engine=EngineOptions('onnxruntime-cpu', threads=1), thermal_range=(0, 65535))
    with build_pipeline(config) as pipeline:
        assert pipeline.describe()['fusion']['backend'] == 'onnxruntime-cpu'
        frames = {'rgb': random_frame('rgb8', 16, 16), 'thermal': random_frame('16UC1', 16, 16)}
        assert set(pipeline.process(frames).outputs) == {'derained_rgb', 'fused'}


def test_build_pipeline_identity_backend_needs_no_model_files():
    with build_pipeline(PipelineConfig(mode='stereo', engine=EngineOptions('identity'))) as pipeline:
        frames = {'left': random_frame('rgb8', 12, 20), 'right': random_frame('rgb8', 12, 20)}
        out = pipeline.process(frames).outputs
        np.testing.assert_array_equal(out['derained_left'].data, frames['left'].data)


def test_default_models_and_config_errors(tmp_path, monkeypatch):
    assert default_model('nitedr', 'derain') == 'cleannet_realtime.onnx'
    assert default_model('nitedr', 'fusion') == 'fusionnet_realtime.onnx'
    assert default_model('stereo', 'stereo') == 'stereoirr_realtime.onnx'
    assert default_model('single', 'derain') == 'mspfn_realtime.onnx'
    monkeypatch.setenv('NITEDR_MODELS_DIR', str(tmp_path))
    with pytest.raises(ConfigError, match=r'model file not found: cleannet_realtime\.onnx'):
        build_pipeline(PipelineConfig(mode='nitedr', engine=EngineOptions('onnxruntime-cpu')))
    with pytest.raises(ConfigError, match='unknown mode'):
        PipelineConfig(mode='mono')
    with pytest.raises(ConfigError, match='has no model role fusion'):
        PipelineConfig(mode='single', models={'fusion': 'x.onnx'})
    with pytest.raises(ConfigError, match='unknown backend'):
        PipelineConfig(engine=EngineOptions('cuda'))
    with pytest.raises(ConfigError, match='thermal_range'):
        PipelineConfig(thermal_range=(10, 1))


class CopyingEngine:
    """Wraps an engine; its calls take ``copy_s`` seconds beyond the inference time it reports
    (what host<->device copies look like from the pipeline)."""

    def __init__(self, inner, copy_s: float) -> None:
        self.inner = inner
        self.copy_s = copy_s

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def infer(self, feed):
        import time

        time.sleep(self.copy_s)
        out = self.inner.infer(feed)
        self.last_inference_ms = self.inner.last_inference_ms
        return out


def test_transfers_outside_the_engines_inference_time_are_their_own_stage(models):
    engine = CopyingEngine(ort(models['identity']), copy_s=0.02)
    pipeline = DerainPipeline('single', {'derain': engine})
    timings = pipeline.process({'rgb': random_frame('rgb8', 16, 16)}).timings
    assert timings.transfer_ms >= 20.0  # the sleep is in no other stage
    assert timings.inference_ms < timings.transfer_ms
    assert timings.total_ms >= timings.preprocess_ms + timings.inference_ms + timings.transfer_ms
    assert pipeline.latency_summary()['transfer_ms']['count'] == 1


def full_pipeline(models):
    engines = {role: ort(models[name]) for role, name in (('derain', 'gain'), ('fusion', 'fusion'),
                                                          ('stereo', 'stereo'))}
    return DerainPipeline('full', engines, thermal=ThermalNormalizer((1000.0, 3000.0)))


def test_full_mode_gives_all_four_outputs(models):
    pipeline = full_pipeline(models)
    rgb, left = random_frame('rgb8', 24, 40), random_frame('bgr8', 16, 32)
    right = random_frame('rgb8', 16, 32)
    thermal = ImageFrame(np.full((12, 20), 2000, np.uint16), '16UC1')
    assert pipeline.required_streams() == ('rgb', 'left', 'right', 'thermal')
    result = pipeline.process({'rgb': rgb, 'left': left, 'right': right, 'thermal': thermal})
    assert set(result.outputs) == {'derained_rgb', 'fused', 'derained_left', 'derained_right'}
    derained = result.outputs['derained_rgb'].data.astype(np.int64)
    assert derained[..., 2].max() == 0  # the gain model zeroes blue: the derain role ran on rgb
    np.testing.assert_array_equal(result.outputs['derained_left'].data, left.data)
    np.testing.assert_array_equal(result.outputs['derained_right'].data, right.data)
    assert result.outputs['derained_left'].encoding == 'bgr8'
    fused = result.outputs['fused'].data.astype(np.float64)
    assert np.abs(fused - (0.5 * derained + 0.5 * 127.5)).max() <= 1.0
    assert set(result.timings.inference_by_role) == {'derain', 'fusion', 'stereo'}


def test_full_mode_degrades_without_thermal(models):
    pipeline = full_pipeline(models)
    frames = {'rgb': random_frame('rgb8', 16, 16), 'left': random_frame('rgb8', 16, 16),
              'right': random_frame('rgb8', 16, 16)}
    with pytest.raises(FrameError, match=r'thermal: missing.*fuse=False'):
        pipeline.process(frames)
    result = pipeline.process(frames, fuse=False)
    assert set(result.outputs) == {'derained_rgb', 'derained_left', 'derained_right'}
    assert set(result.timings.inference_by_role) == {'derain', 'stereo'}
    assert pipeline.required_streams(fuse=False) == ('rgb', 'left', 'right')
    with pytest.raises(FrameError, match='missing') as info:
        pipeline.process({'rgb': frames['rgb'], 'left': frames['left']}, fuse=False)
    assert info.value.stream == 'right'


def test_full_mode_defaults_and_identity_pipeline():
    assert default_model('full', 'stereo') == 'stereoirr_realtime.onnx'
    assert default_model('full', 'fusion') == 'fusionnet_realtime.onnx'
    with build_pipeline(PipelineConfig(mode='full', engine=EngineOptions('identity'))) as pipeline:
        frames = {s: random_frame('rgb8', 8, 8) for s in ('rgb', 'left', 'right')}
        frames['thermal'] = random_frame('16UC1', 8, 8)
        assert set(pipeline.process(frames).outputs) == {'derained_rgb', 'fused', 'derained_left',
                                                         'derained_right'}


def test_engine_settings_reach_open_engine(monkeypatch):
    """optimization_level, workspace_mb, engine_files and the device go to every role's open_engine."""
    from nitedr_ros.engines import selection
    from nitedr_ros.engines.identity_engine import IdentityEngine

    calls = {}

    def fake_open(model, options, **kwargs):
        network = Path(str(model)).name.split('_', 1)[0]
        calls[network] = options
        return IdentityEngine(network)

    monkeypatch.setattr(selection, 'open_engine', fake_open)
    engine = EngineOptions.make('tensorrt', precision='fp16', optimization_level=5, workspace_mb=2048,
                                device_index=1)
    config = PipelineConfig(mode='nitedr', engine=engine,
                            engine_files={'derain': '/plans/derain.engine', 'fusion': ''})
    with build_pipeline(config):
        pass
    assert calls['cleannet'].build.optimization_level == calls['fusionnet'].build.optimization_level == 5
    assert calls['cleannet'].build.workspace_mb == 2048 and calls['cleannet'].device_index == 1
    assert calls['cleannet'].engine_file == '/plans/derain.engine'
    assert calls['fusionnet'].engine_file == ''  # '' = the engine cache
    assert config.engine_files == {'derain': '/plans/derain.engine'}


@pytest.mark.parametrize('make,message', [
    (lambda: EngineOptions.make(optimization_level=6), 'optimization_level must be 0..5'),
    (lambda: EngineOptions.make(workspace_mb=0), 'workspace_mb must be positive'),
    (lambda: PipelineConfig(mode='single', engine_files={'stereo': 'x.engine'}),
     'no model role stereo for engine_files'),
    (lambda: EngineOptions(device_index=-1), 'device_index'),
    (lambda: EngineOptions(io='int4'), 'engine io'),
])
def test_engine_setting_errors(make, message):
    """Each setting is validated once, where the options object (or the config) is made."""
    with pytest.raises(ConfigError, match=message):
        make()
