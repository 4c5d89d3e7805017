"""Diagnostics content and levels: rates, ages, sync spread, latency percentiles and thresholds, drops by
reason, backend facts, QoS events, period on the node clock, sim time."""

from __future__ import annotations

import pytest

from nitedr_ros.core.clock import NS_PER_MS, ManualClock
from nitedr_ros.core.diagnostics import LATENCY_WINDOWS, Level, describe_pipeline
from nitedr_ros.core.node_core import NodeCore
from nitedr_ros.core.testing import PassthroughPipeline, RecordingSink, make_image, pattern_image

MS = NS_PER_MS
RGB = pattern_image(4, 4, 'rgb8')
IR = pattern_image(4, 4, 'mono16')


@pytest.fixture
def rig():
    sink = RecordingSink()
    clock = ManualClock(10_000 * MS)
    core = NodeCore(
        {
            'max_input_age_ms': 0.0,
            'sync.min_interval_ms': 20.0,
            'diagnostics.expected_rate_hz': 30.0,
            'diagnostics.hardware_id': 'orin-0',
        },
        sink=sink,
        clock=clock,
        pipeline=PassthroughPipeline(),
        synchronous=True,
        node_name='nitedr',
    )
    core.start()
    core.publish_diagnostics()  # period starts now
    return core, sink, clock


def run_second(core, clock, rate_hz=30, lag_ms=0, thermal=True, thermal_offset_ms=0):
    """One second of input on the node clock: rgb (+ thermal) at rate_hz, clock lag_ms behind stamps."""
    start = clock.now_ns() // MS
    for k in range(rate_hz):
        t = start + round(k * 1000 / rate_hz)
        clock.set_ns((t + lag_ms) * MS)
        core.on_image('rgb', make_image(RGB, 'rgb8', t * MS))
        if thermal:
            core.on_image('thermal', make_image(IR, 'mono16', (t + thermal_offset_ms) * MS))
    clock.set_ns((start + 1000) * MS)
    core.tick()


def test_names_hardware_id_and_keys(rig):
    core, sink, clock = rig
    run_second(core, clock)
    statuses = sink.diagnostics[-1][0]
    assert [s.name for s in statuses] == [
        'nitedr: input rgb',
        'nitedr: input thermal',
        'nitedr: sync',
        'nitedr: latency',
        'nitedr: pipeline',
        'nitedr: qos',
        'nitedr: rain',
    ]
    assert {s.hardware_id for s in statuses} == {'orin-0'}
    by_task = sink.last_statuses()
    latency_keys = {k for k, _ in by_task['latency'].values}
    for window in LATENCY_WINDOWS:
        base = window[: -len('_ms')]
        assert {f'{base}_ms_{q}' for q in ('p50', 'p95', 'p99', 'max')} <= latency_keys
    pipeline_values = dict(by_task['pipeline'].values)
    assert pipeline_values['backend'] == 'passthrough'
    assert {f'dropped_{r}_total' for r in ('bad_message', 'sync', 'busy', 'stale', 'error')} <= set(
        pipeline_values
    )
    assert dict(by_task['input rgb'].values)['topic'] == 'rgb/image'
    assert sink.diagnostics[-1][1] == clock.now_ns()  # stamped with the node clock


def test_input_rate_age_and_levels(rig):
    core, sink, clock = rig
    run_second(core, clock, rate_hz=30)
    rgb = sink.last_statuses()['input rgb']
    assert rgb.level == Level.OK and float(rgb.value('rate_hz')) == pytest.approx(30.0, abs=0.5)
    assert float(rgb.value('last_stamp_age_ms')) == pytest.approx(1000 - 967, abs=2)
    run_second(core, clock, rate_hz=10)
    assert sink.last_statuses()['input rgb'].level == Level.WARN
    assert 'outside 30 Hz' in sink.last_statuses()['input rgb'].message
    clock.advance_ms(1000)
    core.tick()
    silent = sink.last_statuses()['input rgb']
    assert silent.level == Level.ERROR and 'no message for 1.0 s' in silent.message


def test_stream_never_seen_is_stale(rig):
    core, sink, clock = rig
    run_second(core, clock, thermal=False)
    assert sink.last_statuses()['input thermal'].level == Level.STALE


def test_sync_warns_when_inputs_arrive_but_never_match(rig):
    core, sink, clock = rig
    run_second(core, clock, thermal_offset_ms=16)  # 16 ms apart, slop 15 ms
    sync = sink.last_statuses()['sync']
    assert sync.level == Level.WARN and 'no set formed' in sync.message
    assert int(sync.value('dropped_sync_thermal')) > 0
    core.set_parameters({'sync.slop': 0.02})
    run_second(core, clock, thermal_offset_ms=16)
    sync = sink.last_statuses()['sync']
    assert sync.level == Level.OK and float(sync.value('spread_ms_p50')) == pytest.approx(16.0, abs=0.5)


def test_end_to_end_latency_on_the_node_clock_and_live_thresholds(rig):
    core, sink, clock = rig
    run_second(core, clock, lag_ms=150)
    latency = sink.last_statuses()['latency']
    assert float(latency.value('end_to_end_ms_p95')) == pytest.approx(150.0, abs=0.5)
    assert latency.level == Level.WARN  # warn 100, error 250
    assert ('pipeline_latency_ms', pytest.approx(150.0, abs=0.5)) in sink.debug
    core.set_parameters({'diagnostics.latency_warn_ms': 120.0, 'diagnostics.latency_error_ms': 140.0})
    core.publish_diagnostics()
    assert sink.last_statuses()['latency'].level == Level.ERROR
    core.set_parameters({'diagnostics.latency_warn_ms': 200.0, 'diagnostics.latency_error_ms': 300.0})
    core.publish_diagnostics()
    assert sink.last_statuses()['latency'].level == Level.OK


def test_diagnostics_follow_the_period_on_the_node_clock(rig):
    core, sink, clock = rig
    published = len(sink.diagnostics)
    for _ in range(9):
        clock.advance_ms(100)
        core.tick()
    assert len(sink.diagnostics) == published
    clock.advance_ms(100)
    core.tick()
    assert len(sink.diagnostics) == published + 1


def test_qos_events_warn(rig):
    core, sink, _ = rig
    core.report_qos_event('/rgb/image', 'RELIABILITY (publisher best effort, subscription reliable)')
    core.publish_diagnostics()
    qos = sink.last_statuses()['qos']
    assert qos.level == Level.WARN and '/rgb/image' in qos.message
    assert 'RELIABILITY' in qos.value('/rgb/image')


def test_describe_pipeline_uses_engine_descriptions():
    class Engine:
        def describe(self):
            return {'backend': 'tensorrt', 'precision': 'fp16'}

    class Pipeline:
        def __init__(self):
            self.engines = {'derain': Engine(), 'fusion': Engine()}

    facts = describe_pipeline(Pipeline())
    assert (
        facts['backend'] == 'tensorrt' and facts['derain.precision'] == 'fp16' and 'fusion.backend' in facts
    )

    class Broken:
        def describe(self):
            raise RuntimeError('no device')

    assert describe_pipeline(Broken())['backend'] == 'unknown'
