"""Derain pipeline: sensor-encoded frames -> float tensors -> engines -> frames, with per-stage timings.

Imports neither torch nor tensorrt (engines import them only when their backend is opened), nor rclpy or
cyclonedds.
"""

from __future__ import annotations

from .config import (
    DEFAULT_NETWORKS,
    MODE_OUTPUTS,
    MODE_ROLES,
    MODE_STREAMS,
    MODES,
    PipelineConfig,
    build_engines,
    build_pipeline,
    build_settings,
    default_model,
    resolve_models,
)
from .derain import OUTPUTS, STREAMS, DerainPipeline, PipelineResult
from .frames import ENCODINGS, ImageFrame
from .thermal import ThermalNormalizer
from .timing import STAGES, LatencyWindow, StageTimings

__all__ = [
    'DEFAULT_NETWORKS', 'ENCODINGS', 'MODES', 'MODE_OUTPUTS', 'MODE_ROLES', 'MODE_STREAMS', 'OUTPUTS',
    'STAGES', 'STREAMS', 'DerainPipeline', 'ImageFrame', 'LatencyWindow', 'PipelineConfig', 'PipelineResult',
    'StageTimings', 'ThermalNormalizer', 'build_engines', 'build_pipeline', 'build_settings', 'default_model',
    'resolve_models',
]
