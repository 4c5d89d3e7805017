"""Pipeline configuration, the shipped default model of every mode and role, and ``build_pipeline``.

The engine lifecycle (build, cache, load) belongs to :mod:`nitedr_ros.engines`; this module only says which
model each role uses and asks :func:`nitedr_ros.engines.open_engine` for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..engines.base import BACKENDS, PRECISIONS, InferenceEngine
from ..errors import ConfigError
from ..modelspec import NETWORKS, default_model_filename

LOG = logging.getLogger('nitedr_ros.pipeline')

MODES: tuple[str, ...] = ('nitedr', 'stereo', 'single', 'full')

# mode -> role -> (network, configuration): THE place the shipped defaults are chosen.
DEFAULT_NETWORKS: dict[str, dict[str, tuple[str, str]]] = {
    'nitedr': {'derain': ('cleannet', 'realtime'), 'fusion': ('fusionnet', 'realtime')},
    'stereo': {'stereo': ('stereoirr', 'realtime')},
    'single': {'derain': ('mspfn', 'realtime')},
    'full': {'derain': ('cleannet', 'realtime'), 'fusion': ('fusionnet', 'realtime'),
             'stereo': ('stereoirr', 'realtime')},
}
MODE_ROLES: dict[str, tuple[str, ...]] = {mode: tuple(roles) for mode, roles in DEFAULT_NETWORKS.items()}
# Streams a mode needs; 'thermal' may be left out with fuse=False (degraded: no 'fused' output).
MODE_STREAMS: dict[str, tuple[str, ...]] = {
    'nitedr': ('rgb', 'thermal'),
    'stereo': ('left', 'right'),
    'single': ('rgb',),
    'full': ('rgb', 'left', 'right', 'thermal'),
}
MODE_OUTPUTS: dict[str, tuple[str, ...]] = {
    'nitedr': ('derained_rgb', 'fused'),
    'stereo': ('derained_left', 'derained_right'),
    'single': ('derained_rgb',),
    'full': ('derained_rgb', 'fused', 'derained_left', 'derained_right'),
}


def default_model(mode: str, role: str) -> str:
    """File name (inside ``models/``) of the shipped model for a role, e.g. ``cleannet_realtime.onnx``."""
    try:
        network, config = DEFAULT_NETWORKS[mode][role]
    except KeyError:
        raise ConfigError(f'mode {mode!r} has no role {role!r}') from None
    return default_model_filename(network, config)


def _hw(value: object, name: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ConfigError(f'{name} must be two integers (H, W), got {value!r}') from None
    if h <= 0 or w <= 0:
        raise ConfigError(f'{name} must be positive, got {value!r}')
    return h, w


@dataclass
class PipelineConfig:
    """Everything needed to build a pipeline; every transport fills it from the node parameters."""

    mode: str = 'nitedr'
    models: dict[str, str] = field(default_factory=dict)  # role -> ONNX path / name in models/ / checkpoint
    backend: str = 'auto'
    precision: str = 'fp16'
    engine_cache_dir: str = ''
    force_engine_rebuild: bool = False
    profile_min_hw: tuple[int, int] = (128, 128)
    profile_opt_hw: tuple[int, int] = (720, 1280)
    profile_max_hw: tuple[int, int] = (1088, 1920)
    thermal_range: tuple[float, float] | None = None
    threads: int = 0
    workspace_mb: int = 1024  # TensorRT builder workspace (MiB); part of the engine cache key
    optimization_level: int = 3  # TensorRT builder optimisation level 0-5; part of the engine cache key
    engine_files: dict[str, str] = field(default_factory=dict)  # role -> explicit TensorRT plan ('' = cache)
    device_index: int = 0
    latency_window: int = 100
    thermal_percentiles: tuple[float, float] = (1.0, 99.0)
    thermal_smoothing: float = 0.9

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f'unknown mode {self.mode!r}; choose one of {", ".join(MODES)}')
        if self.backend not in BACKENDS:
            raise ConfigError(f'unknown backend {self.backend!r}; choose one of {", ".join(BACKENDS)}')
        if self.precision not in PRECISIONS:
            raise ConfigError(f'unknown precision {self.precision!r}; choose one of {", ".join(PRECISIONS)}')
        unknown = sorted(set(self.models) - set(MODE_ROLES[self.mode]))
        if unknown:
            raise ConfigError(f'mode {self.mode} has no model role {", ".join(unknown)} '
                              f'(roles: {", ".join(MODE_ROLES[self.mode])})')
        self.engine_files = {role: str(path) for role, path in dict(self.engine_files).items() if path}
        unknown = sorted(set(self.engine_files) - set(MODE_ROLES[self.mode]))
        if unknown:
            raise ConfigError(f'mode {self.mode} has no model role {", ".join(unknown)} for engine_files '
                              f'(roles: {", ".join(MODE_ROLES[self.mode])})')
        if not 0 <= int(self.optimization_level) <= 5:
            raise ConfigError(f'optimization_level must be 0..5 (TensorRT builder level), '
                              f'got {self.optimization_level}')
        if int(self.workspace_mb) <= 0:
            raise ConfigError(f'workspace_mb must be positive, got {self.workspace_mb}')
        if int(self.device_index) < 0:
            raise ConfigError(f'device_index must be >= 0, got {self.device_index}')
        self.profile_min_hw = _hw(self.profile_min_hw, 'profile_min_hw')
        self.profile_opt_hw = _hw(self.profile_opt_hw, 'profile_opt_hw')
        self.profile_max_hw = _hw(self.profile_max_hw, 'profile_max_hw')
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


def resolve_models(config: PipelineConfig) -> dict[str, Path]:
    """Role -> existing model file for the configured mode (ConfigError naming a missing one)."""
    from ..paths import resolve_model

    return {role: resolve_model(config.model_for(role)) for role in MODE_ROLES[config.mode]}


def open_role_engine(config: PipelineConfig, role: str) -> InferenceEngine:
    """Open the engine of one role with the configuration's backend settings."""
    from ..engines.selection import open_engine

    model = config.model_for(role)
    network = DEFAULT_NETWORKS[config.mode][role][0]
    if role in config.models:  # a custom file named <network>_... says which network it holds
        named = Path(model).name.split('.', 1)[0].split('_', 1)[0]
        network = named if named in NETWORKS else network
    return open_engine(model, config.backend, precision=config.precision, threads=config.threads,
                       engine_cache_dir=config.engine_cache_dir or None,
                       force_rebuild=config.force_engine_rebuild, profile_min_hw=config.profile_min_hw,
                       profile_opt_hw=config.profile_opt_hw, profile_max_hw=config.profile_max_hw,
                       workspace_mb=config.workspace_mb, optimization_level=config.optimization_level,
                       engine_file=config.engine_files.get(role) or None, device_index=config.device_index,
                       network=network if config.backend.startswith(('torch', 'identity')) else None)


def build_settings(config: PipelineConfig):
    """The TensorRT :class:`nitedr_ros.engines.BuildSettings` the node asks for with this configuration."""
    from ..engines import BuildSettings

    return BuildSettings(config.precision, config.profile_min_hw, config.profile_opt_hw,
                         config.profile_max_hw, config.workspace_mb, config.optimization_level)


def build_engines(config: PipelineConfig, *, verbose: bool = False, lock_timeout_s: float | None = None,
                  prune: bool = True) -> dict:
    """Build-only mode: build (or verify) the cached TensorRT engine of every role, without running them.

    Uses exactly the settings :func:`build_pipeline` opens engines with (precision, profile, workspace,
    optimisation level, device, cache directory, ``engine_files``), so what is provisioned is what the node
    loads. Returns role -> :class:`nitedr_ros.engines.CachedEngine`. Needs a CUDA device and TensorRT
    (BackendUnavailableError otherwise). For the node's ``build_only`` parameter and ``nitedr build-engine``.
    """
    from ..engines import provision_engine

    settings = build_settings(config)
    return {role: provision_engine(config.model_for(role), settings,
                                   cache_dir=config.engine_cache_dir or None,
                                   force_rebuild=config.force_engine_rebuild,
                                   device_index=config.device_index, verbose=verbose,
                                   lock_timeout_s=lock_timeout_s,
                                   engine_file=config.engine_files.get(role) or None, prune=prune)
            for role in MODE_ROLES[config.mode]}


def build_pipeline(config: PipelineConfig):
    """Open the engines of the configured mode and return a ready :class:`DerainPipeline`."""
    from .derain import DerainPipeline
    from .thermal import ThermalNormalizer

    engines: dict[str, InferenceEngine] = {}
    try:
        for role in MODE_ROLES[config.mode]:
            engines[role] = open_role_engine(config, role)
            LOG.info('%s engine: %s', role, engines[role].describe())
        thermal = ThermalNormalizer(config.thermal_range, percentiles=config.thermal_percentiles,
                                    smoothing=config.thermal_smoothing)
        return DerainPipeline(config.mode, engines, thermal=thermal, window_size=config.latency_window)
    except BaseException:
        for engine in engines.values():
            engine.close()
        raise
