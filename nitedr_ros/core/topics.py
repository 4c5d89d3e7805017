"""The ROS topics (relative, remapped by launch) of the streams and outputs of :mod:`nitedr_ros.modes`.

Every output carries the header of its source stream's input message (``modes.OUTPUT_SOURCE``).
"""

from __future__ import annotations

STREAM_TOPICS: dict[str, str] = {
    'rgb': 'rgb/image',
    'left': 'stereo/left/image',
    'right': 'stereo/right/image',
    'thermal': 'thermal/image',
}
STREAM_CAMERA_INFO_TOPICS: dict[str, str] = {
    'rgb': 'rgb/camera_info',
    'left': 'stereo/left/camera_info',
    'right': 'stereo/right/camera_info',
    'thermal': 'thermal/camera_info',
}
OUTPUT_TOPICS: dict[str, str] = {
    'derained_rgb': 'derained/rgb/image',
    'fused': 'fused/image',
    'derained_left': 'derained/left/image',
    'derained_right': 'derained/right/image',
}
OUTPUT_CAMERA_INFO_TOPICS: dict[str, str] = {
    'derained_rgb': 'derained/rgb/camera_info',
    'fused': 'fused/camera_info',
    'derained_left': 'derained/left/camera_info',
    'derained_right': 'derained/right/camera_info',
}
DIAGNOSTICS_TOPIC = '/diagnostics'
DEBUG_VALUES: tuple[str, ...] = ('processing_time_ms', 'inference_time_ms', 'pipeline_latency_ms')


def image_topic(stream: str, transport: str = 'raw') -> str:
    """Input topic of a stream; ``compressed`` appends ``/compressed`` (image_transport convention)."""
    topic = STREAM_TOPICS[stream]
    return f'{topic}/compressed' if transport == 'compressed' else topic


def debug_topic(name: str) -> str:
    """Private debug topic of a timing value, e.g. ``~/debug/processing_time_ms``."""
    return f'~/debug/{name}'
