"""Image <-> numpy conversion: round trips, step padding, byte order, zero copy, compressed, bad messages."""

from __future__ import annotations

import array

import numpy as np
import pytest

from nitedr_ros.core.images import (
    check_image,
    compressed_to_frame,
    frame_to_fields,
    image_to_frame,
    message_fields,
    message_to_frame,
)
from nitedr_ros.core.testing import (
    CompressedImage,
    Image,
    make_compressed,
    make_header,
    make_image,
    pattern_image,
)
from nitedr_ros.errors import FrameError
from nitedr_ros.pipeline.frames import ImageFrame

ENCODINGS = ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16', '16UC1', '8UC1', '8UC3', 'rgb16']


@pytest.mark.parametrize('encoding', ENCODINGS)
@pytest.mark.parametrize('padding', [0, 6])
def test_round_trip_message_frame_message(encoding, padding):
    pixels = pattern_image(7, 5, encoding, seed=3)
    msg = make_image(pixels, encoding, 123)
    padded = make_image(pixels, encoding, 123, padding=padding)
    frame = image_to_frame('rgb', padded)
    assert frame.encoding == encoding
    assert frame.data.dtype == pixels.dtype and frame.data.flags.c_contiguous
    np.testing.assert_array_equal(frame.data, pixels)
    fields = frame_to_fields(frame)
    assert (fields.height, fields.width, fields.encoding, fields.step) == (7, 5, encoding, msg.step)
    out = fields.as_array()
    assert isinstance(out, array.array) and out.typecode == 'B'
    assert out.tobytes() == bytes(msg.data) == fields.as_bytes()


def test_unpadded_8bit_image_is_a_view_of_the_message_buffer():
    msg = make_image(pattern_image(4, 6, 'bgr8'), 'bgr8', 0)
    frame = image_to_frame('rgb', msg)
    assert np.shares_memory(frame.data, np.frombuffer(msg.data, np.uint8))


@pytest.mark.parametrize('encoding', ['mono16', 'rgb16'])
def test_big_endian_16bit_is_swapped_to_native_values(encoding):
    pixels = pattern_image(3, 4, encoding, seed=1)
    msg = make_image(pixels, encoding, 0, big_endian=True)
    assert msg.is_bigendian == 1
    assert bytes(msg.data)[:2] == pixels.reshape(-1)[:1].astype('>u2').tobytes()
    frame = image_to_frame('thermal', msg)
    assert frame.data.dtype.isnative
    np.testing.assert_array_equal(frame.data, pixels)


def test_bytes_and_numpy_data_are_accepted():
    pixels = pattern_image(2, 3, 'mono8')
    for data in (
        pixels.tobytes(),
        pixels.reshape(-1).copy(),
        bytearray(pixels.tobytes()),
        list(pixels.reshape(-1)),
    ):
        msg = Image(make_header(0), 2, 3, 'mono8', 0, 3, data)
        np.testing.assert_array_equal(image_to_frame('rgb', msg).data, pixels)


@pytest.mark.parametrize(
    ('change', 'problem'),
    [
        ({'encoding': 'yuv422'}, "unsupported encoding 'yuv422'"),
        ({'step': 5}, 'step 5 is less than'),
        ({'data': b'\x00' * 10}, 'data has 10 bytes, step x height = 18'),
        ({'height': 0}, 'zero-size image'),
    ],
)
def test_bad_messages_raise_frame_error_naming_stream_and_problem(change, problem):
    msg = Image(make_header(0), 3, 2, 'rgb8', 0, 6, b'\x00' * 18)
    for key, value in change.items():
        setattr(msg, key, value)
    with pytest.raises(FrameError, match=problem) as info:
        check_image('thermal', msg)
    assert info.value.stream == 'thermal'
    with pytest.raises(FrameError):
        image_to_frame('thermal', msg)


@pytest.mark.parametrize('encoding', ['bgr8', 'rgb8', 'mono8', 'mono16', 'bgra8'])
def test_compressed_png_round_trip(encoding):
    pixels = pattern_image(9, 8, encoding, seed=2)
    msg = make_compressed(pixels, encoding, 55, fmt='png')
    frame = message_to_frame('rgb', msg)
    assert frame.encoding == encoding
    np.testing.assert_array_equal(frame.data, pixels)


def test_compressed_jpeg_decodes_to_bgr8_of_the_same_size():
    pixels = np.full((16, 24, 3), 128, np.uint8)
    frame = compressed_to_frame('rgb', make_compressed(pixels, 'bgr8', 0, fmt='jpeg'))
    assert frame.encoding == 'bgr8' and frame.data.shape == (16, 24, 3)
    assert np.abs(frame.data.astype(int) - 128).max() <= 2


@pytest.mark.parametrize(
    ('fmt', 'data', 'problem'),
    [
        ('jpeg', b'not an image', 'cannot decode'),
        ('png', b'', 'empty CompressedImage'),
        ('16UC1; compressedDepth png', b'\x00' * 20, 'compressedDepth'),
    ],
)
def test_bad_compressed_images(fmt, data, problem):
    with pytest.raises(FrameError, match=problem):
        message_to_frame('rgb', CompressedImage(make_header(0), fmt, data))


def test_message_fields_pass_the_input_buffer_through_without_copy():
    msg = make_image(pattern_image(2, 2, 'rgb8'), 'rgb8', 0, padding=2)
    fields = message_fields(msg)
    assert fields.data is msg.data and fields.as_array() is msg.data
    assert (fields.step, fields.encoding) == (msg.step, 'rgb8')


def test_frame_to_fields_makes_non_contiguous_frames_contiguous():
    base = pattern_image(4, 8, 'rgb8')
    frame = ImageFrame(base[:, ::2], 'rgb8')
    fields = frame_to_fields(frame)
    assert fields.step == 4 * 3
    assert fields.as_bytes() == np.ascontiguousarray(base[:, ::2]).tobytes()
