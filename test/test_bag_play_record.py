"""``bag play`` (rate, loop, /clock) into ``bag record`` over loopback DDS, in one process."""

from __future__ import annotations

import os
import threading

import pytest

pytest.importorskip('cyclonedds')
pytest.importorskip('rosbags')

from bag_messages import messages_by_topic
from nitedr_ros.core.clock import header_stamp_ns, stamp_to_ns
from nitedr_ros.transports.bag.player import BagPlayer
from nitedr_ros.transports.bag.reader import BagError, iter_raw, open_bag
from nitedr_ros.transports.bag.recorder import BagRecorder
from nitedr_ros.transports.bag.sample import SampleSpec, make_sample
from nitedr_ros.transports.dds.idl import ros_type_from_dds


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
    domain = 200 + os.getpid() % 30
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
        BagPlayer(bag, topics=['/nothing'], domain_id=231).run()
    with pytest.raises(BagError, match='--wait-for'):
        BagPlayer(bag, wait_for=['/thermal/image'], domain_id=231).run()
