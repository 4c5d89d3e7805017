"""Frames <-> the tensors of uint8-I/O engines (:mod:`nitedr_ros.networks.io_wrapper`), on the host.

What is left for the host when the engine converts: rgb8/bgr8/8UC3 frames go in as they are (a view, the
channel order as a 3-element index); other 8-bit encodings are brought to 3 channels (mono replicated,
alpha dropped and put back on the output), 16-bit visible encodings are rounded to 8 bits (documented loss:
use the float I/O for 16-bit visible cameras). Thermal frames become a uint16 plane and the ``(low, high)``
range that maps it to [0, 1] (16-bit counts: fixed or automatic range; 8-bit: (0, 255); ``32FC1``: normalised
on the host, then scaled to 0..65535).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from .frames import ENCODINGS, ImageFrame, check_frame
from .thermal import ThermalNormalizer

# (plane, (H, W)) -> (plane at (H, W) in the RGB frame, coverage weight or None): a registration warp
Warp = Callable[[np.ndarray, tuple[int, int]], tuple[np.ndarray, 'np.ndarray | None']]

RGB_ORDER = np.array([0, 1, 2], np.int64)
BGR_ORDER = np.array([2, 1, 0], np.int64)
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def to_u8(stream: str, frame: ImageFrame) -> tuple[np.ndarray, np.ndarray]:
    """(``(1, H, W, 3)`` uint8 in the order given, channel order) of a visible frame."""
    spec = check_frame(stream, frame)
    data = frame.data
    if spec.dtype != np.uint8:
        data = np.clip(np.rint(data.astype(np.float32) * np.float32(255.0 / spec.max_value)), 0, 255)
        data = data.astype(np.uint8)
    if spec.order == 'mono':
        plane = data if data.ndim == 2 else data[:, :, 0]
        return np.repeat(plane[None, :, :, None], 3, axis=3), RGB_ORDER
    if spec.order in ('rgba', 'bgra'):
        data = data[:, :, :3]
    order = BGR_ORDER if spec.order.startswith('bgr') else RGB_ORDER
    return np.ascontiguousarray(data)[None], order


def from_u8(image: np.ndarray, like: ImageFrame, out: np.ndarray | None = None) -> ImageFrame:
    """A ``(1, H, W, 3)`` uint8 engine output (in the input's channel order) as a frame like ``like``,
    written into ``out`` when given (an array of ``like``'s shape and type)."""
    frame = _from_u8(image, like)
    if out is None:
        return frame
    np.copyto(out, frame.data)
    return ImageFrame(out, like.encoding)


def _from_u8(image: np.ndarray, like: ImageFrame) -> ImageFrame:
    spec = ENCODINGS[like.encoding]
    out = image[0]
    if spec.order == 'mono':
        grey = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
        if spec.dtype != np.uint8:
            grey = grey.astype(spec.dtype) * np.asarray(257, spec.dtype)
        return ImageFrame(grey[:, :, None] if like.data.ndim == 3 else grey, like.encoding)
    if spec.dtype != np.uint8:
        out = out.astype(spec.dtype) * np.asarray(257, spec.dtype)
    if spec.order in ('rgba', 'bgra'):
        out = np.concatenate([out, like.data[:, :, 3:]], axis=2)
    return ImageFrame(np.ascontiguousarray(out), like.encoding)


def thermal_u16(normalizer: ThermalNormalizer, stream: str, frame: ImageFrame, size_hw: tuple[int, int],
                warp: Warp | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(``(1, H, W, 2)`` uint8: the little-endian bytes of the uint16 counts at ``size_hw``, ``(low, high)``
    float32, coverage weight or None) of a thermal frame. ``warp(plane, size_hw) -> (plane, weight)`` maps
    it into the RGB frame (registration); default: a resize, everything covered."""
    spec = check_frame(stream, frame)
    if spec.dtype == np.uint16 and spec.order == 'mono':
        plane = frame.data if frame.data.ndim == 2 else frame.data[:, :, 0]
        low, high = normalizer.range_of(plane)
    elif spec.dtype == np.uint8:
        from .frames import to_grey

        plane = to_grey(stream, frame)[0].astype(np.uint16)
        low, high = 0.0, 255.0
    else:  # float (32FC1) or 16-bit colour: normalise on the host
        plane = np.rint(normalizer(stream, frame) * np.float32(65535.0)).astype(np.uint16)
        low, high = 0.0, 65535.0
    weight = None
    if warp is not None:
        plane, weight = warp(plane, size_hw)
    elif plane.shape != size_hw:
        plane = cv2.resize(plane, (size_hw[1], size_hw[0]), interpolation=cv2.INTER_LINEAR)
    little = np.ascontiguousarray(plane, dtype='<u2')  # no copy on little-endian hosts
    return little.view(np.uint8).reshape(1, *size_hw, 2), np.array([low, high], np.float32), weight
