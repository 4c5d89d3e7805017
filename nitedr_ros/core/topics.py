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
# always published (not only with debug.publish_timing), on ~/<name>: what a detector downstream may read
STATUS_VALUES: tuple[str, ...] = ('rain_intensity',)


def image_topic(stream: str, transport: str = 'raw') -> str:
    """Input topic of a stream; ``compressed`` appends ``/compressed`` (image_transport convention)."""
    topic = STREAM_TOPICS[stream]
    return f'{topic}/compressed' if transport == 'compressed' else topic


def debug_topic(name: str) -> str:
    """Private topic of a value: ``~/debug/<name>`` for the timings, ``~/<name>`` for :data:`STATUS_VALUES`
    (``~/rain_intensity``: Float64, 8-bit levels of derain residual per published set)."""
    return f'~/{name}' if name in STATUS_VALUES else f'~/debug/{name}'
