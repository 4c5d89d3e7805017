"""Image frames in ROS sensor encodings, and their conversion to and from the float32 RGB tensor contract.

Visible streams become float32 ``(3, H, W)`` RGB in [0, 1]: 8-bit values are divided by 255, 16-bit ones
by 65535; mono images are replicated to three channels (a derainer on mono input runs on grey RGB) and
come back as mono (ITU-R BT.601 luma of the output). ``8UC1`` is an alias of ``mono8``, ``16UC1`` of
``mono16`` (on the thermal stream both are raw counts, see :mod:`.thermal`), ``8UC3`` is read as BGR, the
OpenCV order. RGBA/BGRA outputs keep the input's alpha channel. ``32FC1`` (radiometric thermal cameras:
temperatures or counts as float32) is accepted on the thermal stream only.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import FrameError


@dataclass
class ImageFrame:
    """One image as transports hand it in and get it back: ``(H, W)`` or ``(H, W, C)`` uint8/uint16."""

    data: np.ndarray
    encoding: str

    @property
    def height(self) -> int:
        return int(self.data.shape[0])

    @property
    def width(self) -> int:
        return int(self.data.shape[1])


@dataclass(frozen=True)
class Encoding:
    """Pixel layout of a sensor encoding: element type, channels and channel order."""

    name: str
    dtype: np.dtype
    channels: int
    order: str  # rgb | bgr | rgba | bgra | mono
    thermal_only: bool = False  # a measurement (float temperatures), not an image to derain

    @property
    def max_value(self) -> float:
        return float(np.iinfo(self.dtype).max) if self.dtype.kind in 'ui' else 1.0


ENCODINGS: dict[str, Encoding] = {
    e.name: e for e in (
        Encoding('rgb8', np.dtype(np.uint8), 3, 'rgb'),
        Encoding('bgr8', np.dtype(np.uint8), 3, 'bgr'),
        Encoding('rgba8', np.dtype(np.uint8), 4, 'rgba'),
        Encoding('bgra8', np.dtype(np.uint8), 4, 'bgra'),
        Encoding('mono8', np.dtype(np.uint8), 1, 'mono'),
        Encoding('mono16', np.dtype(np.uint16), 1, 'mono'),
        Encoding('16UC1', np.dtype(np.uint16), 1, 'mono'),
        Encoding('8UC1', np.dtype(np.uint8), 1, 'mono'),
        Encoding('8UC3', np.dtype(np.uint8), 3, 'bgr'),
        Encoding('rgb16', np.dtype(np.uint16), 3, 'rgb'),
        Encoding('bgr16', np.dtype(np.uint16), 3, 'bgr'),
        Encoding('32FC1', np.dtype(np.float32), 1, 'mono', thermal_only=True),
    )
}

_TO_RGB = {'bgr': cv2.COLOR_BGR2RGB, 'rgba': cv2.COLOR_RGBA2RGB, 'bgra': cv2.COLOR_BGRA2RGB}
_TO_GREY = {'rgb': cv2.COLOR_RGB2GRAY, 'bgr': cv2.COLOR_BGR2GRAY, 'rgba': cv2.COLOR_RGBA2GRAY,
            'bgra': cv2.COLOR_BGRA2GRAY}
_LUMA = (np.float32(0.299), np.float32(0.587), np.float32(0.114))


def check_frame(stream: str, frame: object) -> Encoding:
    """The frame's encoding after checking type, size, element type and channel count (else FrameError)."""
    data = getattr(frame, 'data', None)
    encoding = getattr(frame, 'encoding', None)
    if not isinstance(data, np.ndarray) or not isinstance(encoding, str):
        raise FrameError(stream, f'expected an ImageFrame (numpy data + encoding), '
                                 f'got {type(frame).__name__}')
    spec = ENCODINGS.get(encoding)
    if spec is None:
        raise FrameError(stream, f'unknown encoding {encoding!r}; supported: {", ".join(ENCODINGS)}')
    if data.ndim not in (2, 3) or data.shape[0] == 0 or data.shape[1] == 0 or data.size == 0:
        raise FrameError(stream, f'zero-size or malformed image, shape {data.shape}')
    channels = 1 if data.ndim == 2 else data.shape[2]
    if channels != spec.channels:
        raise FrameError(stream, f'encoding {encoding} needs {spec.channels} channel(s), '
                                 f'image has {channels} (shape {data.shape})')
    if data.dtype != spec.dtype:
        raise FrameError(stream, f'encoding {encoding} needs {spec.dtype} pixels, image has {data.dtype}')
    check_stream_encoding(stream, spec)
    return spec


def check_stream_encoding(stream: str, spec: Encoding) -> None:
    """FrameError when an encoding is not for this stream (a thermal measurement on a camera stream)."""
    if spec.thermal_only and stream != 'thermal':
        raise FrameError(stream, f'{spec.name} is a thermal measurement encoding; the {stream} stream needs '
                                 'an image encoding (rgb8, bgr8, mono8, ...)')


def _plane(data: np.ndarray) -> np.ndarray:
    return data if data.ndim == 2 else data[:, :, 0]


def to_rgb_chw(stream: str, frame: ImageFrame) -> np.ndarray:
    """A visible frame as C-contiguous float32 ``(3, H, W)`` RGB in [0, 1]."""
    spec = check_frame(stream, frame)
    data = frame.data
    scale = np.float32(1.0 / spec.max_value)
    if spec.order == 'mono':
        h, w = data.shape[:2]
        out = np.empty((3, h, w), np.float32)
        np.multiply(_plane(data), scale, out=out[0], dtype=np.float32)
        out[1] = out[0]
        out[2] = out[0]
        return out
    if spec.order in _TO_RGB:
        data = cv2.cvtColor(np.ascontiguousarray(data), _TO_RGB[spec.order])
    chw = data.transpose(2, 0, 1).astype(np.float32)
    chw *= scale
    return chw


def to_grey(stream: str, frame: ImageFrame) -> tuple[np.ndarray, Encoding]:
    """A frame as one ``(H, W)`` plane in its own element type (colour -> luma), plus its encoding."""
    spec = check_frame(stream, frame)
    if spec.order == 'mono':
        return _plane(frame.data), spec
    return cv2.cvtColor(np.ascontiguousarray(frame.data), _TO_GREY[spec.order]), spec


def _quantize(plane: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """One float plane in [0, 1] (already clipped) -> uint8/uint16, rounded to nearest."""
    if dtype == np.uint8:
        return cv2.convertScaleAbs(plane, alpha=255.0)
    return (plane * np.float32(65535.0) + np.float32(0.5)).astype(np.uint16)


def from_rgb_chw(rgb: np.ndarray, like: ImageFrame, out: np.ndarray | None = None) -> ImageFrame:
    """Float ``(3, H, W)`` RGB back to the encoding, shape and layout of ``like`` (alpha copied from it).

    Clips ``rgb`` to [0, 1] in place. Channels are quantised as planes and interleaved once, as integers,
    into ``out`` when given (an array of ``like``'s shape and type, e.g. the transport's message buffer).
    """
    spec = ENCODINGS[like.encoding]
    np.clip(rgb, 0.0, 1.0, out=rgb)
    if spec.order == 'mono':
        grey = rgb[0] * _LUMA[0]
        grey += rgb[1] * _LUMA[1]
        grey += rgb[2] * _LUMA[2]
        plane = _quantize(grey, spec.dtype)
        result = plane[:, :, None] if like.data.ndim == 3 else plane
        if out is not None:
            np.copyto(out, result)
            result = out
        return ImageFrame(result, like.encoding)
    r, g, b = (_quantize(rgb[c], spec.dtype) for c in range(3))
    planes = {'rgb': [r, g, b], 'bgr': [b, g, r]}.get(spec.order)
    if planes is None:
        alpha = np.ascontiguousarray(like.data[:, :, 3])
        planes = [r, g, b, alpha] if spec.order == 'rgba' else [b, g, r, alpha]
    if out is not None:
        cv2.merge(planes, dst=out)
        return ImageFrame(out, like.encoding)
    return ImageFrame(cv2.merge(planes), like.encoding)
