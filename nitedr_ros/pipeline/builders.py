"""Open what a :class:`~nitedr_ros.pipeline.config.PipelineConfig` describes: the engines of its roles, the
pipeline, and (build-only mode) the TensorRT engines without running them."""

from __future__ import annotations

import logging
from pathlib import Path

from ..engines.base import InferenceEngine
from ..modes import MODE_ROLES
from .config import PipelineConfig

LOG = logging.getLogger('nitedr_ros.pipeline')


def resolve_models(config: PipelineConfig) -> dict[str, Path]:
    """Role -> existing model file for the configured mode (ConfigError naming a missing one)."""
    from ..paths import resolve_model

    return {role: resolve_model(config.model_for(role)) for role in MODE_ROLES[config.mode]}


def open_role_engine(config: PipelineConfig, role: str) -> InferenceEngine:
    """Open the engine of one role with the configuration's engine options."""
    from ..engines.selection import open_engine

    options = config.options_for(role)
    network = config.network_for(role) if options.backend.startswith(('torch', 'identity')) else None
    return open_engine(config.model_for(role), options, network=network)


def build_engines(config: PipelineConfig, *, lock_timeout_s: float | None = None, prune: bool = True) -> dict:
    """Build-only mode: build (or verify) the cached TensorRT engine of every role, without running them.

    Uses exactly the options :func:`build_pipeline` opens engines with, so what is provisioned is what the
    node loads. Returns role -> :class:`nitedr_ros.engines.CachedEngine`. Needs a CUDA device and TensorRT
    (BackendUnavailableError otherwise). For the node's ``build_only`` parameter and ``nitedr build-engine``.
    """
    from ..engines import provision_engine

    return {role: provision_engine(config.model_for(role), config.options_for(role),
                                   lock_timeout_s=lock_timeout_s, prune=prune)
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
        return DerainPipeline(config.mode, engines, thermal=thermal, window_size=config.latency_window,
                              models={role: config.model_for(role) for role in engines},
                              registration=config.registration)
    except BaseException:
        for engine in engines.values():
            engine.close()
        raise
