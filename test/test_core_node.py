"""NodeCore frame flow: headers kept, latest-only buffer, stale drops, degradation, pass-through, bad input,
live parameters, time jumps, compressed input, synchronous (bag) mode. All with fakes, no ROS."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from nitedr_ros.core.clock import NS_PER_MS, ManualClock
from nitedr_ros.core.diagnostics import Level
from nitedr_ros.core.node_core import NodeCore
from nitedr_ros.core.testing import (
    CameraInfo,
    PassthroughPipeline,
    RecordingSink,
    make_compressed,
    make_header,
    make_image,
    pattern_image,
)
from nitedr_ros.errors import ConfigError, FrameError

MS = NS_PER_MS
RGB = pattern_image(6, 8, 'rgb8', seed=1)
THERMAL = pattern_image(6, 8, 'mono16', seed=2)
GREY = pattern_image(6, 8, 'mono8', seed=3)


def make_core(params=None, *, synchronous=True, pipeline=None, clock=None, **kwargs):
    sink = RecordingSink()
    clock = clock or ManualClock(1000 * MS)
    pipeline = pipeline or PassthroughPipeline()
    base = {'sync.min_interval_ms': 30.0, 'max_input_age_ms': 0.0}
    base.update(params or {})
    core = NodeCore(base, sink=sink, clock=clock, pipeline=pipeline, synchronous=synchronous, **kwargs)
    core.start()
    return core, sink, clock, pipeline


def feed_pair(core, stamp_ms, clock=None, thermal=True):
    if clock is not None:
        clock.set_ns(stamp_ms * MS)
    rgb = make_image(RGB, 'rgb8', stamp_ms * MS, 'camera')
    core.on_image('rgb', rgb)
    msgs = {'rgb': rgb}
    if thermal:
        ir = make_image(THERMAL, 'mono16', stamp_ms * MS, 'thermal')
        core.on_image('thermal', ir)
        msgs['thermal'] = ir
    return msgs


def test_outputs_keep_the_input_header_object_encoding_and_pixels():
    core, sink, _, pipeline = make_core()
    info = CameraInfo(make_header(0, 'camera'), 6, 8)
    core.on_camera_info('rgb', info)
    msgs = feed_pair(core, 1000)
    assert [o for o, _, _ in sink.images] == ['derained_rgb', 'fused']
    for _, header, fields in sink.images:
        assert header is msgs['rgb'].header
        assert fields.encoding == 'rgb8'
        np.testing.assert_array_equal(fields.as_numpy().reshape(RGB.shape), RGB)
    assert [(o, h is msgs['rgb'].header, i is info) for o, h, i in sink.camera_infos] == [
        ('derained_rgb', True, True),
        ('fused', True, True),
    ]
    assert pipeline.calls == [(('rgb', 'thermal'), True)]
    assert {n for n, _ in sink.debug} == {'processing_time_ms', 'inference_time_ms', 'pipeline_latency_ms'}
    assert core.output_topics() == {'derained_rgb': 'derained/rgb/image', 'fused': 'fused/image'}
    assert core.input_topics() == {'rgb': 'rgb/image', 'thermal': 'thermal/image'}


def test_stereo_outputs_carry_their_own_side_header():
    core, sink, _, _ = make_core({'mode': 'stereo'})
    left = make_image(RGB, 'bgr8', 5000 * MS, 'left')
    right = make_image(RGB, 'bgr8', 5000 * MS, 'right')
    core.on_image('right', right)
    core.on_image('left', left)
    assert [(o, h) for o, h, _ in sink.images] == [
        ('derained_left', left.header),
        ('derained_right', right.header),
    ]
    assert sink.images[0][1] is left.header and sink.images[1][1] is right.header


def wait_for(condition, timeout=5.0):
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, 'condition not met in time'
        time.sleep(0.001)


def test_latest_only_buffer_drops_sets_while_busy_and_counts_them():
    pipeline = PassthroughPipeline(delay_s=0.2)
    core, sink, _clock, _ = make_core({'mode': 'single'}, synchronous=False, pipeline=pipeline)
    try:
        core.on_image('rgb', make_image(RGB, 'rgb8', 1000 * MS))
        wait_for(lambda: len(pipeline.calls) == 1)  # the worker is busy with the first set
        for k in range(1, 6):
            core.on_image('rgb', make_image(RGB, 'rgb8', (1000 + 33 * k) * MS))
        assert core.wait_idle(10)
    finally:
        core.stop()
    processed = len(pipeline.calls)
    busy = core.stats.drops_total()['busy']
    assert (processed, busy) == (2, 4)  # the first, and the newest of those made while it was busy
    stamps = [h.stamp.nanosec for h, _ in sink.outputs('derained_rgb')]
    assert stamps == sorted(stamps) and stamps[-1] == (1000 + 33 * 5) * MS % 10**9  # the newest one wins
    assert pipeline.closed is False  # injected pipelines stay the caller's


def test_stale_sets_are_dropped_on_the_node_clock_but_not_before_sim_time_starts():
    core, sink, clock, _ = make_core({'mode': 'single', 'max_input_age_ms': 200.0})
    clock.set_ns(2000 * MS)
    core.on_image('rgb', make_image(RGB, 'rgb8', 1700 * MS))  # 300 ms old
    core.on_image('rgb', make_image(RGB, 'rgb8', 1900 * MS))  # 100 ms old
    assert [h.stamp.nanosec // MS for h, _ in sink.outputs('derained_rgb')] == [900]
    assert core.stats.drops_total()['stale'] == 1
    clock.set_ns(0)  # use_sim_time before /clock
    core.on_image('rgb', make_image(RGB, 'rgb8', 2500 * MS))
    assert len(sink.outputs('derained_rgb')) == 2


def test_thermal_silence_degrades_to_derained_rgb_and_fusion_resumes():
    core, sink, clock, pipeline = make_core({'ir_timeout_ms': 500.0})
    for t in (1000, 1033, 1066):
        feed_pair(core, t, clock)
    assert [f for _, f in pipeline.calls] == [True, True, True]
    for t in range(1100, 1700, 33):  # thermal gone
        feed_pair(core, t, clock, thermal=False)
    assert core.degraded
    degraded_calls = [c for c in pipeline.calls if c == (('rgb',), False)]
    assert degraded_calls, pipeline.calls
    outputs_while_degraded = [
        o for o, h, _ in sink.images if h.stamp.sec * 1000 + h.stamp.nanosec // MS >= 1600
    ]
    assert outputs_while_degraded and set(outputs_while_degraded) == {'derained_rgb'}
    status = core.statuses()
    pipeline_status = next(s for s in status if s.name.endswith(': pipeline'))
    assert pipeline_status.level == Level.WARN and 'thermal silent' in pipeline_status.message
    assert pipeline_status.value('fusing') == 'false'
    for t in (1700, 1733, 1766):  # thermal back
        feed_pair(core, t, clock)
    assert not core.degraded
    assert pipeline.calls[-1] == (('rgb', 'thermal'), True)
    assert sink.images[-1][0] == 'fused'


def test_thermal_lagging_beyond_the_timeout_keeps_rgb_flowing_without_fusion():
    core, sink, clock, pipeline = make_core({'ir_timeout_ms': 200.0})
    for t in range(1000, 2000, 33):
        clock.set_ns(t * MS)
        core.on_image('rgb', make_image(RGB, 'rgb8', t * MS))
        core.on_image('thermal', make_image(THERMAL, 'mono16', (t - 600) * MS))  # 600 ms late
    assert core.degraded
    assert pipeline.calls and pipeline.calls[-1] == (('rgb',), False)
    assert sink.images[-1][1].stamp.nanosec == 990 * MS  # the newest rgb frame went out


def test_no_degradation_while_the_clock_has_not_started():
    core, _sink, _clock, pipeline = make_core({'ir_timeout_ms': 10.0}, clock=ManualClock(0))
    for t in range(0, 300, 33):
        core.on_image('rgb', make_image(RGB, 'rgb8', (1000 + t) * MS))
        core.tick()
    assert not core.degraded and pipeline.calls == []
    assert all(s.level == Level.STALE for s in core.statuses())


def test_inference_error_passes_the_input_through_unchanged_and_raises_error():
    pipeline = PassthroughPipeline(fail_with=RuntimeError('CUDA error: out of memory'))
    core, sink, _, _ = make_core({'mode': 'single'}, pipeline=pipeline)
    msg = make_image(RGB, 'rgb8', 1000 * MS, padding=4)
    core.on_image('rgb', msg)
    ((output, header, fields),) = sink.images
    assert output == 'derained_rgb' and header is msg.header
    assert fields.data is msg.data and fields.step == msg.step  # the input, byte for byte
    status = sink.last_statuses()['pipeline']  # published by the inline tick after the set
    assert status.level == Level.ERROR and 'out of memory' in status.message
    assert status.value('errors_total') == '1'


def test_inference_error_without_passthrough_drops_and_counts():
    pipeline = PassthroughPipeline(fail_with=FrameError('rgb', 'too small for the model'))
    core, sink, _, _ = make_core({'mode': 'single', 'passthrough_on_error': False}, pipeline=pipeline)
    core.on_image('rgb', make_image(RGB, 'rgb8', 1000 * MS))
    assert sink.images == []
    assert core.stats.drops_total()['error'] == 1


def test_bad_messages_are_dropped_counted_and_named_never_raised():
    core, sink, _, pipeline = make_core({'mode': 'single'})
    bad_encoding = make_image(RGB, 'rgb8', 1000 * MS)
    bad_encoding.encoding = 'yuv422'
    truncated = make_image(RGB, 'rgb8', 1033 * MS)
    truncated.data = truncated.data[:-1]
    headerless = object()
    assert core.on_image('rgb', bad_encoding) is False
    assert core.on_image('rgb', truncated) is False
    assert core.on_image('rgb', headerless) is False
    assert core.on_image('sky', make_image(RGB, 'rgb8', 0)) is False
    assert pipeline.calls == [] and sink.images == []
    assert core.stats.drops_total()['bad_message'] == 3
    published = sink.last_statuses()['input rgb']  # the inline tick right after the first message
    assert published.level == Level.WARN and "unsupported encoding 'yuv422'" in published.message
    status = next(s for s in core.statuses() if s.name == 'nitedr_node: input rgb')
    assert status.level == Level.WARN and 'malformed message' in status.message
    assert status.value('dropped_bad_message') == '3'


def test_undecodable_compressed_frame_is_a_bad_message_and_good_ones_flow():
    core, sink, _, _ = make_core({'mode': 'single', 'image_transport': 'compressed'})
    assert core.input_topics() == {'rgb': 'rgb/image/compressed'}
    good = make_compressed(GREY, 'mono8', 1000 * MS)
    broken = make_compressed(GREY, 'mono8', 1033 * MS)
    broken.data = broken.data[:20]
    core.on_image('rgb', good)
    core.on_image('rgb', broken)
    assert len(sink.images) == 1 and sink.images[0][2].encoding == 'mono8'
    assert core.stats.drops_total()['bad_message'] == 1


def test_live_parameters_apply_all_or_nothing():
    core, sink, _, _ = make_core({'mode': 'single'})
    ok, reason = core.set_parameters({'enable': False, 'sync.slop': -1.0})
    assert not ok and 'sync.slop' in reason and core.params['enable'] is True
    ok, reason = core.set_parameters({'mode': 'stereo'})
    assert not ok and 'read-only' in reason
    assert core.check_parameters({'enable': False}) == (True, '')
    assert core.params['enable'] is True  # check only
    ok, _ = core.set_parameters({'enable': False, 'sync.slop': 0.005})
    assert ok and core.params['sync.slop'] == 0.005
    core.on_image('rgb', make_image(RGB, 'rgb8', 1000 * MS))
    assert sink.images == [] and core.stats.drops_total()['disabled'] == 1


def test_live_slop_change_reaches_the_synchronizer():
    core, sink, _clock, pipeline = make_core({'sync.slop': 0.05})
    core.set_parameters({'sync.slop': 0.002})
    feed = [('rgb', 1000), ('thermal', 1010), ('rgb', 1033), ('thermal', 1034), ('rgb', 1066)]
    for stream, t in feed:
        core.on_image(
            stream,
            make_image(RGB if stream == 'rgb' else THERMAL, 'rgb8' if stream == 'rgb' else 'mono16', t * MS),
        )
    assert len(pipeline.calls) == 1  # only the 1 ms pair is within 2 ms
    assert sink.images[0][1].stamp.nanosec == 33 * MS


def test_small_step_back_is_out_of_order_big_jump_resets():
    core, sink, _, _pipeline = make_core({'mode': 'single'})
    core.on_image('rgb', make_image(RGB, 'rgb8', 5000 * MS))
    core.on_image('rgb', make_image(RGB, 'rgb8', 4990 * MS))
    assert core.stats.drops_total()['out_of_order'] == 1
    core.on_image('rgb', make_image(RGB, 'rgb8', 100 * MS))  # bag loop
    assert [h.stamp.sec * 1000 + h.stamp.nanosec // MS for h, _ in sink.outputs('derained_rgb')] == [
        5000,
        100,
    ]


def test_flush_processes_the_last_pending_set():
    core, sink, _, _ = make_core({'sync.min_interval_ms': 0.0})
    core.on_image('rgb', make_image(RGB, 'rgb8', 1000 * MS))
    core.on_image('thermal', make_image(THERMAL, 'mono16', 1004 * MS))
    assert sink.images == []  # waits: a later rgb might be closer
    core.flush()
    assert [o for o, _, _ in sink.images] == ['derained_rgb', 'fused']


def test_pipeline_factory_builds_in_the_worker_thread_and_is_closed_on_stop():
    built = {}

    def factory(params):
        built['thread'] = threading.current_thread().name
        built['mode'] = params['mode']
        built['pipeline'] = PassthroughPipeline()
        return built['pipeline']

    core = NodeCore(
        {'mode': 'single'},
        sink=RecordingSink(),
        clock=ManualClock(1),
        pipeline_factory=factory,
        node_name='cam_node',
        own_timer=False,
    )
    core.start()
    core.stop()
    assert built['thread'] == 'cam_node-worker' and built['mode'] == 'single'
    assert built['pipeline'].closed


def test_pipeline_factory_errors_surface_from_start():
    def factory(params):
        raise ConfigError('model file not found: nope.onnx')

    core = NodeCore({}, sink=RecordingSink(), clock=ManualClock(1), pipeline_factory=factory, own_timer=False)
    with pytest.raises(ConfigError, match=r'nope\.onnx'):
        core.start()


def test_sink_failures_never_reach_the_caller_and_lost_outputs_are_counted():
    class BrokenSink(RecordingSink):
        def publish_image(self, output, header, image):
            if output == 'fused':
                raise RuntimeError('publisher destroyed')
            super().publish_image(output, header, image)

    sink = BrokenSink()
    core = NodeCore({'sync.min_interval_ms': 30.0}, sink=sink, clock=ManualClock(1000 * MS),
                    pipeline=PassthroughPipeline(), synchronous=True)
    core.start()
    feed_pair(core, 1000)
    assert [o for o, _, _ in sink.images] == ['derained_rgb']
    assert core.stats.outputs_total == 1
    statuses = {s.name.split(': ')[1]: s for s in core.statuses()}
    pipeline = statuses['pipeline']
    assert pipeline.level == Level.WARN and 'failed to publish' in pipeline.message
    assert 'fused: publisher destroyed' in pipeline.value('last_publish_error')
    assert pipeline.value('publish_errors_total') == '1'
    # the set reached the detectors on derained_rgb: its messages count as published, not lost
    assert statuses['input rgb'].value('frames_published') == '1'
    assert statuses['input rgb'].value('dropped_publish_error') == '0'
    feed_pair(core, 1100)  # the sink keeps failing on fused: counted again in the next period
    again = {s.name.split(': ')[1]: s for s in core.statuses()}['pipeline']
    assert again.level == Level.WARN and again.value('publish_errors_total') == '2'
    assert core.stats.outputs_total == 2


def test_a_set_none_of_whose_outputs_could_be_published_counts_as_publish_error():
    class DeadSink(RecordingSink):
        def publish_image(self, output, header, image):
            raise RuntimeError('context invalid')

    core = NodeCore({'sync.min_interval_ms': 30.0}, sink=DeadSink(), clock=ManualClock(1000 * MS),
                    pipeline=PassthroughPipeline(), synchronous=True)
    core.start()
    feed_pair(core, 1000)
    rgb = core.stats.streams['rgb']
    assert (rgb.published_total, rgb.drops['publish_error']) == (0, 1)
    assert core.stats.streams['thermal'].drops['publish_error'] == 1


def test_full_mode_runs_four_streams_and_degrades_without_thermal():
    core, sink, clock, pipeline = make_core({'mode': 'full', 'ir_timeout_ms': 100.0})
    assert core.input_topics() == {'rgb': 'rgb/image', 'left': 'stereo/left/image',
                                   'right': 'stereo/right/image', 'thermal': 'thermal/image'}
    assert set(core.output_topics()) == {'derained_rgb', 'fused', 'derained_left', 'derained_right'}

    def feed(stamp_ms, streams):
        clock.set_ns(stamp_ms * MS)
        for stream in streams:
            pixels, enc = (THERMAL, 'mono16') if stream == 'thermal' else (RGB, 'rgb8')
            core.on_image(stream, make_image(pixels, enc, stamp_ms * MS, stream))

    feed(1000, ('left', 'right', 'thermal', 'rgb'))
    assert sorted(o for o, _, _ in sink.images) == sorted(
        ['derained_rgb', 'fused', 'derained_left', 'derained_right']
    )
    assert pipeline.calls == [(('rgb', 'left', 'right', 'thermal'), True)]
    for stamp in (1040, 1080, 1120, 1160):  # thermal silent past the timeout: the other three go on
        feed(stamp, ('rgb', 'left', 'right'))
    assert core.degraded
    assert pipeline.calls[-1] == (('rgb', 'left', 'right'), False)
    last = [o for o, _, _ in sink.images[-3:]]
    assert sorted(last) == ['derained_left', 'derained_rgb', 'derained_right']
    statuses = {s.name.split(': ')[1]: s for s in core.statuses()}
    assert statuses['pipeline'].level == Level.WARN and statuses['pipeline'].value('fusing') == 'false'


def test_undecodable_transport_samples_are_counted_and_named():
    core, _, _, _ = make_core({'mode': 'stereo'})
    core.report_bad_message('left', '/cam/left: undecodable sample (12 bytes)')
    core.report_bad_message('right', '/cam/right/camera_info: undecodable sample', counts_as_frame=False)
    core.report_bad_message('thermal', 'not subscribed in stereo mode')  # ignored, never raises
    statuses = {s.name.split(': ')[1]: s for s in core.statuses()}
    left, right = statuses['input left'], statuses['input right']
    assert left.level == Level.WARN and 'undecodable sample (12 bytes)' in left.message
    assert left.value('dropped_bad_message') == '1' and left.value('frames_total') == '1'
    assert right.value('dropped_bad_message') == '1' and right.value('frames_total') == '0'
    assert 'camera_info' in right.value('last_bad_message')
    assert core.stats.drops_total()['bad_message'] == 2


def test_input_diagnostics_show_the_topic_names_the_transport_resolved():
    core, _, _, _ = make_core({'mode': 'single'})
    status = next(s for s in core.statuses() if s.name.endswith('input rgb'))
    assert status.value('topic') == 'rgb/image'
    core.set_input_topic_names({'rgb': '/car/front/image_raw', 'thermal': '/not/active'})
    status = next(s for s in core.statuses() if s.name.endswith('input rgb'))
    assert status.value('topic') == '/car/front/image_raw'


def test_discard_pending_counts_what_the_synchronizer_held():
    core, sink, _, _ = make_core({'sync.min_interval_ms': 0.0})
    feed_pair(core, 1000, thermal=False)
    feed_pair(core, 1033, thermal=False)
    assert sink.images == [] and core.stats.drops_total()['sync'] == 0
    core.discard_pending()
    assert core.stats.drops_total()['sync'] == 2
    assert next(s for s in core.statuses() if s.name.endswith(': sync')).value('pending_messages') == '0'


def test_stamps_closer_than_min_interval_are_counted_warned_once_and_shown(caplog):
    core, _, _, _ = make_core({'mode': 'single', 'sync.min_interval_ms': 30.0})
    with caplog.at_level('WARNING', logger='nitedr_ros.core'):
        for stamp_ms in (1000, 1033, 1043, 1050, 1100):
            core.on_image('rgb', make_image(RGB, 'rgb8', stamp_ms * MS))
    assert core.interval_violations() == {'rgb': 2}
    assert caplog.text.count('below sync.min_interval_ms') == 1
    status = next(s for s in core.statuses() if s.name.endswith(': sync'))
    assert status.level == Level.WARN and 'rgb' in status.message and 'min_interval' in status.message
    assert status.value('min_interval_violations_rgb') == '2'
    core.on_image('rgb', make_image(RGB, 'rgb8', 1200 * MS))  # spacing fine again: no new violation
    status = next(s for s in core.statuses() if s.name.endswith(': sync'))
    assert status.level == Level.OK and status.value('min_interval_violations_rgb') == '2'


def test_on_published_gets_the_latencies_of_every_published_set():
    seen = []
    core, _, _, _ = make_core({'debug.publish_timing': False}, on_published=seen.append)
    feed_pair(core, 1000)
    feed_pair(core, 1100)
    assert len(seen) == 2 and {'processing_ms', 'end_to_end_ms', 'inference_ms'} <= set(seen[0])


@pytest.mark.parametrize(
    ('mode', 'inputs'),
    [
        ('nitedr', [('rgb', 'rgb8'), ('thermal', 'mono16')]),
        ('stereo', [('left', 'bgr8'), ('right', 'bgr8')]),
        ('single', [('rgb', 'rgb8')]),
        ('full', [('rgb', 'rgb8'), ('left', 'bgr8'), ('right', 'bgr8'), ('thermal', 'mono16')]),
    ],
)
def test_real_pipeline_with_the_identity_backend(mode, inputs):
    """Default factory: parameters -> PipelineConfig -> build_pipeline; identity engines pass pixels."""
    sink = RecordingSink()
    core = NodeCore(
        {'mode': mode, 'backend': 'identity', 'max_input_age_ms': 0.0},
        sink=sink,
        clock=ManualClock(1),
        synchronous=True,
    )
    core.start()
    pixels = {}
    for stream, encoding in inputs:
        pixels[stream] = pattern_image(24, 32, encoding, seed=len(pixels))
        core.on_image(stream, make_image(pixels[stream], encoding, 10**9, stream))
    core.stop()
    sources = {'derained_rgb': 'rgb', 'fused': 'rgb', 'derained_left': 'left', 'derained_right': 'right'}
    assert sorted(o for o, _, _ in sink.images) == sorted(core.outputs)
    for output, header, fields in sink.images:
        source = sources[output]
        assert header.frame_id == source and fields.encoding == dict(inputs)[source]
        np.testing.assert_array_equal(fields.as_numpy().reshape(pixels[source].shape), pixels[source])
    assert sink.last_statuses()['pipeline'].value('backend') == 'identity'


class RecordingLogger:
    """Any severity: (severity, message) appended to ``lines``."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __getattr__(self, severity):
        return lambda message, **_: self.lines.append((severity, message))


def test_every_set_dropped_as_stale_is_said_early_and_loudly():
    logger = RecordingLogger()
    core, sink, clock, _ = make_core({'mode': 'single', 'max_input_age_ms': 200.0}, logger=logger)
    clock.set_ns(10 * 86_400_000 * MS)  # the system clock, ten days after the bag was recorded
    for k in range(8):
        core.on_image('rgb', make_image(RGB, 'rgb8', (1000 + 50 * k) * MS))
    assert sink.images == [] and core.stats.drops_total()['stale'] == 8
    alarms = [(severity, text) for severity, text in logger.lines if 'dropped as stale' in text]
    assert len(alarms) == 1 and alarms[0][0] == 'error'
    assert 'use_sim_time' in alarms[0][1] and '863998.8 s before the node clock' in alarms[0][1]


def test_the_thermal_timeout_before_any_input_does_not_claim_rgb_is_published():
    logger = RecordingLogger()
    core, _, clock, _ = make_core({'ir_timeout_ms': 500.0}, logger=logger, synchronous=False)
    try:
        clock.set_ns(1000 * MS)
        core.tick()
        clock.set_ns(2000 * MS)
        core.tick()
        warnings = [text for severity, text in logger.lines if severity == 'warning' and 'thermal' in text]
        assert len(warnings) == 1 and 'no RGB frame yet either' in warnings[0], logger.lines
        assert 'publishing derained RGB without fusion' not in warnings[0]
    finally:
        core.stop()


@pytest.mark.parametrize('thermal_range', [[0.0, 0.0], [250.0, 320.0]])
def test_32fc1_thermal_from_a_radiometric_camera_is_fused(thermal_range):
    # the real pipeline (identity backend): it maps the float plane to [0, 1] before fusion
    clock = ManualClock(1000 * MS)
    sink = RecordingSink()
    core = NodeCore({'sync.min_interval_ms': 30.0, 'max_input_age_ms': 0.0, 'backend': 'identity',
                     'thermal_range': thermal_range}, sink=sink, clock=clock, synchronous=True)
    core.start()
    kelvin = pattern_image(6, 8, '32FC1', seed=4)
    kelvin[0, 0] = np.nan  # a dead pixel
    for t in (1000, 1033, 1066):
        clock.set_ns(t * MS)
        core.on_image('rgb', make_image(RGB, 'rgb8', t * MS, 'camera'))
        core.on_image('thermal', make_image(kelvin, '32FC1', t * MS, 'thermal'))
    fused = sink.outputs('fused')
    assert len(fused) == 3 and core.stats.drops_total()['bad_message'] == 0
    assert fused[0][1].encoding == 'rgb8' and fused[0][1].height == 6
    core.stop()


def test_32fc1_on_a_colour_stream_is_a_bad_message_naming_the_encoding():
    core, sink, _, _ = make_core({'mode': 'single'})
    core.on_image('rgb', make_image(pattern_image(6, 8, '32FC1'), '32FC1', 1000 * MS))
    assert sink.images == [] and core.stats.drops_total()['bad_message'] == 1
    assert '32FC1 is a thermal measurement encoding' in core.stats.streams['rgb'].last_bad
