"""ROS 2 names, QoS, discovery data and wire bytes of the Cyclone DDS runtime (loopback only)."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from nitedr_ros.errors import ConfigError
from nitedr_ros.transports.dds.names import NameResolver, Remap, dds_topic_name, expand_name, ros_topic_name

cyclonedds = pytest.importorskip('cyclonedds')
rosbags_typesys = pytest.importorskip('rosbags.typesys')

from nitedr_ros.transports.dds.participant import (  # noqa: E402
    RELIABLE,
    SENSOR_DATA,
    DdsNode,
    QosProfile,
    private_domain_id,
    qos_from_name,
    select_dds_config,
)

_domains = (private_domain_id(offset) for offset in itertools.count(0))  # offsets 0-29 here


def test_name_expansion_like_rcl():
    assert expand_name('rgb/image') == '/rgb/image'
    assert expand_name('rgb/image', 'car') == '/car/rgb/image'
    assert expand_name('/diagnostics', '/car/') == '/diagnostics'
    assert expand_name('~/debug/x', '/car', 'nitedr') == '/car/nitedr/debug/x'
    with pytest.raises(ConfigError, match='token'):
        expand_name('rgb/2image')
    with pytest.raises(ConfigError):
        expand_name('')


def test_remaps_match_expanded_names():
    resolver = NameResolver.from_rules('/car', 'nitedr', ['rgb/image:=/camera/front/image_raw',
                                                          'other_node:thermal/image:=/wrong',
                                                          '/car/thermal/image:=flir/image'])
    assert resolver.resolve('rgb/image') == '/camera/front/image_raw'
    assert resolver.resolve('thermal/image') == '/car/flir/image'  # the rule for another node is skipped
    assert resolver.resolve('stereo/left/image') == '/car/stereo/left/image'
    with pytest.raises(ConfigError, match='from:=to'):
        Remap.parse('rgb/image=/x')


def test_dds_topic_names_have_the_rt_prefix():
    assert dds_topic_name('/camera/image_raw') == 'rt/camera/image_raw'
    assert ros_topic_name('rt/camera/image_raw') == '/camera/image_raw'
    assert ros_topic_name('DCPSParticipant') is None
    with pytest.raises(ConfigError):
        dds_topic_name('camera/image_raw')


def test_qos_profiles_follow_ros_presets():
    assert QosProfile('best_effort', 5) == SENSOR_DATA
    assert QosProfile('reliable', 10) == RELIABLE
    assert qos_from_name('sensor_data', 1) == QosProfile('best_effort', 1)
    with pytest.raises(ConfigError, match='QoS profile'):
        qos_from_name('fast')
    with pytest.raises(ConfigError, match='depth'):
        QosProfile('reliable', 0)


def test_shipped_config_is_used_unless_the_user_chose_one(monkeypatch, tmp_path):
    from nitedr_ros.paths import DDS_LOOPBACK_CONFIG

    monkeypatch.delenv('CYCLONEDDS_URI', raising=False)
    assert select_dds_config() == DDS_LOOPBACK_CONFIG.as_uri()
    monkeypatch.setenv('CYCLONEDDS_URI', 'file:///elsewhere.xml')
    assert select_dds_config() == 'file:///elsewhere.xml'
    mine = tmp_path / 'mine.xml'
    mine.write_text(DDS_LOOPBACK_CONFIG.read_text())
    assert select_dds_config(mine) == mine.resolve().as_uri()
    with pytest.raises(ConfigError, match='not found'):
        select_dds_config(tmp_path / 'missing.xml')
    text = DDS_LOOPBACK_CONFIG.read_text()
    assert '<NetworkInterface name="lo"/>' in text and '<AllowMulticast>false</AllowMulticast>' in text
    assert '<MaxMessageSize>65500B</MaxMessageSize>' in text


def _image(store, stamp_sec: int, size: int = 6):
    types = store.types
    header = types['std_msgs/msg/Header'](types['builtin_interfaces/msg/Time'](stamp_sec, 5), 'cam')
    data = np.arange(size * size * 3, dtype=np.uint8)
    return types['sensor_msgs/msg/Image'](header, size, size, 'rgb8', 0, size * 3, data)


def _spin_until(nodes, predicate, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not predicate():
        for node in nodes:
            node.spin_once(0.02)
    return predicate()


def test_two_participants_exchange_ros2_images_byte_exactly():
    domain = next(_domains)
    publisher_node = DdsNode('talker', '/car', domain_id=domain)
    listener_node = DdsNode('listener', domain_id=domain)
    store = publisher_node.typestore
    try:
        publisher = publisher_node.create_publisher('rgb/image', 'sensor_msgs/msg/Image', RELIABLE)
        assert publisher.topic == '/car/rgb/image'
        raw_payloads: list[bytes] = []
        decoded: list = []
        listener_node.create_subscription('/car/rgb/image', 'sensor_msgs/msg/Image',
                                          lambda payload, _t: raw_payloads.append(payload), raw=True)
        # a best-effort (sensor data) reader matches a reliable writer
        listener_node.create_subscription('/car/rgb/image', 'sensor_msgs/msg/Image',
                                          lambda msg, _t: decoded.append(msg), qos=SENSOR_DATA)
        assert publisher_node.wait_for_matches([publisher], 10.0)
        time.sleep(0.2)
        messages = [_image(store, sec) for sec in (10, 11, 12)]
        for msg in messages:
            publisher.publish(msg)
        assert _spin_until([listener_node], lambda: len(raw_payloads) == 3 and len(decoded) == 3)
        for msg, payload, got in zip(messages, raw_payloads, decoded):
            assert payload == bytes(store.serialize_cdr(msg, 'sensor_msgs/msg/Image'))  # wire == rosbags
            assert got.header.stamp.sec == msg.header.stamp.sec and got.header.frame_id == 'cam'
            np.testing.assert_array_equal(got.data, msg.data)
    finally:
        publisher_node.close()
        listener_node.close()


def test_discovery_shows_ros2_topic_type_and_type_hash():
    from cyclonedds.builtin import BuiltinDataReader, BuiltinTopicDcpsPublication
    from cyclonedds.qos import Policy

    domain = next(_domains)
    observer = DdsNode('observer', domain_id=domain)
    reader = BuiltinDataReader(observer.participant, BuiltinTopicDcpsPublication)
    node = DdsNode('nitedr', '/', domain_id=domain)
    try:
        node.create_publisher('/diagnostics', 'diagnostic_msgs/msg/DiagnosticArray')
        found = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not found:
            found = [e for e in reader.take(N=32) if e.topic_name == 'rt/diagnostics']
            time.sleep(0.05)
        assert found, 'publication not discovered'
        endpoint = found[0]
        assert endpoint.type_name == 'diagnostic_msgs::msg::dds_::DiagnosticArray_'
        user_data = endpoint.qos[Policy.Userdata].data
        expected = node.typestore.hash_rihs01('diagnostic_msgs/msg/DiagnosticArray')
        assert user_data == f'typehash={expected};'.encode()
    finally:
        node.close()
        observer.close()


def test_stock_cyclonedds_reader_understands_our_raw_writes():
    """A plain cyclonedds-python reader (its own deserializer) reads our raw writes: same type, same bytes."""
    from cyclonedds.sub import DataReader

    domain = next(_domains)
    node = DdsNode('talker', domain_id=domain)
    other = DdsNode('stock', domain_id=domain)
    try:
        publisher = node.create_publisher('/clock', 'rosgraph_msgs/msg/Clock')
        clock_type = other.idl.get('rosgraph_msgs/msg/Clock')
        reader = DataReader(other.participant, other.dds_topic('/clock', 'rosgraph_msgs/msg/Clock'),
                            qos=RELIABLE.to_cyclone())
        assert node.wait_for_matches([publisher], 10.0)
        time.sleep(0.2)
        types = node.typestore.types
        publisher.publish(types['rosgraph_msgs/msg/Clock'](types['builtin_interfaces/msg/Time'](77, 99)))
        samples = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not samples:
            samples = reader.take(N=4)
            time.sleep(0.02)
        assert samples and isinstance(samples[0], clock_type)
        assert (samples[0].clock.sec, samples[0].clock.nanosec) == (77, 99)
    finally:
        node.close()
        other.close()


def test_undecodable_payload_is_counted_not_fatal():
    domain = next(_domains)
    node = DdsNode('talker', domain_id=domain)
    listener = DdsNode('listener', domain_id=domain)
    try:
        publisher = node.create_publisher('/x', 'std_msgs/msg/String')
        got, problems = [], []
        subscription = listener.create_subscription('/x', 'std_msgs/msg/String',
                                                    lambda msg, _t: got.append(msg.data), qos=RELIABLE,
                                                    on_bad_payload=problems.append)
        assert node.wait_for_matches([publisher], 10.0)
        time.sleep(0.2)
        publisher.publish_raw(b'\x00\x01\x00\x00\x02\x00\x00\x00\xff\x00')  # valid CDR, not UTF-8
        publisher.publish(node.typestore.types['std_msgs/msg/String']('fine'))
        assert _spin_until([listener], lambda: got == ['fine'] and subscription.bad_payloads == 1)
        assert len(problems) == 1 and 'undecodable std_msgs/msg/String sample (10 bytes)' in problems[0]
    finally:
        node.close()
        listener.close()


def test_private_domains_stay_below_the_ephemeral_port_range():
    from nitedr_ros.transports.dds.participant import MAX_SAFE_DOMAIN

    domains = {private_domain_id(offset) for offset in range(300)}
    assert domains == set(range(1, MAX_SAFE_DOMAIN + 1))  # never 0, never above 101
    last_port = 7400 + 250 * MAX_SAFE_DOMAIN + 11 + 2 * 40  # RTPS user unicast port of participant 40
    assert last_port < 32768  # Linux's default ephemeral range starts here
