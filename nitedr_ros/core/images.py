"""``sensor_msgs/Image`` / ``CompressedImage`` <-> ``ImageFrame`` (``pipeline.frames``), without cv_bridge.

Messages are duck-typed (rclpy, rosbags and the DDS codec all work): ``height``, ``width``, ``encoding``,
``is_bigendian``, ``step``, ``data`` (CompressedImage: ``format``, ``data``). No per-element Python work:

- reading wraps ``data`` with ``np.frombuffer`` (zero copy for rclpy's ``array.array``, ``bytes`` or numpy)
  and honours ``step`` (row padding) and ``is_bigendian``; it copies only to drop padding or swap bytes;
- :class:`ImageFields` is what transports publish: ``as_array()`` gives ``array.array('B')`` (rclpy's fast
  setter path, one copy), ``as_bytes()`` / ``data`` (a flat uint8 numpy view) serve other codecs;
- ``CompressedImage`` is decoded with ``cv2.imdecode`` (``IMREAD_UNCHANGED``), giving bgr8/bgra8/mono8/mono16
  (rgb8 when the format string says the original was rgb8).

Which encodings are accepted is the pipeline's table (``pipeline.frames.ENCODINGS``); anything else is a
bad message (:class:`~nitedr_ros.errors.FrameError` naming the stream and the problem).
"""

from __future__ import annotations

import array
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import FrameError
from ..pipeline.frames import ENCODINGS, ImageFrame, check_stream_encoding

_NATIVE_BIG = sys.byteorder == 'big'


def is_compressed(msg: Any) -> bool:
    """True for a ``sensor_msgs/CompressedImage``-like message (``format`` and no ``encoding``)."""
    return hasattr(msg, 'format') and not hasattr(msg, 'encoding')


def _as_bytes_array(data: Any) -> np.ndarray:
    """Flat uint8 view of a message's ``data`` (buffer protocol); sequences of ints are converted."""
    if isinstance(data, np.ndarray):
        return (
            data.reshape(-1).view(np.uint8) if data.dtype.itemsize == 1 else data.view(np.uint8).reshape(-1)
        )
    try:
        return np.frombuffer(data, np.uint8)
    except TypeError:
        return np.asarray(data, np.uint8).reshape(-1)  # e.g. a list from a generic codec: one vectorised copy


def check_image(stream: str, msg: Any) -> None:
    """Cheap checks for a subscription callback (no pixel work); raises FrameError naming the problem."""
    if is_compressed(msg):
        if not len(msg.data):
            raise FrameError(stream, f'empty CompressedImage (format {msg.format!r})')
        return
    encoding = msg.encoding
    spec = ENCODINGS.get(encoding)
    if spec is None:
        raise FrameError(stream, f'unsupported encoding {encoding!r}; supported: {", ".join(ENCODINGS)}')
    check_stream_encoding(stream, spec)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise FrameError(stream, f'zero-size image {width}x{height}')
    row = width * spec.channels * spec.dtype.itemsize
    if step < row:
        raise FrameError(stream, f'step {step} is less than width x channels x bytes = {row} ({encoding})')
    size = len(msg.data)
    if size != step * height:
        raise FrameError(stream, f'data has {size} bytes, step x height = {step * height}')


def image_to_frame(stream: str, msg: Any) -> ImageFrame:
    """A raw ``sensor_msgs/Image`` as an ImageFrame; a view of ``msg.data`` when no padding/byte swap."""
    check_image(stream, msg)
    spec = ENCODINGS[msg.encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row = width * spec.channels * spec.dtype.itemsize
    rows = _as_bytes_array(msg.data).reshape(height, step)[:, :row]
    shape = (height, width) if spec.channels == 1 else (height, width, spec.channels)
    if spec.dtype.itemsize == 1:
        pixels = rows.reshape(shape)
    else:
        big = bool(msg.is_bigendian)
        pixels = rows.view(spec.dtype.newbyteorder('>' if big else '<')).reshape(shape)
        # byte swap only when the message's order is not ours: one vectorised copy
        pixels = pixels.astype(spec.dtype) if big != _NATIVE_BIG else pixels.view(spec.dtype)
    if not pixels.flags.c_contiguous:
        pixels = np.ascontiguousarray(pixels)  # row padding removed
    return ImageFrame(pixels, msg.encoding)


_DECODED_ENCODING = {
    (np.dtype(np.uint8), 1): 'mono8',
    (np.dtype(np.uint8), 3): 'bgr8',
    (np.dtype(np.uint8), 4): 'bgra8',
    (np.dtype(np.uint16), 1): 'mono16',
    (np.dtype(np.uint16), 3): 'bgr16',
}


def compressed_to_frame(stream: str, msg: Any) -> ImageFrame:
    """A ``sensor_msgs/CompressedImage`` (jpeg/png) decoded with OpenCV."""
    import cv2

    fmt = str(msg.format)
    if 'compresseddepth' in fmt.lower().replace(' ', ''):
        raise FrameError(stream, f'compressedDepth format {fmt!r} is not supported; publish raw or png')
    buffer = _as_bytes_array(msg.data)
    if buffer.size == 0:
        raise FrameError(stream, f'empty CompressedImage (format {fmt!r})')
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise FrameError(stream, f'cannot decode CompressedImage (format {fmt!r}, {buffer.size} bytes)')
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels == 1 and image.ndim == 3:
        image = image[:, :, 0]
    encoding = _DECODED_ENCODING.get((image.dtype, channels))
    if encoding is None:
        raise FrameError(stream, f'decoded image has unsupported type {image.dtype} x {channels}')
    original = fmt.split(';', 1)[0].strip()
    if original == 'rgb8' and encoding == 'bgr8':
        image, encoding = cv2.cvtColor(image, cv2.COLOR_BGR2RGB), 'rgb8'
    elif original == 'rgba8' and encoding == 'bgra8':
        image, encoding = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA), 'rgba8'
    return ImageFrame(np.ascontiguousarray(image), encoding)


def message_to_frame(stream: str, msg: Any) -> ImageFrame:
    """Image or CompressedImage -> ImageFrame (FrameError for a bad message)."""
    return compressed_to_frame(stream, msg) if is_compressed(msg) else image_to_frame(stream, msg)


@dataclass
class ImageFields:
    """The fields of an outgoing ``sensor_msgs/Image`` (the transport adds the header)."""

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: Any  # flat uint8 numpy array, or the input message's own buffer for a pass-through

    def as_array(self) -> array.array:
        """``array.array('B')``: rclpy's fast assignment path (no per-element check); one copy, none when
        the pixels were written into an array (:class:`ArrayBuffers`)."""
        if isinstance(self.data, array.array) and self.data.typecode == 'B':
            return self.data
        backing = _backing_array(self.data)
        if backing is not None:
            return backing
        out = array.array('B')
        out.frombytes(memoryview(_as_bytes_array(self.data)))
        return out

    def as_bytes(self) -> bytes:
        if isinstance(self.data, bytes):
            return self.data
        return _as_bytes_array(self.data).tobytes()

    def as_numpy(self) -> np.ndarray:
        """Flat uint8 view (no copy)."""
        return _as_bytes_array(self.data)


def _backing_array(data: Any) -> array.array | None:
    """The ``array.array('B')`` a numpy view covers entirely (through its bases), else None."""
    if not isinstance(data, np.ndarray):
        return None
    base: Any = data
    while base is not None:
        if isinstance(base, memoryview):
            base = base.obj
        if isinstance(base, array.array):
            return base if base.typecode == 'B' and len(base) == data.nbytes else None
        base = getattr(base, 'base', None)
    return None


class ArrayBuffers:
    """Output images written straight into ``array.array('B')`` buffers, one per output, reused frame after
    frame: rclpy takes an ``array.array`` for ``uint8[]`` without a per-element check or another copy, and
    serializes it within ``publish``, so the buffer is free again when the next set is processed (the core
    publishes from one thread). ``allocate(output, shape, dtype)`` is what the pipeline writes into."""

    def __init__(self) -> None:
        self._buffers: dict[str, array.array] = {}

    def allocate(self, output: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        buffer = self._buffers.get(output)
        if buffer is None or len(buffer) != nbytes:
            buffer = array.array('B', bytes(nbytes))
            self._buffers[output] = buffer
        return np.frombuffer(buffer, dtype=dtype).reshape(shape)


def frame_to_fields(frame: ImageFrame) -> ImageFields:
    """An ImageFrame as message fields: C-contiguous, native byte order, no row padding."""
    spec = ENCODINGS.get(frame.encoding)
    if spec is None:
        raise FrameError('output', f'unsupported encoding {frame.encoding!r}')
    pixels = np.ascontiguousarray(frame.data)
    height, width = int(pixels.shape[0]), int(pixels.shape[1])
    itemsize = pixels.dtype.itemsize
    return ImageFields(
        height=height,
        width=width,
        encoding=frame.encoding,
        is_bigendian=int(_NATIVE_BIG and itemsize > 1),
        step=width * spec.channels * itemsize,
        data=pixels.view(np.uint8).reshape(-1),
    )


def message_fields(msg: Any) -> ImageFields:
    """The fields of an input Image unchanged (pass-through publishing, no pixel copy)."""
    return ImageFields(
        height=int(msg.height),
        width=int(msg.width),
        encoding=str(msg.encoding),
        is_bigendian=int(msg.is_bigendian),
        step=int(msg.step),
        data=msg.data,
    )


def frame_to_compressed(frame: ImageFrame, fmt: str = 'png') -> tuple[str, bytes]:
    """Encode a frame as a CompressedImage payload: ``(format string, bytes)``; jpeg or png."""
    import cv2

    pixels = np.ascontiguousarray(frame.data)
    encoding = frame.encoding
    if encoding in ('rgb8', 'rgba8'):
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR if encoding == 'rgb8' else cv2.COLOR_RGBA2BGRA)
    ok, encoded = cv2.imencode('.jpg' if fmt == 'jpeg' else '.png', pixels)
    if not ok:
        raise FrameError('output', f'cannot encode {encoding} image as {fmt}')
    return f'{encoding}; {fmt} compressed', encoded.tobytes()
