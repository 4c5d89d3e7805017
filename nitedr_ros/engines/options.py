"""How to open an engine: one frozen, validated options object from the node parameters to the backend.

Dependency-free (no numpy, no TensorRT): the parameter schema imports the backend and precision choices from
here. :class:`EngineOptions` is made once (``core.parameters.engine_options``, a command's flags, a test)
and passed whole to :func:`nitedr_ros.engines.open_engine`; each backend reads the fields it uses.
:class:`BuildSettings` are the TensorRT builder settings; every field of it is part of the engine cache key
(:class:`nitedr_ros.engines.engine_cache.EngineKey`), so a new build setting is one field here plus the line
in the builder that uses it (``tensorrt_toolkit.TensorRTToolkit.build``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ..errors import ConfigError

# 'onnxruntime' picks the CUDA provider when it can; 'torch' picks CUDA when torch sees a GPU.
BACKENDS: tuple[str, ...] = ('auto', 'tensorrt', 'onnxruntime', 'onnxruntime-tensorrt', 'onnxruntime-cuda',
                             'onnxruntime-cpu', 'torch', 'torch-cpu', 'torch-cuda', 'identity')
PRECISIONS: tuple[str, ...] = ('fp32', 'fp16')
# Engine I/O: 'float' = float32 NCHW tensors converted on the host; 'uint8' = the model's uint8 NHWC I/O
# variant (conversion inside the graph); 'auto' = uint8 where the model has that variant.
ENGINE_IO: tuple[str, ...] = ('auto', 'float', 'uint8')
ORT_OPTIMIZATIONS: tuple[str, ...] = ('disable', 'basic', 'extended', 'all')


def _hw(value: Any, name: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f'{name} must be two integers (H, W), got {value!r}') from None
    if h <= 0 or w <= 0:
        raise ConfigError(f'{name} must be two positive sizes (H, W), got {value!r}')
    return h, w


@dataclass(frozen=True)
class BuildSettings:
    """TensorRT builder settings: precision, optimisation profile (H, W) range, workspace, optimisation
    level. All of them are part of the engine cache key."""

    precision: str = 'fp16'
    profile_min_hw: tuple[int, int] = (128, 128)
    profile_opt_hw: tuple[int, int] = (720, 1280)
    profile_max_hw: tuple[int, int] = (1088, 1920)
    workspace_mb: int = 1024
    optimization_level: int = 3

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f'precision must be one of {", ".join(PRECISIONS)}, got {self.precision!r}')
        for name in ('profile_min_hw', 'profile_opt_hw', 'profile_max_hw'):
            object.__setattr__(self, name, _hw(getattr(self, name), name))
        lo, opt, hi = self.profile_min_hw, self.profile_opt_hw, self.profile_max_hw
        if not all(lo[i] <= opt[i] <= hi[i] for i in range(2)):
            raise ConfigError(f'optimisation profile needs min <= opt <= max per axis, got {lo}, {opt}, {hi}')
        if int(self.workspace_mb) <= 0:
            raise ConfigError(f'workspace_mb must be positive, got {self.workspace_mb}')
        if not 0 <= int(self.optimization_level) <= 5:
            raise ConfigError(f'optimization_level must be 0..5 (TensorRT builder optimisation level), '
                              f'got {self.optimization_level}')
        object.__setattr__(self, 'workspace_mb', int(self.workspace_mb))
        object.__setattr__(self, 'optimization_level', int(self.optimization_level))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BuildSettings:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True)
class EngineOptions:
    """Everything a backend needs besides the model, validated once here.

    ``cache_dir`` '' = ``~/.ros/nitedr_ros/engines``; ``engine_file`` '' = the cache (TensorRT plan path
    otherwise); ``threads`` 0 = the runtime's default; torch-cuda: ``cuda_graphs`` (capture per input size),
    ``torch_compile``, ``channels_last``; ``io`` picks the float or uint8 I/O variant of a model.
    """

    backend: str = 'auto'
    build: BuildSettings = field(default_factory=BuildSettings)
    threads: int = 0
    device_index: int = 0
    cache_dir: str = ''
    force_rebuild: bool = False
    engine_file: str = ''
    io: str = 'auto'
    cuda_graphs: bool = True
    torch_compile: bool = False
    channels_last: bool = True
    ort_optimization: str = 'all'
    verbose: bool = False

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f'unknown backend {self.backend!r}; choose one of {", ".join(BACKENDS)}')
        if self.io not in ENGINE_IO:
            raise ConfigError(f'unknown engine io {self.io!r}; choose one of {", ".join(ENGINE_IO)}')
        if self.ort_optimization not in ORT_OPTIMIZATIONS:
            raise ConfigError(f'unknown ONNX Runtime optimization {self.ort_optimization!r}; choose one of '
                              f'{", ".join(ORT_OPTIMIZATIONS)}')
        if int(self.threads) < 0:
            raise ConfigError(f'threads must be >= 0, got {self.threads}')
        if int(self.device_index) < 0:
            raise ConfigError(f'device_index must be >= 0, got {self.device_index}')
        object.__setattr__(self, 'cache_dir', str(self.cache_dir or ''))
        object.__setattr__(self, 'engine_file', str(self.engine_file or ''))

    @property
    def precision(self) -> str:
        return self.build.precision

    @classmethod
    def make(cls, backend: str = 'auto', *, precision: str = 'fp32', **kwargs: Any) -> EngineOptions:
        """Options from flat keywords; ``precision`` and any :class:`BuildSettings` field go to ``build``."""
        build_names = {f.name for f in fields(BuildSettings)}
        build = {k: kwargs.pop(k) for k in list(kwargs) if k in build_names}
        unknown = sorted(set(kwargs) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f'unknown engine option(s) {", ".join(unknown)}')
        return cls(backend=backend, build=BuildSettings(precision=precision, **build), **kwargs)

    def with_(self, **changes: Any) -> EngineOptions:
        """A copy with some fields changed (build settings by name too), validated again."""
        build_names = {f.name for f in fields(BuildSettings)}
        build = {k: changes.pop(k) for k in list(changes) if k in build_names}
        if build:
            changes['build'] = replace(self.build, **build)
        return replace(self, **changes)
