"""Pipeline configuration: the mode, each role's model, the engine options and the thermal settings
(range, registration to the RGB camera).

Dependency-free apart from the options object (no numpy, no OpenCV), so the parameter schema can build it.
The engines are opened by :mod:`nitedr_ros.pipeline.builders`; the engine lifecycle (build, cache, load)
belongs to :mod:`nitedr_ros.engines`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ..engines.options import EngineOptions
from ..errors import ConfigError
from ..modelspec import NETWORKS, default_model_filename
from ..modes import DEFAULT_NETWORKS, MODE_ROLES, MODES
from .registration_spec import RegistrationSpec


def default_model(mode: str, role: str) -> str:
    """File name (inside ``models/``) of the shipped model for a role, e.g. ``cleannet_realtime.onnx``."""
    try:
        network, config = DEFAULT_NETWORKS[mode][role]
    except KeyError:
        raise ConfigError(f'mode {mode!r} has no role {role!r}') from None
    return default_model_filename(network, config)


@dataclass
class PipelineConfig:
    """Everything needed to build a pipeline; every transport fills it from the node parameters."""

    mode: str = 'nitedr'
    models: dict[str, str] = field(default_factory=dict)  # role -> ONNX path / name in models/ / checkpoint
    engine: EngineOptions = field(default_factory=EngineOptions)  # auto backend, fp16 builds
    engine_files: dict[str, str] = field(default_factory=dict)  # role -> explicit TensorRT plan ('' = cache)
    thermal_range: tuple[float, float] | None = None
    thermal_percentiles: tuple[float, float] = (1.0, 99.0)
    thermal_smoothing: float = 0.9
    registration: RegistrationSpec = field(default_factory=RegistrationSpec)  # thermal -> RGB pixels
    latency_window: int = 100

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f'unknown mode {self.mode!r}; choose one of {", ".join(MODES)}')
        roles = MODE_ROLES[self.mode]
        self.engine_files = {role: str(path) for role, path in dict(self.engine_files).items() if path}
        for what, table in (('models', self.models), ('engine_files', self.engine_files)):
            unknown = sorted(set(table) - set(roles))
            if unknown:
                raise ConfigError(f'mode {self.mode} has no model role {", ".join(unknown)} for {what} '
                                  f'(roles: {", ".join(roles)})')
        if self.thermal_range is not None:
            low, high = (float(v) for v in self.thermal_range)
            if not high > low:
                raise ConfigError(f'thermal_range must have low < high, got {self.thermal_range}')
            self.thermal_range = (low, high)
        if self.latency_window < 1:
            raise ConfigError(f'latency_window must be >= 1, got {self.latency_window}')

    def model_for(self, role: str) -> str:
        """The configured model of a role, or the shipped default."""
        return self.models.get(role) or default_model(self.mode, role)

    def network_for(self, role: str) -> str:
        """The network a role runs: the default one, or the one a custom model's file name names."""
        network = DEFAULT_NETWORKS[self.mode][role][0]
        if role in self.models:  # a custom file named <network>_... says which network it holds
            named = Path(self.models[role]).name.split('.', 1)[0].split('_', 1)[0]
            network = named if named in NETWORKS else network
        return network

    def options_for(self, role: str) -> EngineOptions:
        """The engine options of a role (its explicit engine file, if any)."""
        return replace(self.engine, engine_file=self.engine_files.get(role, ''))

