"""Core outputs as ROS 2 messages (rosbags typestore classes), shared by ``bag derain`` and the DDS runtime.

The core hands transports an input header object, :class:`~nitedr_ros.core.images.ImageFields`, cached
camera_info messages and :class:`~nitedr_ros.core.diagnostics.DiagnosticStatus` lists; these helpers build
``sensor_msgs/Image``, ``CameraInfo``, ``diagnostic_msgs/DiagnosticArray`` and ``std_msgs/Float64`` from
them without copying pixel data (the image's ``data`` is the flat uint8 numpy view).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from ...core.clock import ns_to_sec_nanosec

IMAGE = 'sensor_msgs/msg/Image'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
DIAGNOSTIC_ARRAY = 'diagnostic_msgs/msg/DiagnosticArray'
FLOAT64 = 'std_msgs/msg/Float64'


class Ros2Messages:
    """Message builders bound to one typestore."""

    def __init__(self, typestore: Any) -> None:
        self.types = typestore.types

    def header(self, stamp_ns: int, frame_id: str = '') -> Any:
        sec, nanosec = ns_to_sec_nanosec(stamp_ns)
        return self.types['std_msgs/msg/Header'](self.types['builtin_interfaces/msg/Time'](sec, nanosec),
                                                 frame_id)

    def image(self, header: Any, fields: Any) -> Any:
        """An Image with the input's header (verbatim) and the output pixels."""
        return self.types[IMAGE](header, int(fields.height), int(fields.width), str(fields.encoding),
                                 int(fields.is_bigendian), int(fields.step), fields.as_numpy())

    @staticmethod
    def camera_info(info: Any, header: Any) -> Any:
        """A copy of a cached CameraInfo carrying ``header`` (arrays shared, not copied)."""
        out = copy.copy(info)
        out.header = header
        return out

    def diagnostic_array(self, statuses: Sequence[Any], stamp_ns: int) -> Any:
        status_cls = self.types['diagnostic_msgs/msg/DiagnosticStatus']
        key_value = self.types['diagnostic_msgs/msg/KeyValue']
        converted = [status_cls(int(s.level), str(s.name), str(s.message), str(s.hardware_id),
                                [key_value(str(k), str(v)) for k, v in s.values]) for s in statuses]
        return self.types[DIAGNOSTIC_ARRAY](self.header(stamp_ns), converted)

    def float64(self, value: float) -> Any:
        return self.types[FLOAT64](float(value))
