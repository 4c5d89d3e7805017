"""Read the ``nitedr.*`` metadata_props of an exported ONNX file (torch-free)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """All metadata_props of an ONNX file as a dict (``nitedr.network``, ``nitedr.precision``, ...)."""
    import onnx

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f'ONNX file not found: {p}')
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # any parse failure means "not an ONNX model"
        raise ConfigError(f'{p} is not a readable ONNX model: {exc}') from exc
    return {prop.key: prop.value for prop in model.metadata_props}
