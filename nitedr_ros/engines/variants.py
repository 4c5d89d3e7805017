"""Which file of a model an engine opens: float or uint8 I/O, fp32 or fp16.

A model is named by its stem (``cleannet_realtime``, configured as ``cleannet_realtime.onnx``); beside it
may lie four ONNX variants and the torch weights:

==========================  ======  =========  ===============================================
file                        io      precision  made by
==========================  ======  =========  ===============================================
``<stem>.onnx``             float   fp32       ``nitedr export`` (training, evaluation, parity)
``<stem>.fp16.onnx``        float   fp16       ``nitedr export``
``<stem>.u8.onnx``          uint8   fp32       ``nitedr export --uint8`` (the pipeline's choice)
``<stem>.u8.fp16.onnx``     uint8   fp16       ``nitedr export --uint8``
``<stem>.pt``               either  weights    ``nitedr train --export-to`` (the torch backend)
==========================  ======  =========  ===============================================

``models/`` ships the uint8 variants and the weights (the float files are rebuilt from the weights with
``nitedr export``). :func:`choose_variant` picks for an ``io`` (``auto`` = uint8 where present) and a
precision (fp16 where present; else fp32, with a note).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

SUFFIXES: dict[tuple[str, str], str] = {
    ('float', 'fp32'): '.onnx',
    ('float', 'fp16'): '.fp16.onnx',
    ('uint8', 'fp32'): '.u8.onnx',
    ('uint8', 'fp16'): '.u8.fp16.onnx',
}


@dataclass(frozen=True)
class Variant:
    path: Path
    io: str
    precision: str
    note: str = ''


def model_stem(path: str | os.PathLike[str]) -> tuple[Path, str]:
    """(folder, stem) of any variant's path: ``models/cleannet_realtime.u8.fp16.onnx`` ->
    ``(models, 'cleannet_realtime')``."""
    p = Path(path)
    return p.parent, p.name.split('.', 1)[0]


def variant_path(path: str | os.PathLike[str], io: str, precision: str) -> Path:
    folder, stem = model_stem(path)
    return folder / (stem + SUFFIXES[(io, precision)])


def existing_variants(path: str | os.PathLike[str]) -> dict[tuple[str, str], Path]:
    folder, stem = model_stem(path)
    found = {}
    for key, suffix in SUFFIXES.items():
        candidate = folder / (stem + suffix)
        if candidate.is_file():
            found[key] = candidate
    return found


def requested(path: str | os.PathLike[str]) -> tuple[str | None, str | None]:
    """(io, precision) a path names explicitly (``x.u8.fp16.onnx`` -> uint8, fp16); None when plain."""
    name = Path(path).name
    for (io, precision), suffix in sorted(SUFFIXES.items(), key=lambda kv: -len(kv[1])):
        if name.endswith(suffix) and suffix != '.onnx':
            return io, precision
    return None, None


def choose_variant(path: str | os.PathLike[str], precision: str, io: str = 'auto') -> Variant:
    """The file to open for ``precision`` and ``io`` (``auto``/``float``/``uint8``); ConfigError naming
    what exists when nothing fits. A path naming a variant explicitly is opened as it is."""
    path = Path(path)
    named_io, named_precision = requested(path)
    if named_io is not None and path.is_file():
        note = '' if named_precision == precision else f'{path.name} is {named_precision}'
        return Variant(path, named_io, named_precision, note)
    found = existing_variants(path)
    if not found:
        raise ConfigError(f'ONNX model not found: {path}')
    ios = ('uint8', 'float') if io == 'auto' else (io,)
    for want_io in ios:
        if (want_io, precision) in found:
            return Variant(found[(want_io, precision)], want_io, precision)
        other = 'fp32' if precision == 'fp16' else 'fp16'
        if (want_io, other) in found:
            chosen = found[(want_io, other)]
            missing = variant_path(path, want_io, precision).name
            return Variant(chosen, want_io, other, f'{missing} not found; using {chosen.name} ({other})')
    have = ', '.join(p.name for p in found.values())
    hint = (' (rebuild the float model from the weights: nitedr export --checkpoint <stem>.pt)'
            if io == 'float' else '')
    raise ConfigError(f'{path.name}: no {io} I/O variant (found {have}){hint}')
