"""``bag play`` (rate, loop, /clock) into ``bag record`` over loopback DDS, in one process."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip('cyclonedds')
pytest.importorskip('rosbags')

from bag_messages import messages_by_topic
from nitedr_ros.core.clock import header_stamp_ns, stamp_to_ns
from nitedr_ros.transports.bag.player import BagPlayer
from nitedr_ros.transports.bag.reader import BagError, iter_raw, open_bag
from nitedr_ros.transports.bag.recorder import RECORD_QOS, BagRecorder
from nitedr_ros.transports.bag.sample import SampleSpec, make_sample
from nitedr_ros.transports.dds.idl import ros_type_from_dds
from nitedr_ros.transports.dds.participant import DdsNode, QosProfile, private_domain_id


def test_ros_type_names_from_dds():
    assert ros_type_from_dds('sensor_msgs::msg::dds_::Image_') == 'sensor_msgs/msg/Image'
    assert ros_type_from_dds('MyType') is None


def test_play_loop_with_clock_into_the_recorder(tmp_path):
    bag = tmp_path / 'sample'
    make_sample(bag, SampleSpec(duration_s=0.5, width=32, height=24, cameras=('rgb',)))
    with open_bag(bag) as reader:
        stamps = [reader.deserialize(raw, c.msgtype).header.stamp for c, _, raw in iter_raw(reader)
                  if c.topic == '/rgb/image']
    per_loop = len(stamps)
    domain = private_domain_id(60)  # offsets 60-69 in this file
    recorder = BagRecorder(tmp_path / 'recorded', ['/rgb/image', '/clock'], domain_id=domain)
    recorder_thread = threading.Thread(target=recorder.run)
    recorder_thread.start()
    published: list[tuple[str, int | None]] = []
    player: BagPlayer

    def on_publish(topic: str, stamp: int | None, _wall: int) -> None:
        published.append((topic, stamp))
        if sum(1 for t, _ in published if t == '/rgb/image') >= 2 * per_loop + 3:
            player.stop()

    player = BagPlayer(bag, rate=4.0, loop=True, clock=True, domain_id=domain, topics=['/rgb/image'],
                       wait_for=['/rgb/image'], wait_timeout_s=30, on_publish=on_publish)
    try:
        stats = player.run()
    finally:
        recorder.stop()
        recorder_thread.join(timeout=30)
    assert stats.loops == 3 and stats.clock_messages > 0
    images = [stamp for topic, stamp in published if topic == '/rgb/image']
    expected = [stamp_to_ns(s) for s in stamps]
    assert images[:2 * per_loop] == expected + expected  # record order, loop restarts from the start

    recorded = messages_by_topic(tmp_path / 'recorded')
    got = [header_stamp_ns(m) for _, m in recorded['/rgb/image']]
    assert got == images  # reliable, matched before the first message: nothing lost
    clock = [stamp_to_ns(m.clock) for _, m in recorded['/clock']]
    assert clock and min(clock) >= min(expected) - 10**9 and max(clock) <= max(expected) + 10**9


def test_play_refuses_a_topic_it_does_not_have(tmp_path):
    bag = tmp_path / 'sample'
    make_sample(bag, SampleSpec(duration_s=0.2, width=16, height=16, cameras=('rgb',)))
    with pytest.raises(BagError, match='/nothing'):
        BagPlayer(bag, topics=['/nothing'], domain_id=private_domain_id(61)).run()
    with pytest.raises(BagError, match='--wait-for'):
        BagPlayer(bag, wait_for=['/thermal/image'], domain_id=private_domain_id(61)).run()


def test_recorder_takes_the_qos_a_best_effort_publisher_offers_and_reports_one_it_cannot_match(tmp_path):
    domain = private_domain_id(62)
    talker = DdsNode('talker', domain_id=domain)
    publisher = talker.create_publisher('/chatter', 'std_msgs/msg/String', QosProfile('best_effort', 10))
    matched = threading.Event()
    adaptive = BagRecorder(tmp_path / 'adaptive', ['/chatter'], domain_id=domain,
                           on_matched=lambda topic: matched.set())
    fixed = BagRecorder(tmp_path / 'fixed', ['/chatter'], domain_id=domain, qos=RECORD_QOS)
    threads = [threading.Thread(target=r.run) for r in (adaptive, fixed)]
    for thread in threads:
        thread.start()
    try:
        assert matched.wait(20), 'the recorder never matched the best-effort publisher'
        deadline = time.monotonic() + 20
        while '/chatter' not in fixed.stats.qos_mismatches and time.monotonic() < deadline:
            time.sleep(0.05)
        for k in range(5):
            publisher.publish(talker.typestore.types['std_msgs/msg/String'](f'hello {k}'))
            time.sleep(0.02)
        time.sleep(0.5)
    finally:
        adaptive.stop()
        fixed.stop()
        for thread in threads:
            thread.join(timeout=30)
        talker.close()
    assert adaptive.stats.qos == {'/chatter': 'best_effort'}
    assert [m.data for _, m in messages_by_topic(tmp_path / 'adaptive')['/chatter']] == [
        f'hello {k}' for k in range(5)]
    assert fixed.stats.received == {'/chatter': 0}  # a reliable reader never matches a best-effort writer
    assert 'RELIABILITY' in fixed.stats.qos_mismatches['/chatter']  # and says so


def test_record_force_never_wipes_a_folder_that_is_not_a_bag(tmp_path):
    folder = tmp_path / 'mine'
    folder.mkdir()
    (folder / 'notes.txt').write_text('keep')
    with pytest.raises(BagError, match='not a rosbag2 bag'):
        BagRecorder(folder, ['/chatter'], force=True, domain_id=private_domain_id(63))
    assert (folder / 'notes.txt').read_text() == 'keep'
