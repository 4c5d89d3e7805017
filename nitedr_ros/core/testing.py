"""Stand-ins for tests and benchmarks of the core and its transports: ROS-like messages, a recording sink
and a pass-through pipeline (outputs are the input frames; no pre/post-processing, no inference).

The message classes have exactly the fields the core reads (``sensor_msgs/Image``, ``CompressedImage``,
``CameraInfo``, ``std_msgs/Header``, ``builtin_interfaces/Time``); image ``data`` is an ``array.array('B')``
as rclpy delivers it.
"""

from __future__ import annotations

import array
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..modes import FUSED_OUTPUT, OUTPUT_SOURCE, OUTPUTS
from ..pipeline.frames import ENCODINGS, ImageFrame
from ..pipeline.timing import StageTimings
from .clock import ns_to_sec_nanosec
from .diagnostics import DiagnosticStatus
from .images import ImageFields, frame_to_compressed


@dataclass
class Time:
    sec: int = 0
    nanosec: int = 0


@dataclass
class Header:
    stamp: Time = field(default_factory=Time)
    frame_id: str = ''


@dataclass
class Image:
    header: Header = field(default_factory=Header)
    height: int = 0
    width: int = 0
    encoding: str = ''
    is_bigendian: int = 0
    step: int = 0
    data: Any = b''


@dataclass
class CompressedImage:
    header: Header = field(default_factory=Header)
    format: str = ''
    data: Any = b''


@dataclass
class CameraInfo:
    header: Header = field(default_factory=Header)
    height: int = 0
    width: int = 0
    distortion_model: str = 'plumb_bob'


def make_header(stamp_ns: int, frame_id: str = '') -> Header:
    sec, nanosec = ns_to_sec_nanosec(stamp_ns)
    return Header(Time(sec, nanosec), frame_id)


def make_image(
    pixels: np.ndarray,
    encoding: str,
    stamp_ns: int,
    frame_id: str = '',
    *,
    padding: int = 0,
    big_endian: bool = False,
) -> Image:
    """An Image holding ``pixels`` (rows padded by ``padding`` bytes, 16-bit data big-endian if asked)."""
    spec = ENCODINGS[encoding]
    height, width = pixels.shape[:2]
    data = (
        pixels.astype(spec.dtype.newbyteorder('>' if big_endian else '<'))
        if spec.dtype.itemsize > 1
        else pixels
    )
    rows = np.ascontiguousarray(data).view(np.uint8).reshape(height, -1)
    if padding:
        rows = np.concatenate([rows, np.full((height, padding), 0xAB, np.uint8)], axis=1)
    buffer = array.array('B')
    buffer.frombytes(rows.tobytes())
    return Image(
        make_header(stamp_ns, frame_id), height, width, encoding, int(big_endian), rows.shape[1], buffer
    )


def make_compressed(
    pixels: np.ndarray, encoding: str, stamp_ns: int, frame_id: str = '', fmt: str = 'png'
) -> CompressedImage:
    form, payload = frame_to_compressed(ImageFrame(pixels, encoding), fmt)
    return CompressedImage(make_header(stamp_ns, frame_id), form, array.array('B', payload))


def pattern_image(height: int, width: int, encoding: str, seed: int = 0) -> np.ndarray:
    """Deterministic random pixels for an encoding (float ones: 250-320, a radiometric camera's kelvin)."""
    spec = ENCODINGS[encoding]
    rng = np.random.default_rng(seed)
    shape = (height, width) if spec.channels == 1 else (height, width, spec.channels)
    if spec.dtype.kind == 'f':
        return rng.uniform(250.0, 320.0, size=shape).astype(spec.dtype)
    return rng.integers(0, np.iinfo(spec.dtype).max, size=shape, dtype=spec.dtype, endpoint=True)


class RecordingSink:
    """An OutputSink that records everything (thread-safe); ``wait_images(n)`` blocks until n arrived."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.images: list[tuple[str, Any, ImageFields]] = []
        self.camera_infos: list[tuple[str, Any, Any]] = []
        self.diagnostics: list[tuple[list[DiagnosticStatus], int]] = []
        self.debug: list[tuple[str, float]] = []

    def publish_image(self, output: str, header: Any, image: ImageFields) -> None:
        with self._cond:
            self.images.append((output, header, image))
            self._cond.notify_all()

    def publish_camera_info(self, output: str, header: Any, camera_info: Any) -> None:
        with self._cond:
            self.camera_infos.append((output, header, camera_info))

    def publish_diagnostics(self, statuses: list[DiagnosticStatus], stamp_ns: int) -> None:
        with self._cond:
            self.diagnostics.append((statuses, stamp_ns))
            self._cond.notify_all()

    def publish_debug(self, name: str, value: float) -> None:
        with self._cond:
            self.debug.append((name, value))

    def wait_images(self, count: int, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.images) >= count, timeout)

    def outputs(self, name: str) -> list[tuple[Any, ImageFields]]:
        with self._cond:
            return [(h, f) for o, h, f in self.images if o == name]

    def last_statuses(self) -> dict[str, DiagnosticStatus]:
        """Task (the part after ``'<node>: '``) -> status of the latest publication."""
        with self._cond:
            statuses = self.diagnostics[-1][0] if self.diagnostics else []
        return {s.name.split(': ', 1)[1]: s for s in statuses}


class StrictSeverityLogger:
    """A logger wrapper that enforces rclpy's rule: a call site keeps the severity it first logged with.

    rclpy's ``RcutilsLogger`` identifies a call site by the caller's function, file, line and bytecode
    offset and raises ``ValueError('Logger severity cannot be changed between calls.')`` when the same site
    logs with another severity; this wrapper does the same, then forwards to ``target``. The test suite
    wraps every :class:`nitedr_ros.core.log.CoreLog` target in it (``test/conftest.py``).
    """

    def __init__(self, target: Any) -> None:
        self._target = target
        self._sites: dict[tuple[str, str, int, int], str] = {}
        self._lock = threading.Lock()

    def _check(self, severity: str) -> None:
        frame = sys._getframe(2)  # the code that called info()/warning()/...
        site = (frame.f_code.co_name, frame.f_code.co_filename, frame.f_lineno, frame.f_lasti)
        with self._lock:
            first = self._sites.setdefault(site, severity)
        if first != severity:
            raise ValueError('Logger severity cannot be changed between calls.')

    def debug(self, message: str, **kwargs: Any) -> None:
        self._check('debug')
        self._target.debug(message)

    def info(self, message: str, **kwargs: Any) -> None:
        self._check('info')
        self._target.info(message)

    def warning(self, message: str, **kwargs: Any) -> None:
        self._check('warning')
        self._target.warning(message)

    def error(self, message: str, **kwargs: Any) -> None:
        self._check('error')
        self._target.error(message)

    def fatal(self, message: str, **kwargs: Any) -> None:
        self._check('fatal')
        self._target.critical(message) if hasattr(self._target, 'critical') else self._target.fatal(message)


@dataclass
class PassthroughResult:
    outputs: dict[str, ImageFrame]
    timings: StageTimings


class PassthroughPipeline:
    """``process`` returns the input frames on the outputs they would feed (``fused`` = rgb when fusing).

    ``fail_with``: raise this exception from ``process`` (inference-error tests); ``delay_s``: sleep
    per call (a slow model); ``calls`` records ``(streams, fuse)`` per call.
    """

    def __init__(self, *, delay_s: float = 0.0, fail_with: BaseException | None = None) -> None:
        self.delay_s = delay_s
        self.fail_with = fail_with
        self.calls: list[tuple[tuple[str, ...], bool]] = []
        self.closed = False
        self._lock = threading.Lock()

    def process(self, frames: dict[str, ImageFrame], *, fuse: bool = True,
                outputs: Any = None, allocate: Any = None) -> PassthroughResult:
        started = time.perf_counter()
        with self._lock:
            self.calls.append((tuple(frames), fuse))
        wanted = OUTPUTS if outputs is None else tuple(outputs)
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail_with is not None:
            raise self.fail_with
        results = {}
        for output in wanted:
            source = OUTPUT_SOURCE[output]
            if source not in frames or (output == FUSED_OUTPUT and not (fuse and 'thermal' in frames)):
                continue
            results[output] = frames[source]
        total = (time.perf_counter() - started) * 1000.0
        return PassthroughResult(results, StageTimings(0.0, 0.0, 0.0, total))

    def describe(self) -> dict[str, str]:
        return {'backend': 'passthrough', 'model': 'none (outputs = inputs)'}

    def close(self) -> None:
        self.closed = True
