"""Stream and output names, their ROS topics (relative, remapped by launch), and what each mode uses.

Streams and outputs are the pipeline's names (``docs/ARCHITECTURE.md``); topics are what transports
subscribe and publish. Every output carries the header of its source stream's input message.
"""

from __future__ import annotations

# what each mode uses is the pipeline's; re-exported with the topic names
from ..pipeline.config import MODE_OUTPUTS as MODE_OUTPUTS
from ..pipeline.config import MODE_STREAMS as MODE_STREAMS

STREAMS: tuple[str, ...] = ('rgb', 'left', 'right', 'thermal')
OUTPUTS: tuple[str, ...] = ('derained_rgb', 'fused', 'derained_left', 'derained_right')

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
# output -> the input stream whose header (and camera_info) it carries
OUTPUT_SOURCE: dict[str, str] = {
    'derained_rgb': 'rgb',
    'fused': 'rgb',
    'derained_left': 'left',
    'derained_right': 'right',
}
MODES: tuple[str, ...] = tuple(MODE_STREAMS)
# modes that fuse thermal into the derained RGB (thermal required; silent thermal = degraded, no ``fused``)
FUSION_MODES: tuple[str, ...] = ('nitedr', 'full')
THERMAL_STREAM = 'thermal'
FUSED_OUTPUT = 'fused'
DIAGNOSTICS_TOPIC = '/diagnostics'
DEBUG_VALUES: tuple[str, ...] = ('processing_time_ms', 'inference_time_ms', 'pipeline_latency_ms')


def image_topic(stream: str, transport: str = 'raw') -> str:
    """Input topic of a stream; ``compressed`` appends ``/compressed`` (image_transport convention)."""
    topic = STREAM_TOPICS[stream]
    return f'{topic}/compressed' if transport == 'compressed' else topic


def debug_topic(name: str) -> str:
    """Private debug topic of a timing value, e.g. ``~/debug/processing_time_ms``."""
    return f'~/debug/{name}'
