"""Read an ONNX file's metadata and I/O shapes without running it (onnx if installed, else ONNX Runtime)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError


@dataclass(frozen=True)
class ModelInfo:
    """Inputs and outputs (name -> shape, None for dynamic axes) and ``metadata_props``."""

    inputs: dict[str, tuple[int | None, ...]]
    outputs: dict[str, tuple[int | None, ...]]
    metadata: dict[str, str]


def _dims(value_info: object) -> tuple[int | None, ...]:
    dims = value_info.type.tensor_type.shape.dim  # type: ignore[attr-defined]
    return tuple(d.dim_value if d.HasField('dim_value') else None for d in dims)


def read_model_info(path: str | Path) -> ModelInfo:
    """I/O names, shapes and metadata of an ONNX model; ConfigError when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f'ONNX model not found: {path}')
    try:
        import onnx
    except ImportError:
        return _info_from_onnxruntime(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ConfigError(f'cannot read ONNX model {path}: {exc}') from exc
    initializers = {i.name for i in model.graph.initializer}
    inputs = {v.name: _dims(v) for v in model.graph.input if v.name not in initializers}
    outputs = {v.name: _dims(v) for v in model.graph.output}
    return ModelInfo(inputs, outputs, {p.key: p.value for p in model.metadata_props})


def _info_from_onnxruntime(path: Path) -> ModelInfo:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])
    except Exception as exc:
        raise ConfigError(f'cannot read ONNX model {path}: {exc}') from exc

    def shape(arg: object) -> tuple[int | None, ...]:
        return tuple(d if isinstance(d, int) else None for d in arg.shape)  # type: ignore[attr-defined]

    return ModelInfo({a.name: shape(a) for a in session.get_inputs()},
                     {a.name: shape(a) for a in session.get_outputs()},
                     dict(session.get_modelmeta().custom_metadata_map))
