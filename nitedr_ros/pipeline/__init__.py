"""Derain pipeline: sensor-encoded frames -> engines -> frames, with per-stage timings.

Imports neither torch nor tensorrt (engines import them only when their backend is opened), nor rclpy or
cyclonedds. Names load on first use (PEP 562): ``nitedr_ros.pipeline.config`` stays free of numpy and
OpenCV for the parameter schema.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    'PipelineConfig': 'config', 'default_model': 'config',
    'build_engines': 'builders', 'build_pipeline': 'builders', 'open_role_engine': 'builders',
    'resolve_models': 'builders',
    'DerainPipeline': 'derain', 'PipelineResult': 'derain',
    'ENCODINGS': 'frames', 'ImageFrame': 'frames',
    'ThermalNormalizer': 'thermal',
    'STAGES': 'timing', 'LatencyWindow': 'timing', 'StageTimings': 'timing',
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(f'{__name__}.{module}'), name)
