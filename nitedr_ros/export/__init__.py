"""torch -> ONNX export (fp32 + fp16), parity checks and the TensorRT compatibility checker.

``check_onnx`` needs only onnx; ``export_network`` imports torch, so names load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LOCATIONS = {
    'export_network': 'onnx_export',
    'ExportResult': 'onnx_export',
    'ExportError': 'onnx_export',
    'fp16_path_for': 'onnx_export',
    'ParityError': 'parity',
    'check_onnx': 'trt_compat',
    'CompatReport': 'trt_compat',
    'CompatIssue': 'trt_compat',
    'read_metadata': 'onnx_metadata',
}

__all__ = sorted(_LOCATIONS)


def __getattr__(name: str) -> Any:
    if name not in _LOCATIONS:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(f'{__name__}.{_LOCATIONS[name]}'), name)
