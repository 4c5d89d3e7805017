"""The one interface every inference backend implements, plus the input checks they share.

Engines take and return float32 NCHW host arrays keyed by the fixed tensor names of
:mod:`nitedr_ros.modelspec`. Shape limits an engine has (a TensorRT optimisation profile, a static
ONNX input) are published as :class:`ShapeLimits` so the pipeline can resize or pad to fit.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

LOG = logging.getLogger('nitedr_ros.engines')



@dataclass(frozen=True)
class ShapeLimits:
    """Spatial sizes an engine accepts: ``fixed`` (static input) or a ``minimum``..``maximum`` range."""

    fixed: tuple[int, int] | None = None
    minimum: tuple[int, int] | None = None
    maximum: tuple[int, int] | None = None


class InferenceEngine(ABC):
    """A loaded model that maps named float32 NCHW inputs to named float32 NCHW outputs."""

    backend: str = ''
    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()
    metadata: dict[str, str]
    last_inference_ms: float = 0.0
    limits: ShapeLimits = ShapeLimits()
    selection_reason: str = ''
    io: str = 'float'  # 'uint8': takes and returns the camera's bytes (modelspec.u8_input_names)

    @abstractmethod
    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one forward pass; sets :attr:`last_inference_ms`."""

    @abstractmethod
    def describe(self) -> dict[str, str]:
        """Human-readable facts: backend, model, precision, engine file, why this backend ..."""

    def close(self) -> None:  # noqa: B027 - engines without resources need not override it
        """Release resources (device memory, sessions); the engine is unusable afterwards."""

    @property
    def multiple_of(self) -> int:
        """Spatial multiple the model needs (ONNX metadata ``nitedr.multiple_of``, else the network spec)."""
        value = self.metadata.get('nitedr.multiple_of')
        if value:
            try:
                return max(1, int(value))
            except ValueError:
                pass
        network = self.metadata.get('nitedr.network')
        if network:
            from ..modelspec import NETWORKS

            spec = NETWORKS.get(network)
            if spec is not None:
                return spec.multiple_of
        return 1

    def __enter__(self) -> InferenceEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _describe_common(self) -> dict[str, str]:
        facts = {
            'backend': self.backend,
            'inputs': ','.join(self.input_names),
            'outputs': ','.join(self.output_names),
        }
        for key in ('nitedr.network', 'nitedr.config', 'nitedr.precision'):
            if key in self.metadata:
                facts[key.split('.', 1)[1]] = self.metadata[key]
        if self.selection_reason:
            facts['why'] = self.selection_reason
        return facts


def check_inputs(inputs: Mapping[str, np.ndarray], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Every named input present as a 4-D array, returned C-contiguous float32 (no copy when already so)."""
    missing = [n for n in names if n not in inputs]
    if missing:
        raise ConfigError(f'engine input {", ".join(missing)} missing (engine expects {", ".join(names)})')
    checked: dict[str, np.ndarray] = {}
    for name in names:
        array = inputs[name]
        if not isinstance(array, np.ndarray) or array.ndim != 4:
            shape = getattr(array, 'shape', type(array).__name__)
            raise ConfigError(f'engine input {name} must be a 4-D NCHW array, got {shape}')
        checked[name] = np.ascontiguousarray(array, dtype=np.float32)
    return checked


def checked_inputs(inputs: Mapping[str, np.ndarray], names: tuple[str, ...],
                   dtypes: Mapping[str, np.dtype]) -> dict[str, np.ndarray]:
    """Every named input present, C-contiguous, in the engine's element type: float inputs through
    :func:`check_inputs` (4-D, float32), the integer inputs of uint8-I/O models as given (dtype checked)."""
    from ..modelspec import THERMAL_RANGE

    floats = tuple(n for n in names if np.dtype(dtypes[n]).kind == 'f' and n != THERMAL_RANGE)
    checked = check_inputs({n: inputs[n] for n in floats if n in inputs}, floats)
    for name in names:
        if name in checked:
            continue
        if name not in inputs:
            raise ConfigError(f'engine input {name} missing (engine expects {", ".join(names)})')
        want = np.dtype(dtypes[name])
        array = np.asarray(inputs[name])
        if array.dtype != want and not (want.kind == 'f' and array.dtype.kind == 'f'):
            raise ConfigError(f'engine input {name} must be {want}, got {array.dtype}')
        checked[name] = np.ascontiguousarray(array, dtype=want)
    return checked


def model_label(path: object) -> str:
    """Short name of a model for logs."""
    from pathlib import Path

    return Path(str(path)).name
