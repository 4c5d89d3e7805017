"""Frame accounting of the node core under free-running cameras and thermal pauses: nothing lost while the
worker is idle, nothing published back in time, every message accounted for (issue: lost and reordered
frames), plus the automatic IR timeout, non-finite messages and outputs without listeners."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from nitedr_ros.core.clock import NS_PER_MS, ManualClock
from nitedr_ros.core.diagnostics import DROP_REASONS
from nitedr_ros.core.node_core import NodeCore
from nitedr_ros.core.testing import (
    Header,
    Image,
    PassthroughPipeline,
    RecordingSink,
    Time,
    make_image,
    pattern_image,
)
from nitedr_ros.modes import MODE_OUTPUTS, MODE_STREAMS

MS = NS_PER_MS
PIXELS = {'rgb8': pattern_image(4, 6, 'rgb8', seed=1), 'mono16': pattern_image(4, 6, 'mono16', seed=2)}
ENCODING = {'rgb': 'rgb8', 'left': 'rgb8', 'right': 'rgb8', 'thermal': 'mono16'}


def message(stream: str, stamp_ns: int):
    encoding = ENCODING[stream]
    return make_image(PIXELS[encoding], encoding, stamp_ns, stream)


def assert_accounted(core: NodeCore) -> None:
    """Every image message ended published (in a set) or in exactly one reason, nothing pending."""
    for stream, counters in core.stats.streams.items():
        reasons = sum(counters.drops[r] for r in DROP_REASONS)
        assert counters.frames_total == counters.published_total + reasons, (stream, counters)


def assert_monotonic(sink: RecordingSink) -> dict[str, int]:
    counts = {}
    for output in {o for o, _, _ in sink.images}:
        stamps = [h.stamp.sec * 10**9 + h.stamp.nanosec for h, _ in sink.outputs(output)]
        assert all(b > a for a, b in itertools.pairwise(stamps)), f'{output} went back in time'
        counts[output] = len(stamps)
    return counts


def test_two_sets_completed_by_one_message_are_both_published_when_the_worker_is_idle():
    """The fault-injection case: thermal 1002, rgb 1012, rgb 1057, thermal 1051 (the last message
    settles both sets); the worker is idle before every message."""
    clock = ManualClock(1060 * MS)
    sink = RecordingSink()
    core = NodeCore({'mode': 'nitedr', 'max_input_age_ms': 0.0}, sink=sink, clock=clock,
                    pipeline=PassthroughPipeline(), own_timer=False)
    core.start()
    try:
        for stream, stamp_ms in (('thermal', 1002), ('rgb', 1012), ('rgb', 1057), ('thermal', 1051)):
            assert core.wait_idle(5)
            core.on_image(stream, message(stream, stamp_ms * MS))
        assert core.wait_idle(5)
    finally:
        core.stop()
    assert core.stats.sets_total == 2
    assert [h.stamp.nanosec // MS for h, _ in sink.outputs('derained_rgb')] == [12, 57]
    assert core.stats.drops_total()['busy'] == 0
    assert_accounted(core)


def camera_events(mode: str, sets: int, seed: int, pauses: int) -> list[tuple[int, str, int]]:
    """(arrival ns, stream, stamp ns) of free-running 30 Hz cameras: each stream 0-12 ms after the frame
    time (stereo hardware-triggered: left == right), arrival 0-3 ms after the stamp, and ``pauses``
    thermal pauses of 0.3-2 s (flat-field correction, a dropped link)."""
    rng = np.random.default_rng(seed)
    period = 100 * MS // 3
    pause_starts = sorted(rng.integers(20, sets - 60, pauses))
    paused = np.zeros(sets, bool)
    for start in pause_starts:
        paused[start:start + int(rng.integers(9, 60))] = True
    events = []
    for k in range(sets):
        base = 1_000 * MS + k * period
        offsets = {s: int(rng.integers(0, 12 * MS)) for s in MODE_STREAMS[mode]}
        if 'left' in offsets:
            offsets['right'] = offsets['left']
        for stream, offset in offsets.items():
            if stream == 'thermal' and paused[k]:
                continue
            stamp = base + offset
            events.append((stamp + int(rng.integers(0, 3 * MS)), stream, stamp))
    events.sort()
    return events


@pytest.mark.parametrize('mode,max_age_ms', [('full', 0.0), ('nitedr', 0.0), ('nitedr', 200.0)])
def test_free_running_cameras_with_thermal_pauses_lose_nothing_and_never_go_back_in_time(mode, max_age_ms):
    """Fault injection through the threaded core: the worker is idle before every message, so any busy
    drop is a bug; every message is accounted for; every output topic is monotonic in stamp."""
    sets = 5000 if max_age_ms == 0.0 else 1500
    events = camera_events(mode, sets, seed=7, pauses=sets // 300)
    clock = ManualClock(0)
    sink = RecordingSink()
    core = NodeCore({'mode': mode, 'max_input_age_ms': max_age_ms, 'diagnostics.period': 3600.0},
                    sink=sink, clock=clock, pipeline=PassthroughPipeline(), own_timer=False)
    core.start()
    next_tick = 0
    try:
        for arrival, stream, stamp in events:
            clock.set_ns(arrival)
            if arrival >= next_tick:  # the transport's diagnostics timer (thermal silence) at 10 Hz
                core.tick()
                next_tick = arrival + 100 * MS
            assert core.wait_idle(5)
            core.on_image(stream, message(stream, stamp))
        core.flush()
    finally:
        core.stop()
    drops = core.stats.drops_total()
    assert drops['busy'] == 0, 'a set was replaced while the worker was idle'
    assert drops['out_of_order'] == 0
    assert_accounted(core)
    counts = assert_monotonic(sink)
    assert set(counts) == set(MODE_OUTPUTS[mode])
    # RGB reaches the detectors through every thermal pause; what is lost is counted: RGB frames that
    # waited for a thermal partner until the IR timeout (sync: the synchronizer keeps sync.queue_size of
    # them; stale: handed to the degraded synchronizer older than max_input_age_ms)
    rgb = core.stats.streams['rgb']
    assert set(r for r in DROP_REASONS if rgb.drops[r]) <= {'sync', 'stale'}
    assert counts['derained_rgb'] >= 0.95 * sets
    assert rgb.drops['stale'] <= (sets // 300) * 6
    assert 0 < counts['fused'] < counts['derained_rgb']


def test_a_slow_worker_still_keeps_only_the_newest_set():
    """Latest-only still works: sets made while the worker is busy replace each other (busy)."""
    clock = ManualClock(1000 * MS)
    pipeline = PassthroughPipeline(delay_s=0.05)
    core = NodeCore({'mode': 'single', 'max_input_age_ms': 0.0}, sink=RecordingSink(), clock=clock,
                    pipeline=pipeline, own_timer=False)
    core.start()
    try:
        for k in range(40):
            core.on_image('rgb', message('rgb', (1000 + 5 * k) * MS))
        assert core.wait_idle(10)
    finally:
        core.stop()
    assert core.stats.drops_total()['busy'] > 20
    assert_accounted(core)


def thermal_run(rate_hz: float, ir_timeout_ms: float, seconds: float = 20.0
                ) -> tuple[NodeCore, RecordingSink]:
    clock = ManualClock(1000 * MS)
    sink = RecordingSink()
    core = NodeCore({'mode': 'nitedr', 'ir_timeout_ms': ir_timeout_ms, 'max_input_age_ms': 0.0,
                     'sync.slop': 0.02}, sink=sink, clock=clock, pipeline=PassthroughPipeline(),
                    synchronous=True)
    core.start()
    thermal_period = int(1000 / rate_hz)
    for t in range(1000, int(1000 + seconds * 1000), 10):  # a 10 ms tick of the simulated world
        clock.set_ns(t * MS)
        if (t - 1000) % 100 == 0:
            core.on_image('rgb', message('rgb', t * MS))  # RGB at 10 Hz
        if (t - 1000) % thermal_period == 0:
            core.on_image('thermal', message('thermal', t * MS))
    return core, sink


def test_a_2_hz_thermal_camera_keeps_fusion_on_with_the_automatic_timeout():
    core, sink = thermal_run(2.0, ir_timeout_ms=0.0)
    fused = len(sink.outputs('fused'))
    assert fused >= 35  # every thermal frame (2 Hz for 20 s) pairs with its RGB frame
    assert core.ir_timeout_ms == pytest.approx(2000.0)
    pipeline = {s.name.split(': ')[1]: s for s in core.statuses()}['pipeline']
    assert pipeline.value('ir_timeout_ms') == '2000.0'
    assert 'automatic' in pipeline.value('ir_timeout_source') and '500.0 ms thermal period' in (
        pipeline.value('ir_timeout_source'))
    assert not core.degraded


def test_an_explicit_ir_timeout_is_used_as_given():
    core, sink = thermal_run(2.0, ir_timeout_ms=300.0)
    assert core.ir_timeout_ms == 300.0
    pipeline = {s.name.split(': ')[1]: s for s in core.statuses()}['pipeline']
    assert pipeline.value('ir_timeout_source') == 'parameter ir_timeout_ms'
    # a 2 Hz camera with a 300 ms timeout degrades between frames: fewer fused frames than thermal frames
    assert len(sink.outputs('fused')) < 35


def test_the_automatic_timeout_rides_out_a_flat_field_pause_of_a_fast_camera():
    """30 Hz thermal with a 400 ms pause: the automatic timeout (floor 500 ms) never degrades."""
    clock = ManualClock(1000 * MS)
    core = NodeCore({'mode': 'nitedr', 'max_input_age_ms': 0.0}, sink=RecordingSink(), clock=clock,
                    pipeline=PassthroughPipeline(), synchronous=True)
    core.start()
    for k in range(300):
        t = 1000 + k * 33
        clock.set_ns(t * MS)
        core.on_image('rgb', message('rgb', t * MS))
        if not 100 <= k < 112:
            core.on_image('thermal', message('thermal', t * MS))
        core.tick()
        assert not core.degraded
    assert core.ir_timeout_ms == 500.0


@pytest.mark.parametrize('field,value', [('height', math.inf), ('stamp', math.inf), ('stamp', math.nan),
                                         ('width', -math.inf)])
def test_a_non_finite_size_or_stamp_is_a_bad_message_and_counted(field, value):
    clock = ManualClock(1000 * MS)
    core = NodeCore({'mode': 'single', 'max_input_age_ms': 0.0}, sink=RecordingSink(), clock=clock,
                    pipeline=PassthroughPipeline(), synchronous=True)
    core.start()
    msg = message('rgb', 1000 * MS)
    if field == 'stamp':
        msg = Image(Header(Time(value, 0), 'rgb'), msg.height, msg.width, msg.encoding, 0, msg.step, msg.data)
    else:
        setattr(msg, field, value)
    assert core.on_image('rgb', msg) is False  # no exception escapes
    counters = core.stats.streams['rgb']
    assert counters.drops['bad_message'] == 1 and 'malformed' in counters.last_bad
    assert_accounted(core)


class ListenerSink(RecordingSink):
    """A sink whose outputs have the given subscriber counts."""

    def __init__(self, counts: dict[str, int]) -> None:
        super().__init__()
        self.counts = counts

    def subscriber_count(self, output: str) -> int:
        return self.counts.get(output, 0)


def test_no_inference_without_listeners_and_only_what_is_listened_to():
    clock = ManualClock(1000 * MS)
    sink = ListenerSink({})
    pipeline = PassthroughPipeline()
    core = NodeCore({'mode': 'full', 'max_input_age_ms': 0.0, 'sync.min_interval_ms': 30.0}, sink=sink,
                    clock=clock, pipeline=pipeline, synchronous=True)
    core.start()

    def feed(t_ms: int) -> None:
        clock.set_ns(t_ms * MS)
        for stream in ('rgb', 'left', 'right', 'thermal'):
            core.on_image(stream, message(stream, t_ms * MS))

    feed(1000)
    assert pipeline.calls == [] and sink.images == []
    assert core.stats.streams['rgb'].drops['no_subscribers'] == 1
    input_rgb = {s.name.split(': ')[1]: s for s in core.statuses()}['input rgb']
    assert input_rgb.value('dropped_no_subscribers') == '1'
    sink.counts = {'derained_left': 1}  # a stereo consumer appears: only the stereo side runs
    feed(1100)
    assert {o for o, _, _ in sink.images} == {'derained_left'}
    sink.counts = {'fused': 2}
    feed(1200)
    assert [o for o, _, _ in sink.images][1:] == ['fused']
    assert core.stats.drops_total()['no_subscribers'] == 4  # the first set's four messages only
    assert_accounted(core)
