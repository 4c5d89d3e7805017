"""Read an ONNX file's metadata and I/O shapes without running it (onnx if installed, else ONNX Runtime).

:func:`read_metadata_props` needs neither: it walks the top level of the ``ModelProto`` protobuf wire format
itself, so a TensorRT-only install (no onnx, no onnxruntime) still reads ``nitedr.*`` metadata.
"""

from __future__ import annotations

import mmap
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


_METADATA_PROPS = 14  # ModelProto.metadata_props: repeated StringStringEntryProto {key = 1; value = 2}


def _varint(data: bytes | mmap.mmap, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise ValueError('truncated varint')
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError('varint too long')


def _fields(data: bytes | mmap.mmap, start: int, end: int):
    """(field number, wire type, value or (offset, length)) of each field in ``data[start:end]``."""
    pos = start
    while pos < end:
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > end:
                raise ValueError('field runs past the end')
            yield number, wire, (pos, length)
            pos += length
        else:
            raise ValueError(f'unsupported wire type {wire}')
    if pos != end:
        raise ValueError('truncated message')


def read_metadata_props(path: str | Path) -> dict[str, str]:
    """``metadata_props`` of an ONNX file with no dependency (ConfigError when it is not ONNX-shaped)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f'ONNX model not found: {path}')
    props: dict[str, str] = {}
    try:
        with open(path, 'rb') as handle:
            size = path.stat().st_size
            if size == 0:
                raise ValueError('empty file')
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                for number, wire, value in _fields(data, 0, size):
                    if number != _METADATA_PROPS or wire != 2:
                        continue
                    offset, length = value
                    entry = {}
                    for sub, sub_wire, sub_value in _fields(data, offset, offset + length):
                        if sub in (1, 2) and sub_wire == 2:
                            start, count = sub_value
                            entry[sub] = bytes(data[start:start + count]).decode('utf-8')
                    props[entry.get(1, '')] = entry.get(2, '')
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f'cannot read the metadata of ONNX model {path}: {exc}') from None
    return props
