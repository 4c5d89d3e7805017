"""The DDS runtime's XCDR1 codec and IDL types against rosbags and stock cyclonedds-python."""

from __future__ import annotations

import numpy as np
import pytest

from nitedr_ros.transports.dds.cdr import CdrCodec, CdrError, CodecCache
from nitedr_ros.transports.dds.idl import IdlTypes, dds_type_name, type_hash_user_data

rosbags_typesys = pytest.importorskip('rosbags.typesys')


@pytest.fixture(scope='module')
def store():
    return rosbags_typesys.get_typestore(rosbags_typesys.Stores.ROS2_JAZZY)


def _header(types, sec=1_700_000_123, nanosec=456_789, frame_id='camera_optical_frame'):
    return types['std_msgs/msg/Header'](types['builtin_interfaces/msg/Time'](sec, nanosec), frame_id)


def _messages(store):
    """One message of every type the runtime publishes or subscribes, with awkward sizes and alignments."""
    types = store.types
    rng = np.random.default_rng(3)
    status = types['diagnostic_msgs/msg/DiagnosticStatus']
    key_value = types['diagnostic_msgs/msg/KeyValue']
    return {
        'sensor_msgs/msg/Image': types['sensor_msgs/msg/Image'](
            _header(types), 5, 7, 'rgb8', 0, 21, rng.integers(0, 256, 105, dtype=np.uint8)),
        'sensor_msgs/msg/Image#mono16': types['sensor_msgs/msg/Image'](
            _header(types, frame_id='thermal'), 3, 3, 'mono16', 0, 6,
            rng.integers(0, 256, 18, dtype=np.uint8)),
        'sensor_msgs/msg/CompressedImage': types['sensor_msgs/msg/CompressedImage'](
            _header(types, frame_id='x'), 'jpeg', rng.integers(0, 256, 33, dtype=np.uint8)),
        'sensor_msgs/msg/CameraInfo': types['sensor_msgs/msg/CameraInfo'](
            _header(types, frame_id='cam'), 480, 640, 'plumb_bob', np.array([0.1, -0.2, 0.0, 0.001, 0.0]),
            np.arange(9.0), np.eye(3).reshape(-1), np.arange(12.0), 1, 2,
            types['sensor_msgs/msg/RegionOfInterest'](1, 2, 3, 4, True)),
        'diagnostic_msgs/msg/DiagnosticArray': types['diagnostic_msgs/msg/DiagnosticArray'](
            _header(types, frame_id=''), [
                status(0, 'nitedr: latency', 'ok', 'cpu', [key_value('p50_ms', '3.25'), key_value('ä', '')]),
                status(2, 'nitedr: stream/thermal', 'silent', '', []),
            ]),
        'std_msgs/msg/Float64': types['std_msgs/msg/Float64'](3.14159),
        'rosgraph_msgs/msg/Clock': types['rosgraph_msgs/msg/Clock'](
            types['builtin_interfaces/msg/Time'](12, 34)),
        'std_msgs/msg/String': types['std_msgs/msg/String']('odd length'),
    }


def _msgtype(key: str) -> str:
    return key.split('#')[0]


def test_encode_is_byte_identical_to_rosbags(store):
    codecs = CodecCache(store)
    for key, msg in _messages(store).items():
        ours = bytes(codecs.encode(msg, _msgtype(key)))
        reference = bytes(store.serialize_cdr(msg, _msgtype(key)))
        assert ours == reference, key
        assert ours[:4] == b'\x00\x01\x00\x00'


def test_decode_gives_what_rosbags_decodes(store):
    codecs = CodecCache(store)
    for key, msg in _messages(store).items():
        payload = bytes(store.serialize_cdr(msg, _msgtype(key)))
        ours = codecs.decode(payload, _msgtype(key))
        reference = store.deserialize_cdr(payload, _msgtype(key))
        # re-encoding both with rosbags compares every field, numpy arrays included
        assert bytes(store.serialize_cdr(ours, _msgtype(key))) == \
            bytes(store.serialize_cdr(reference, _msgtype(key))), key


def test_image_data_is_a_zero_copy_numpy_view(store):
    msg = _messages(store)['sensor_msgs/msg/Image']
    payload = bytes(store.serialize_cdr(msg, 'sensor_msgs/msg/Image'))
    decoded = CdrCodec(store, 'sensor_msgs/msg/Image').decode(payload)
    assert isinstance(decoded.data, np.ndarray) and decoded.data.dtype == np.uint8
    assert not decoded.data.flags.owndata  # a view into the payload, no per-element copy
    np.testing.assert_array_equal(decoded.data, msg.data)


def test_720p_image_round_trip(store):
    types = store.types
    data = np.random.default_rng(0).integers(0, 256, 720 * 1280 * 3, dtype=np.uint8)
    msg = types['sensor_msgs/msg/Image'](_header(types, frame_id='cam'), 720, 1280, 'rgb8', 0, 3840, data)
    codec = CdrCodec(store, 'sensor_msgs/msg/Image')
    payload = codec.encode(msg)
    assert bytes(payload) == bytes(store.serialize_cdr(msg, 'sensor_msgs/msg/Image'))
    decoded = codec.decode(payload)
    assert (decoded.height, decoded.width, decoded.step) == (720, 1280, 3840)
    np.testing.assert_array_equal(decoded.data, data)


def test_truncated_and_foreign_payloads_raise_naming_the_type(store):
    codec = CdrCodec(store, 'sensor_msgs/msg/Image')
    payload = bytes(store.serialize_cdr(_messages(store)['sensor_msgs/msg/Image'], 'sensor_msgs/msg/Image'))
    with pytest.raises(CdrError, match='sensor_msgs/msg/Image'):
        codec.decode(payload[:-10])
    with pytest.raises(CdrError, match='00 01 00 00'):
        codec.decode(b'\x00\x00\x00\x00' + payload[4:])  # big endian: not what ROS 2 writes
    with pytest.raises(CdrError, match='unknown message type'):
        CdrCodec(store, 'no_pkg/msg/Nothing')


def test_encode_rejects_a_wrong_fixed_array_size(store):
    msg = _messages(store)['sensor_msgs/msg/CameraInfo']
    msg.k = np.arange(8.0)
    with pytest.raises(CdrError, match='9 elements'):
        CdrCodec(store, 'sensor_msgs/msg/CameraInfo').encode(msg)


def test_ros2_type_names_and_type_hash(store):
    assert dds_type_name('sensor_msgs/msg/Image') == 'sensor_msgs::msg::dds_::Image_'
    assert dds_type_name('diagnostic_msgs/msg/DiagnosticArray') == \
        'diagnostic_msgs::msg::dds_::DiagnosticArray_'
    with pytest.raises(CdrError):
        dds_type_name('Image')
    user_data = type_hash_user_data(store, 'sensor_msgs/msg/Image')
    assert user_data == b'typehash=RIHS01_d31d41a9a4c4bc8eae9be757b0beed306564f7526c88ea6a4588fb9582527d47;'


def test_generated_idl_types_serialize_exactly_like_the_codec(store):
    """The type announced in discovery (IDL struct) and the bytes we send describe the same layout."""
    pytest.importorskip('cyclonedds')
    idl = IdlTypes(store)
    codecs = CodecCache(store)
    for key, msg in _messages(store).items():
        msgtype = _msgtype(key)
        cls = idl.get(msgtype)
        assert cls.__idl_typename__ == dds_type_name(msgtype)
        payload = bytes(codecs.encode(msg, msgtype))
        stock = cls.deserialize(payload)  # cyclonedds-python's own (slow, generic) machinery
        reserialized = bytes(stock.serialize(use_version_2=False))
        assert reserialized[:len(payload)] == payload, key
        assert reserialized[len(payload):] == bytes(len(reserialized) - len(payload)), key  # alignment only
        assert len(reserialized) - len(payload) < 4, key
